//! Frames: the 16-byte record header every ring uses, and the checks a reader applies before it
//! trusts a record it found in shared memory.

use crate::layout::*;
use crate::segment::Segment;
use std::sync::atomic::Ordering;

/// A record read from a ring. `payload` points into shared memory (or into a private copy for a
/// `lossy` channel).
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
  /// One of the `IR_FRAME_KIND_*` values.
  pub kind: u16,
  /// Sequence number or correlation id.
  pub seq: u64,
  /// The payload bytes.
  pub payload: &'a [u8],
}

/// What a reader found wrong with a ring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
  /// A shared index, length or kind is impossible; the ring cannot be trusted any more.
  #[error("ring in {segment} is corrupt: {what}")]
  Corrupt {
    /// Name of the segment.
    segment: String,
    /// What was wrong.
    what: String,
  },
  /// The ring has no room for the record now.
  #[error("ring is full")]
  Full,
  /// The record can never fit this ring.
  #[error("payload of {size} bytes is larger than the maximum of {max} bytes")]
  TooLarge {
    /// Payload size.
    size: usize,
    /// Largest payload the ring accepts.
    max: usize,
  },
}

pub(crate) fn corrupt(seg: &Segment, what: String) -> RingError {
  RingError::Corrupt { segment: seg.name().to_string(), what }
}

/// A record header as read from shared memory, not yet validated.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawHeader {
  pub len: u32,
  pub kind: u16,
  pub seq: u64,
}

/// Reads the header at byte `offset` of the segment. Headers are read with Relaxed atomic loads: the
/// Acquire load of the tail that made the record visible orders them.
pub(crate) fn read_header(seg: &Segment, offset: usize) -> RawHeader {
  let word = seg.u64_at(offset + IR_FRAME_LEN).load(Ordering::Relaxed);
  RawHeader {
    len: word as u32,
    kind: (word >> 32) as u16,
    seq: seg.u64_at(offset + IR_FRAME_SEQ).load(Ordering::Relaxed),
  }
}

/// Writes a header at byte `offset` of the segment; made visible by the later Release store of the tail.
pub(crate) fn write_header(seg: &Segment, offset: usize, len: u32, kind: u16, seq: u64) {
  let word = len as u64 | (kind as u64) << 32;
  seg.u64_at(offset + IR_FRAME_LEN).store(word, Ordering::Relaxed);
  seg.u64_at(offset + IR_FRAME_SEQ).store(seq, Ordering::Relaxed);
}

/// Where a record of `need` bytes goes in a ring of `capacity` whose write position is `tail`: the
/// padding to insert first (0 when the record fits before the end of the ring).
pub(crate) fn padding_before(tail: u64, capacity: u64, size: u64) -> u64 {
  let to_end = capacity - (tail & (capacity - 1));
  if to_end < size {
    to_end
  } else {
    0
  }
}

/// Checks the record header found at ring position `pos` (`offset` in the ring: `pos % capacity`)
/// when `available` bytes are published after `pos`; returns the bytes the record occupies.
pub(crate) fn check_record(
  seg: &Segment,
  header: RawHeader,
  offset_in_ring: u64,
  capacity: u64,
  available: u64,
  allowed: &[u16],
) -> Result<u64, RingError> {
  let to_end = capacity - offset_in_ring;
  if header.kind == IR_FRAME_KIND_PADDING {
    if header.len as u64 + IR_FRAME_HEADER_SIZE as u64 != to_end || to_end > available {
      return Err(corrupt(seg, format!("padding of {} bytes does not reach the end of the ring", header.len)));
    }
    return Ok(to_end);
  }
  if !allowed.contains(&header.kind) {
    return Err(corrupt(seg, format!("record kind {} is not allowed here", header.kind)));
  }
  if header.len as usize > max_payload(capacity as usize) {
    return Err(corrupt(seg, format!("record length {} exceeds the ring's maximum payload", header.len)));
  }
  let size = record_size(header.len as usize) as u64;
  if size > to_end || size > available {
    return Err(corrupt(seg, format!("record of {size} bytes overruns the published data or the ring end")));
  }
  Ok(size)
}
