//! `ringctl dev`: a live bus on this machine. Builds the broker (`impulsed`) and the Rust connector's
//! `demo` example, starts the broker in a private namespace, runs the demo against it with both outputs
//! prefixed, then on the demo's exit or Ctrl-C stops everything and checks `/dev/shm` is clean.

use std::{path::Path, time::Duration};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::{broker, flags, proc, shm};

impl flags::Dev {
  pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
    let ns = self.ns.unwrap_or_else(|| format!("dev-{}", std::process::id()));
    let root = sh.current_dir();
    println!("==> building the broker and the demo");
    cmd!(sh, "cargo build -p impulsed -p impulse-ring-connector --example demo")
      .run()
      .context("building `impulsed` and the `demo` example failed; fix the build errors above")?;
    let target = broker::target_dir(&root);
    let broker_bin = broker::existing(target.join("debug/impulsed"), "the broker binary `impulsed`")?;
    let demo_bin = broker::existing(target.join("debug/examples/demo"), "the `demo` example")?;

    let prefix = shm::namespace_prefix(&ns);
    let before = shm::snapshot(&prefix)?;
    if !before.is_empty() {
      let names = before.iter().cloned().collect::<Vec<_>>().join(", ");
      bail!("namespace `{ns}` is already in use in /dev/shm ({names}); stop its broker or pick another with --ns");
    }

    proc::trap_interrupts();
    let session = run_session(&ns, &broker_bin, &demo_bin);
    let clean = shm::ensure_no_leaks(&before, &prefix, &format!("the dev session in namespace `{ns}`"));
    match (session, clean) {
      (Ok(()), Ok(())) => {
        println!("==> dev: stopped cleanly; /dev/shm holds nothing of namespace `{ns}`");
        Ok(())
      }
      (Err(err), Ok(())) | (Ok(()), Err(err)) => Err(err),
      (Err(err), Err(leak)) => Err(err.context(format!("{leak:#}"))),
    }
  }
}

/// Runs the broker and the demo until the demo exits or the user interrupts, then stops both. The
/// guards kill whatever is still running if this returns early.
fn run_session(ns: &str, broker_bin: &Path, demo_bin: &Path) -> anyhow::Result<()> {
  println!("==> starting the broker in namespace `{ns}` (Ctrl-C stops everything)");
  let broker = broker::start(broker_bin, ns)?;
  println!("==> the broker is up; starting the demo");
  let demo = proc::start("demo", duct::cmd!(demo_bin).env("IMPULSE_RING_NS", ns))?;
  let stop_demo = |demo: &proc::Child| demo.stop(broker::STOP_GRACE).map_err(anyhow::Error::msg);
  let demo_status = loop {
    if let Some(status) = demo.try_exit()? {
      break Some(status);
    }
    if let Some(status) = broker.child().try_exit()? {
      stop_demo(&demo)?;
      bail!("the broker exited with {} while the demo was running", proc::describe(status));
    }
    if proc::interrupted() {
      println!("==> interrupted; stopping the demo and the broker");
      stop_demo(&demo)?;
      break None;
    }
    std::thread::sleep(Duration::from_millis(50));
  };
  broker::stop(broker)?;
  match demo_status {
    Some(status) if !status.success() => bail!("the demo failed with {}", proc::describe(status)),
    Some(_) => println!("==> the demo finished"),
    None => {}
  }
  Ok(())
}

#[cfg(test)]
mod tests {
  use impulse_ring_test_support::ns::namespace;

  use super::*;

  /// The interrupt flag is process-wide: session tests take turns.
  static SESSION: std::sync::Mutex<()> = std::sync::Mutex::new(());

  /// Writes an executable bash script into a fresh directory and returns its path.
  fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/usr/bin/env bash\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
  }

  #[test]
  fn session_runs_demo_then_stops_broker_and_leaves_shm_clean() {
    let ns = namespace("ringctl-test");
    let dir = std::env::temp_dir().join(&ns);
    std::fs::create_dir_all(&dir).unwrap();
    // A stand-in broker: creates its control segment, removes it on SIGTERM.
    let broker = script(
      &dir,
      "broker",
      "ctl=/dev/shm/impulse-ring.$IMPULSE_RING_NS.ctl\ntrap 'rm -f $ctl; echo bye; exit 0' TERM\n\
       touch $ctl\necho up in $2\nwhile true; do sleep 0.05; done",
    );
    let demo = script(&dir, "demo", "echo hello from $IMPULSE_RING_NS");
    let _turn = SESSION.lock().unwrap_or_else(|e| e.into_inner());
    let prefix = shm::namespace_prefix(&ns);
    let before = shm::snapshot(&prefix).unwrap();
    run_session(&ns, &broker, &demo).unwrap();
    shm::ensure_no_leaks(&before, &prefix, "the test").unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
  }

  #[test]
  fn a_leaked_segment_is_named_and_removed() {
    let ns = namespace("ringctl-leak");
    let prefix = shm::namespace_prefix(&ns);
    let before = shm::snapshot(&prefix).unwrap();
    std::fs::write(format!("/dev/shm/{prefix}ch.1"), b"").unwrap();
    let err = shm::ensure_no_leaks(&before, &prefix, "the test").unwrap_err().to_string();
    assert!(err.contains(&format!("{prefix}ch.1")), "{err}");
    assert!(shm::snapshot(&prefix).unwrap().is_empty());
  }

  #[test]
  fn ctrl_c_stops_the_demo_and_the_broker() {
    let ns = namespace("ringctl-int");
    let dir = std::env::temp_dir().join(&ns);
    std::fs::create_dir_all(&dir).unwrap();
    let broker = script(
      &dir,
      "broker",
      "ctl=/dev/shm/impulse-ring.$IMPULSE_RING_NS.ctl\ntrap 'rm -f $ctl; exit 0' TERM\n\
       touch $ctl\nwhile true; do sleep 0.05; done",
    );
    let demo = script(&dir, "demo", "exec sleep 30");
    let _turn = SESSION.lock().unwrap_or_else(|e| e.into_inner());
    proc::trap_interrupts();
    let interrupter = std::thread::spawn(move || {
      std::thread::sleep(Duration::from_millis(500));
      signal_hook::low_level::raise(signal_hook::consts::SIGINT).unwrap();
    });
    let started = std::time::Instant::now();
    run_session(&ns, &broker, &demo).unwrap();
    interrupter.join().unwrap();
    proc::clear_interrupt();
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(shm::snapshot(&shm::namespace_prefix(&ns)).unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
  }
}
