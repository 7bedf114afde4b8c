//! `ringctl soak --minutes N`: one broker serves for N minutes while rounds of apps in every language
//! (the testees of spec/testee.md, languages drawn at random for every role) publish, subscribe,
//! expose and call, and some of them are SIGKILLed at random moments. Every message and call is
//! counted; a `block` channel whose publisher survives must lose nothing, every app must end as the
//! spec says, and typed errors are tallied by kind. The broker is never killed: its RSS and fd count
//! are taken at the start and the end, and the fd count must come back to where it started.
//!
//! A round runs four workloads at once, each in channels or functions of its own:
//! 1. a `block` channel, two healthy subscribers and a stalled one killed at a random moment: the
//!    publisher finishes and both healthy subscribers receive every message;
//! 2. a publisher killed at a random moment while it streams: its subscriber drains, sees `Closed`;
//! 3. a provider serving a caller while another caller is killed with calls in flight;
//! 4. a provider killed at a random moment under a caller that keeps going: every call either
//!    succeeds or fails with a typed error.

use std::{
  collections::BTreeMap,
  sync::Mutex,
  time::{Duration, Instant},
};

use anyhow::bail;
use xshell::Shell;

use crate::{
  broker, flags,
  pairs::{self, Program, Testee},
  proc, shm,
};

/// How long one workload may take before it counts as hung.
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Figures of the whole run.
#[derive(Default)]
struct Tally {
  rounds: u64,
  /// Messages received by subscribers (every one checked in order and intact by the testee).
  messages: u64,
  /// Messages published on `block` channels whose publisher survived, minus those received there.
  block_losses: u64,
  calls_ok: u64,
  calls_failed: u64,
  kills: u64,
  /// `error <Name>:` lines printed by every app, by name.
  errors: BTreeMap<String, u64>,
  /// What went against the spec, with the transcripts.
  violations: Vec<String>,
}

/// A tiny xorshift generator: the soak needs variety, not quality, and no new dependency.
struct Rng(u64);

impl Rng {
  fn next(&mut self) -> u64 {
    self.0 ^= self.0 << 13;
    self.0 ^= self.0 >> 7;
    self.0 ^= self.0 << 17;
    self.0
  }

  fn below(&mut self, n: u64) -> u64 {
    self.next() % n.max(1)
  }
}

/// The broker's resident set (kB) and open fds.
fn broker_figures(pid: u32) -> (u64, usize) {
  let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
  let rss = status
    .lines()
    .find_map(|l| l.strip_prefix("VmRSS:"))
    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    .unwrap_or(0);
  let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
  (rss, fds)
}

impl flags::Soak {
  pub(crate) fn run(self, sh: &Shell) -> anyhow::Result<()> {
    proc::trap_interrupts();
    let duration = Duration::from_secs_f64((self.minutes * 60.0).max(1.0));
    let seed = self.seed.unwrap_or_else(|| {
      let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos());
      (nanos as u64) | 1
    });
    let bin = broker::build(sh)?;
    let languages = pairs::build_all(sh);
    if languages.is_empty() {
      bail!("no testee built: nothing to soak");
    }
    let root = sh.current_dir();
    let programs: Vec<(&str, Program)> =
      languages.iter().map(|l| pairs::testee(&root, l).map(|p| (*l, p))).collect::<anyhow::Result<_>>()?;
    let ns = format!("soak{}", std::process::id());
    let before = shm::snapshot(&shm::namespace_prefix(&ns))?;
    println!("\n==> soak: {:.1} min, seed {seed}, languages {}, namespace `{ns}`", self.minutes, languages.join(" "));
    let live = broker::start_with(&bin, &ns, &["--log-level", "warn"])?;
    let pid = live.pid();
    let (rss_start, fds_start) = broker_figures(pid);
    let started = Instant::now();
    let tally = Mutex::new(Tally::default());
    let mut rng = Rng(seed);
    let mut round = 0u64;
    while started.elapsed() < duration && !proc::interrupted() {
      round += 1;
      let seeds: Vec<u64> = (0..4).map(|_| rng.next() | 1).collect();
      std::thread::scope(|scope| {
        for (w, seed) in seeds.iter().enumerate() {
          let (tally, programs, ns) = (&tally, &programs, ns.as_str());
          scope.spawn(move || {
            let mut rng = Rng(*seed);
            let tag = format!("r{round}w{w}");
            let result = match w {
              0 => block_with_killed_subscriber(&mut rng, programs, ns, &tag, tally),
              1 => killed_publisher(&mut rng, programs, ns, &tag, tally),
              2 => calls_with_killed_caller(&mut rng, programs, ns, &tag, tally),
              _ => killed_provider(&mut rng, programs, ns, &tag, tally),
            };
            if let Err(err) = result {
              lock(tally).violations.push(format!("round {round}, workload {w}: {err:#}"));
            }
          });
        }
      });
      let t = lock(&tally);
      if round.is_multiple_of(10) || !t.violations.is_empty() {
        println!(
          "soak: {:>5.0}s round {round}: {} messages, {} calls ok, {} kills, {} violations",
          started.elapsed().as_secs_f64(),
          t.messages,
          t.calls_ok,
          t.kills,
          t.violations.len()
        );
      }
      if !t.violations.is_empty() {
        break;
      }
    }
    let ran = started.elapsed();
    // Let the broker collect the last apps before its fds are counted again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut rss_end, mut fds_end) = broker_figures(pid);
    while fds_end > fds_start && Instant::now() < deadline {
      std::thread::sleep(Duration::from_millis(50));
      (rss_end, fds_end) = broker_figures(pid);
    }
    let alive = live.child().try_exit()?.is_none();
    let stopped = broker::stop(live);
    let leaks = shm::ensure_no_leaks(&before, &shm::namespace_prefix(&ns), "the soak");
    let mut t = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    t.rounds = round;
    println!("\nSoak: {:.1} min ({} rounds), seed {seed}", ran.as_secs_f64() / 60.0, t.rounds);
    println!("  messages received       {}", t.messages);
    println!("  block-channel losses    {}", t.block_losses);
    println!("  calls ok / failed       {} / {}", t.calls_ok, t.calls_failed);
    println!("  apps killed             {}", t.kills);
    let errors = t.errors.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
    println!("  typed errors by kind    {}", if errors.is_empty() { "none".to_string() } else { errors });
    println!("  broker RSS              {rss_start} kB -> {rss_end} kB");
    println!("  broker fds              {fds_start} -> {fds_end}");
    println!("  violations              {}", t.violations.len());
    for v in &t.violations {
      println!("\n{v}");
    }
    if !alive {
      bail!("the broker died during the soak");
    }
    stopped?;
    leaks?;
    if !t.violations.is_empty() {
      bail!("soak: {} violations (above)", t.violations.len());
    }
    if t.block_losses > 0 {
      bail!("soak: {} messages lost on block channels", t.block_losses);
    }
    if fds_end > fds_start {
      bail!("soak: the broker holds {fds_end} fds at the end, {fds_start} at the start");
    }
    Ok(())
  }
}

fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
  tally.lock().unwrap_or_else(|e| e.into_inner())
}

/// The apps of one workload; their error lines are tallied and their transcripts kept for a failure.
struct Apps<'a> {
  programs: &'a [(&'a str, Program)],
  ns: &'a str,
  started: Vec<Testee>,
}

impl<'a> Apps<'a> {
  fn new(programs: &'a [(&'a str, Program)], ns: &'a str) -> Apps<'a> {
    Apps { programs, ns, started: Vec::new() }
  }

  fn start(&mut self, rng: &mut Rng, args: &[&str]) -> anyhow::Result<usize> {
    let (lang, program) = &self.programs[rng.below(self.programs.len() as u64) as usize];
    let label = format!("{} ({lang} testee {})", args[0], args.join(" "));
    self.started.push(Testee::start(label, program, self.ns, args)?);
    Ok(self.started.len() - 1)
  }

  fn get(&mut self, i: usize) -> &mut Testee {
    &mut self.started[i]
  }

  fn wait(&self, i: usize, prefix: &str) -> anyhow::Result<()> {
    match self.started[i].child().wait_line(prefix, WORKLOAD_TIMEOUT) {
      Ok(_) => Ok(()),
      Err(err) => bail!("{}", err.lines().next().unwrap_or_default()),
    }
  }

  /// The number after `prefix` in a line of app `i`.
  fn number(&self, i: usize, prefix: &str) -> Option<u64> {
    self.started[i].child().lines().iter().find_map(|l| l.strip_prefix(prefix)?.split(' ').next()?.parse().ok())
  }

  /// Tallies error lines, then adds the transcripts to a failure.
  fn finish(self, result: anyhow::Result<()>, tally: &Mutex<Tally>) -> anyhow::Result<()> {
    let mut t = lock(tally);
    for testee in &self.started {
      for line in testee.child().lines() {
        if let Some(name) = line.strip_prefix("error ").and_then(|rest| rest.split(':').next()) {
          *t.errors.entry(name.to_string()).or_default() += 1;
        }
      }
    }
    drop(t);
    result.map_err(|err| {
      let transcripts = self.started.iter().map(Testee::transcript).collect::<Vec<_>>().join("\n");
      err.context(transcripts)
    })
  }
}

fn sleep_ms(rng: &mut Rng, max: u64) {
  std::thread::sleep(Duration::from_millis(rng.below(max)));
}

fn block_with_killed_subscriber(
  rng: &mut Rng,
  programs: &[(&str, Program)],
  ns: &str,
  tag: &str,
  tally: &Mutex<Tally>,
) -> anyhow::Result<()> {
  let mut apps = Apps::new(programs, ns);
  let count = (500 + rng.below(2500)).to_string();
  let capacity = if rng.below(2) == 0 { "8192" } else { "0" };
  let channel = format!("block-{tag}");
  let result = (|| {
    let publisher =
      apps.start(rng, &["publisher", "--channel", &channel, "--count", &count, "--capacity", capacity, "--wait-go"])?;
    apps.wait(publisher, "ready")?;
    let healthy: Vec<usize> = (0..2)
      .map(|_| apps.start(rng, &["subscriber", "--channel", &channel, "--count", &count]))
      .collect::<anyhow::Result<_>>()?;
    let victim = apps.start(rng, &["subscriber", "--channel", &channel, "--stall-ms", "600000"])?;
    for &i in healthy.iter().chain([&victim]) {
      apps.wait(i, "subscribed")?;
    }
    apps.get(publisher).send_line("go")?;
    sleep_ms(rng, 300);
    apps.get(victim).kill()?;
    lock(tally).kills += 1;
    apps.get(publisher).expect(0, &[&format!("published {count}")])?;
    let n: u64 = count.parse()?;
    for &i in &healthy {
      let status = apps.get(i).expect(0, &[]);
      let received = apps.number(i, "received ").unwrap_or(0);
      let mut t = lock(tally);
      t.messages += received;
      t.block_losses += n.saturating_sub(received);
      drop(t);
      status?;
    }
    Ok(())
  })();
  apps.finish(result, tally)
}

fn killed_publisher(
  rng: &mut Rng,
  programs: &[(&str, Program)],
  ns: &str,
  tag: &str,
  tally: &Mutex<Tally>,
) -> anyhow::Result<()> {
  let mut apps = Apps::new(programs, ns);
  let channel = format!("doomed-{tag}");
  let result = (|| {
    let subscriber = apps.start(rng, &["subscriber", "--channel", &channel, "--expect-closed"])?;
    let args =
      ["publisher", "--channel", &channel, "--count", "100000000", "--capacity", "8192", "--wait-subscribers", "1"];
    let publisher = apps.start(rng, &args)?;
    apps.wait(publisher, "ready")?;
    apps.wait(subscriber, "subscribed")?;
    sleep_ms(rng, 500);
    apps.get(publisher).kill()?;
    lock(tally).kills += 1;
    apps.get(subscriber).expect(0, &["closed"])?;
    lock(tally).messages += apps.number(subscriber, "received ").unwrap_or(0);
    Ok(())
  })();
  apps.finish(result, tally)
}

fn calls_with_killed_caller(
  rng: &mut Rng,
  programs: &[(&str, Program)],
  ns: &str,
  tag: &str,
  tally: &Mutex<Tally>,
) -> anyhow::Result<()> {
  let mut apps = Apps::new(programs, ns);
  let function = format!("add-{tag}");
  let count = (200 + rng.below(1800)).to_string();
  let in_flight = (1 + rng.below(8)).to_string();
  let result = (|| {
    let provider = apps.start(rng, &["provider", "--function", &function])?;
    apps.wait(provider, "ready")?;
    let victim = apps.start(rng, &["caller", "--function", &function, "--count", "100000000", "--in-flight", "8"])?;
    let caller = apps.start(rng, &["caller", "--function", &function, "--count", &count, "--in-flight", &in_flight])?;
    apps.wait(victim, "calling")?;
    sleep_ms(rng, 300);
    apps.get(victim).kill()?;
    lock(tally).kills += 1;
    apps.get(caller).expect(0, &[&format!("ok {count}")])?;
    lock(tally).calls_ok += count.parse::<u64>()?;
    apps.get(provider).close_stdin();
    apps.get(provider).expect(0, &[])?;
    Ok(())
  })();
  apps.finish(result, tally)
}

fn killed_provider(
  rng: &mut Rng,
  programs: &[(&str, Program)],
  ns: &str,
  tag: &str,
  tally: &Mutex<Tally>,
) -> anyhow::Result<()> {
  let mut apps = Apps::new(programs, ns);
  let function = format!("fragile-{tag}");
  let result = (|| {
    let provider = apps.start(rng, &["provider", "--function", &function, "--sleep-ms", "1"])?;
    apps.wait(provider, "ready")?;
    let args = ["caller", "--function", &function, "--count", "2000", "--in-flight", "4", "--keep-going"];
    let caller = apps.start(rng, &args)?;
    apps.wait(caller, "calling")?;
    sleep_ms(rng, 400);
    apps.get(provider).kill()?;
    lock(tally).kills += 1;
    apps.get(caller).expect(0, &[])?;
    let ok = apps.number(caller, "ok ").unwrap_or(0);
    let failed = apps.number(caller, &format!("ok {ok} failed ")).unwrap_or(0);
    if ok + failed != 2000 {
      bail!("the caller accounted for {ok} + {failed} calls of 2000");
    }
    let mut t = lock(tally);
    t.calls_ok += ok;
    t.calls_failed += failed;
    Ok(())
  })();
  apps.finish(result, tally)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn broker_figures_of_this_process_are_nonzero() {
    let (rss, fds) = broker_figures(std::process::id());
    assert!(rss > 0 && fds > 0);
  }

  #[test]
  fn rng_stays_below_its_bound() {
    let mut rng = Rng(7);
    assert!((0..1000).all(|_| rng.below(3) < 3));
  }
}
