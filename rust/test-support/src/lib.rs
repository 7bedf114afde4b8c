//! The test harness every Rust test and ringctl share: namespaces scoped to one test run, a
//! supervised child process, a live broker ("start it, wait for its segment, stop it, check
//! `/dev/shm`"), and the bookkeeping of Ring's entries in `/dev/shm`. Dev-only (`publish = false`);
//! it does not depend on the Ring crates (only on duct and rustix, which ringctl compiles anyway), so
//! ringctl uses it as well as the tests.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod broker;
pub mod child;
pub mod ns;
pub mod shm;

pub use broker::Broker;
pub use child::{describe, Child, Echo, Signal};
/// The process-expression builder a [`Child`] starts from, re-exported so tests need no duct of
/// their own.
pub use duct;
