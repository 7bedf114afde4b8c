//! Hammers the SPSC ring and the channel ring from real threads and real processes: every message
//! arrives exactly once, in order, byte-identical, across many wraps; a lossy subscriber learns
//! exactly how many it missed; garbage in the shared words gives typed errors, never a panic.

use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use impulse_ring_core::broadcast;
use impulse_ring_core::broadcast::{ChannelConfig, PublisherCursor, RecvOutcome, SubscriberCursor};
use impulse_ring_core::doorbell::{Doorbell, WaitStrategy};
use impulse_ring_core::frame::RingError;
use impulse_ring_core::layout::*;
use impulse_ring_core::ring::Ring;
use impulse_ring_core::segment::Segment;

/// Deterministic payload for message `i`: its length varies from 0 to 300 bytes and every byte
/// depends on `i`, so a lost, repeated, reordered or torn message is caught.
fn payload(i: u64, buf: &mut Vec<u8>) {
  let len = ((i * 7919) % 301) as usize;
  buf.clear();
  buf.extend((0..len).map(|k| (i as usize).wrapping_mul(31).wrapping_add(k) as u8));
}

fn check(i: u64, got: &[u8], scratch: &mut Vec<u8>) {
  payload(i, scratch);
  assert_eq!(got, &scratch[..], "message {i} differs");
}

fn seg_name(tag: &str) -> String {
  impulse_ring_test_support::ns::segment_name(&format!("test-rings-{tag}"))
}

const SPSC_BELL: usize = 128;
const SPSC_RING: usize = 256;
const CAPACITY: u64 = 64 * 1024;

fn spsc_segment(name: &str) -> Segment {
  let seg = Segment::create(name, SPSC_RING + IR_RING_HEADER_SIZE + CAPACITY as usize, IR_KIND_LINK, 0o600).unwrap();
  Ring::init(&seg, SPSC_RING, CAPACITY);
  seg.mark_ready();
  seg
}

fn spsc_produce(seg: &Segment, count: u64) {
  let ring = Ring::open(seg, SPSC_RING, CAPACITY).unwrap();
  let mut buf = Vec::new();
  for i in 0..count {
    payload(i, &mut buf);
    loop {
      match ring.try_write_bytes(seg, IR_FRAME_KIND_CALL_REQUEST, i, &buf) {
        Ok(()) => break,
        Err(RingError::Full) => std::thread::yield_now(),
        Err(e) => panic!("{e}"),
      }
    }
    if i % 64 == 0 {
      Doorbell::at(seg, SPSC_BELL).ring();
    }
  }
  Doorbell::at(seg, SPSC_BELL).ring();
}

fn spsc_consume(seg: &Segment, count: u64) {
  let ring = Ring::open(seg, SPSC_RING, CAPACITY).unwrap();
  let bell = Doorbell::at(seg, SPSC_BELL);
  let mut scratch = Vec::new();
  let deadline = Instant::now() + Duration::from_secs(120);
  for i in 0..count {
    let (seq, ok) = bell
      .wait_until(WaitStrategy::default(), Some(deadline), || {
        ring
          .read(seg, &[IR_FRAME_KIND_CALL_REQUEST], |f| {
            payload(f.seq, &mut scratch);
            (f.seq, f.payload == &scratch[..])
          })
          .unwrap()
      })
      .expect("timed out waiting for a message");
    assert_eq!(seq, i, "out of order");
    assert!(ok, "message {i} corrupted");
  }
}

#[test]
fn spsc_ring_delivers_a_million_messages_between_threads() {
  let name = seg_name("spsc-thr");
  let seg = Arc::new(spsc_segment(&name));
  seg.unlink().unwrap();
  let count = 1_000_000;
  let producer = {
    let seg = seg.clone();
    std::thread::spawn(move || spsc_produce(&seg, count))
  };
  spsc_consume(&seg, count);
  producer.join().unwrap();
}

/// Runs this test binary again as a child process that plays `role` on the segment `name`.
fn child(role: &str, name: &str, arg: u64) -> std::process::Child {
  Command::new(std::env::current_exe().unwrap())
    .args(["--exact", "child_process_entry", "--nocapture", "--test-threads=1"])
    .env("RING_TEST_ROLE", role)
    .env("RING_TEST_SEG", name)
    .env("RING_TEST_ARG", arg.to_string())
    .spawn()
    .unwrap()
}

/// The word of a subscriber slot the test children use to say "joined" (a reserved word of the slot).
fn joined_word(seg: &Segment, index: u32) -> &std::sync::atomic::AtomicU64 {
  seg.u64_at(IR_CH_SUBSCRIBERS + index as usize * IR_SUB_SIZE + 16)
}

/// Entry point of the child processes; does nothing when run as an ordinary test.
#[test]
fn child_process_entry() {
  let Ok(role) = std::env::var("RING_TEST_ROLE") else {
    return;
  };
  let name = std::env::var("RING_TEST_SEG").unwrap();
  let arg: u64 = std::env::var("RING_TEST_ARG").unwrap().parse().unwrap();
  match role.as_str() {
    "spsc-producer" => spsc_produce(&Segment::open(&name, IR_KIND_LINK).unwrap(), arg),
    "channel-subscriber" => {
      let seg = Segment::open(&name, IR_KIND_CHANNEL).unwrap();
      let config = ChannelConfig::read(&seg).unwrap();
      let mut sub = SubscriberCursor::join(&seg, config, arg as u32).unwrap();
      joined_word(&seg, arg as u32).store(1, Ordering::Release);
      channel_receive_all(&seg, &mut sub, CHANNEL_MESSAGES);
    }
    other => panic!("unknown role {other}"),
  }
}

#[test]
fn spsc_ring_delivers_a_million_messages_between_processes() {
  let name = seg_name("spsc-proc");
  let seg = spsc_segment(&name);
  let mut producer = child("spsc-producer", &name, 1_000_000);
  spsc_consume(&seg, 1_000_000);
  assert!(producer.wait().unwrap().success());
  seg.unlink().unwrap();
}

const CHANNEL_MESSAGES: u64 = 1_000_000;

fn channel_segment(name: &str, capacity: u64, policy: u32) -> Segment {
  let config = ChannelConfig { capacity, channel_id: 1, fingerprint: 7, policy, max_subscribers: 8 };
  let seg = Segment::create(name, config.segment_size(), IR_KIND_CHANNEL, 0o600).unwrap();
  config.init(&seg);
  seg.mark_ready();
  seg
}

fn channel_publish_all(seg: &Segment, count: u64) {
  let mut publisher = PublisherCursor::new(seg, ChannelConfig::read(seg).unwrap());
  let space = Doorbell::at(seg, IR_CH_SPACE_DOORBELL);
  let data = Doorbell::at(seg, IR_CH_DATA_DOORBELL);
  let mut buf = Vec::new();
  for i in 0..count {
    payload(i, &mut buf);
    let seq = space
      .wait_until(WaitStrategy::default(), Some(Instant::now() + Duration::from_secs(60)), || {
        match publisher.try_publish(seg, buf.len(), |dst| dst.copy_from_slice(&buf)) {
          Ok(seq) => Some(seq),
          Err(RingError::Full) => None,
          Err(e) => panic!("{e}"),
        }
      })
      .expect("publisher blocked for a minute");
    assert_eq!(seq, i);
    data.ring();
  }
  broadcast::close(seg);
  data.ring();
}

fn channel_receive_all(seg: &Segment, sub: &mut SubscriberCursor, count: u64) {
  let data = Doorbell::at(seg, IR_CH_DATA_DOORBELL);
  let space = Doorbell::at(seg, IR_CH_SPACE_DOORBELL);
  let mut scratch = Vec::new();
  let deadline = Instant::now() + Duration::from_secs(120);
  for i in 0..count {
    let seq = data
      .wait_until(WaitStrategy::default(), Some(deadline), || {
        match sub.try_recv(seg, |f| {
          check(f.seq, f.payload, &mut scratch);
          f.seq
        }) {
          Ok(RecvOutcome::Message(seq)) => Some(seq),
          Ok(RecvOutcome::Empty) => None,
          other => panic!("unexpected {other:?}"),
        }
      })
      .expect("timed out");
    space.ring();
    assert_eq!(seq, i);
  }
  let end = data.wait_until(WaitStrategy::Blocking, Some(deadline), || match sub.try_recv(seg, |_| ()) {
    Ok(RecvOutcome::Closed) => Some(()),
    Ok(RecvOutcome::Empty) => None,
    other => panic!("expected the end of the channel, got {other:?}"),
  });
  assert!(end.is_some());
  sub.leave(seg);
}

#[test]
fn channel_fans_out_to_four_subscriber_processes_without_loss() {
  let name = seg_name("fanout");
  let seg = channel_segment(&name, 64 * 1024, IR_POLICY_BLOCK);
  let config = ChannelConfig::read(&seg).unwrap();
  let mut children = Vec::new();
  for _ in 0..4 {
    let index = broadcast::reserve_subscriber(&seg, &config, 9).unwrap();
    children.push(child("channel-subscriber", &name, index as u64));
  }
  let start = Instant::now();
  while (0..4).any(|i| joined_word(&seg, i).load(Ordering::Acquire) == 0) {
    assert!(start.elapsed() < Duration::from_secs(30), "subscribers did not join");
    std::thread::sleep(Duration::from_millis(5));
  }
  channel_publish_all(&seg, CHANNEL_MESSAGES);
  for mut c in children {
    assert!(c.wait().unwrap().success());
  }
  seg.unlink().unwrap();
}

#[test]
fn channel_delivers_between_threads_with_two_subscribers() {
  let name = seg_name("threads");
  let seg = Arc::new(channel_segment(&name, 8 * 1024, IR_POLICY_BLOCK));
  seg.unlink().unwrap();
  let config = ChannelConfig::read(&seg).unwrap();
  let subs: Vec<_> = (0..2)
    .map(|_| {
      let index = broadcast::reserve_subscriber(&seg, &config, 1).unwrap();
      let mut sub = SubscriberCursor::join(&seg, config, index).unwrap();
      let seg = seg.clone();
      std::thread::spawn(move || channel_receive_all(&seg, &mut sub, 200_000))
    })
    .collect();
  channel_publish_all(&seg, 200_000);
  for s in subs {
    s.join().unwrap();
  }
}

#[test]
fn lossy_subscriber_is_told_exactly_how_many_it_missed() {
  let name = seg_name("lossy");
  let seg = channel_segment(&name, 4096, IR_POLICY_LOSSY);
  seg.unlink().unwrap();
  let config = ChannelConfig::read(&seg).unwrap();
  let index = broadcast::reserve_subscriber(&seg, &config, 1).unwrap();
  let mut sub = SubscriberCursor::join(&seg, config, index).unwrap();
  let mut publisher = PublisherCursor::new(&seg, config);
  // 1000 messages of 64 bytes (80-byte records) in a 4 KiB ring: the publisher never blocks.
  for i in 0..1000u64 {
    publisher.try_publish(&seg, 64, |dst| dst.fill(i as u8)).unwrap();
  }
  let mut received = Vec::new();
  let mut missed_total = 0;
  loop {
    match sub.try_recv(&seg, |f| (f.seq, f.payload.to_vec())).unwrap() {
      RecvOutcome::Message((seq, bytes)) => {
        assert!(bytes.iter().all(|&b| b == seq as u8), "message {seq} torn");
        received.push(seq);
      }
      RecvOutcome::Empty => break,
      RecvOutcome::Lagged { missed } => missed_total += missed,
      RecvOutcome::Closed => unreachable!(),
    }
  }
  assert!(!received.is_empty() && received.len() < 1000);
  assert!(received.windows(2).all(|w| w[1] == w[0] + 1), "the tail of the stream arrives in order");
  assert_eq!(*received.last().unwrap(), 999);
  assert_eq!(missed_total + received.len() as u64, 1000, "every message is either received or counted as missed");
}

/// The length of lossy stress message `seq`: 8 to 96 bytes, so records wrap at many offsets.
fn lossy_len(seq: u64) -> usize {
  8 + (seq % 9) as usize * 11
}

/// Drains a lossy channel until it closes; (received, missed). Every message must be intact and in
/// order, and no attempt may report `Corrupt`.
fn lossy_drain(seg: &Segment, sub: &mut SubscriberCursor) -> (u64, u64) {
  let (mut received, mut missed, mut last) = (0u64, 0u64, None);
  loop {
    // A cheap check (length, first and last byte) keeps the attempt short, so that more of the
    // preemptions fall between its loads.
    let outcome = sub.try_recv(seg, |f| {
      let ends = [f.payload[0], f.payload[f.payload.len() - 1]];
      (f.seq, f.payload.len() == lossy_len(f.seq) && ends == [f.seq as u8; 2])
    });
    match outcome.unwrap_or_else(|e| panic!("subscriber {}: {e}", sub.index())) {
      RecvOutcome::Message((seq, intact)) => {
        assert!(intact, "message {seq} is torn");
        assert!(last.is_none_or(|l| seq > l), "message {seq} after {last:?}");
        last = Some(seq);
        received += 1;
      }
      RecvOutcome::Lagged { missed: n } => missed += n,
      // The publisher shares two cores with every subscriber: give it the core back.
      RecvOutcome::Empty => std::thread::yield_now(),
      RecvOutcome::Closed => return (received, missed),
    }
  }
}

/// §7.5 *skip to oldest*: the publisher advances `min_valid` before it stores its next tail, so a
/// subscriber that loaded the tail and was then preempted while a ring's worth (here 4 KiB, some 60
/// messages) was published finds `min_valid` beyond the tail it loaded. That is a lapped subscriber,
/// not a corrupt ring. More subscriber threads than cores make such preemptions common: the
/// scheduler stops them at arbitrary points, many of them between the two loads. With the skip
/// comparing `min_valid` against the tail of the attempt, as §7.5 once said, 4 runs in 5 failed here.
#[test]
fn lossy_subscribers_lapped_between_their_loads_are_not_told_the_ring_is_corrupt() {
  const MESSAGES: u64 = 5_000_000;
  let name = seg_name("lossy-lapped");
  let seg = Arc::new(channel_segment(&name, 4096, IR_POLICY_LOSSY));
  seg.unlink().unwrap();
  let config = ChannelConfig::read(&seg).unwrap();
  let threads = (2 * std::thread::available_parallelism().map_or(2, |n| n.get())).clamp(4, 8);
  let subscribers: Vec<_> = (0..threads)
    .map(|_| {
      let index = broadcast::reserve_subscriber(&seg, &config, 1).unwrap();
      let mut sub = SubscriberCursor::join(&seg, config, index).unwrap();
      let seg = seg.clone();
      std::thread::spawn(move || lossy_drain(&seg, &mut sub))
    })
    .collect();
  let mut publisher = PublisherCursor::new(&seg, config);
  for seq in 0..MESSAGES {
    assert_eq!(publisher.try_publish(&seg, lossy_len(seq), |dst| dst.fill(seq as u8)), Ok(seq));
  }
  broadcast::close(&seg);
  let mut lapped = 0;
  for subscriber in subscribers {
    let (received, missed) = subscriber.join().expect("a subscriber failed");
    assert_eq!(received + missed, MESSAGES, "every message is either received or counted as missed");
    lapped += (missed > 0) as u32;
  }
  assert!(lapped > 0, "no subscriber was ever lapped: the test did not exercise skip to oldest");
}

#[test]
fn block_publisher_reports_full_instead_of_overwriting() {
  let name = seg_name("full");
  let seg = channel_segment(&name, 4096, IR_POLICY_BLOCK);
  seg.unlink().unwrap();
  let config = ChannelConfig::read(&seg).unwrap();
  let index = broadcast::reserve_subscriber(&seg, &config, 1).unwrap();
  let mut sub = SubscriberCursor::join(&seg, config, index).unwrap();
  let mut publisher = PublisherCursor::new(&seg, config);
  let mut sent = 0u64;
  while publisher.try_publish(&seg, 100, |d| d.fill(1)).is_ok() {
    sent += 1;
  }
  assert!(sent > 0 && sent <= 4096 / 112 + 1);
  assert_eq!(publisher.try_publish(&seg, 100, |d| d.fill(1)), Err(RingError::Full));
  assert_eq!(sub.try_recv(&seg, |f| f.seq).unwrap(), RecvOutcome::Message(0));
  assert!(publisher.try_publish(&seg, 100, |d| d.fill(1)).is_ok());
  assert!(matches!(publisher.try_publish(&seg, 4096, |_| ()), Err(RingError::TooLarge { size: 4096, .. })));
}

/// A small deterministic generator for garbage.
struct XorShift(u64);
impl XorShift {
  fn next(&mut self) -> u64 {
    self.0 ^= self.0 << 13;
    self.0 ^= self.0 >> 7;
    self.0 ^= self.0 << 17;
    self.0
  }
}

#[test]
fn garbage_in_spsc_ring_words_gives_errors_not_panics() {
  let name = seg_name("garbage-spsc");
  let seg = spsc_segment(&name);
  seg.unlink().unwrap();
  let ring = Ring::open(&seg, SPSC_RING, CAPACITY).unwrap();
  let mut rng = XorShift(0x9e3779b97f4a7c15);
  let data = SPSC_RING + IR_RING_HEADER_SIZE;
  let mut errors = 0;
  for round in 0..20_000 {
    ring.reset(&seg);
    for i in 0..(round % 7) {
      let _ = ring.try_write_bytes(&seg, IR_FRAME_KIND_CALL_REQUEST, i, &[0xAB; 40]);
    }
    // Overwrite a random shared word: tail, head or a word of the data area.
    let target = match rng.next() % 3 {
      0 => SPSC_RING + IR_RING_TAIL,
      1 => SPSC_RING + IR_RING_HEAD,
      _ => data + (rng.next() % (CAPACITY / 8)) as usize * 8,
    };
    seg.u64_at(target).store(rng.next() >> (rng.next() % 64), Ordering::Relaxed);
    for _ in 0..8 {
      match ring.read(&seg, &[IR_FRAME_KIND_CALL_REQUEST], |f| f.payload.len()) {
        Ok(Some(len)) => assert!(len <= ring.max_payload()),
        Ok(None) => break,
        Err(RingError::Corrupt { .. }) => {
          errors += 1;
          break;
        }
        Err(e) => panic!("unexpected {e}"),
      }
    }
    let _ = ring.try_write_bytes(&seg, IR_FRAME_KIND_CALL_REQUEST, 0, &[1; 8]);
  }
  assert!(errors > 1000, "garbage was noticed only {errors} times");
  assert!(matches!(Ring::open(&seg, SPSC_RING, 12345), Err(RingError::Corrupt { .. })));
}

#[test]
fn garbage_in_channel_words_gives_errors_not_panics() {
  let name = seg_name("garbage-ch");
  for policy in [IR_POLICY_BLOCK, IR_POLICY_LOSSY] {
    let seg = channel_segment(&name, 4096, policy);
    seg.unlink().unwrap();
    let config = ChannelConfig::read(&seg).unwrap();
    let index = broadcast::reserve_subscriber(&seg, &config, 1).unwrap();
    let mut rng = XorShift(42 + policy as u64);
    let data = channel_data_offset(8);
    let mut errors = 0;
    for _ in 0..5_000 {
      let mut publisher = PublisherCursor::new(&seg, config);
      let mut sub = SubscriberCursor::join(&seg, config, index).unwrap();
      for i in 0..(rng.next() % 20) {
        let _ = publisher.try_publish(&seg, (i * 13 % 200) as usize, |d| d.fill(3));
      }
      let target = match rng.next() % 4 {
        0 => IR_CH_TAIL,
        1 => IR_CH_MIN_VALID,
        2 => IR_CH_SUBSCRIBERS + IR_SUB_POS,
        _ => data + (rng.next() % (4096 / 8)) as usize * 8,
      };
      seg.u64_at(target).store(rng.next() >> (rng.next() % 64), Ordering::Relaxed);
      for _ in 0..30 {
        match sub.try_recv(&seg, |f| f.payload.len()) {
          Ok(RecvOutcome::Message(len)) => assert!(len <= config.max_payload()),
          Ok(RecvOutcome::Empty | RecvOutcome::Closed) => break,
          Ok(RecvOutcome::Lagged { .. }) => {}
          Err(RingError::Corrupt { .. }) => {
            errors += 1;
            break;
          }
          Err(e) => panic!("unexpected {e}"),
        }
      }
      let _ = publisher.try_publish(&seg, 16, |d| d.fill(1));
      // Start the next round from a clean ring.
      for word in [IR_CH_TAIL, IR_CH_MIN_VALID, IR_CH_NEXT_SEQ] {
        seg.u64_at(word).store(0, Ordering::Relaxed);
      }
    }
    assert!(errors > 100, "garbage was noticed only {errors} times");
  }
  // Found by the `broadcast` fuzz target (rust/fuzz): a publisher taking over a channel whose
  // sequence word is u64::MAX, or whose tail is near 2^64, overflowed (a panic in debug builds).
  for (tail, next_seq) in [(0, u64::MAX), (u64::MAX - 15, 0), ((1 << 62) + 4096, u64::MAX)] {
    let seg = channel_segment(&name, 4096, IR_POLICY_LOSSY);
    seg.unlink().unwrap();
    let config = ChannelConfig::read(&seg).unwrap();
    seg.u64_at(IR_CH_TAIL).store(tail, Ordering::Relaxed);
    seg.u64_at(IR_CH_MIN_VALID).store(tail, Ordering::Relaxed);
    seg.u64_at(IR_CH_NEXT_SEQ).store(next_seq, Ordering::Relaxed);
    let mut publisher = PublisherCursor::new(&seg, config);
    assert_eq!(publisher.try_publish(&seg, 8, |d| d.fill(1)), Ok(next_seq));
    assert_eq!(publisher.try_publish(&seg, 8, |d| d.fill(1)), Ok(next_seq.wrapping_add(1)));
  }
  // A header that lies about its layout is refused when opened.
  let seg = channel_segment(&name, 4096, IR_POLICY_BLOCK);
  seg.unlink().unwrap();
  seg.u64_at(IR_CH_CAPACITY).store(1 << 20, Ordering::Relaxed);
  assert!(matches!(ChannelConfig::read(&seg), Err(RingError::Corrupt { .. })));
  seg.u64_at(IR_CH_CAPACITY).store(4096, Ordering::Relaxed);
  seg.u32_at(IR_CH_POLICY).store(9, Ordering::Relaxed);
  assert!(matches!(ChannelConfig::read(&seg), Err(RingError::Corrupt { .. })));
}

#[test]
fn a_scrubbed_read_leaves_no_byte_of_its_records_behind_across_wraps() {
  let seg = spsc_segment(&seg_name("scrub"));
  let ring = Ring::open(&seg, SPSC_RING, CAPACITY).unwrap();
  let data = SPSC_RING + IR_RING_HEADER_SIZE;
  let ring_bytes = |seg: &Segment| -> Vec<u8> {
    // SAFETY: inside the segment, read while no producer or consumer runs.
    unsafe { std::slice::from_raw_parts(seg.bytes_ptr(data, CAPACITY as usize), CAPACITY as usize).to_vec() }
  };
  // Records of 1000 payload bytes do not divide the ring: some are preceded by padding at the wrap.
  let secret = vec![0xA5u8; 1000];
  for round in 0..200u64 {
    ring.try_write_bytes(&seg, IR_FRAME_KIND_CONTROL, round, &secret).unwrap();
    ring.try_write_bytes(&seg, IR_FRAME_KIND_CONTROL, round, &secret).unwrap();
    for _ in 0..2 {
      let got = ring.read_scrubbed(&seg, &[IR_FRAME_KIND_CONTROL], |f| f.payload == &secret[..]).unwrap();
      assert_eq!(got, Some(true), "round {round}");
    }
    assert!(ring_bytes(&seg).iter().all(|&b| b == 0), "round {round} left bytes in the ring");
  }
  // A plain read leaves them; a reset zeroes them.
  ring.try_write_bytes(&seg, IR_FRAME_KIND_CONTROL, 0, &secret).unwrap();
  assert!(ring.read(&seg, &[IR_FRAME_KIND_CONTROL], |_| ()).unwrap().is_some());
  assert!(ring_bytes(&seg).contains(&0xA5));
  ring.reset(&seg);
  assert!(ring_bytes(&seg).iter().all(|&b| b == 0));
  seg.unlink().unwrap();
}
