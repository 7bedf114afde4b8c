//! The hostile-app suite of `test-matrix`: ringctl itself plays a malicious or broken app of the same
//! uid (security.md, threat model) against a live broker while well-behaved apps of every language
//! work beside it. It corrupts every segment kind by writing straight into `/dev/shm` (magic and
//! version words, indices, lengths, slot states, frame headers, random bytes), truncates a channel,
//! and writes garbage and floods of control records into a slot it claimed and forged records into
//! other apps' request rings. (Never-read replies, hand-written slot states and hostile schemas have
//! their own tests in rust/broker/tests; they are not repeated here.)
//!
//! Each case asserts: the broker is still up; every victim app (the apps whose segments were hit)
//! either carries on or ends with a typed error (exit 10 + code) or a detected mismatch (exit 2),
//! never a crash (a signal; SIGBUS only where security.md documents it: a truncated segment); no
//! process uses more than half a core while the dust settles (CPU time from `/proc/PID/stat` over an
//! observation window, a bound far above an idle process and far below a spinning one); the
//! well-behaved apps serve new callers and a new channel afterwards and exit cleanly; the broker stops
//! cleanly and `/dev/shm` holds nothing of the namespace.

use std::{
  fs::OpenOptions,
  os::unix::{fs::FileExt, process::ExitStatusExt},
  path::{Path, PathBuf},
  sync::{
    atomic::{AtomicUsize, Ordering},
    Mutex,
  },
  time::{Duration, Instant},
};

use anyhow::{bail, Context};
use impulse_ring_core::{
  bus::ControlSegment,
  layout::{
    IR_CH_CAPACITY, IR_CH_CLOSED, IR_CH_MIN_VALID, IR_CH_SUBSCRIBERS, IR_CH_TAIL, IR_CTL_SLOTS, IR_FRAME_KIND_CONTROL,
    IR_LINK_CALLER_GONE, IR_LINK_REQUEST_RING, IR_RING_HEAD, IR_RING_HEADER_SIZE, IR_RING_TAIL, IR_SEG_MAGIC,
    IR_SEG_SIZE, IR_SEG_VERSION, IR_SLOT_FREE, IR_SUB_SIZE,
  },
};

use crate::{
  broker,
  matrix::Run,
  pairs::{self, Program, Testee},
  shm,
};

/// How long the suite watches the processes after an attack (CPU time, exits).
const OBSERVE: Duration = Duration::from_millis(1500);
/// CPU ticks per second in `/proc/PID/stat` (USER_HZ, fixed at 100 for user space on Linux).
const TICKS: f64 = 100.0;
/// The most CPU one process may use during [`OBSERVE`], as a fraction of one core.
const MAX_CORE: f64 = 0.5;
const STEP: Duration = Duration::from_secs(60);

/// What the hostile app does.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Attack {
  /// Overwrite one word of the channel segment (name, offset, value).
  ChannelWord(&'static str, usize, u64),
  /// Every subscriber slot's words set to random values.
  SubscriberSlots,
  /// Random bytes over the data area where the subscribers read next, and the tail moved past them.
  FrameGarbage,
  /// Random bytes over the whole channel header.
  ChannelRandom,
  /// The channel segment truncated to half its size.
  ChannelTruncated,
  /// Overwrite one word of every link segment (name, offset, value).
  LinkWord(&'static str, usize, u64),
  /// Random bytes over every link's request ring, where the provider reads next.
  LinkFrames,
  /// Random payloads as control records in a slot the hostile app claimed, then a flood of them
  /// (until the ring is full, over and over) whose replies are never read.
  ControlGarbage,
  /// Random control records written into the request rings of other apps' slots.
  ForgedRequests,
  /// Random words written into every other free slot (state, pid, start time, generation).
  FreeSlotWords,
}

impl Attack {
  fn name(self) -> String {
    match self {
      Attack::ChannelWord(what, ..) => format!("channel {what}"),
      Attack::SubscriberSlots => "channel subscriber slots".into(),
      Attack::FrameGarbage => "channel frame headers".into(),
      Attack::ChannelRandom => "channel header random bytes".into(),
      Attack::ChannelTruncated => "channel truncated".into(),
      Attack::LinkWord(what, ..) => format!("link {what}"),
      Attack::LinkFrames => "link frame headers".into(),
      Attack::ControlGarbage => "garbage control records and a flood".into(),
      Attack::ForgedRequests => "forged requests in other apps' slots".into(),
      Attack::FreeSlotWords => "free slot words".into(),
    }
  }

  fn victims(self) -> Victims {
    match self {
      Attack::ChannelWord(..)
      | Attack::SubscriberSlots
      | Attack::FrameGarbage
      | Attack::ChannelRandom
      | Attack::ChannelTruncated => Victims::Channel,
      Attack::LinkWord(..) | Attack::LinkFrames => Victims::Link,
      Attack::ControlGarbage | Attack::ForgedRequests | Attack::FreeSlotWords => Victims::Idle,
    }
  }
}

/// The apps an attack aims at.
#[derive(Clone, Copy, PartialEq)]
enum Victims {
  /// A publisher and one subscriber in every language on one channel.
  Channel,
  /// A provider and one caller in every language, each caller with its own link.
  Link,
  /// An idle provider in every language.
  Idle,
}

/// Every case, in order.
pub(crate) fn attacks() -> Vec<Attack> {
  vec![
    Attack::ChannelWord("magic word", IR_SEG_MAGIC, 0xdead_beef),
    Attack::ChannelWord("version word", IR_SEG_VERSION, 0xffff_ffff),
    Attack::ChannelWord("size word", IR_SEG_SIZE, u64::MAX),
    Attack::ChannelWord("tail far ahead", IR_CH_TAIL, 1 << 40),
    Attack::ChannelWord("tail unaligned", IR_CH_TAIL, 0x1_0007),
    Attack::ChannelWord("min_valid past the tail", IR_CH_MIN_VALID, u64::MAX - 15),
    Attack::ChannelWord("capacity", IR_CH_CAPACITY, 3),
    Attack::ChannelWord("closed word", IR_CH_CLOSED, 0x7777),
    Attack::SubscriberSlots,
    Attack::FrameGarbage,
    Attack::ChannelRandom,
    Attack::ChannelTruncated,
    Attack::LinkWord("request ring tail", IR_LINK_REQUEST_RING + IR_RING_TAIL, 1 << 40),
    Attack::LinkWord("request ring head", IR_LINK_REQUEST_RING + IR_RING_HEAD, 1 << 40),
    Attack::LinkWord("gone flags", IR_LINK_CALLER_GONE, 0x1234_5678_9abc_def0),
    Attack::LinkWord("magic word", IR_SEG_MAGIC, 0),
    Attack::LinkFrames,
    Attack::ControlGarbage,
    Attack::ForgedRequests,
    Attack::FreeSlotWords,
  ]
}

/// What one case gave.
pub(crate) struct HostileOutcome {
  pub(crate) name: String,
  /// How the victims ended (`3 carried on, Corrupt 2, ...`), or why the case failed.
  pub(crate) result: Result<String, String>,
}

/// Runs every attack on `workers` threads, each against a broker of its own.
pub(crate) fn run_all(
  root: &Path,
  broker_bin: &Path,
  run: &Run,
  languages: &[&'static str],
  workers: usize,
) -> Vec<HostileOutcome> {
  let attacks = attacks();
  let next = AtomicUsize::new(0);
  let outcomes = Mutex::new(Vec::new());
  std::thread::scope(|scope| {
    for _ in 0..workers.max(1) {
      scope.spawn(|| loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(attack) = attacks.get(i) else { break };
        if crate::proc::interrupted() {
          break;
        }
        let name = format!("hostile: {}", attack.name());
        let result = run_case(root, broker_bin, run, languages, *attack, i).map_err(|e| format!("{e:#}"));
        match &result {
          Ok(victims) => println!("==> {name}: ok (victims: {victims})"),
          Err(err) => println!("==> {name}: FAIL\n{err}"),
        }
        outcomes.lock().unwrap_or_else(|e| e.into_inner()).push((i, HostileOutcome { name, result }));
      });
    }
  });
  let mut outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
  outcomes.sort_by_key(|(i, _)| *i);
  outcomes.into_iter().map(|(_, o)| o).collect()
}

/// The connectors that turn a fault in a truncated segment into `Corrupt` (security.md): their testees
/// must not die of SIGBUS; the others may, as security.md documents.
const GUARDS_TRUNCATION: &[&str] = &["rust"];

/// The processes of one case.
struct Case<'a> {
  ns: String,
  programs: Vec<(&'static str, Program)>,
  started: Vec<Testee>,
  victims: Vec<usize>,
  calm: Vec<usize>,
  seed: u64,
  _root: &'a Path,
}

impl Case<'_> {
  fn start(&mut self, lang: usize, args: &[&str]) -> anyhow::Result<usize> {
    let (name, program) = &self.programs[lang % self.programs.len()];
    let label = format!("{} ({name} testee {})", args[0], args.join(" "));
    self.started.push(Testee::start(label, program, &self.ns, args)?);
    Ok(self.started.len() - 1)
  }

  fn wait(&self, i: usize, prefix: &str) -> anyhow::Result<()> {
    match self.started[i].child().wait_line(prefix, STEP) {
      Ok(_) => Ok(()),
      Err(err) => bail!("{}", err.lines().next().unwrap_or_default()),
    }
  }

  fn random(&mut self) -> u64 {
    self.seed ^= self.seed << 13;
    self.seed ^= self.seed >> 7;
    self.seed ^= self.seed << 17;
    self.seed
  }

  fn random_bytes(&mut self, len: usize) -> Vec<u8> {
    (0..len).map(|_| self.random() as u8).collect()
  }
}

fn run_case(
  root: &Path,
  broker_bin: &Path,
  run: &Run,
  languages: &[&'static str],
  attack: Attack,
  index: usize,
) -> anyhow::Result<String> {
  let programs =
    languages.iter().map(|l| pairs::testee(root, l).map(|p| (*l, p))).collect::<anyhow::Result<Vec<_>>>()?;
  let ns = run.namespace(&format!("hostile-{index}"));
  let live = broker::start_with(broker_bin, &ns, &["--log-level", "error"])?;
  let seed = 0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1);
  let mut case =
    Case { ns: ns.clone(), programs, started: Vec::new(), victims: Vec::new(), calm: Vec::new(), seed, _root: root };
  let outcome = attack_and_check(&mut case, &live, attack);
  let transcripts = case.started.iter().map(Testee::transcript).collect::<Vec<_>>().join("\n");
  drop(case);
  let alive = live.child().try_exit()?.is_none();
  let broker_log = live.child().transcript();
  let stopped = if alive { broker::stop(live) } else { Err(anyhow::anyhow!("the broker died\n{broker_log}")) };
  shm::case_ending(&ns, &format!("{}\n{transcripts}", attack.name()), outcome, stopped)
}

fn attack_and_check(case: &mut Case, live: &broker::Broker, attack: Attack) -> anyhow::Result<String> {
  let n = case.programs.len();
  // Well-behaved apps: a provider in every language, exposed before the attack.
  for lang in 0..n {
    let function = format!("calm-{lang}");
    let i = case.start(lang, &["provider", "--function", &function])?;
    case.calm.push(i);
  }
  for i in case.calm.clone() {
    case.wait(i, "ready")?;
  }
  let victims = attack.victims();
  match victims {
    Victims::Channel => {
      let subscribers = n.to_string();
      let args = [
        "publisher",
        "--channel",
        "target",
        "--count",
        "64",
        "--wait-subscribers",
        &subscribers,
        "--hold-ms",
        "600000",
      ];
      let publisher = case.start(0, &args)?;
      case.victims.push(publisher);
      case.wait(publisher, "ready")?;
      for lang in 0..n {
        let i = case.start(lang, &["subscriber", "--channel", "target", "--count", "1000000000"])?;
        case.victims.push(i);
      }
      case.wait(publisher, "published 64")?;
    }
    Victims::Link => {
      let provider = case.start(0, &["provider", "--function", "target", "--sleep-ms", "20"])?;
      case.victims.push(provider);
      case.wait(provider, "ready")?;
      for lang in 0..n {
        let i =
          case.start(lang, &["caller", "--function", "target", "--count", "1000000000", "--timeout-ms", "5000"])?;
        case.victims.push(i);
      }
      for i in case.victims.clone().into_iter().skip(1) {
        case.wait(i, "calling")?;
      }
      // Every caller's link exists once it has issued a call.
    }
    Victims::Idle => {
      for lang in 0..n {
        let function = format!("victim-{lang}");
        let i = case.start(lang, &["provider", "--function", &function])?;
        case.victims.push(i);
      }
      for i in case.victims.clone() {
        case.wait(i, "ready")?;
      }
    }
  }

  strike(case, attack).with_context(|| format!("the attack `{}` could not be carried out", attack.name()))?;

  // Watch every process while the dust settles.
  let mut watched: Vec<(String, u32)> =
    case.started.iter().map(|t| (t.child().name().to_string(), t.child().pid())).collect();
  watched.push(("broker".into(), live.pid()));
  let before: Vec<Option<u64>> = watched.iter().map(|(_, pid)| cpu_ticks(*pid)).collect();
  let window = Instant::now();
  std::thread::sleep(OBSERVE);
  let seconds = window.elapsed().as_secs_f64();
  for ((name, pid), before) in watched.iter().zip(before) {
    if let (Some(before), Some(after)) = (before, cpu_ticks(*pid)) {
      let share = (after.saturating_sub(before)) as f64 / TICKS / seconds;
      if share > MAX_CORE {
        bail!("{name} used {:.0}% of a core for {seconds:.1}s after the attack", share * 100.0);
      }
    }
  }
  if let Some(status) = live.child().try_exit()? {
    bail!("the broker exited with {} after the attack", crate::proc::describe(status));
  }
  let mut ended = std::collections::BTreeMap::<String, usize>::new();
  for &i in &case.victims {
    let child = case.started[i].child();
    let how = match child.try_exit()? {
      None => "carried on".to_string(),
      Some(status) => {
        let error =
          child.lines().iter().rev().find_map(|l| Some(l.strip_prefix("error ")?.split(':').next()?.to_string()));
        let mismatch = child.lines().iter().any(|l| l.starts_with("mismatch "));
        match (error, mismatch) {
          (Some(name), _) => name,
          (None, true) => "mismatch".to_string(),
          (None, false) => crate::proc::describe(status),
        }
      }
    };
    *ended.entry(how).or_default() += 1;
    if let Some(status) = case.started[i].child().try_exit()? {
      let typed = status.code().is_some_and(|c| c == 0 || c == 2 || (10..=40).contains(&c));
      let name = case.started[i].child().name();
      let guarded = GUARDS_TRUNCATION.iter().any(|lang| name.contains(&format!("({lang} testee")));
      let documented = matches!(attack, Attack::ChannelTruncated) && status.signal() == Some(7) && !guarded;
      if !typed && !documented {
        bail!(
          "{} ended with {} instead of a typed error",
          case.started[i].child().name(),
          crate::proc::describe(status)
        );
      }
    }
  }
  for i in case.victims.clone() {
    case.started[i].kill()?;
  }

  // The well-behaved apps carry on: every provider serves a caller of the next language, and a new
  // channel carries messages between two languages.
  let mut callers = Vec::new();
  for lang in 0..n {
    let function = format!("calm-{}", (lang + 1) % n);
    callers.push(case.start(lang, &["caller", "--function", &function, "--count", "50", "--in-flight", "4"])?);
  }
  let subscriber = case.start(1, &["subscriber", "--channel", "after", "--count", "300"])?;
  let publisher = case.start(2, &["publisher", "--channel", "after", "--count", "300", "--wait-subscribers", "1"])?;
  for i in callers {
    case.started[i].expect(0, &["ok 50"])?;
  }
  case.started[publisher].expect(0, &["published 300"])?;
  case.started[subscriber].expect(0, &["received 300"])?;
  for i in case.calm.clone() {
    case.started[i].close_stdin();
    case.started[i].expect(0, &[])?;
  }
  Ok(ended.iter().map(|(how, n)| format!("{how} {n}")).collect::<Vec<_>>().join(", "))
}

/// utime + stime of a live process, in ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
  let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
  let rest = &stat[stat.rfind(')')? + 2..];
  let fields: Vec<&str> = rest.split(' ').collect();
  // Fields after the command: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
  Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The namespace's segments whose names contain `kind` (`.ch.`, `.ln.`).
fn segments(ns: &str, kind: &str) -> anyhow::Result<Vec<PathBuf>> {
  let names = shm::snapshot(&shm::namespace_prefix(ns))?;
  Ok(names.iter().filter(|n| n.contains(kind)).map(|n| Path::new("/dev/shm").join(n)).collect())
}

fn write_at(path: &Path, offset: usize, bytes: &[u8]) -> anyhow::Result<()> {
  let file = OpenOptions::new().write(true).open(path).with_context(|| format!("cannot open {}", path.display()))?;
  file.write_all_at(bytes, offset as u64).with_context(|| format!("cannot write {}", path.display()))
}

fn read_u64(path: &Path, offset: usize) -> anyhow::Result<u64> {
  let file = std::fs::File::open(path)?;
  let mut bytes = [0u8; 8];
  file.read_exact_at(&mut bytes, offset as u64)?;
  Ok(u64::from_le_bytes(bytes))
}

fn strike(case: &mut Case, attack: Attack) -> anyhow::Result<()> {
  let ns = case.ns.clone();
  match attack {
    Attack::ChannelWord(_, offset, value) => {
      for path in segments(&ns, ".ch.")? {
        let width = if matches!(offset, IR_SEG_MAGIC | IR_SEG_VERSION | IR_CH_CLOSED) { 4 } else { 8 };
        write_at(&path, offset, &value.to_le_bytes()[..width])?;
      }
    }
    Attack::SubscriberSlots => {
      for path in segments(&ns, ".ch.")? {
        let bytes = case.random_bytes(32 * IR_SUB_SIZE);
        write_at(&path, IR_CH_SUBSCRIBERS, &bytes)?;
      }
    }
    Attack::FrameGarbage => {
      for path in segments(&ns, ".ch.")? {
        let tail = read_u64(&path, IR_CH_TAIL)?;
        let capacity = read_u64(&path, IR_CH_CAPACITY)?.max(1);
        let data = impulse_ring_core::layout::channel_data_offset(32);
        let bytes = case.random_bytes(4096);
        let at = data + (tail % capacity) as usize;
        write_at(&path, at, &bytes[..bytes.len().min((capacity - tail % capacity) as usize)])?;
        write_at(&path, IR_CH_TAIL, &(tail + 4096).to_le_bytes())?;
      }
    }
    Attack::ChannelRandom => {
      for path in segments(&ns, ".ch.")? {
        let bytes = case.random_bytes(IR_CH_SUBSCRIBERS);
        write_at(&path, 0, &bytes)?;
      }
    }
    Attack::ChannelTruncated => {
      for path in segments(&ns, ".ch.")? {
        let file = OpenOptions::new().write(true).open(&path)?;
        let len = file.metadata()?.len();
        file.set_len(len / 2)?;
      }
    }
    Attack::LinkWord(_, offset, value) => {
      let links = segments(&ns, ".ln.")?;
      if links.is_empty() {
        bail!("no link segment to attack");
      }
      for path in links {
        let width = if offset == IR_SEG_MAGIC { 4 } else { 8 };
        write_at(&path, offset, &value.to_le_bytes()[..width])?;
      }
    }
    Attack::LinkFrames => {
      for path in segments(&ns, ".ln.")? {
        let head = read_u64(&path, IR_LINK_REQUEST_RING + IR_RING_HEAD)?;
        let bytes = case.random_bytes(256);
        let data = IR_LINK_REQUEST_RING + IR_RING_HEADER_SIZE;
        let capacity = impulse_ring_core::layout::IR_DEFAULT_LINK_CAPACITY;
        let at = data + (head % capacity) as usize;
        write_at(&path, at, &bytes[..bytes.len().min((capacity - head % capacity) as usize)])?;
        write_at(&path, IR_LINK_REQUEST_RING + IR_RING_TAIL, &(head + 256).to_le_bytes())?;
      }
    }
    Attack::ControlGarbage => {
      let ctl = ControlSegment::open(&ns).map_err(|e| anyhow::anyhow!("{e:?}"))?;
      let slot = ctl.claim_slot().context("no free slot to claim")?;
      let ring = ctl.request_ring(slot).map_err(|e| anyhow::anyhow!("{e:?}"))?;
      let deadline = Instant::now() + Duration::from_millis(500);
      let mut seq = 1;
      while Instant::now() < deadline {
        let len = (case.random() % 600) as usize;
        let payload = case.random_bytes(len);
        if ring.try_write_bytes(ctl.segment(), IR_FRAME_KIND_CONTROL, seq, &payload).is_ok() {
          seq += 1;
        } else {
          // Full: the broker reads it (or has dropped the slot); never read a reply.
          std::thread::sleep(Duration::from_millis(1));
        }
        ctl.broker_doorbell().ring();
      }
    }
    Attack::ForgedRequests => {
      let ctl = ControlSegment::open(&ns).map_err(|e| anyhow::anyhow!("{e:?}"))?;
      let pids: Vec<u32> = case.victims.iter().map(|&i| case.started[i].child().pid()).collect();
      let mut forged = 0;
      for slot in 0..ctl.max_apps() {
        if !pids.contains(&ctl.slot_owner(slot).0) {
          continue;
        }
        let ring = ctl.request_ring(slot).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        for seq in 0..8 {
          let len = (case.random() % 300) as usize;
          let payload = case.random_bytes(len);
          if ring.try_write_bytes(ctl.segment(), IR_FRAME_KIND_CONTROL, 1_000_000 + seq, &payload).is_ok() {
            forged += 1;
          }
        }
      }
      ctl.broker_doorbell().ring();
      if forged == 0 {
        bail!("no victim slot took a forged record");
      }
    }
    Attack::FreeSlotWords => {
      let ctl = ControlSegment::open(&ns).map_err(|e| anyhow::anyhow!("{e:?}"))?;
      let path = Path::new("/dev/shm").join(format!("{}ctl", shm::namespace_prefix(&ns)));
      let slot_size = (ctl.segment().len() - IR_CTL_SLOTS) / ctl.max_apps() as usize;
      // Every other free slot, so that new apps still find one while the broker reclaims these.
      for slot in (0..ctl.max_apps()).step_by(2) {
        if ctl.slot_state(slot) != IR_SLOT_FREE {
          continue;
        }
        let bytes = case.random_bytes(24);
        write_at(&path, IR_CTL_SLOTS + slot as usize * slot_size, &bytes)?;
      }
      ctl.broker_doorbell().ring();
    }
  }
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn cpu_ticks_of_a_live_process_are_read_and_grow_with_work() {
    let before = cpu_ticks(std::process::id()).expect("our own /proc/PID/stat");
    let started = Instant::now();
    let mut x = 0u64;
    while started.elapsed() < Duration::from_millis(100) {
      x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    }
    assert!(cpu_ticks(std::process::id()).expect("still there") > before);
  }

  #[test]
  fn every_attack_has_a_name_of_its_own() {
    let names: std::collections::BTreeSet<_> = attacks().iter().map(|a| a.name()).collect();
    assert_eq!(names.len(), attacks().len());
  }
}
