//! The Rust connector.
