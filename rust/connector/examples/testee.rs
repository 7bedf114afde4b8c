//! The Rust connector's testee: one role per run (`publisher`, `subscriber`, `provider`, `caller`),
//! parameters on the command line, results on stdout, so the end-to-end tests and ringctl's matrix
//! drive real processes. `spec/testee.md` is its contract (and what `--help` prints): every connector's
//! testee takes the same options, prints the same lines and exits with the same codes.
//!
//! `--wait-subscribers K` waits until the broker's listing shows K subscribers, but the listing counts
//! a subscriber from the broker's reservation, before its cursor joins the ring, so the first
//! messages may still pass it by. `--wait-go` waits for a line on stdin instead: a driver that has
//! seen every subscriber print `subscribed` sends it, and no message is published before they joined.

use std::collections::VecDeque;
use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::process::exit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use impulse_ring_connector::{
  CallError, CallFuture, Connection, Error, ErrorCode, PublishOptions, RecvError, SubscribeError,
};
use serde::{Deserialize, Serialize};

const MESSAGE: &str = r#"{"type":"record","name":"Message","namespace":"e2e","fields":[
  {"name":"seq","type":"long"},{"name":"body","type":"bytes"},{"name":"checksum","type":"long"}]}"#;
/// Same field names, another type for `body`: another fingerprint.
const OTHER_MESSAGE: &str = r#"{"type":"record","name":"Message","namespace":"e2e","fields":[
  {"name":"seq","type":"long"},{"name":"body","type":"string"},{"name":"checksum","type":"long"}]}"#;
const MALFORMED: &str = r#"{"type":"record","name":"Broken","fields":[{"name":"x","type":"#;
const ADD_REQUEST: &str = r#"{"type":"record","name":"AddRequest","namespace":"e2e",
  "fields":[{"name":"a","type":"long"},{"name":"b","type":"long"}]}"#;
const ADD_RESPONSE: &str =
  r#"{"type":"record","name":"AddResponse","namespace":"e2e","fields":[{"name":"sum","type":"long"}]}"#;

#[derive(Serialize, Deserialize)]
struct Message {
  seq: i64,
  #[serde(with = "apache_avro::serde::bytes")]
  body: Vec<u8>,
  checksum: i64,
}

#[derive(Serialize, Deserialize)]
struct AddRequest {
  a: i64,
  b: i64,
}

#[derive(Serialize, Deserialize)]
struct AddResponse {
  sum: i64,
}

/// How a run ends when it does not succeed.
enum Failure {
  Ring(Error),
  Mismatch(String),
  Usage(String),
}

/// Every operation's error converts into the crate-wide `Error` (and so into a `Failure`).
impl<E: Into<Error>> From<E> for Failure {
  fn from(e: E) -> Failure {
    Failure::Ring(e.into())
  }
}

type Outcome = Result<(), Failure>;

fn error_line(e: &(impl Clone + Into<Error>)) -> String {
  let e: Error = e.clone().into();
  format!("{}: {e}", e.code().name())
}

/// Command-line options: `--name value` pairs and bare `--flag`s, parsed by hand.
struct Args {
  pairs: Vec<(String, Option<String>)>,
}

impl Args {
  /// The options each role takes (spec/testee.md §5), and whether each takes a value.
  fn known(role: &str) -> &'static [(&'static str, bool)] {
    match role {
      "publisher" => &[
        ("--channel", true),
        ("--key", true),
        ("--count", true),
        ("--lossy", false),
        ("--capacity", true),
        ("--wait-subscribers", true),
        ("--wait-go", false),
        ("--raw", false),
        ("--hold-ms", true),
        ("--probe-too-large", false),
        ("--probe-invalid-schema", false),
      ],
      "subscriber" => &[
        ("--channel", true),
        ("--key", true),
        ("--count", true),
        ("--expect-closed", false),
        ("--stall-ms", true),
        ("--schema", true),
        ("--probe-invalid-schema", false),
      ],
      "provider" => &[("--function", true), ("--key", true), ("--fail-on", true), ("--sleep-ms", true)],
      "caller" => &[
        ("--function", true),
        ("--key", true),
        ("--count", true),
        ("--in-flight", true),
        ("--threads", true),
        ("--timeout-ms", true),
        ("--base", true),
        ("--keep-going", false),
      ],
      _ => &[],
    }
  }

  fn parse(role: &str, args: impl Iterator<Item = String>) -> Result<Args, Failure> {
    let known = Self::known(role);
    let mut pairs = Vec::new();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
      let Some(&(_, takes_value)) = known.iter().find(|(name, _)| *name == arg) else {
        return Err(Failure::Usage(if arg.starts_with("--") {
          format!("`{role}` takes no option `{arg}`")
        } else {
          format!("unexpected argument `{arg}`")
        }));
      };
      if takes_value {
        let value = args.next().ok_or_else(|| Failure::Usage(format!("`{arg}` needs a value")))?;
        pairs.push((arg, Some(value)));
      } else {
        pairs.push((arg, None));
      }
    }
    Ok(Args { pairs })
  }

  fn flag(&self, name: &str) -> bool {
    self.pairs.iter().any(|(n, _)| n == name)
  }

  fn text(&self, name: &str) -> Option<&str> {
    self.pairs.iter().rev().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
  }

  fn number(&self, name: &str, default: i64) -> Result<i64, Failure> {
    match self.text(name) {
      None => Ok(default),
      Some(v) => v.parse().map_err(|_| Failure::Usage(format!("`{name}` takes a number, not `{v}`"))),
    }
  }

  fn millis(&self, name: &str, default: i64) -> Result<Duration, Failure> {
    Ok(Duration::from_millis(self.number(name, default)?.max(0) as u64))
  }
}

/// Bytes that bodies are cut from; slices of one table keep the per-byte work in memcpy and memcmp,
/// which stay fast in a debug build.
fn pattern() -> &'static [u8] {
  static PATTERN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
  PATTERN.get_or_init(|| (0..4096u32).map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8).collect())
}

/// The body of message `seq`: 0 to 2000 bytes, cut from the pattern at an offset that depends on `seq`.
fn body(seq: i64) -> &'static [u8] {
  let len = (seq as u64).wrapping_mul(2_654_435_761) % 2001;
  let start = (seq as u64 % 1999) as usize;
  &pattern()[start..start + len as usize]
}

/// FNV-1a over `seq` and the body, 8 bytes at a time (the tail zero-padded).
fn checksum(seq: i64, body: &[u8]) -> i64 {
  let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
  let mut mix = |word: u64| hash = (hash ^ word).wrapping_mul(0x0100_0000_01b3);
  mix(seq as u64);
  let mut words = body.chunks_exact(8);
  for word in &mut words {
    mix(u64::from_le_bytes(word.try_into().expect("8 bytes")));
  }
  let mut tail = [0u8; 8];
  tail[..words.remainder().len()].copy_from_slice(words.remainder());
  mix(u64::from_le_bytes(tail));
  hash as i64
}

/// Avro `long`: zig-zag, then a little-endian base-128 varint.
fn put_long(out: &mut Vec<u8>, value: i64) {
  let mut n = ((value << 1) ^ (value >> 63)) as u64;
  while n >= 0x80 {
    out.push((n as u8) | 0x80);
    n >>= 7;
  }
  out.push(n as u8);
}

/// The Avro datum of message `seq`, built by hand for `publish_raw`.
fn raw_datum(seq: i64, out: &mut Vec<u8>) {
  let body = body(seq);
  out.clear();
  put_long(out, seq);
  put_long(out, body.len() as i64);
  out.extend_from_slice(body);
  put_long(out, checksum(seq, body));
}

fn probe_invalid_schema(conn: &Connection, channel: &str) {
  match conn.publish_channel(&format!("{channel}-malformed"), MALFORMED, None, PublishOptions::default()) {
    Err(e) => println!("probe {}", error_line(&e)),
    Ok(_) => println!("probe accepted a malformed schema"),
  }
}

/// Polls the broker's listing until `channel` has `wanted` subscribers.
fn wait_for_subscribers(conn: &Connection, channel: &str, wanted: i64) -> Outcome {
  let deadline = Instant::now() + Duration::from_secs(30);
  loop {
    let listing = conn.list()?;
    let subscribers = listing.channels.iter().find(|c| c.name == channel).map_or(0, |c| c.subscribers);
    if subscribers as i64 >= wanted {
      return Ok(());
    }
    if Instant::now() > deadline {
      return Err(Failure::Mismatch(format!("only {subscribers} of {wanted} subscribers came")));
    }
    std::thread::sleep(Duration::from_millis(5));
  }
}

fn publisher(args: &Args) -> Outcome {
  let channel = args.text("--channel").unwrap_or("data");
  let count = args.number("--count", 1000)?;
  let conn = Connection::connect("testee-publisher")?;
  if args.flag("--probe-invalid-schema") {
    probe_invalid_schema(&conn, channel);
  }
  let options = PublishOptions {
    capacity: args.number("--capacity", 0)? as u64,
    lossy: args.flag("--lossy"),
    ..PublishOptions::default()
  };
  let mut publisher = conn.publish_channel(channel, MESSAGE, args.text("--key"), options)?;
  println!("ready");
  wait_for_subscribers(&conn, channel, args.number("--wait-subscribers", 0)?)?;
  if args.flag("--wait-go") {
    std::io::stdin().read_line(&mut String::new()).map_err(|e| Failure::Usage(format!("cannot read stdin: {e}")))?;
  }
  if args.flag("--probe-too-large") {
    match publisher.publish_raw(&vec![0; publisher.max_datum() + 1]) {
      Err(e) => println!("probe {}", error_line(&e)),
      Ok(()) => println!("probe published an oversized payload"),
    }
  }
  let raw = args.flag("--raw");
  let mut datum = Vec::new();
  for seq in 0..count {
    if raw {
      raw_datum(seq, &mut datum);
      publisher.publish_raw(&datum)?;
    } else {
      let body = body(seq);
      let checksum = checksum(seq, body);
      publisher.publish(&Message { seq, body: body.to_vec(), checksum })?;
    }
  }
  println!("published {count}");
  // Holding keeps the channel open even when the broker goes: the error is printed at once, but the
  // publisher (which would close the channel when dropped) lives on until the hold ends or a kill.
  let until = Instant::now() + args.millis("--hold-ms", 0)?;
  let mut broker_gone = false;
  while Instant::now() < until {
    if !broker_gone && conn.broker_gone() {
      broker_gone = true;
      println!("error {}", error_line(&Error::BrokerGone { ns: conn.namespace().to_string() }));
    }
    std::thread::sleep(Duration::from_millis(10));
  }
  if broker_gone {
    exit(10 + ErrorCode::BrokerGone.as_i32());
  }
  Ok(())
}

fn subscriber(args: &Args) -> Outcome {
  let channel = args.text("--channel").unwrap_or("data");
  let count = args.number("--count", 1000)?;
  let expect_closed = args.flag("--expect-closed");
  let stall = args.millis("--stall-ms", 0)?;
  let schema = match args.text("--schema") {
    None => MESSAGE,
    Some("other") => OTHER_MESSAGE,
    Some(other) => return Err(Failure::Usage(format!("unknown schema `{other}`; use `other`"))),
  };
  let conn = Connection::connect("testee-subscriber")?;
  if args.flag("--probe-invalid-schema") {
    match conn.subscribe(channel, args.text("--key"), MALFORMED) {
      Err(e) => println!("probe {}", error_line(&e)),
      Ok(_) => println!("probe subscribed with a malformed schema"),
    }
  }
  // The channel may not be published yet: retry for a while.
  let deadline = Instant::now() + Duration::from_secs(30);
  let mut sub = loop {
    match conn.subscribe(channel, args.text("--key"), schema) {
      Err(SubscribeError::UnknownChannel { .. }) if Instant::now() < deadline => {
        std::thread::sleep(Duration::from_millis(5))
      }
      other => break other?,
    }
  };
  println!("subscribed");
  std::thread::sleep(stall);
  let (mut next, mut received, mut missed) = (0i64, 0i64, 0u64);
  let mut idle_since = Instant::now();
  let ended = loop {
    if !expect_closed && received + missed as i64 >= count {
      break Ok(());
    }
    match sub.recv::<Message>(Duration::from_millis(100)) {
      Ok(Some(m)) => {
        idle_since = Instant::now();
        if m.seq != next {
          break Err(Failure::Mismatch(format!("expected message {next}, got {}", m.seq)));
        }
        let intact = m.body == body(m.seq) && m.checksum == checksum(m.seq, &m.body);
        if !intact {
          break Err(Failure::Mismatch(format!("message {next} is damaged")));
        }
        next += 1;
        received += 1;
      }
      Ok(None) if idle_since.elapsed() > Duration::from_secs(60) => {
        break Err(Failure::Mismatch(format!("nothing received for 60 s after {received} messages")));
      }
      Ok(None) => {}
      Err(RecvError::Lagged { missed: m }) => {
        missed += m;
        next += m as i64;
      }
      Err(RecvError::Closed { .. }) if expect_closed => {
        println!("closed");
        break Ok(());
      }
      Err(e) => break Err(e.into()),
    }
  };
  println!("received {received}");
  if args.flag("--stall-ms") || missed > 0 {
    println!("missed {missed} received {received}");
  }
  ended
}

fn provider(args: &Args) -> Outcome {
  let fail_on = args.text("--fail-on").map(|_| args.number("--fail-on", 0)).transpose()?;
  let sleep = args.millis("--sleep-ms", 0)?;
  let conn = Connection::connect("testee-provider")?;
  let _function = conn.expose_function::<AddRequest, AddResponse, _>(
    args.text("--function").unwrap_or("add"),
    ADD_REQUEST,
    ADD_RESPONSE,
    args.text("--key"),
    move |r| {
      std::thread::sleep(sleep);
      if Some(r.a) == fail_on {
        return Err(format!("refusing a = {}", r.a));
      }
      Ok(AddResponse { sum: r.a.wrapping_add(r.b) })
    },
  )?;
  println!("ready");
  let stdin_closed = AtomicBool::new(false);
  std::thread::scope(|s| {
    s.spawn(|| {
      let _ = std::io::stdin().read_to_end(&mut Vec::new());
      stdin_closed.store(true, Ordering::Release);
    });
    while !stdin_closed.load(Ordering::Acquire) {
      if conn.broker_gone() {
        report(Err(Failure::Ring(Error::BrokerGone { ns: conn.namespace().to_string() })));
      }
      std::thread::sleep(Duration::from_millis(10));
    }
  });
  Ok(())
}

/// Wakes the caller's executor thread.
struct Unpark {
  thread: Thread,
  woken: AtomicBool,
}

impl Wake for Unpark {
  fn wake(self: Arc<Self>) {
    self.woken.store(true, Ordering::Release);
    self.thread.unpark();
  }
}

struct CallerPlan<'a> {
  function: &'a str,
  key: Option<&'a str>,
  base: i64,
  timeout: Duration,
  keep_going: bool,
}

impl CallerPlan<'_> {
  fn request(&self, i: i64) -> AddRequest {
    AddRequest { a: self.base + i, b: i * 3 }
  }

  fn check(&self, i: i64, result: Result<AddResponse, CallError>, failed: &mut i64) -> Outcome {
    match result {
      Ok(r) if r.sum == self.base + i + i * 3 => Ok(()),
      Ok(r) => Err(Failure::Mismatch(format!("call {i} returned {}", r.sum))),
      Err(e) if self.keep_going => {
        println!("error {}", error_line(&e));
        *failed += 1;
        Ok(())
      }
      Err(e) => Err(e.into()),
    }
  }
}

/// `count` calls with up to `in_flight` pending at once, driven by a tiny executor on this thread.
fn call_async(conn: &Connection, plan: &CallerPlan, count: i64, in_flight: usize) -> Result<i64, Failure> {
  let unpark = Arc::new(Unpark { thread: std::thread::current(), woken: AtomicBool::new(false) });
  let waker = Waker::from(unpark.clone());
  let mut cx = Context::from_waker(&waker);
  let mut pending: VecDeque<(i64, Instant, CallFuture<AddResponse>)> = VecDeque::new();
  let (mut started, mut failed) = (0i64, 0i64);
  while started < count || !pending.is_empty() {
    while started < count && pending.len() < in_flight {
      let future = conn.call(plan.function, plan.key, &plan.request(started), ADD_REQUEST, ADD_RESPONSE);
      pending.push_back((started, Instant::now(), future));
      if started == 0 {
        println!("calling");
      }
      started += 1;
    }
    let mut progressed = false;
    for _ in 0..pending.len() {
      let (i, at, mut future) = pending.pop_front().expect("counted");
      match Pin::new(&mut future).poll(&mut cx) {
        Poll::Ready(result) => {
          plan.check(i, result, &mut failed)?;
          progressed = true;
        }
        Poll::Pending if at.elapsed() > plan.timeout => {
          let timeout = Error::Timeout {
            what: format!("call {i} to `{}` (the caller's executor)", plan.function),
            after: plan.timeout,
          };
          plan.check(i, Err(timeout.into()), &mut failed)?;
        }
        Poll::Pending => pending.push_back((i, at, future)),
      }
    }
    if !progressed && !unpark.woken.swap(false, Ordering::AcqRel) {
      std::thread::park_timeout(Duration::from_millis(10));
    }
  }
  Ok(failed)
}

/// `count` calls spread over `threads` threads, each waiting for its answer with `call_blocking`.
fn call_blocking(conn: &Connection, plan: &CallerPlan, count: i64, threads: i64) -> Result<i64, Failure> {
  let results: Vec<Result<i64, Failure>> = std::thread::scope(|s| {
    let workers: Vec<_> = (0..threads)
      .map(|t| {
        s.spawn(move || {
          let mut failed = 0;
          for i in (t..count).step_by(threads as usize) {
            let result =
              conn.call_blocking(plan.function, plan.key, &plan.request(i), ADD_REQUEST, ADD_RESPONSE, plan.timeout);
            plan.check(i, result, &mut failed)?;
          }
          Ok(failed)
        })
      })
      .collect();
    workers.into_iter().map(|w| w.join().expect("caller thread panicked")).collect()
  });
  results.into_iter().sum()
}

fn caller(args: &Args) -> Outcome {
  let count = args.number("--count", 1000)?;
  let plan = CallerPlan {
    function: args.text("--function").unwrap_or("add"),
    key: args.text("--key"),
    base: args.number("--base", 0)?,
    timeout: args.millis("--timeout-ms", 30_000)?,
    keep_going: args.flag("--keep-going"),
  };
  let conn = Connection::connect("testee-caller")?;
  let failed = match args.number("--threads", 0)? {
    0 => call_async(&conn, &plan, count, args.number("--in-flight", 1)?.max(1) as usize)?,
    threads => call_blocking(&conn, &plan, count, threads)?,
  };
  if plan.keep_going {
    println!("ok {} failed {failed}", count - failed);
  } else {
    println!("ok {count}");
  }
  Ok(())
}

/// Prints how the run ended and exits with its code.
fn report(outcome: Outcome) -> ! {
  match outcome {
    Ok(()) => exit(0),
    Err(Failure::Ring(e)) => {
      println!("error {}", error_line(&e));
      exit(10 + e.code().as_i32())
    }
    Err(Failure::Mismatch(m)) => {
      println!("mismatch {m}");
      exit(2)
    }
    Err(Failure::Usage(m)) => {
      eprintln!("testee: {m}\nusage: testee publisher|subscriber|provider|caller [--option value]...");
      exit(64)
    }
  }
}

/// The contract this program implements, printed by `--help`.
const CONTRACT: &str = include_str!("../../../spec/testee.md");

fn main() {
  let argv: Vec<String> = std::env::args().skip(1).collect();
  if argv.iter().any(|a| a == "--help") {
    print!("{CONTRACT}");
    exit(0);
  }
  let mut argv = argv.into_iter();
  let role = argv.next().unwrap_or_default();
  let outcome = match role.as_str() {
    "publisher" | "subscriber" | "provider" | "caller" => Args::parse(&role, argv),
    other => Err(Failure::Usage(format!("unknown role `{other}`"))),
  }
  .and_then(|args| match role.as_str() {
    "publisher" => publisher(&args),
    "subscriber" => subscriber(&args),
    "provider" => provider(&args),
    _ => caller(&args),
  });
  report(outcome)
}
