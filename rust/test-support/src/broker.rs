//! A live broker for one test or one ringctl step: start `impulsed` in a namespace, wait until it
//! serves, stop it with SIGTERM, and check that it left nothing of the namespace in `/dev/shm`.

use std::{
  path::{Path, PathBuf},
  process::ExitStatus,
  time::{Duration, Instant},
};

use crate::{
  child::{describe, Child, Echo},
  shm,
};

/// How long a broker has to come up, and to exit after SIGTERM.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// A running broker; dropping it stops it (SIGTERM, then SIGKILL) and removes what its namespace left.
pub struct Broker {
  ns: String,
  child: Option<Child>,
}

impl Broker {
  /// Starts `bin --ns <ns> <args>` and waits until its control segment exists.
  pub fn start(bin: &Path, ns: &str, args: &[&str], echo: Echo) -> Result<Broker, String> {
    Broker::start_when(bin, ns, args, echo, &|_| true, &|| false)
  }

  /// Like [`Broker::start`], and also until `serves(pid)` holds (say, the control segment opens with
  /// this broker's pid in it, not a dead broker's); gives up when `cancelled()` (ringctl's Ctrl-C).
  pub fn start_when(
    bin: &Path,
    ns: &str,
    args: &[&str],
    echo: Echo,
    serves: &dyn Fn(u32) -> bool,
    cancelled: &dyn Fn() -> bool,
  ) -> Result<Broker, String> {
    let argv: Vec<&str> = ["--ns", ns].iter().chain(args).copied().collect();
    let expr = duct::cmd(bin, argv).env("IMPULSE_RING_NS", ns);
    let child = Child::start("broker", expr, echo).map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let broker = Broker { ns: ns.to_string(), child: Some(child) };
    let ctl = broker.control_path();
    let started = Instant::now();
    while !(ctl.exists() && serves(broker.pid())) {
      if let Ok(Some(status)) = broker.child().try_exit() {
        // Its last lines may still be in the pipe: read them before quoting them.
        let status = broker.child().wait_exit(Duration::from_secs(1)).unwrap_or(status);
        let transcript = broker.child().transcript();
        return Err(format!("the broker exited with {} before serving `{ns}`\n{transcript}", describe(status)));
      }
      if cancelled() {
        return Err("interrupted while waiting for the broker to start".into());
      }
      if started.elapsed() > BROKER_TIMEOUT {
        let transcript = broker.child().transcript();
        return Err(format!("the broker did not serve `{ns}` within {BROKER_TIMEOUT:?}\n{transcript}"));
      }
      std::thread::sleep(Duration::from_millis(5));
    }
    Ok(broker)
  }

  /// The namespace it serves.
  pub fn ns(&self) -> &str {
    &self.ns
  }

  /// `/dev/shm/impulse-ring.<ns>.ctl`.
  pub fn control_path(&self) -> PathBuf {
    Path::new(shm::SHM_DIR).join(format!("{}ctl", shm::namespace_prefix(&self.ns)))
  }

  /// The broker process.
  pub fn child(&self) -> &Child {
    self.child.as_ref().expect("a broker's process is there until it is stopped")
  }

  /// The broker's pid.
  pub fn pid(&self) -> u32 {
    self.child().pid()
  }

  /// The broker process, no longer stopped or cleaned up after when dropped: for tests that kill
  /// the broker themselves and look at what it left.
  pub fn into_child(mut self) -> Child {
    self.child.take().expect("a broker's process is there until it is stopped")
  }

  /// Stops the broker with SIGTERM (SIGKILL after `grace`) and returns how it ended; the namespace
  /// is not checked.
  pub fn stop(mut self, grace: Duration) -> Result<ExitStatus, String> {
    let child = self.child.take().expect("a broker is stopped once");
    child.stop(grace)
  }

  /// Stops the broker and fails unless it exited 0 on SIGTERM and left nothing of its namespace in
  /// `/dev/shm` (whatever it left is removed, and named in the error).
  pub fn stop_clean(self, grace: Duration) -> Result<(), String> {
    let ns = self.ns.clone();
    let transcript = self.child().transcript();
    let status = self.stop(grace)?;
    let mut problems = Vec::new();
    if !status.success() {
      problems.push(format!("the broker exited with {} on SIGTERM instead of 0\n{transcript}", describe(status)));
    }
    if let Err(leak) = clean(&ns) {
      problems.push(leak);
    }
    if problems.is_empty() {
      Ok(())
    } else {
      Err(problems.join("\n"))
    }
  }
}

impl Drop for Broker {
  fn drop(&mut self) {
    if let Some(child) = self.child.take() {
      let _ = child.stop(BROKER_TIMEOUT);
      let _ = clean(&self.ns);
    }
  }
}

/// Fails naming every `/dev/shm` entry of namespace `ns`, after removing them (after a grace period:
/// a broker may still be unlinking as its process exits).
pub fn clean(ns: &str) -> Result<(), String> {
  shm::ensure_no_leaks(&Default::default(), &shm::namespace_prefix(ns), &format!("namespace `{ns}`"))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_broker_that_exits_early_is_reported_with_its_output() {
    let ns = crate::ns::namespace("early");
    let err = Broker::start(Path::new("/bin/echo"), &ns, &[], Echo::Quiet).err().expect("echo is no broker");
    assert!(err.contains("exited with exit code 0") && err.contains(&format!("--ns {ns}")), "{err}");
  }
}
