//! The fault matrix of `test-matrix`: for every ordered pair of languages (a language with itself
//! included), one process of the pair is SIGKILLed mid-run and the survivor must get the typed outcome
//! the spec promises (bootstrap.md §7, §8; security.md, "a crashed app"), in milliseconds: the broker
//! watches apps through pidfds, apps watch the broker at least every 200 ms.
//!
//! | fault | producer (row) | consumer (column) | the survivor must |
//! |---|---|---|---|
//! | killed publisher | publisher, killed | subscriber | drain and see `Closed`, having received every message the channel segment says was committed |
//! | killed subscriber | publisher | a healthy and a stalled subscriber, the stalled one killed | the blocked publisher finishes; the healthy subscriber gets all |
//! | killed provider | caller | provider, killed under a pending call | `PeerGone`, not a timeout |
//! | killed caller | caller, killed with calls in flight | provider | serve the next caller |
//! | killed broker | publisher and caller (a call pending) | subscriber and an idle provider | all four report `BrokerGone`; a restarted broker cleans the namespace |
//!
//! Each case runs in a namespace of its own against a broker of its own, so cases run concurrently.

use std::{
  fs::File,
  os::unix::fs::FileExt,
  path::Path,
  sync::{
    atomic::{AtomicUsize, Ordering},
    Mutex,
  },
  time::{Duration, Instant},
};

use anyhow::{bail, Context};
use impulse_ring_core::bus::ControlSegment;
use impulse_ring_core::layout::{
  IR_CH_NEXT_SEQ, IR_CH_SUBSCRIBERS, IR_CH_TAIL, IR_DEFAULT_MAX_SUBSCRIBERS, IR_SUB_ACTIVE, IR_SUB_POS, IR_SUB_SIZE,
  IR_SUB_STATE,
};

use crate::{
  broker,
  matrix::Run,
  pairs::{self, Program, Testee},
  proc::{self, Echo},
  shm,
};

/// How long a survivor may take to notice a death before the case fails. The promise is about
/// 200 ms (pidfd, or the apps' liveness check); the bound is generous because the machine is shared.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(20);

/// What is killed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Fault {
  Publisher,
  Subscriber,
  Provider,
  Caller,
  Broker,
}

impl Fault {
  pub(crate) const ALL: [Fault; 5] =
    [Fault::Publisher, Fault::Subscriber, Fault::Provider, Fault::Caller, Fault::Broker];

  pub(crate) fn label(self) -> &'static str {
    match self {
      Fault::Publisher => "killed publisher",
      Fault::Subscriber => "killed subscriber",
      Fault::Provider => "killed provider",
      Fault::Caller => "killed caller",
      Fault::Broker => "killed broker",
    }
  }

  fn tag(self) -> &'static str {
    match self {
      Fault::Publisher => "kp",
      Fault::Subscriber => "ks",
      Fault::Provider => "kv",
      Fault::Caller => "kc",
      Fault::Broker => "kb",
    }
  }

  /// What the time in a cell measures.
  fn measures(self) -> &'static str {
    match self {
      Fault::Publisher => "kill → the subscriber prints `closed` (all committed messages drained)",
      Fault::Subscriber => "kill → the blocked publisher publishes again",
      Fault::Provider => "kill → the caller prints `error PeerGone`",
      Fault::Caller => "kill → a new caller (started after the kill) got 20 answers",
      Fault::Broker => "kill → the last of four apps reports `BrokerGone`",
    }
  }
}

/// One cell of one fault's table.
#[derive(Clone, Copy)]
pub(crate) struct FaultCase {
  pub(crate) fault: Fault,
  /// The publisher and/or caller.
  pub(crate) producer: &'static str,
  /// The subscriber and/or provider.
  pub(crate) consumer: &'static str,
}

impl FaultCase {
  pub(crate) fn name(&self) -> String {
    format!("fault {} producer={} consumer={}", self.fault.label(), self.producer, self.consumer)
  }
}

/// What one case gave: how long the survivor took to get its outcome, or why it failed.
pub(crate) struct FaultOutcome {
  pub(crate) case: FaultCase,
  pub(crate) result: Result<Duration, String>,
}

/// Every case over `languages` (those whose testee built), in table order.
pub(crate) fn cases(languages: &[&'static str]) -> Vec<FaultCase> {
  let mut cases = Vec::new();
  for fault in Fault::ALL {
    for &producer in languages {
      for &consumer in languages {
        cases.push(FaultCase { fault, producer, consumer });
      }
    }
  }
  cases
}

/// Runs `cases` on `workers` threads; each outcome is printed as it comes.
pub(crate) fn run_all(
  root: &Path,
  broker_bin: &Path,
  run: &Run,
  cases: &[FaultCase],
  workers: usize,
) -> Vec<FaultOutcome> {
  let next = AtomicUsize::new(0);
  let outcomes = Mutex::new(Vec::new());
  std::thread::scope(|scope| {
    for _ in 0..workers.max(1) {
      scope.spawn(|| loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(case) = cases.get(i) else { break };
        if proc::interrupted() {
          break;
        }
        let result = run_case(root, broker_bin, run, case).map_err(|e| format!("{e:#}"));
        match &result {
          Ok(took) => println!("==> {}: ok ({} ms)", case.name(), took.as_millis()),
          Err(err) => println!("==> {}: FAIL\n{err}", case.name()),
        }
        outcomes.lock().unwrap_or_else(|e| e.into_inner()).push(FaultOutcome { case: *case, result });
      });
    }
  });
  let mut outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
  let order = |o: &FaultOutcome| cases.iter().position(|c| c.name() == o.case.name());
  outcomes.sort_by_key(order);
  outcomes
}

/// One case against a broker of its own; afterwards the broker must stop cleanly and the namespace be
/// empty in `/dev/shm`.
fn run_case(root: &Path, broker_bin: &Path, run: &Run, case: &FaultCase) -> anyhow::Result<Duration> {
  let producer = pairs::testee(root, case.producer)?;
  let consumer = pairs::testee(root, case.consumer)?;
  let ns = run.namespace(&format!("fault-{}-{}-{}", case.fault.tag(), case.producer, case.consumer));
  let mut live = Some(broker::start_with(broker_bin, &ns, &["--log-level", "error"])?);
  let mut testees = Vec::new();
  let setup = Setup { ns: &ns, producer: &producer, consumer: &consumer, case };
  let outcome = match case.fault {
    Fault::Publisher => killed_publisher(&setup, &mut testees),
    Fault::Subscriber => killed_subscriber(&setup, &mut testees),
    Fault::Provider => killed_provider(&setup, &mut testees),
    Fault::Caller => killed_caller(&setup, &mut testees),
    Fault::Broker => killed_broker(&setup, &mut testees, &mut live, broker_bin),
  };
  let transcripts = testees.iter().map(Testee::transcript).collect::<Vec<_>>().join("\n");
  drop(testees);
  let stopped = match live {
    Some(live) if live.child().try_exit()?.is_some() => Err(anyhow::anyhow!("the broker died during the case")),
    Some(live) => broker::stop(live),
    None => Ok(()),
  };
  shm::case_ending(&ns, &format!("{}\n{transcripts}", case.name()), outcome, stopped)
}

struct Setup<'a> {
  ns: &'a str,
  producer: &'a Program,
  consumer: &'a Program,
  case: &'a FaultCase,
}

impl Setup<'_> {
  fn producer(&self, role: &str, args: &[&str]) -> anyhow::Result<Testee> {
    let label = format!("{role} ({} testee {})", self.case.producer, args.join(" "));
    Testee::start(label, self.producer, self.ns, args)
  }

  fn consumer(&self, role: &str, args: &[&str]) -> anyhow::Result<Testee> {
    let label = format!("{role} ({} testee {})", self.case.consumer, args.join(" "));
    Testee::start(label, self.consumer, self.ns, args)
  }
}

/// Waits up to [`NOTICE_TIMEOUT`] for a line starting with `prefix`.
fn notice(testee: &Testee, prefix: &str) -> anyhow::Result<()> {
  match testee.child().wait_line(prefix, NOTICE_TIMEOUT) {
    Ok(_) => Ok(()),
    Err(err) => bail!("{}", err.lines().next().unwrap_or_default()),
  }
}

/// The channel segment of a namespace with one channel, opened to read its header words; the file
/// stays readable after the broker unlinks the name.
struct ChannelProbe(File);

impl ChannelProbe {
  fn open(ns: &str) -> anyhow::Result<ChannelProbe> {
    let prefix = shm::namespace_prefix(ns);
    let deadline = Instant::now() + NOTICE_TIMEOUT;
    loop {
      let names = shm::snapshot(&format!("{prefix}ch."))?;
      if let Some(name) = names.iter().next() {
        let path = Path::new("/dev/shm").join(name);
        return Ok(ChannelProbe(File::open(&path).with_context(|| format!("cannot open {}", path.display()))?));
      }
      if Instant::now() > deadline {
        bail!("no channel segment appeared under {prefix}");
      }
      std::thread::sleep(Duration::from_millis(2));
    }
  }

  fn word(&self, offset: usize, len: usize) -> u64 {
    let mut bytes = [0u8; 8];
    // A short read (a segment not yet sized) reads as zeros.
    let _ = self.0.read_at(&mut bytes[..len], offset as u64);
    u64::from_le_bytes(bytes)
  }

  /// Messages published so far (`IR_CH_NEXT_SEQ`).
  fn next_seq(&self) -> u64 {
    self.word(IR_CH_NEXT_SEQ, 8)
  }

  /// Waits until `done(self)` holds, polling every millisecond (the probe is a reader only).
  fn wait_until(&self, what: &str, done: impl Fn(&ChannelProbe) -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + NOTICE_TIMEOUT;
    while !done(self) {
      if Instant::now() > deadline {
        bail!("the channel segment never showed {what}");
      }
      std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
  }
}

/// A block publisher killed while it streams through a small ring: the subscriber drains what was
/// committed, then sees `Closed`. The count committed is the segment's `next_seq` after the death;
/// the publisher stores `next_seq = k + 1` just before the tail that commits message `k`, so a kill
/// between the two stores leaves `next_seq` one ahead: the subscriber must receive `next_seq` or
/// `next_seq - 1` messages, every one of them checked in order.
fn killed_publisher(s: &Setup, testees: &mut Vec<Testee>) -> anyhow::Result<Duration> {
  testees.push(s.consumer("subscriber", &["subscriber", "--channel", "doomed", "--expect-closed"])?);
  let args =
    ["publisher", "--channel", "doomed", "--count", "100000000", "--capacity", "8192", "--wait-subscribers", "1"];
  testees.push(s.producer("publisher", &args)?);
  testees[1].wait_line("ready")?;
  let probe = ChannelProbe::open(s.ns)?;
  probe.wait_until("200 messages published", |p| p.next_seq() >= 200)?;
  let killed = Instant::now();
  testees[1].kill()?;
  let committed = probe.next_seq();
  notice(&testees[0], "closed")?;
  let took = killed.elapsed();
  testees[0].expect(0, &["closed"])?;
  let received = testees[0].child().lines().iter().find_map(|l| l.strip_prefix("received ")?.parse::<u64>().ok());
  match received {
    Some(r) if r == committed || r + 1 == committed => Ok(took),
    Some(r) => bail!("the subscriber received {r} messages; the channel segment says {committed} were published"),
    None => bail!("the subscriber did not print `received N`"),
  }
}

/// A subscriber that never reads, killed while a `block` publisher waits for it: the broker frees its
/// slot and rings the space doorbell, the publisher finishes, and a healthy subscriber beside it
/// receives every message.
fn killed_subscriber(s: &Setup, testees: &mut Vec<Testee>) -> anyhow::Result<Duration> {
  let args = ["publisher", "--channel", "stuck", "--count", "2000", "--capacity", "8192", "--wait-go"];
  testees.push(s.producer("publisher", &args)?);
  testees[0].wait_line("ready")?;
  testees.push(s.consumer("subscriber", &["subscriber", "--channel", "stuck", "--count", "2000"])?);
  testees.push(s.consumer("subscriber", &["subscriber", "--channel", "stuck", "--stall-ms", "600000"])?);
  testees[1].wait_line("subscribed")?;
  testees[2].wait_line("subscribed")?;
  let probe = ChannelProbe::open(s.ns)?;
  testees[0].send_line("go")?;
  // The stalled subscriber reads nothing: once messages flow the 8 KiB ring fills within a few
  // messages and the publisher can only go on once the broker has collected the stalled one.
  // Nearly full: less room left than the largest message takes, so the publisher is (about to be)
  // blocked; the time measured from the kill is then the broker's collection and the wake-up.
  probe.wait_until("the ring nearly full", |p| p.word(IR_CH_TAIL, 8) >= 8192 - 2100)?;
  let stalled_pos = |p: &ChannelProbe| {
    (0..IR_DEFAULT_MAX_SUBSCRIBERS as usize).any(|i| {
      let slot = IR_CH_SUBSCRIBERS + i * IR_SUB_SIZE;
      p.word(slot + IR_SUB_STATE, 4) == u64::from(IR_SUB_ACTIVE) && p.word(slot + IR_SUB_POS, 8) == 0
    })
  };
  if !stalled_pos(&probe) {
    bail!("no subscriber slot stayed at position 0 although one subscriber never reads");
  }
  let blocked_at = probe.next_seq();
  let killed = Instant::now();
  testees[2].kill()?;
  // The publisher moves again once the broker has freed the dead subscriber's slot.
  probe.wait_until("the publisher moving again", |p| p.next_seq() > blocked_at + 8)?;
  let took = killed.elapsed();
  testees[0].expect(0, &["published 2000"])?;
  testees[1].expect(0, &["received 2000"])?;
  Ok(took)
}

/// A provider killed with a call pending in its handler: the caller gets `PeerGone` at once.
fn killed_provider(s: &Setup, testees: &mut Vec<Testee>) -> anyhow::Result<Duration> {
  testees.push(s.consumer("provider", &["provider", "--function", "slow", "--sleep-ms", "600000"])?);
  testees[0].wait_line("ready")?;
  let args = ["caller", "--function", "slow", "--count", "1", "--keep-going", "--timeout-ms", "600000"];
  testees.push(s.producer("caller", &args)?);
  testees[1].wait_line("calling")?;
  let killed = Instant::now();
  testees[0].kill()?;
  notice(&testees[1], "error PeerGone: ")?;
  let took = killed.elapsed();
  testees[1].expect(0, &["ok 0 failed 1"])?;
  Ok(took)
}

/// A caller killed with eight calls in flight: the provider drops the answers for the dead caller and
/// serves the next one; it still exits cleanly when its stdin closes.
fn killed_caller(s: &Setup, testees: &mut Vec<Testee>) -> anyhow::Result<Duration> {
  testees.push(s.consumer("provider", &["provider", "--sleep-ms", "5"])?);
  testees[0].wait_line("ready")?;
  testees.push(s.producer("caller", &["caller", "--count", "100000000", "--in-flight", "8"])?);
  testees[1].wait_line("calling")?;
  let killed = Instant::now();
  testees[1].kill()?;
  testees.push(s.producer("caller", &["caller", "--count", "20", "--in-flight", "4", "--base", "77"])?);
  notice(&testees[2], "ok 20")?;
  let took = killed.elapsed();
  testees[2].expect(0, &["ok 20"])?;
  testees[0].close_stdin();
  testees[0].expect(0, &[])?;
  Ok(took)
}

/// The broker SIGKILLed under a channel and two functions: the publisher (holding), the subscriber
/// (waiting for more), an idle provider and a caller with a call pending (in a provider's slow
/// handler) all report `BrokerGone` (bootstrap.md §8.2); then a broker restarted in the namespace
/// removes what the dead one left, and stops cleanly. (A link in full use keeps working without the
/// broker, §8.2, so a busy caller is not part of the promise.)
fn killed_broker(
  s: &Setup,
  testees: &mut Vec<Testee>,
  live: &mut Option<broker::Broker>,
  broker_bin: &Path,
) -> anyhow::Result<Duration> {
  testees.push(s.consumer("subscriber", &["subscriber", "--channel", "orphan", "--count", "1000000"])?);
  let args = ["publisher", "--channel", "orphan", "--count", "10", "--wait-subscribers", "1", "--hold-ms", "600000"];
  testees.push(s.producer("publisher", &args)?);
  testees.push(s.consumer("provider", &["provider"])?);
  testees.push(s.consumer("provider", &["provider", "--function", "slow", "--sleep-ms", "600000"])?);
  testees[1].wait_line("published 10")?;
  testees[2].wait_line("ready")?;
  testees[3].wait_line("ready")?;
  let args = ["caller", "--function", "slow", "--count", "1", "--timeout-ms", "600000"];
  testees.push(s.producer("caller", &args)?);
  testees[4].wait_line("calling")?;
  let dead = live.take().expect("the case's broker").into_child();
  let killed = Instant::now();
  dead.kill().context("cannot kill the broker")?;
  for i in [0, 1, 2, 4] {
    notice(&testees[i], "error BrokerGone: ")?;
  }
  let took = killed.elapsed();
  testees[1].kill()?;
  testees[3].kill()?;
  testees[0].expect(12, &[])?;
  testees[2].expect(12, &[])?;
  testees[4].expect(12, &[])?;
  // The dead broker's control segment is still there: wait for the one the new broker writes.
  let serves = |pid| ControlSegment::open(s.ns).is_ok_and(|ctl| ctl.broker().0 == pid);
  let args = ["--log-level", "error"];
  let restarted = broker::Broker::start_when(broker_bin, s.ns, &args, Echo::Prefixed, &serves, &proc::interrupted);
  *live = Some(restarted.map_err(anyhow::Error::msg)?);
  Ok(took)
}

/// Prints one table per fault (rows: producer, columns: consumer), each cell the survivor's time in
/// milliseconds, `FAIL` or `-` (not run).
pub(crate) fn print_tables(outcomes: &[FaultOutcome], languages: &[&'static str]) {
  let col = 6;
  for fault in Fault::ALL {
    println!("\nFault: {} (rows: producer, columns: consumer; ms from {})", fault.label(), fault.measures());
    let mut header = format!("  {:<col$}", "");
    for lang in languages {
      header.push_str(&format!("  {lang:>col$}"));
    }
    println!("{}", header.trim_end());
    for producer in languages {
      let mut line = format!("  {producer:<col$}");
      for consumer in languages {
        let outcome = outcomes
          .iter()
          .find(|o| o.case.fault == fault && o.case.producer == *producer && o.case.consumer == *consumer);
        let text = match outcome.map(|o| &o.result) {
          None => "-".to_string(),
          Some(Ok(took)) => format!("{}", took.as_millis()),
          Some(Err(_)) => "FAIL".to_string(),
        };
        line.push_str(&format!("  {text:>col$}"));
      }
      println!("{}", line.trim_end());
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn six_languages_give_180_cases_each_pair_once_per_fault() {
    let cases = cases(&pairs::TESTEES);
    assert_eq!(cases.len(), 180);
    for fault in Fault::ALL {
      let of_fault: Vec<_> = cases.iter().filter(|c| c.fault == fault).map(|c| c.name()).collect();
      let unique: std::collections::BTreeSet<_> = of_fault.iter().collect();
      assert_eq!((of_fault.len(), unique.len()), (36, 36));
    }
  }
}
