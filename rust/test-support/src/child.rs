//! A supervised child process: started through duct with stderr merged into stdout, every output line
//! kept (and, for ringctl, echoed as `[name] line`), stdin a pipe it can be fed through or closed,
//! signalled with rustix, and killed and reaped on every exit path, panics included.

use std::{
  io::{BufRead, BufReader, PipeWriter, Write},
  os::unix::process::ExitStatusExt,
  process::ExitStatus,
  sync::{Arc, Condvar, Mutex},
  thread::JoinHandle,
  time::{Duration, Instant},
};

pub use rustix::process::Signal;

/// Whether a child's lines are also printed as they come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
  /// Keep the lines for checks and transcripts only (tests).
  Quiet,
  /// Also print each line to our stdout as `[name] line` (ringctl's live output).
  Prefixed,
}

/// Lines a child printed so far.
#[derive(Default)]
struct Output {
  lines: Mutex<Vec<String>>,
  grew: Condvar,
}

impl Output {
  fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
    self.lines.lock().unwrap_or_else(|e| e.into_inner())
  }
}

/// A running child. Dropping it closes its stdin, kills it unless it has exited, and reaps it.
pub struct Child {
  name: String,
  handle: Arc<duct::ReaderHandle>,
  output: Arc<Output>,
  stdin: Option<PipeWriter>,
  pump: Option<JoinHandle<()>>,
}

impl Child {
  /// Starts `expr` (its stdin a pipe, stderr merged into stdout), named `name` in messages.
  pub fn start(name: &str, expr: duct::Expression, echo: Echo) -> std::io::Result<Child> {
    let (stdin_reader, stdin_writer) = std::io::pipe()?;
    let handle = Arc::new(expr.stdin_file(stdin_reader).stderr_to_stdout().unchecked().reader()?);
    let output = Arc::new(Output::default());
    let (reader, sink, prefix) = (handle.clone(), output.clone(), format!("[{name}] "));
    let pump = std::thread::spawn(move || {
      for line in BufReader::new(&*reader).split(b'\n') {
        let Ok(line) = line else { break };
        let line = String::from_utf8_lossy(&line).into_owned();
        if echo == Echo::Prefixed {
          let _ = writeln!(std::io::stdout().lock(), "{prefix}{line}");
        }
        sink.lock().push(line);
        sink.grew.notify_all();
      }
    });
    Ok(Child { name: name.to_string(), handle, output, stdin: Some(stdin_writer), pump: Some(pump) })
  }

  /// The name given at start.
  pub fn name(&self) -> &str {
    &self.name
  }

  /// The child's pid.
  pub fn pid(&self) -> u32 {
    self.handle.pids()[0]
  }

  /// Every line printed so far.
  pub fn lines(&self) -> Vec<String> {
    self.output.lock().clone()
  }

  /// Whether a line starting with `prefix` was printed.
  pub fn has_line(&self, prefix: &str) -> bool {
    self.output.lock().iter().any(|l| l.starts_with(prefix))
  }

  /// The name, pid and every line so far, for a failure message.
  pub fn transcript(&self) -> String {
    let lines = self.lines();
    let body = if lines.is_empty() { "  (no output)".to_string() } else { lines.join("\n") };
    format!("--- {} (pid {}) ---\n{body}", self.name, self.pid())
  }

  /// Waits up to `timeout` for a line that starts with `prefix` and returns it. Fails when the child
  /// exits without printing it (after its last lines were read) or the time runs out.
  pub fn wait_line(&self, prefix: &str, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let mut lines = self.output.lock();
    loop {
      if let Some(line) = lines.iter().find(|l| l.starts_with(prefix)) {
        return Ok(line.clone());
      }
      let exited = self.pump.as_ref().is_none_or(JoinHandle::is_finished);
      let now = Instant::now();
      if exited || now >= deadline {
        let why = if exited { "exited without printing" } else { "did not print within the time given:" };
        drop(lines);
        return Err(format!("{} {why} a line starting with `{prefix}`\n{}", self.name, self.transcript()));
      }
      // Short waits: the end of the output is noticed through the pump, which does not notify.
      let wait = (deadline - now).min(Duration::from_millis(20));
      lines = self.output.grew.wait_timeout(lines, wait).unwrap_or_else(|e| e.into_inner()).0;
    }
  }

  /// Writes `line` to the child's stdin.
  pub fn send_line(&mut self, line: &str) -> std::io::Result<()> {
    match self.stdin.as_mut() {
      Some(stdin) => writeln!(stdin, "{line}"),
      None => Err(std::io::Error::other(format!("the stdin of {} is closed", self.name))),
    }
  }

  /// Closes the child's stdin: a testee provider, for one, exits when it sees the end of its input.
  pub fn close_stdin(&mut self) {
    self.stdin.take();
  }

  /// The exit status once the child has exited, without blocking.
  pub fn try_exit(&self) -> std::io::Result<Option<ExitStatus>> {
    Ok(self.handle.try_wait()?.map(|out| out.status))
  }

  /// Waits up to `timeout` for the child to exit; its status, once its last lines were read (or a
  /// second passed: a grandchild may hold the pipe open).
  pub fn wait_exit(&self, timeout: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + timeout;
    loop {
      if let Some(status) = self.try_exit().map_err(|e| format!("cannot poll {}: {e}", self.name))? {
        self.drain(Duration::from_secs(1));
        return Ok(status);
      }
      if Instant::now() >= deadline {
        return Err(format!("{} did not exit within {timeout:?}\n{}", self.name, self.transcript()));
      }
      std::thread::sleep(Duration::from_millis(5));
    }
  }

  /// Sends `signal`; an error when the child is gone already.
  pub fn signal(&self, signal: Signal) -> rustix::io::Result<()> {
    let pid = rustix::process::Pid::from_raw(self.pid() as i32).ok_or(rustix::io::Errno::SRCH)?;
    rustix::process::kill_process(pid, signal)
  }

  /// SIGKILL, as a crash would; returns once the child is reaped.
  pub fn kill(&self) -> std::io::Result<()> {
    self.handle.kill()
  }

  /// SIGTERM, up to `grace` to exit, then SIGKILL. Returns how the child ended.
  pub fn stop(&self, grace: Duration) -> Result<ExitStatus, String> {
    if let Ok(Some(status)) = self.try_exit() {
      return Ok(status);
    }
    // The child may exit between the poll and the signal: the wait below sorts that out.
    let _ = self.signal(Signal::TERM);
    match self.wait_exit(grace) {
      Ok(status) => Ok(status),
      Err(_) => {
        eprintln!("{} ignored SIGTERM for {grace:?}; sending SIGKILL", self.name);
        self.kill().map_err(|e| format!("cannot kill {}: {e}", self.name))?;
        self.wait_exit(Duration::from_secs(5))
      }
    }
  }

  /// Lets the pump take the child's last lines, for up to `limit`.
  fn drain(&self, limit: Duration) {
    let deadline = Instant::now() + limit;
    while self.pump.as_ref().is_some_and(|p| !p.is_finished()) && Instant::now() < deadline {
      std::thread::sleep(Duration::from_millis(5));
    }
  }
}

impl Drop for Child {
  fn drop(&mut self) {
    self.stdin.take();
    if !matches!(self.try_exit(), Ok(Some(_))) {
      let _ = self.handle.kill();
    }
    // Print (or keep) the last lines, but do not hang on a grandchild that inherited the pipe.
    self.drain(Duration::from_secs(1));
    if let Some(pump) = self.pump.take().filter(|p| p.is_finished()) {
      let _ = pump.join();
    }
  }
}

/// Describes an exit status the way a shell user expects: `exit code 3` or `signal 9 (SIGKILL)`.
pub fn describe(status: ExitStatus) -> String {
  match (status.code(), status.signal()) {
    (Some(code), _) => format!("exit code {code}"),
    (None, Some(9)) => "signal 9 (SIGKILL)".to_string(),
    (None, Some(15)) => "signal 15 (SIGTERM)".to_string(),
    (None, Some(2)) => "signal 2 (SIGINT)".to_string(),
    (None, Some(sig)) => format!("signal {sig}"),
    (None, None) => "an unknown status".to_string(),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn lines_are_kept_and_stdin_closing_ends_a_reader() {
    let mut child = Child::start("cat", duct::cmd!("sh", "-c", "echo up; cat; echo bye >&2"), Echo::Quiet).unwrap();
    assert_eq!(child.wait_line("up", Duration::from_secs(10)).unwrap(), "up");
    child.send_line("hello").unwrap();
    child.wait_line("hello", Duration::from_secs(10)).unwrap();
    child.close_stdin();
    assert!(child.wait_exit(Duration::from_secs(10)).unwrap().success());
    assert_eq!(child.lines(), ["up", "hello", "bye"]);
    let err = child.wait_line("never", Duration::from_secs(10)).unwrap_err();
    assert!(err.contains("exited without printing"), "{err}");
  }

  #[test]
  fn stop_terminates_a_child_and_kills_one_that_ignores_sigterm() {
    let child = Child::start("sleep", duct::cmd!("sleep", "30"), Echo::Quiet).unwrap();
    assert_eq!(child.stop(Duration::from_secs(5)).unwrap().signal(), Some(15));
    let stubborn =
      Child::start("stubborn", duct::cmd!("sh", "-c", "trap '' TERM; echo ready; exec sleep 30"), Echo::Quiet);
    let stubborn = stubborn.unwrap();
    stubborn.wait_line("ready", Duration::from_secs(10)).unwrap();
    assert_eq!(stubborn.stop(Duration::from_millis(200)).unwrap().signal(), Some(9));
  }
}
