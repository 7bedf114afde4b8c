//! Shared pieces of Ring's benchmark programs (`ring-bench` and the iceoryx2 baseline in
//! `tools/bench-iceoryx2`): case parameters, leader/follower processes, and the result rows.

pub mod proc;
pub mod report;

/// Parameters of one case; followers get them on their command line.
#[derive(Clone, Debug)]
pub struct Params {
  pub size: usize,
  pub wait: String,
  pub iters: u64,
  pub warmup: u64,
  pub gap_us: u64,
  pub count: u64,
  pub subscribers: u32,
  pub typed: bool,
  pub path: String,
}

impl Default for Params {
  fn default() -> Self {
    Params {
      size: 64,
      wait: "adaptive".into(),
      iters: 10_000,
      warmup: 1_000,
      gap_us: 0,
      count: 100_000,
      subscribers: 1,
      typed: false,
      path: String::new(),
    }
  }
}

impl Params {
  /// Parses `--flag value` pairs (what `to_args` writes).
  pub fn parse(args: &[String]) -> Params {
    let mut p = Params::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
      let mut value = || it.next().cloned().unwrap_or_else(|| panic!("{flag} needs a value"));
      match flag.as_str() {
        "--size" => p.size = value().parse().expect("--size N"),
        "--wait" => p.wait = value(),
        "--iters" => p.iters = value().parse().expect("--iters N"),
        "--warmup" => p.warmup = value().parse().expect("--warmup N"),
        "--gap-us" => p.gap_us = value().parse().expect("--gap-us N"),
        "--count" => p.count = value().parse().expect("--count N"),
        "--subscribers" => p.subscribers = value().parse().expect("--subscribers N"),
        "--typed" => p.typed = true,
        "--path" => p.path = value(),
        other => panic!("unknown flag {other}"),
      }
    }
    p
  }

  /// The command line a follower of `case` gets.
  pub fn to_args(&self, case: &str) -> Vec<String> {
    let mut args = vec![case.to_string()];
    for (flag, value) in [
      ("--size", self.size.to_string()),
      ("--wait", self.wait.clone()),
      ("--iters", self.iters.to_string()),
      ("--warmup", self.warmup.to_string()),
      ("--count", self.count.to_string()),
      ("--subscribers", self.subscribers.to_string()),
      ("--gap-us", self.gap_us.to_string()),
    ] {
      args.push(flag.to_string());
      args.push(value);
    }
    if self.typed {
      args.push("--typed".to_string());
    }
    args
  }
}
