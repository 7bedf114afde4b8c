//! `ringctl dev`: a live bus on this machine to explore with the `ring` tool. Builds the broker, the
//! `ring` tool and the sample apps, starts the broker in a namespace (`dev` unless `--ns` says
//! otherwise) and, each its own process, a sensor (Rust, publishing `readings`), an `add` provider
//! (Python) and a dashboard (Go, subscribing and calling `add`), prints what to try, and runs until
//! Ctrl-C; then it stops everything and checks that `/dev/shm` holds nothing of the namespace. An app
//! whose toolchain is missing is left out with a note. `--once` keeps the quick run: the Rust demo
//! (both apps in one process) against a broker, then stop.

use std::{
  path::{Path, PathBuf},
  time::Duration,
};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::{broker, flags, proc, shm};

impl flags::Dev {
  pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
    let once = self.once;
    let ns = self.ns.unwrap_or_else(|| if once { format!("dev-{}", std::process::id()) } else { "dev".to_string() });
    let root = sh.current_dir();
    let target = broker::target_dir(&root);
    let prefix = shm::namespace_prefix(&ns);
    let before = shm::snapshot(&prefix)?;
    if !before.is_empty() {
      let names = before.iter().cloned().collect::<Vec<_>>().join(", ");
      bail!("namespace `{ns}` is already in use in /dev/shm ({names}); stop its broker or pick another with --ns");
    }
    let session = if once {
      println!("==> building the broker and the demo");
      cmd!(sh, "cargo build -p impulsed -p impulse-ring-connector --example demo")
        .run()
        .context("building `impulsed` and the `demo` example failed; fix the build errors above")?;
      let broker_bin = broker::existing(target.join("debug/impulsed"), "the broker binary `impulsed`")?;
      let demo_bin = broker::existing(target.join("debug/examples/demo"), "the `demo` example")?;
      proc::trap_interrupts();
      run_session(&ns, &broker_bin, &demo_bin)
    } else {
      let apps = build_apps(sh, &target)?;
      let broker_bin = broker::existing(target.join("debug/impulsed"), "the broker binary `impulsed`")?;
      proc::trap_interrupts();
      run_live(&ns, &broker_bin, &apps, &root, &target)
    };
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

/// One sample app of the live session.
struct App {
  /// Its name in the output (`[sensor] ...`).
  name: &'static str,
  /// The language it is written in, for the banner.
  language: &'static str,
  program: PathBuf,
  args: Vec<String>,
  /// The line (prefix) it prints once it is on the bus.
  ready: &'static str,
}

/// Builds the broker, `ring` and the sample apps; an app whose toolchain is missing is left out.
fn build_apps(sh: &Shell, target: &Path) -> anyhow::Result<Vec<App>> {
  println!("==> building the broker, the `ring` tool and the Rust sensor");
  cmd!(sh, "cargo build -p impulsed -p ring-cli -p impulse-ring-connector --example sensor")
    .run()
    .context("building `impulsed`, `ring` and the `sensor` example failed; fix the build errors above")?;
  let mut apps = vec![App {
    name: "sensor",
    language: "Rust",
    program: broker::existing(target.join("debug/examples/sensor"), "the `sensor` example")?,
    args: vec![],
    ready: "sensor publishes",
  }];
  if let Some(uv) = which("uv") {
    println!("==> preparing the Python connector (uv sync; the first time builds its extension)");
    cmd!(sh, "uv sync --quiet --project python").run().context("`uv sync --project python` failed; see above")?;
    apps.push(App {
      name: "add",
      language: "Python",
      program: uv,
      args: ["run", "--quiet", "--project", "python", "python", "python/examples/call/provider.py"]
        .map(String::from)
        .to_vec(),
      ready: "serving `add`",
    });
  } else {
    println!("==> leaving out the Python `add` provider: `uv` is not installed (`pip install uv`)");
  }
  if which("go").is_some() {
    println!("==> building the Go dashboard");
    let out = target.join("go/dashboard");
    cmd!(sh, "go -C go build -o {out} ./examples/dashboard").run().context("building the Go dashboard failed")?;
    apps.push(App { name: "dashboard", language: "Go", program: out, args: vec![], ready: "dashboard subscribed" });
  } else {
    println!("==> leaving out the Go dashboard: `go` is not installed (Go 1.26+, https://go.dev/doc/install)");
  }
  Ok(apps)
}

/// Where `program` is on the PATH (a full path: duct resolves a bare name against the child's `dir`).
fn which(program: &str) -> Option<PathBuf> {
  let path = std::env::var_os("PATH")?;
  std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

/// Runs the broker and the apps until Ctrl-C (or the broker's exit), then stops them all.
fn run_live(ns: &str, broker_bin: &Path, apps: &[App], root: &Path, target: &Path) -> anyhow::Result<()> {
  println!("==> starting the broker in namespace `{ns}`");
  let broker = broker::start(broker_bin, ns)?;
  let mut children = Vec::new();
  for app in apps {
    let expr = duct::cmd(&app.program, &app.args).dir(root).env("IMPULSE_RING_NS", ns);
    children.push((proc::start(app.name, expr)?, app));
  }
  for (child, app) in &children {
    if let Err(e) = child.wait_line(app.ready, Duration::from_secs(60)) {
      println!("==> {} did not come up: {e}", app.name);
    }
  }
  print_banner(ns, apps, root, target);
  let mut reported = vec![false; children.len()];
  let failure = loop {
    if proc::interrupted() {
      println!("==> interrupted; stopping the apps and the broker");
      break None;
    }
    if let Some(status) = broker.child().try_exit()? {
      break Some(format!("the broker exited with {} while the apps were running", proc::describe(status)));
    }
    for (i, (child, app)) in children.iter().enumerate() {
      if !reported[i] {
        if let Some(status) = child.try_exit()? {
          println!("==> {} exited with {}; the rest of the bus goes on", app.name, proc::describe(status));
          reported[i] = true;
        }
      }
    }
    std::thread::sleep(Duration::from_millis(100));
  };
  // Each app stops when its stdin ends (or, like the Python provider, on SIGTERM).
  for (child, _) in &mut children {
    child.close_stdin();
  }
  for (child, app) in &children {
    if child.wait_exit(Duration::from_secs(2)).is_err() {
      child.stop(broker::STOP_GRACE).map_err(|e| anyhow::anyhow!("cannot stop {}: {e}", app.name))?;
    }
  }
  broker::stop(broker)?;
  match failure {
    Some(message) => bail!(message),
    None => Ok(()),
  }
}

fn print_banner(ns: &str, apps: &[App], root: &Path, target: &Path) {
  let bin = target.join("debug");
  let bin = bin.strip_prefix(root).map_or_else(|_| bin.display().to_string(), |rel| format!("$PWD/{}", rel.display()));
  let running: Vec<String> = apps.iter().map(|a| format!("{} ({})", a.name, a.language)).collect();
  println!(
    "\n==> the bus is up in namespace `{ns}`: broker, {}.\n\
     \x20   In another terminal, in this directory:\n\
     \x20     export IMPULSE_RING_NS={ns} PATH=\"{bin}:$PATH\"\n\
     \x20     ring ls\n\
     \x20     ring describe readings\n\
     \x20     ring tap readings\n\
     \x20     ring call add '{{\"a\": 2, \"b\": 3}}'\n\
     \x20     ring top\n\
     \x20     ring monitor\n\
     \x20   Ctrl-C here stops everything.\n",
    running.join(", ")
  );
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
