//! Segment headers (spec/wire-format.md §2): `Segment::open` on an object whose header words (magic,
//! version, kind, size, creator) are the fuzzer's bytes, as an app opens a segment another process
//! laid out. Never panics; what opens is no larger than the object.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};

use impulse_ring_core::layout::*;
use impulse_ring_core::segment::Segment;
use impulse_ring_fuzz::{fill, take};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
  static NEXT: AtomicU64 = AtomicU64::new(0);
  let mut input = data;
  let sizes = [IR_SEG_HEADER_SIZE, 4096, 4352, 8192];
  let size = sizes[take(&mut input, 1) as usize % sizes.len()];
  let kind = take(&mut input, 1) as u32 % 5;
  let prefix = std::env::var("IMPULSE_RING_TEST_NS_PREFIX").unwrap_or_default();
  let name = format!("/impulse-ring.{prefix}fuzzseg-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
  let created = Segment::create(&name, size, IR_KIND_CHANNEL, 0o600).expect("create a scratch segment");
  fill(&created, 0, input);
  let opened = Segment::open(&name, kind);
  created.unlink().expect("unlink the scratch segment");
  if let Ok(seg) = opened {
    assert!(seg.len() <= size);
    let _ = seg.creator();
  }
});
