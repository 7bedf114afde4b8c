//! The channel ring (spec/wire-format.md §7) over arbitrary segment bytes: the channel header, the
//! subscriber slots, `tail`, `min_valid`, `next_seq` and every frame header come from the fuzzer, as a
//! subscriber or publisher finds them in a channel segment a broken or hostile app wrote to.
//! `ChannelConfig::read`, a subscriber `join` (after which the fuzzer's tail, min_valid and sequence
//! words are stored, so there is something to read), `try_recv` until empty, closed or corrupt, and a
//! publisher taking over the channel and publishing under both policies. Never panics. With flag bit 4
//! the channel is healthy first (our publisher's records of the input's lengths, after the join) and
//! then a few of its words are overwritten with the input's values.
#![no_main]

use std::sync::atomic::Ordering;

use impulse_ring_core::broadcast::{ChannelConfig, PublisherCursor, RecvOutcome, SubscriberCursor};
use impulse_ring_core::layout::*;
use impulse_ring_fuzz::{fill, scratch_segment, take};
use libfuzzer_sys::fuzz_target;

const CAPACITY: u64 = IR_MIN_RING_CAPACITY;

fuzz_target!(|data: &[u8]| {
  let mut input = data;
  let flags = take(&mut input, 1);
  let max_subscribers = 1 + (flags >> 1 & 3) as u32;
  let index = take(&mut input, 1) as u32 % (max_subscribers + 1);
  let tail = take(&mut input, 8);
  let min_valid = take(&mut input, 8);
  let next_seq = take(&mut input, 8);
  let publish_len = take(&mut input, 2) as usize;
  let size = channel_segment_size(max_subscribers as usize, CAPACITY as usize);
  let seg = scratch_segment(size, IR_KIND_CHANNEL);
  fill(seg, 0, input);
  if flags & 1 == 0 {
    // Most inputs keep a valid channel header, so the readers get past `ChannelConfig::read`.
    seg.u64_at(IR_CH_CAPACITY).store(CAPACITY, Ordering::Relaxed);
    seg.u32_at(IR_CH_POLICY).store((flags >> 3 & 1) as u32, Ordering::Relaxed);
    seg.u32_at(IR_CH_MAX_SUBSCRIBERS).store(max_subscribers, Ordering::Relaxed);
  }
  let Ok(config) = ChannelConfig::read(seg) else { return };
  let structured = flags & 16 != 0;
  if structured {
    // Structured: a healthy channel (zeroed data, our publisher's records), corrupted below.
    let data = channel_data_offset(max_subscribers as usize);
    for at in [IR_CH_TAIL, IR_CH_MIN_VALID, IR_CH_NEXT_SEQ].into_iter().chain((data..size).step_by(8)) {
      seg.u64_at(at).store(0, Ordering::Relaxed);
    }
    seg.u32_at(IR_CH_CLOSED).store(0, Ordering::Relaxed);
    for i in 0..max_subscribers {
      seg.u32_at(IR_CH_SUBSCRIBERS + i as usize * IR_SUB_SIZE + IR_SUB_STATE).store(IR_SUB_FREE, Ordering::Relaxed);
    }
  }
  let mut publisher = PublisherCursor::new(seg, config);
  if let Ok(mut subscriber) = SubscriberCursor::join(seg, config, index) {
    if structured {
      // Our publisher writes records of the input's lengths (lapping the subscriber under `lossy`),
      // then the input overwrites a few words anywhere in the segment.
      let mut input = &input[..input.len().min(256)];
      for _ in 0..take(&mut input, 1) % 48 {
        let len = take(&mut input, 2) as usize % (config.max_payload() + 1);
        let _ = publisher.try_publish(seg, len, |dst| dst.fill(len as u8));
      }
      for _ in 0..take(&mut input, 1) % 4 {
        let at = (take(&mut input, 2) as usize % (size / 8)) * 8;
        seg.u64_at(at).store(take(&mut input, 8), Ordering::Relaxed);
      }
    } else {
      seg.u64_at(IR_CH_TAIL).store(tail, Ordering::Relaxed);
      seg.u64_at(IR_CH_MIN_VALID).store(min_valid, Ordering::Relaxed);
      seg.u64_at(IR_CH_NEXT_SEQ).store(next_seq, Ordering::Relaxed);
    }
    for _ in 0..64 {
      let _ = subscriber.ready(seg);
      match subscriber.try_recv(seg, |frame| frame.payload.len()) {
        Ok(RecvOutcome::Message(_)) | Ok(RecvOutcome::Lagged { .. }) => {
          let _ = subscriber.wants_publisher_wake();
        }
        Ok(RecvOutcome::Empty) | Ok(RecvOutcome::Closed) | Err(_) => break,
      }
    }
    subscriber.leave(seg);
  }
  for len in [publish_len % 64, publish_len, config.max_payload(), config.max_payload() + 1] {
    let _ = publisher.try_publish(seg, len, |dst| dst.fill(0x5a));
  }
  let _ = impulse_ring_core::broadcast::subscriber_count(seg, &config);
});
