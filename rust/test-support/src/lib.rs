//! The test harness every Rust test and ringctl share: namespaces scoped to one test run, and the
//! bookkeeping of Ring's entries in `/dev/shm` that proves a run left shared memory as it found it.
//! Dev-only (`publish = false`); it does not depend on the Ring crates, so ringctl can use it too.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod ns;
pub mod shm;
