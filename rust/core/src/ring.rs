//! The single-producer single-consumer byte ring that carries control records and calls. Records are
//! frames written contiguously (padding at the wrap); the producer publishes with a Release store of
//! the tail, the consumer frees space with a Release store of the head. Nothing here sleeps: callers
//! wait on the doorbell the spec assigns to each ring.

use std::sync::atomic::{fence, Ordering};

use crate::frame::{check_record, corrupt, padding_before, read_header, write_header, Frame, RingError};
use crate::layout::*;
use crate::segment::{valid_capacity, Segment};

/// A ring at a fixed place in a segment, with its capacity validated. Cheap to copy; every operation
/// takes the segment it lives in.
#[derive(Clone, Copy, Debug)]
pub struct Ring {
  base: usize,
  capacity: u64,
}

impl Ring {
  /// Lays out an empty ring of `capacity` bytes at `base` (in a segment being created).
  pub fn init(seg: &Segment, base: usize, capacity: u64) -> Ring {
    assert!(valid_capacity(capacity) && base + IR_RING_HEADER_SIZE + capacity as usize <= seg.len());
    seg.u64_at(base + IR_RING_TAIL).store(0, Ordering::Relaxed);
    seg.u64_at(base + IR_RING_HEAD).store(0, Ordering::Relaxed);
    seg.u32_at(base + IR_RING_PRODUCER_WAITING).store(0, Ordering::Relaxed);
    seg.u64_at(base + IR_RING_CAPACITY).store(capacity, Ordering::Relaxed);
    Ring { base, capacity }
  }

  /// The ring at `base`, whose capacity must be `expected_capacity` and fit inside the segment.
  pub fn open(seg: &Segment, base: usize, expected_capacity: u64) -> Result<Ring, RingError> {
    if base.checked_add(IR_RING_HEADER_SIZE).is_none_or(|h| h > seg.len()) {
      return Err(corrupt(seg, format!("ring header at {base} lies outside the segment")));
    }
    let capacity = seg.u64_at(base + IR_RING_CAPACITY).load(Ordering::Relaxed);
    let fits = (capacity as usize).checked_add(base + IR_RING_HEADER_SIZE).is_some_and(|end| end <= seg.len());
    if capacity != expected_capacity || !valid_capacity(capacity) || !fits {
      return Err(corrupt(seg, format!("ring at {base} has capacity {capacity}, expected {expected_capacity}")));
    }
    Ok(Ring { base, capacity })
  }

  /// Data capacity in bytes.
  pub fn capacity(&self) -> u64 {
    self.capacity
  }

  /// The largest payload this ring accepts.
  pub fn max_payload(&self) -> usize {
    max_payload(self.capacity as usize)
  }

  fn data(&self) -> usize {
    self.base + IR_RING_HEADER_SIZE
  }

  /// Producer: writes one record whose payload `fill` writes in place, or fails with `Full` (nothing
  /// written) or `TooLarge`. The caller then rings the consumer's doorbell.
  pub fn try_write(
    &self,
    seg: &Segment,
    kind: u16,
    seq: u64,
    len: usize,
    fill: impl FnOnce(&mut [u8]),
  ) -> Result<(), RingError> {
    if len > self.max_payload() {
      return Err(RingError::TooLarge { size: len, max: self.max_payload() });
    }
    let tail = seg.u64_at(self.base + IR_RING_TAIL).load(Ordering::Relaxed);
    // SYNC: observe freed space — pairs with the consumer's Release store of the head.
    let head = seg.u64_at(self.base + IR_RING_HEAD).load(Ordering::Acquire);
    let used = tail.wrapping_sub(head);
    if used > self.capacity || tail % IR_FRAME_ALIGN as u64 != 0 {
      return Err(corrupt(seg, format!("tail {tail} and head {head} are inconsistent")));
    }
    let size = record_size(len) as u64;
    let pad = padding_before(tail, self.capacity, size);
    if self.capacity - used < pad + size {
      return Err(RingError::Full);
    }
    let mut at = tail;
    if pad > 0 {
      write_header(seg, self.data() + (at & (self.capacity - 1)) as usize, (pad - 16) as u32, IR_FRAME_KIND_PADDING, 0);
      at += pad;
    }
    let offset = self.data() + (at & (self.capacity - 1)) as usize;
    write_header(seg, offset, len as u32, kind, seq);
    let payload = seg.bytes_ptr(offset + IR_FRAME_HEADER_SIZE, len);
    // SAFETY: the range is inside the segment (checked by `bytes_ptr`) and belongs to the producer
    // until the tail store below publishes it; no consumer reads past the tail.
    fill(unsafe { std::slice::from_raw_parts_mut(payload, len) });
    // SYNC: publish record — pairs with the consumer's Acquire load of the tail.
    seg.u64_at(self.base + IR_RING_TAIL).store(at + size, Ordering::Release);
    Ok(())
  }

  /// Producer: whether a record of `len` payload bytes would fit now (what `try_write` would find).
  /// Inconsistent indices answer `true`, so that the `try_write` that follows reports `Corrupt`.
  pub fn has_space(&self, seg: &Segment, len: usize) -> bool {
    let tail = seg.u64_at(self.base + IR_RING_TAIL).load(Ordering::Relaxed);
    // SYNC: observe freed space — pairs with the consumer's Release store of the head.
    let head = seg.u64_at(self.base + IR_RING_HEAD).load(Ordering::Acquire);
    let used = tail.wrapping_sub(head);
    if used > self.capacity || len > self.max_payload() {
      return true;
    }
    let size = record_size(len) as u64;
    self.capacity - used >= padding_before(tail, self.capacity, size) + size
  }

  /// Producer: writes a record whose payload is `payload`.
  pub fn try_write_bytes(&self, seg: &Segment, kind: u16, seq: u64, payload: &[u8]) -> Result<(), RingError> {
    self.try_write(seg, kind, seq, payload.len(), |dst| dst.copy_from_slice(payload))
  }

  /// Producer: announces (1) or withdraws (0) that it waits for space. Set it, re-check for space,
  /// then sleep on the producer's doorbell.
  pub fn set_producer_waiting(&self, seg: &Segment, waiting: bool) {
    // SYNC: producer-waiting check — SeqCst pairs with the consumer's fence in `producer_waiting`.
    seg.u32_at(self.base + IR_RING_PRODUCER_WAITING).store(waiting as u32, Ordering::SeqCst);
    // Keeps the producer's re-check of the head after the store (see the doorbell's sleep path).
    fence(Ordering::SeqCst);
  }

  /// Consumer: whether the producer waits for space (ring its doorbell then). Call after `read`.
  pub fn producer_waiting(&self, seg: &Segment) -> bool {
    // SYNC: producer-waiting check — orders our head store before this load; pairs with the SeqCst
    // store and fence in `set_producer_waiting` (either we see the flag or the producer sees our head).
    fence(Ordering::SeqCst);
    seg.u32_at(self.base + IR_RING_PRODUCER_WAITING).load(Ordering::Relaxed) != 0
  }

  /// Producer: the consumer's position, for noticing that it read something (the broker's wake
  /// condition while records wait for this ring).
  pub fn consumed(&self, seg: &Segment) -> u64 {
    // SYNC: release space (observed) — pairs with the consumer's Release store of the head in `read`.
    seg.u64_at(self.base + IR_RING_HEAD).load(Ordering::Acquire)
  }

  /// Consumer: whether a record is waiting.
  pub fn has_data(&self, seg: &Segment) -> bool {
    // SYNC: observe record.
    seg.u64_at(self.base + IR_RING_TAIL).load(Ordering::Acquire)
      != seg.u64_at(self.base + IR_RING_HEAD).load(Ordering::Relaxed)
  }

  /// Consumer: hands the next record to `f` (its payload in place in shared memory) and frees it
  /// afterwards. `Ok(None)` when the ring is empty. `allowed` lists the record kinds valid here.
  pub fn read<R>(
    &self,
    seg: &Segment,
    allowed: &[u16],
    f: impl FnOnce(Frame<'_>) -> R,
  ) -> Result<Option<R>, RingError> {
    self.read_then(seg, allowed, f, false)
  }

  /// Consumer: [`read`](Self::read), and zeroes the record's bytes (header and payload, padding
  /// before it included) before freeing it, so that nothing it carried stays in shared memory (the
  /// broker reads requests, which may carry access keys, this way: security.md).
  pub fn read_scrubbed<R>(
    &self,
    seg: &Segment,
    allowed: &[u16],
    f: impl FnOnce(Frame<'_>) -> R,
  ) -> Result<Option<R>, RingError> {
    self.read_then(seg, allowed, f, true)
  }

  fn read_then<R>(
    &self,
    seg: &Segment,
    allowed: &[u16],
    f: impl FnOnce(Frame<'_>) -> R,
    scrub: bool,
  ) -> Result<Option<R>, RingError> {
    let first = seg.u64_at(self.base + IR_RING_HEAD).load(Ordering::Relaxed);
    let mut head = seg.u64_at(self.base + IR_RING_HEAD).load(Ordering::Relaxed);
    // SYNC: observe record — pairs with the producer's Release store of the tail.
    let tail = seg.u64_at(self.base + IR_RING_TAIL).load(Ordering::Acquire);
    loop {
      if head == tail {
        return Ok(None);
      }
      let available = tail.wrapping_sub(head);
      if available > self.capacity || head % IR_FRAME_ALIGN as u64 != 0 {
        return Err(corrupt(seg, format!("tail {tail} and head {head} are inconsistent")));
      }
      let in_ring = head & (self.capacity - 1);
      let offset = self.data() + in_ring as usize;
      let header = read_header(seg, offset);
      let size = check_record(seg, header, in_ring, self.capacity, available, allowed)?;
      if header.kind == IR_FRAME_KIND_PADDING {
        head += size;
        continue;
      }
      let ptr = seg.bytes_ptr(offset + IR_FRAME_HEADER_SIZE, header.len as usize);
      // SAFETY: inside the segment (checked by `bytes_ptr`); the producer does not touch the record
      // until the head store below releases it.
      let payload = unsafe { std::slice::from_raw_parts(ptr, header.len as usize) };
      let out = f(Frame { kind: header.kind, seq: header.seq, payload });
      if scrub {
        // Padding records and this one: the producer does not touch them before the head store below.
        // They never wrap: a record that would is preceded by padding up to the end of the ring.
        let mut at = first;
        while at < head + size {
          let in_ring = at & (self.capacity - 1);
          let end = (head + size).min(at - in_ring + self.capacity);
          let ptr = seg.bytes_ptr(self.data() + in_ring as usize, (end - at) as usize);
          // SAFETY: inside the segment (checked by `bytes_ptr`) and still the consumer's (see above).
          unsafe { std::ptr::write_bytes(ptr, 0, (end - at) as usize) };
          at = end;
        }
      }
      // SYNC: release space — pairs with the producer's Acquire load of the head.
      seg.u64_at(self.base + IR_RING_HEAD).store(head + size, Ordering::Release);
      return Ok(Some(out));
    }
  }

  /// Resets an abandoned ring to empty (the broker does this before reusing a slot), zeroing its data
  /// so that no record an app left unread stays behind.
  pub fn reset(&self, seg: &Segment) {
    let data = seg.bytes_ptr(self.data(), self.capacity as usize);
    // SAFETY: inside the segment (checked by `bytes_ptr`); an abandoned ring has no producer or consumer.
    unsafe { std::ptr::write_bytes(data, 0, self.capacity as usize) };
    seg.u64_at(self.base + IR_RING_TAIL).store(0, Ordering::Relaxed);
    seg.u64_at(self.base + IR_RING_HEAD).store(0, Ordering::Relaxed);
    seg.u32_at(self.base + IR_RING_PRODUCER_WAITING).store(0, Ordering::Release);
  }
}
