//! The Unix-domain-socket baseline (stream sockets, one `write` per message): what local REST/gRPC
//! transports pay for every message, measured the same way as Ring's cases.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Instant;

use ring_bench::proc::{follower_cpu, pin, wait_for_leader, Follower};
use ring_bench::report::{histogram, Row};
use ring_bench::Params;

fn socket_path() -> String {
  format!("/tmp/ring-bench-{}.sock", std::process::id())
}

fn accept_follower(p: &Params, case: &str) -> (UnixStream, Follower, String) {
  let path = socket_path();
  let _ = std::fs::remove_file(&path);
  let listener = UnixListener::bind(&path).expect("bind the benchmark socket");
  let mut args = p.to_args(case);
  args.extend(["--path".to_string(), path.clone()]);
  let follower = Follower::spawn(&args, 1);
  let (stream, _) = listener.accept().expect("accept the follower");
  (stream, follower, path)
}

pub fn latency(p: &Params) -> Row {
  pin(0);
  let (mut stream, _follower, path) = accept_follower(p, "uds-latency");
  let mut buf = vec![0x11u8; p.size];
  let mut hist = histogram();
  for i in 0..p.warmup + p.iters {
    let start = Instant::now();
    stream.write_all(&buf).expect("write");
    stream.read_exact(&mut buf).expect("read");
    if i >= p.warmup {
      hist.record(start.elapsed().as_nanos() as u64 / 2).expect("in range");
    }
  }
  let _ = std::fs::remove_file(path);
  Row::new("pubsub_latency", "uds", p.size as u64, "block").latency(&hist)
}

pub fn latency_follower(p: &Params) {
  pin(follower_cpu());
  let mut stream = UnixStream::connect(&p.path).expect("connect");
  let mut buf = vec![0u8; p.size];
  for _ in 0..p.warmup + p.iters {
    stream.read_exact(&mut buf).expect("read");
    stream.write_all(&buf).expect("write");
  }
  wait_for_leader();
}

pub fn throughput(p: &Params) -> Row {
  pin(0);
  let (mut stream, _follower, path) = accept_follower(p, "uds-throughput");
  let buf = vec![0x22u8; p.size];
  let start = Instant::now();
  for _ in 0..p.count {
    stream.write_all(&buf).expect("write");
  }
  let mut ack = [0u8; 1];
  stream.read_exact(&mut ack).expect("the follower's acknowledgement");
  let seconds = start.elapsed().as_secs_f64();
  let _ = std::fs::remove_file(path);
  Row::new("pubsub_throughput", "uds", p.size as u64, "block").rate(p.count, seconds).subscribers(1)
}

pub fn throughput_follower(p: &Params) {
  pin(follower_cpu());
  let mut stream = UnixStream::connect(&p.path).expect("connect");
  let mut remaining = p.count as usize * p.size;
  let mut buf = vec![0u8; 1 << 16];
  while remaining > 0 {
    let n = stream.read(&mut buf[..remaining.min(1 << 16)]).expect("read");
    assert!(n > 0, "the leader closed early");
    remaining -= n;
  }
  stream.write_all(&[1]).expect("acknowledge");
  wait_for_leader();
}
