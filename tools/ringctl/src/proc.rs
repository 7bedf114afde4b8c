//! Long-lived child processes (the broker, demo apps, testees) are the test-support crate's
//! [`Child`]: started through duct, output kept and echoed as `[name] line`, killed and reaped on every
//! exit path. This file adds what only ringctl needs: surviving Ctrl-C long enough to stop its
//! children and check `/dev/shm`.

use std::sync::{
  atomic::{AtomicBool, Ordering},
  Arc, OnceLock,
};

use anyhow::Context;
pub(crate) use impulse_ring_test_support::child::{describe, Child, Echo};

/// Starts `expr` as a child whose lines are echoed with a `[name] ` prefix.
pub(crate) fn start(name: &str, expr: duct::Expression) -> anyhow::Result<Child> {
  Child::start(name, expr, Echo::Prefixed).with_context(|| format!("cannot start {name}"))
}

/// Set by SIGINT or SIGTERM once [`trap_interrupts`] ran.
fn flag() -> &'static Arc<AtomicBool> {
  static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
  FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// From now on Ctrl-C (SIGINT) and SIGTERM set a flag that [`interrupted`] reports, instead of killing
/// ringctl before it has stopped its children. Children start with default handlers again (exec
/// resets caught signals), so Ctrl-C still reaches them through the terminal's process group.
pub(crate) fn trap_interrupts() {
  static TRAPPED: OnceLock<()> = OnceLock::new();
  TRAPPED.get_or_init(|| {
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
      // signal-hook's flag handler only stores to the atomic: async-signal-safe.
      if let Err(err) = signal_hook::flag::register(signal, Arc::clone(flag())) {
        eprintln!("ringctl: cannot trap signal {signal} ({err}); Ctrl-C will end ringctl at once");
      }
    }
  });
}

/// Whether Ctrl-C or SIGTERM arrived since [`trap_interrupts`].
pub(crate) fn interrupted() -> bool {
  flag().load(Ordering::Relaxed)
}

/// Forgets an interrupt, for tests that simulate Ctrl-C.
#[cfg(test)]
pub(crate) fn clear_interrupt() {
  flag().store(false, Ordering::Relaxed);
}
