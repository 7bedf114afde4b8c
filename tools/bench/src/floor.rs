//! The physical floor: one cache line bounced between two processes on two cores (what any
//! shared-memory handoff costs at least), and single-core memcpy bandwidth (what any copy costs).

use std::sync::atomic::Ordering;
use std::time::Instant;

use impulse_ring_core::layout::IR_KIND_LINK;
use impulse_ring_core::segment::Segment;

use ring_bench::proc::{follower_cpu, pin, wait_for_leader, Follower};
use ring_bench::report::{histogram, Row};
use ring_bench::Params;

const PING: usize = 128;
const PONG: usize = 256;

fn segment_name() -> String {
  format!("/impulse-ring.{}.bench-floor", impulse_ring_core::names::namespace_from_env())
}

pub fn cacheline(p: &Params) -> Row {
  pin(0);
  let name = segment_name();
  let _ = impulse_ring_core::sys::shm_unlink(&name);
  let seg = Segment::create(&name, 4096, IR_KIND_LINK, 0o600).expect("create the floor segment");
  seg.mark_ready();
  let mut follower = Follower::spawn(&p.to_args("cacheline"), 1);
  follower.expect("ready");
  let (ping, pong) = (seg.u64_at(PING), seg.u64_at(PONG));
  let mut hist = histogram();
  for i in 1..=(p.warmup + p.iters) {
    let start = Instant::now();
    ping.store(i, Ordering::Release);
    while pong.load(Ordering::Acquire) != i {
      std::hint::spin_loop();
    }
    if i > p.warmup {
      hist.record(start.elapsed().as_nanos() as u64 / 2).expect("in range");
    }
  }
  let _ = seg.unlink();
  Row::new("floor", "cacheline", 8, "-").latency(&hist)
}

pub fn cacheline_follower(p: &Params) {
  pin(follower_cpu());
  let seg = Segment::open(&segment_name(), IR_KIND_LINK).expect("open the floor segment");
  ring_bench::proc::say("ready");
  let (ping, pong) = (seg.u64_at(PING), seg.u64_at(PONG));
  for i in 1..=(p.warmup + p.iters) {
    while ping.load(Ordering::Acquire) != i {
      std::hint::spin_loop();
    }
    pong.store(i, Ordering::Release);
  }
  wait_for_leader();
}

pub fn memcpy(p: &Params) -> Row {
  pin(0);
  let size = 1 << 20;
  let src = vec![7u8; size];
  let mut dst = vec![0u8; size];
  let rounds = p.count.max(1);
  let start = Instant::now();
  for _ in 0..rounds {
    dst.copy_from_slice(std::hint::black_box(&src));
    std::hint::black_box(&mut dst);
  }
  let seconds = start.elapsed().as_secs_f64();
  Row::new("floor", "memcpy", size as u64, "-").rate(rounds, seconds)
}
