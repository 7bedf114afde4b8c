//! Long-lived child processes (the broker, demo apps) run through duct under a guard that streams
//! their merged output with a `[name]` prefix, stops them gently on request, and kills and reaps them
//! on every other exit path, including errors and panics. Also Ctrl-C, which ringctl must survive
//! long enough to stop its children and check `/dev/shm`.

use std::{
  io::{BufRead, BufReader, Write},
  os::unix::process::ExitStatusExt,
  process::ExitStatus,
  sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
  },
  thread::JoinHandle,
  time::{Duration, Instant},
};

use anyhow::Context;
use xshell::{cmd, Shell};

/// A running child whose output is being streamed. Dropping it kills and reaps the child.
pub(crate) struct Supervised {
  name: String,
  handle: Arc<duct::ReaderHandle>,
  pump: Option<JoinHandle<()>>,
}

impl Supervised {
  /// Starts `expr` with stderr merged into stdout, each line printed as `[name] line`.
  pub(crate) fn start(name: &str, expr: duct::Expression) -> anyhow::Result<Supervised> {
    let handle = Arc::new(expr.stderr_to_stdout().stdin_null().unchecked().reader()?);
    let reader = Arc::clone(&handle);
    let prefix = format!("[{name}] ");
    let pump = std::thread::spawn(move || {
      let mut lines = BufReader::new(&*reader);
      let mut line = Vec::new();
      while matches!(lines.read_until(b'\n', &mut line), Ok(n) if n > 0) {
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{prefix}{}", String::from_utf8_lossy(&line));
        if !line.ends_with(b"\n") {
          let _ = writeln!(out);
        }
        line.clear();
      }
    });
    Ok(Supervised { name: name.to_string(), handle, pump: Some(pump) })
  }

  pub(crate) fn pid(&self) -> u32 {
    self.handle.pids()[0]
  }

  /// The exit status once the child has exited, without blocking.
  pub(crate) fn exited(&self) -> anyhow::Result<Option<ExitStatus>> {
    Ok(self.handle.try_wait().with_context(|| format!("cannot poll {}", self.name))?.map(|out| out.status))
  }

  /// SIGTERM, up to `grace` to exit, then SIGKILL. Returns how the child ended.
  pub(crate) fn stop(&mut self, sh: &Shell, grace: Duration) -> anyhow::Result<ExitStatus> {
    if let Some(status) = self.exited()? {
      return Ok(status);
    }
    let pid = self.pid().to_string();
    // The child may exit between the poll above and the signal; the loop below sorts that out.
    let _ = cmd!(sh, "kill -TERM {pid}").quiet().ignore_stderr().run();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
      if let Some(status) = self.exited()? {
        return Ok(status);
      }
      std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("ringctl: {} ignored SIGTERM for {grace:?}; sending SIGKILL", self.name);
    self.handle.kill()?;
    self.reap()?.with_context(|| format!("{} did not exit after SIGKILL", self.name))
  }

  /// Waits a little for a killed child to be reaped; `None` if it is still there after a second.
  fn reap(&self) -> anyhow::Result<Option<ExitStatus>> {
    for _ in 0..100 {
      if let Some(status) = self.exited()? {
        return Ok(Some(status));
      }
      std::thread::sleep(Duration::from_millis(10));
    }
    Ok(None)
  }
}

impl Drop for Supervised {
  fn drop(&mut self) {
    if !matches!(self.handle.try_wait(), Ok(Some(_))) {
      let _ = self.handle.kill();
      let _ = self.reap();
    }
    // Let the pump print the child's last lines, but do not hang on a grandchild that inherited the
    // pipe and keeps it open: after a second the pump thread is left to finish on its own.
    if let Some(pump) = self.pump.take() {
      for _ in 0..100 {
        if pump.is_finished() {
          let _ = pump.join();
          break;
        }
        std::thread::sleep(Duration::from_millis(10));
      }
    }
  }
}

/// Describes an exit status the way a shell user expects: `exit code 3` or `signal 9 (SIGKILL)`.
pub(crate) fn describe(status: ExitStatus) -> String {
  match (status.code(), status.signal()) {
    (Some(code), _) => format!("exit code {code}"),
    (None, Some(9)) => "signal 9 (SIGKILL)".to_string(),
    (None, Some(15)) => "signal 15 (SIGTERM)".to_string(),
    (None, Some(2)) => "signal 2 (SIGINT)".to_string(),
    (None, Some(sig)) => format!("signal {sig}"),
    (None, None) => "an unknown status".to_string(),
  }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_signal: std::ffi::c_int) {
  // Only an atomic store: anything more is not async-signal-safe.
  INTERRUPTED.store(true, Ordering::Relaxed);
}

/// From now on Ctrl-C (SIGINT) and SIGTERM set a flag that [`interrupted`] reports, instead of killing
/// ringctl before it has stopped its children. Children start with default handlers again (exec
/// resets caught signals), so Ctrl-C still reaches them through the terminal's process group.
pub(crate) fn trap_interrupts() {
  const SIGINT: std::ffi::c_int = 2;
  const SIGTERM: std::ffi::c_int = 15;
  extern "C" {
    fn signal(signum: std::ffi::c_int, handler: extern "C" fn(std::ffi::c_int)) -> usize;
  }
  for sig in [SIGINT, SIGTERM] {
    // SAFETY: `signal` is libc's, with the C signature declared above; the handler only stores to an
    // atomic, which is async-signal-safe, and lives for the whole program.
    unsafe { signal(sig, on_interrupt) };
  }
}

/// Whether Ctrl-C or SIGTERM arrived since [`trap_interrupts`].
pub(crate) fn interrupted() -> bool {
  INTERRUPTED.load(Ordering::Relaxed)
}

/// Forgets an interrupt, for tests that simulate Ctrl-C.
#[cfg(test)]
pub(crate) fn clear_interrupt() {
  INTERRUPTED.store(false, Ordering::Relaxed);
}
