//! `ring-bench`: the benchmark programs `ringctl bench` runs. `ring-bench suite [--quick]` runs every
//! case and prints one JSON object per line; `ring-bench <case> [--flags]` runs one. Each case is a
//! leader process plus follower processes (`ring-bench follow <case> ...`), pinned to distinct cores.
//! The Ring cases need a broker in `IMPULSE_RING_NS`.

mod floor;
mod ring;
mod uds;

use ring_bench::{report, Params};

fn run_case(case: &str, p: &Params) -> report::Row {
  match case {
    "pubsub-latency" => ring::pubsub_latency(p),
    "call-latency" => ring::call_latency(p),
    "throughput" => ring::throughput(p),
    "uds-latency" => uds::latency(p),
    "uds-throughput" => uds::throughput(p),
    "cacheline" => floor::cacheline(p),
    "memcpy" => floor::memcpy(p),
    other => panic!("unknown case {other}"),
  }
}

fn follow(case: &str, p: &Params) {
  match case {
    "pubsub-latency" => ring::pubsub_latency_follower(p),
    "call-latency" => ring::call_latency_follower(p),
    "throughput" => ring::throughput_follower(p),
    "uds-latency" => uds::latency_follower(p),
    "uds-throughput" => uds::throughput_follower(p),
    "cacheline" => floor::cacheline_follower(p),
    other => panic!("unknown case {other}"),
  }
}

/// Every case of the suite, with its parameters. `quick` keeps the whole run under a minute.
fn suite(quick: bool) -> Vec<(&'static str, Params)> {
  let scale = |full: u64, fast: u64| if quick { fast } else { full };
  let lat = |size: usize, wait: &str| Params {
    size,
    wait: wait.to_string(),
    iters: scale(100_000, 2_000),
    warmup: scale(10_000, 200),
    ..Params::default()
  };
  let mut cases = vec![
    ("cacheline", Params { iters: scale(1_000_000, 20_000), warmup: scale(10_000, 1_000), ..Params::default() }),
    ("memcpy", Params { count: scale(20_000, 500), ..Params::default() }),
  ];
  for size in [64, 4096, 65536] {
    for wait in ["spin", "adaptive", "block"] {
      cases.push(("pubsub-latency", lat(size, wait)));
    }
  }
  cases.push((
    "pubsub-latency",
    Params { wait: "adaptive-gap50us".into(), gap_us: 50, iters: scale(20_000, 500), warmup: 100, ..Params::default() },
  ));
  for (size, wait) in [(64, "spin"), (64, "adaptive"), (4096, "spin")] {
    cases.push(("call-latency", lat(size, wait)));
  }
  let tp = |size: usize, count: u64, subscribers: u32, typed: bool| Params {
    size,
    count,
    subscribers,
    typed,
    ..Params::default()
  };
  cases.push(("throughput", tp(64, scale(5_000_000, 200_000), 1, false)));
  cases.push(("throughput", tp(64, scale(2_000_000, 100_000), 1, true)));
  cases.push(("throughput", tp(4096, scale(500_000, 20_000), 1, false)));
  cases.push(("throughput", tp(1 << 20, scale(5_000, 200), 1, false)));
  // Wall-clock fan-out means something only with a core per process (the publisher and each
  // subscriber); elsewhere `ringctl bench` counts the publisher's instructions instead.
  for subscribers in [2, 4] {
    if ring_bench::proc::online_cpus() > subscribers as usize {
      cases.push(("throughput", tp(64, scale(2_000_000, 100_000), subscribers, false)));
    }
  }
  for size in [64, 4096] {
    cases.push(("uds-latency", lat(size, "block")));
  }
  cases.push(("uds-throughput", tp(64, scale(2_000_000, 100_000), 1, false)));
  cases.push(("uds-throughput", tp(4096, scale(500_000, 20_000), 1, false)));
  cases
}

fn main() {
  let args: Vec<String> = std::env::args().skip(1).collect();
  match args.first().map(String::as_str) {
    Some("follow") => {
      let case = args.get(1).expect("follow <case>");
      follow(case, &Params::parse(&args[2..]));
    }
    Some("suite") => {
      let quick = args.iter().any(|a| a == "--quick");
      for (case, params) in suite(quick) {
        run_case(case, &params).print();
      }
    }
    Some(case) => run_case(case, &Params::parse(&args[1..])).print(),
    None => {
      eprintln!("usage: ring-bench suite [--quick] | ring-bench <case> [--size N --wait spin|adaptive|block ...]");
      std::process::exit(2);
    }
  }
}
