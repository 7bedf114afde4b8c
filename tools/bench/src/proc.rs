//! Process plumbing for the benchmarks: every case runs as a leader and one or more followers, each a
//! separate process (this binary again, with `follow` first), pinned to distinct cores.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// Number of online CPUs. Not `available_parallelism`: that follows the affinity mask, which a
/// follower inherits from its already pinned leader.
pub fn online_cpus() -> usize {
  let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
  let count: usize = online
    .trim()
    .split(',')
    .filter(|r| !r.is_empty())
    .map(|range| match range.split_once('-') {
      Some((a, b)) => b.parse::<usize>().unwrap_or(0).saturating_sub(a.parse().unwrap_or(0)) + 1,
      None => 1,
    })
    .sum();
  count.max(1)
}

/// Pins the calling thread to `cpu` modulo the number of CPUs (no-op on a single core).
pub fn pin(cpu: usize) {
  let cpus = online_cpus();
  if cpus < 2 {
    return;
  }
  let mut set = rustix::thread::CpuSet::new();
  set.set(cpu % cpus);
  let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// A follower process; killed and reaped when dropped.
pub struct Follower {
  child: Child,
  lines: BufReader<ChildStdout>,
  /// Closed on drop: a follower that serves until told to stop waits for this EOF.
  stdin: Option<ChildStdin>,
}

impl Follower {
  /// Starts `follow <args>` of this binary on `cpu`.
  pub fn spawn(args: &[String], cpu: usize) -> Follower {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
      .arg("follow")
      .args(args)
      .env("RING_BENCH_CPU", cpu.to_string())
      .stdin(Stdio::piped())
      .stdout(Stdio::piped())
      .spawn()
      .expect("spawn a follower");
    let lines = BufReader::new(child.stdout.take().expect("piped stdout"));
    let stdin = child.stdin.take();
    Follower { child, lines, stdin }
  }

  /// Waits for the follower's next line of output (`ready`, `done`, ...).
  pub fn expect(&mut self, word: &str) {
    let mut line = String::new();
    loop {
      line.clear();
      let n = self.lines.read_line(&mut line).expect("read a follower's output");
      assert!(n > 0, "the follower exited while the leader waited for `{word}`");
      if line.trim() == word {
        return;
      }
    }
  }
}

impl Drop for Follower {
  fn drop(&mut self) {
    drop(self.stdin.take());
    // Give a follower that has finished a moment to leave cleanly, then stop it.
    for _ in 0..50 {
      if let Ok(Some(_)) = self.child.try_wait() {
        return;
      }
      std::thread::sleep(Duration::from_millis(10));
    }
    let _ = self.child.kill();
    let _ = self.child.wait();
  }
}

/// Tells the leader something (one line on stdout, flushed).
pub fn say(word: &str) {
  use std::io::Write;
  let mut out = std::io::stdout().lock();
  let _ = writeln!(out, "{word}");
  let _ = out.flush();
}

/// The CPU a follower was asked to run on.
pub fn follower_cpu() -> usize {
  std::env::var("RING_BENCH_CPU").ok().and_then(|c| c.parse().ok()).unwrap_or(1)
}

/// Follower side: blocks until the leader closes our stdin.
pub fn wait_for_leader() {
  use std::io::Read;
  let mut sink = Vec::new();
  let _ = std::io::stdin().read_to_end(&mut sink);
}
