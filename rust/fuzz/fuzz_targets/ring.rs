//! The SPSC ring reader and writer (spec/wire-format.md §6, §5 frames) over arbitrary ring bytes: the
//! indices, the capacity word and every frame header come from the fuzzer, as a broker finds them in
//! an app's request ring or an app in a link. `Ring::open`, then `read` until the ring is empty or
//! reported corrupt, then `has_space` and `try_write_bytes`. Never panics or reads outside the segment.
//! With flag bit 3 the ring is first written by our own producer (so reads go deep: wraps, padding)
//! and then a few of its words are overwritten with the input's values.
#![no_main]

use impulse_ring_core::layout::*;
use impulse_ring_core::ring::Ring;
use impulse_ring_fuzz::{fill, scratch_segment, take};
use libfuzzer_sys::fuzz_target;

const CAPACITY: u64 = IR_MIN_RING_CAPACITY;
const BASE: usize = IR_SEG_HEADER_SIZE;

fuzz_target!(|data: &[u8]| {
  let mut input = data;
  let flags = take(&mut input, 1);
  let write_len = take(&mut input, 2) as usize;
  let seg = scratch_segment(BASE + IR_RING_HEADER_SIZE + CAPACITY as usize, IR_KIND_LINK);
  if flags & 8 != 0 {
    // Structured: a healthy ring our own producer wrote (records of the input's lengths, some of
    // them consumed, wrapping), then a few words overwritten with the input's values.
    fill(seg, BASE, &[]);
    let ring = Ring::init(seg, BASE, CAPACITY);
    let writes = take(&mut input, 1) % 64;
    let consumed = take(&mut input, 1) % 64;
    for i in 0..writes {
      let len = take(&mut input, 2) as usize % (ring.max_payload() + 1);
      if ring.try_write_bytes(seg, IR_FRAME_KIND_CONTROL, i, &vec![i as u8; len]).is_err() {
        let _ = ring.read(seg, &[IR_FRAME_KIND_CONTROL], |_| ());
      }
      if i < consumed {
        let _ = ring.read(seg, &[IR_FRAME_KIND_CONTROL], |_| ());
      }
    }
    let words = (IR_RING_HEADER_SIZE + CAPACITY as usize) / 8;
    for _ in 0..take(&mut input, 1) % 4 {
      let at = BASE + (take(&mut input, 2) as usize % words) * 8;
      seg.u64_at(at).store(take(&mut input, 8), std::sync::atomic::Ordering::Relaxed);
    }
  } else {
    fill(seg, BASE, input);
  }
  if flags & 1 == 0 {
    // Most inputs keep a valid capacity word, so the reader gets past `open`.
    seg.u64_at(BASE + IR_RING_CAPACITY).store(CAPACITY, std::sync::atomic::Ordering::Relaxed);
  }
  let Ok(ring) = Ring::open(seg, BASE, CAPACITY) else { return };
  let kinds: &[u16] = match flags >> 1 & 3 {
    0 => &[IR_FRAME_KIND_CONTROL],
    1 => &[IR_FRAME_KIND_CALL_REQUEST],
    2 => &[IR_FRAME_KIND_CALL_OK, IR_FRAME_KIND_CALL_ERROR],
    _ => &[IR_FRAME_KIND_DATA, IR_FRAME_KIND_CONTROL, IR_FRAME_KIND_CALL_OK],
  };
  for _ in 0..64 {
    let _ = ring.has_data(seg);
    match ring.read(seg, kinds, |frame| frame.payload.iter().map(|&b| b as u64).sum::<u64>()) {
      Ok(Some(_)) => {}
      Ok(None) | Err(_) => break,
    }
  }
  let _ = ring.producer_waiting(seg);
  let _ = ring.has_space(seg, write_len);
  let payload = vec![0xa5u8; write_len.min(2 * CAPACITY as usize)];
  let _ = ring.try_write_bytes(seg, IR_FRAME_KIND_CONTROL, 1, &payload);
});
