//! Helpers shared by the fuzz targets: scratch shared memory segments that the readers under test can
//! open like any other, filled from the fuzzer's bytes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use impulse_ring_core::segment::Segment;

/// A segment of `size` bytes private to this process, reused across inputs: created under a name of
/// the fuzzing run's namespace (`/impulse-ring.<IMPULSE_RING_TEST_NS_PREFIX>fuzz-<pid>-<n>`) and
/// unlinked at once, so `/dev/shm` holds nothing of it even when the fuzzer aborts on a crash.
pub fn scratch_segment(size: usize, kind: u32) -> &'static Segment {
  static SEGMENTS: Mutex<Option<HashMap<(usize, u32), &'static Segment>>> = Mutex::new(None);
  static NEXT: AtomicU64 = AtomicU64::new(0);
  let mut guard = SEGMENTS.lock().unwrap();
  let map = guard.get_or_insert_with(HashMap::new);
  map.entry((size, kind)).or_insert_with(|| {
    let prefix = std::env::var("IMPULSE_RING_TEST_NS_PREFIX").unwrap_or_default();
    let name = format!("/impulse-ring.{prefix}fuzz-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let seg = Segment::create(&name, size, kind, 0o600).expect("create a scratch segment");
    seg.unlink().expect("unlink the scratch segment");
    Box::leak(Box::new(seg))
  })
}

/// Copies `bytes` into the segment from offset `at` on and zeroes the rest of it (with Relaxed atomic
/// stores, as another process would write them).
pub fn fill(seg: &Segment, at: usize, bytes: &[u8]) {
  let mut offset = at;
  while offset + 8 <= seg.len() {
    let i = offset - at;
    let mut word = [0u8; 8];
    if i < bytes.len() {
      let n = (bytes.len() - i).min(8);
      word[..n].copy_from_slice(&bytes[i..i + n]);
    }
    seg.u64_at(offset).store(u64::from_le_bytes(word), Ordering::Relaxed);
    offset += 8;
  }
}

/// Reads a little-endian integer of up to 8 bytes from the front of `data`, advancing it (missing
/// bytes count as zero).
pub fn take(data: &mut &[u8], n: usize) -> u64 {
  let mut word = [0u8; 8];
  let n = n.min(data.len()).min(8);
  word[..n].copy_from_slice(&data[..n]);
  *data = &data[n..];
  u64::from_le_bytes(word)
}
