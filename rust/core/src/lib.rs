//! Shared mechanics of Ring: everything that touches shared memory or the wire, used by the broker and
//! the Rust connector. The byte layout lives in [`layout`]; `spec/` describes the same bytes in prose.
//!
//! Layers, bottom up: [`sys`] (the only raw system calls), [`segment`] (mapped, validated shared
//! memory), [`doorbell`] (futex sleep and wake, wait strategies), [`frame`], [`ring`] (SPSC) and
//! [`broadcast`] (channels), then [`avro`] and [`control`] for what the bytes mean.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

pub mod avro;
pub mod broadcast;
pub mod bus;
pub mod control;
pub mod doorbell;
pub mod error_code;
pub mod figures;
pub mod frame;
pub mod layout;
pub mod names;
pub mod ring;
pub mod seal;
pub mod segment;
pub mod sigbus;
pub mod sys;
