//! Ring's own cases: channel ping-pong latency, call round trips, and one-way throughput with one or
//! more subscribers, between real processes through a live broker (namespace from `IMPULSE_RING_NS`).

use std::time::{Duration, Instant};

use impulse_ring_connector::{ConnectOptions, Connection, PublishOptions, Publisher, SubscribeOptions, WaitStrategy};

use ring_bench::proc::{follower_cpu, pin, say, wait_for_leader, Follower};
use ring_bench::report::{histogram, Row};
use ring_bench::Params;

/// The wait strategy a case names.
pub fn strategy(wait: &str) -> WaitStrategy {
  match wait {
    "spin" => WaitStrategy::BusySpin,
    "block" => WaitStrategy::Blocking,
    _ => WaitStrategy::default(),
  }
}

/// A schema whose datum is exactly `size` bytes: Avro `fixed`.
fn fixed_schema(size: usize) -> String {
  format!(r#"{{"type":"fixed","name":"Payload{size}","namespace":"bench","size":{size}}}"#)
}

/// A record of seven 8-byte-ish fields (about 60 bytes encoded) for the typed-publish case.
const SAMPLE_SCHEMA: &str = r#"{"type":"record","name":"Sample","namespace":"bench","fields":[
  {"name":"seq","type":"long"},{"name":"a","type":"long"},{"name":"b","type":"long"},{"name":"c","type":"long"},
  {"name":"x","type":"double"},{"name":"y","type":"double"},{"name":"z","type":"double"}]}"#;

#[derive(serde::Serialize)]
struct Sample {
  seq: i64,
  a: i64,
  b: i64,
  c: i64,
  x: f64,
  y: f64,
  z: f64,
}

fn connect(name: &str, wait: WaitStrategy) -> Connection {
  Connection::connect_with(name, ConnectOptions { namespace: None, wait }).expect("connect to the broker")
}

/// A channel capacity that holds at least 4 messages of `size`, and 1 MiB: large enough to batch,
/// small enough to stay in the last-level cache.
fn capacity(size: usize) -> u64 {
  ((size as u64 + 64) * 4).next_power_of_two().max(1 << 20)
}

fn publish_options(size: usize, wait: WaitStrategy) -> PublishOptions {
  PublishOptions { capacity: capacity(size), lossy: false, wait, send_timeout: Some(Duration::from_secs(30)) }
}

const TIMEOUT: Duration = Duration::from_secs(30);

pub fn pubsub_latency(p: &Params) -> Row {
  pin(0);
  let wait = strategy(&p.wait);
  let conn = connect("bench-ping", wait);
  let schema = fixed_schema(p.size);
  let mut ping =
    conn.publish_channel("bench.ping", &schema, None, publish_options(p.size, wait)).expect("publish ping");
  let mut follower = Follower::spawn(&p.to_args("pubsub-latency"), 1);
  follower.expect("ready");
  let mut pong = conn
    .subscribe_with("bench.pong", None, &schema, SubscribeOptions { wait, ..Default::default() })
    .expect("subscribe pong");
  let payload = vec![0xA5u8; p.size];
  let mut hist = histogram();
  for i in 0..p.warmup + p.iters {
    let start = Instant::now();
    ping.publish_raw(&payload).expect("publish");
    pong.recv_with(TIMEOUT, |d| d.len()).expect("receive").expect("pong within the timeout");
    let rtt = start.elapsed().as_nanos() as u64;
    if i >= p.warmup {
      hist.record(rtt / 2).expect("in range");
    }
    if p.gap_us > 0 {
      std::thread::sleep(Duration::from_micros(p.gap_us));
    }
  }
  Row::new("pubsub_latency", "ring-rust", p.size as u64, &p.wait).latency(&hist)
}

pub fn pubsub_latency_follower(p: &Params) {
  pin(follower_cpu());
  let wait = strategy(&p.wait);
  let conn = connect("bench-pong", wait);
  let schema = fixed_schema(p.size);
  let mut ping = conn
    .subscribe_with("bench.ping", None, &schema, SubscribeOptions { wait, ..Default::default() })
    .expect("subscribe ping");
  let mut pong =
    conn.publish_channel("bench.pong", &schema, None, publish_options(p.size, wait)).expect("publish pong");
  say("ready");
  for _ in 0..p.warmup + p.iters {
    ping
      .recv_with(TIMEOUT, |d| pong.publish_raw(d))
      .expect("receive")
      .expect("ping within the timeout")
      .expect("publish");
  }
  wait_for_leader();
}

pub fn call_latency(p: &Params) -> Row {
  pin(0);
  let wait = strategy(&p.wait);
  let conn = connect("bench-caller", wait);
  let schema = fixed_schema(p.size);
  let mut follower = Follower::spawn(&p.to_args("call-latency"), 1);
  follower.expect("ready");
  let payload = vec![0x5Au8; p.size];
  let mut hist = histogram();
  for i in 0..p.warmup + p.iters {
    let start = Instant::now();
    let response = conn.call_raw_blocking("bench.echo", None, &payload, &schema, &schema, TIMEOUT).expect("call");
    let rtt = start.elapsed().as_nanos() as u64;
    assert_eq!(response.len(), p.size);
    if i >= p.warmup {
      hist.record(rtt).expect("in range");
    }
  }
  Row::new("call_latency", "ring-rust", p.size as u64, &p.wait).latency(&hist)
}

pub fn call_latency_follower(p: &Params) {
  pin(follower_cpu());
  let conn = connect("bench-provider", strategy(&p.wait));
  let schema = fixed_schema(p.size);
  let _echo = conn.expose_function_raw("bench.echo", &schema, &schema, None, |d| Ok(d.to_vec())).expect("expose");
  say("ready");
  wait_for_leader();
}

/// One publisher, `p.subscribers` subscriber processes; messages per second at the publisher until
/// every subscriber has received every message.
pub fn throughput(p: &Params) -> Row {
  pin(0);
  let wait = strategy(&p.wait);
  let conn = connect("bench-publisher", wait);
  let schema = if p.typed { SAMPLE_SCHEMA.to_string() } else { fixed_schema(p.size) };
  let mut publisher =
    conn.publish_channel("bench.stream", &schema, None, publish_options(p.size, wait)).expect("publish");
  let mut followers: Vec<Follower> =
    (0..p.subscribers).map(|i| Follower::spawn(&p.to_args("throughput"), 1 + i as usize)).collect();
  for f in &mut followers {
    f.expect("ready");
  }
  let start = Instant::now();
  publish_messages(&mut publisher, p);
  for f in &mut followers {
    f.expect("done");
  }
  let seconds = start.elapsed().as_secs_f64();
  let case = if p.subscribers > 1 { "fanout_throughput" } else { "pubsub_throughput" };
  let system = if p.typed { "ring-rust-typed" } else { "ring-rust" };
  Row::new(case, system, p.size as u64, &p.wait).rate(p.count, seconds).subscribers(p.subscribers)
}

/// The publisher's loop of the throughput and fan-out cases, on its own and never inlined: `ringctl
/// bench` counts the instructions spent in it with `valgrind --tool=callgrind
/// --toggle-collect=*publish_messages*`, the cost per message that wall-clock figures cannot give on a
/// machine with fewer cores than processes.
#[inline(never)]
pub fn publish_messages(publisher: &mut Publisher, p: &Params) {
  let payload = vec![0x3Cu8; p.size];
  for seq in 0..p.count {
    if p.typed {
      let sample =
        Sample { seq: seq as i64, a: i64::MAX - 1, b: i64::MIN + 1, c: i64::MAX / 3, x: 0.5, y: 1.5, z: -2.5 };
      publisher.publish(&sample).expect("publish");
    } else {
      publisher.publish_raw(&payload).expect("publish");
    }
  }
}

pub fn throughput_follower(p: &Params) {
  pin(follower_cpu());
  let wait = strategy(&p.wait);
  let conn = connect("bench-subscriber", wait);
  let schema = if p.typed { SAMPLE_SCHEMA.to_string() } else { fixed_schema(p.size) };
  let mut sub = conn
    .subscribe_with("bench.stream", None, &schema, SubscribeOptions { wait, ..Default::default() })
    .expect("subscribe");
  say("ready");
  let mut bytes = 0usize;
  for _ in 0..p.count {
    bytes += sub.recv_with(TIMEOUT, |d| d.len()).expect("receive").expect("a message within the timeout");
  }
  assert!(bytes > 0 || p.size == 0);
  say("done");
  wait_for_leader();
}
