//! The iceoryx2 baseline, measured exactly like Ring's cases (same leader/follower processes, same
//! pinning, same histograms and rows): pub/sub ping-pong (busy-spin), request/response round trip,
//! one-way throughput, and wake-up through its event mechanism with 50 µs gaps.

use std::time::{Duration, Instant};

use iceoryx2::port::backpressure_strategy::BackpressureStrategy;
use iceoryx2::prelude::*;
use ring_bench::proc::{follower_cpu, pin, say, wait_for_leader, Follower};
use ring_bench::report::{histogram, Row};
use ring_bench::Params;

type Svc = ipc::Service;

fn node() -> Node<Svc> {
  set_log_level(LogLevel::Error);
  NodeBuilder::new().create::<Svc>().expect("create an iceoryx2 node")
}

fn service_name(tag: &str) -> ServiceName {
  ServiceName::new(&format!("ring-bench/{}/{tag}", std::env::var("IMPULSE_RING_NS").unwrap_or_default()))
    .expect("valid service name")
}

fn pubsub(
  node: &Node<Svc>,
  tag: &str,
  buffer: usize,
  safe_overflow: bool,
) -> iceoryx2::service::port_factory::publish_subscribe::PortFactory<Svc, [u8], ()> {
  node
    .service_builder(&service_name(tag))
    .publish_subscribe::<[u8]>()
    .history_size(0)
    .subscriber_max_buffer_size(buffer)
    .enable_safe_overflow(safe_overflow)
    .open_or_create()
    .expect("open the pub/sub service")
}

fn event(node: &Node<Svc>, tag: &str) -> iceoryx2::service::port_factory::event::PortFactory<Svc> {
  node.service_builder(&service_name(tag)).event().open_or_create().expect("open the event service")
}

fn send(publisher: &iceoryx2::port::publisher::Publisher<Svc, [u8], ()>, size: usize) {
  let sample = publisher.loan_slice_uninit(size).expect("loan");
  let sample = sample.write_from_fn(|i| i as u8);
  sample.send().expect("send");
}

/// Ping-pong over two pub/sub services, busy-spinning; `gap_us > 0` uses events to sleep instead.
fn pubsub_latency(p: &Params) -> Row {
  pin(0);
  let node = node();
  let a2b = pubsub(&node, "a2b", 1, true);
  let b2a = pubsub(&node, "b2a", 1, true);
  let publisher = a2b.publisher_builder().initial_max_slice_len(p.size).create().expect("publisher");
  let subscriber = b2a.subscriber_builder().create().expect("subscriber");
  let events = (p.gap_us > 0).then(|| {
    let notifier = event(&node, "e-a2b").notifier_builder().create().expect("notifier");
    let listener = event(&node, "e-b2a").listener_builder().create().expect("listener");
    (notifier, listener)
  });
  let mut follower = Follower::spawn(&p.to_args("pubsub-latency"), 1);
  follower.expect("ready");
  let mut hist = histogram();
  for i in 0..p.warmup + p.iters {
    let start = Instant::now();
    send(&publisher, p.size);
    match &events {
      None => while subscriber.receive().expect("receive").is_none() {},
      Some((notifier, listener)) => {
        notifier.notify().expect("notify");
        loop {
          if subscriber.receive().expect("receive").is_some() {
            break;
          }
          listener.timed_wait(|_| {}, Duration::from_secs(5)).expect("wait");
        }
      }
    }
    if i >= p.warmup {
      hist.record(start.elapsed().as_nanos() as u64 / 2).expect("in range");
    }
    if p.gap_us > 0 {
      std::thread::sleep(Duration::from_micros(p.gap_us));
    }
  }
  let wait = if p.gap_us > 0 { "adaptive-gap50us" } else { "spin" };
  Row::new("pubsub_latency", "iceoryx2", p.size as u64, wait).latency(&hist)
}

fn pubsub_latency_follower(p: &Params) {
  pin(follower_cpu());
  let node = node();
  let a2b = pubsub(&node, "a2b", 1, true);
  let b2a = pubsub(&node, "b2a", 1, true);
  let publisher = b2a.publisher_builder().initial_max_slice_len(p.size).create().expect("publisher");
  let subscriber = a2b.subscriber_builder().create().expect("subscriber");
  let events = (p.gap_us > 0).then(|| {
    let notifier = event(&node, "e-b2a").notifier_builder().create().expect("notifier");
    let listener = event(&node, "e-a2b").listener_builder().create().expect("listener");
    (notifier, listener)
  });
  say("ready");
  for _ in 0..p.warmup + p.iters {
    loop {
      if let Some(sample) = subscriber.receive().expect("receive") {
        drop(sample);
        break;
      }
      if let Some((_, listener)) = &events {
        listener.timed_wait(|_| {}, Duration::from_secs(5)).expect("wait");
      }
    }
    send(&publisher, p.size);
    if let Some((notifier, _)) = &events {
      notifier.notify().expect("notify");
    }
  }
  wait_for_leader();
}

type Request = [u8; 64];

fn request_response(
  node: &Node<Svc>,
) -> iceoryx2::service::port_factory::request_response::PortFactory<Svc, Request, (), Request, ()> {
  node
    .service_builder(&service_name("rpc"))
    .request_response::<Request, Request>()
    .max_response_buffer_size(1)
    .open_or_create()
    .expect("open the request/response service")
}

fn call_latency(p: &Params) -> Row {
  pin(0);
  let node = node();
  let service = request_response(&node);
  let client = service.client_builder().create().expect("client");
  let mut follower = Follower::spawn(&p.to_args("call-latency"), 1);
  follower.expect("ready");
  let mut hist = histogram();
  for i in 0..p.warmup + p.iters {
    let start = Instant::now();
    let pending = client.send_copy([7u8; 64]).expect("send request");
    while pending.receive().expect("receive response").is_none() {}
    if i >= p.warmup {
      hist.record(start.elapsed().as_nanos() as u64).expect("in range");
    }
  }
  Row::new("call_latency", "iceoryx2", 64, "spin").latency(&hist)
}

fn call_latency_follower(p: &Params) {
  pin(follower_cpu());
  let node = node();
  let service = request_response(&node);
  let server = service.server_builder().create().expect("server");
  say("ready");
  for _ in 0..p.warmup + p.iters {
    loop {
      if let Some(request) = server.receive().expect("receive request") {
        let payload = *request.payload();
        request.send_copy(payload).expect("respond");
        break;
      }
    }
  }
  wait_for_leader();
}

fn throughput(p: &Params) -> Row {
  pin(0);
  let node = node();
  let stream = pubsub(&node, "stream", 256, false);
  let publisher = stream
    .publisher_builder()
    .initial_max_slice_len(p.size)
    .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
    .create()
    .expect("publisher");
  let mut follower = Follower::spawn(&p.to_args("throughput"), 1);
  follower.expect("ready");
  // The subscriber connects on the publisher's next update.
  std::thread::sleep(Duration::from_millis(50));
  let start = Instant::now();
  for _ in 0..p.count {
    send(&publisher, p.size);
  }
  follower.expect("done");
  let seconds = start.elapsed().as_secs_f64();
  Row::new("pubsub_throughput", "iceoryx2", p.size as u64, "spin").rate(p.count, seconds).subscribers(1)
}

fn throughput_follower(p: &Params) {
  pin(follower_cpu());
  let node = node();
  let stream = pubsub(&node, "stream", 256, false);
  let subscriber = stream.subscriber_builder().create().expect("subscriber");
  say("ready");
  let mut received = 0;
  while received < p.count {
    if subscriber.receive().expect("receive").is_some() {
      received += 1;
    } else {
      std::hint::spin_loop();
    }
  }
  say("done");
  wait_for_leader();
}

fn suite(quick: bool) -> Vec<(&'static str, Params)> {
  let scale = |full: u64, fast: u64| if quick { fast } else { full };
  let lat =
    |size: usize| Params { size, iters: scale(100_000, 2_000), warmup: scale(10_000, 200), ..Params::default() };
  vec![
    ("pubsub-latency", lat(64)),
    ("pubsub-latency", lat(4096)),
    ("pubsub-latency", Params { gap_us: 50, iters: scale(20_000, 500), warmup: 100, ..Params::default() }),
    ("call-latency", lat(64)),
    ("throughput", Params { size: 64, count: scale(5_000_000, 200_000), ..Params::default() }),
    ("throughput", Params { size: 4096, count: scale(500_000, 20_000), ..Params::default() }),
  ]
}

fn run(case: &str, p: &Params) -> Row {
  match case {
    "pubsub-latency" => pubsub_latency(p),
    "call-latency" => call_latency(p),
    "throughput" => throughput(p),
    other => panic!("unknown case {other}"),
  }
}

fn main() {
  let args: Vec<String> = std::env::args().skip(1).collect();
  match args.first().map(String::as_str) {
    Some("follow") => {
      let p = Params::parse(&args[2..]);
      match args[1].as_str() {
        "pubsub-latency" => pubsub_latency_follower(&p),
        "call-latency" => call_latency_follower(&p),
        "throughput" => throughput_follower(&p),
        other => panic!("unknown case {other}"),
      }
    }
    Some("suite") => {
      for (case, p) in suite(args.iter().any(|a| a == "--quick")) {
        run(case, &p).print();
      }
    }
    Some(case) => run(case, &Params::parse(&args[1..])).print(),
    None => {
      eprintln!("usage: bench-iceoryx2 suite [--quick] | bench-iceoryx2 <case> [--size N ...]");
      std::process::exit(2);
    }
  }
}
