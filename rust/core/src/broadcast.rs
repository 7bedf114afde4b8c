//! The channel ring: one publisher, up to `max_subscribers` subscribers, each with its own cursor.
//! Under the `block` policy the publisher never passes the slowest active subscriber; under `lossy`
//! it overwrites, retiring records first by advancing `min_valid`, and a subscriber that finds itself
//! behind `min_valid` skips ahead and learns from the sequence numbers how many messages it missed.

use std::sync::atomic::{fence, AtomicU64, Ordering};

use crate::frame::{check_record, corrupt, padding_before, read_header, write_header, Frame, RingError};
use crate::layout::*;
use crate::segment::{valid_capacity, Segment};

/// The validated, immutable part of a channel header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
  /// Data capacity in bytes (a power of two).
  pub capacity: u64,
  /// Channel id.
  pub channel_id: u64,
  /// Fingerprint of the channel's schema.
  pub fingerprint: u64,
  /// `IR_POLICY_BLOCK` or `IR_POLICY_LOSSY`.
  pub policy: u32,
  /// Number of subscriber slots.
  pub max_subscribers: u32,
}

impl ChannelConfig {
  /// Size of the segment that holds this channel.
  pub fn segment_size(&self) -> usize {
    channel_segment_size(self.max_subscribers as usize, self.capacity as usize)
  }

  /// The largest message payload (Single Object Encoding included).
  pub fn max_payload(&self) -> usize {
    max_payload(self.capacity as usize)
  }

  fn data(&self) -> usize {
    channel_data_offset(self.max_subscribers as usize)
  }

  /// Writes the header of a new channel segment (before `mark_ready`).
  pub fn init(&self, seg: &Segment) {
    assert!(valid_capacity(self.capacity) && seg.len() >= self.segment_size());
    seg.u64_at(IR_CH_CAPACITY).store(self.capacity, Ordering::Relaxed);
    seg.u64_at(IR_CH_CHANNEL_ID).store(self.channel_id, Ordering::Relaxed);
    seg.u64_at(IR_CH_FINGERPRINT).store(self.fingerprint, Ordering::Relaxed);
    seg.u32_at(IR_CH_POLICY).store(self.policy, Ordering::Relaxed);
    seg.u32_at(IR_CH_MAX_SUBSCRIBERS).store(self.max_subscribers, Ordering::Relaxed);
  }

  /// Reads and validates the header of an opened channel segment.
  pub fn read(seg: &Segment) -> Result<ChannelConfig, RingError> {
    if seg.len() < IR_CH_SUBSCRIBERS {
      return Err(corrupt(seg, format!("{} bytes is too small for a channel", seg.len())));
    }
    let config = ChannelConfig {
      capacity: seg.u64_at(IR_CH_CAPACITY).load(Ordering::Relaxed),
      channel_id: seg.u64_at(IR_CH_CHANNEL_ID).load(Ordering::Relaxed),
      fingerprint: seg.u64_at(IR_CH_FINGERPRINT).load(Ordering::Relaxed),
      policy: seg.u32_at(IR_CH_POLICY).load(Ordering::Relaxed),
      max_subscribers: seg.u32_at(IR_CH_MAX_SUBSCRIBERS).load(Ordering::Relaxed),
    };
    if !valid_capacity(config.capacity) {
      return Err(corrupt(seg, format!("capacity {} is not a power of two in range", config.capacity)));
    }
    if config.policy > IR_POLICY_LOSSY {
      return Err(corrupt(seg, format!("unknown overflow policy {}", config.policy)));
    }
    if config.max_subscribers == 0 || config.max_subscribers > 4096 {
      return Err(corrupt(seg, format!("{} subscriber slots is out of range", config.max_subscribers)));
    }
    if config.segment_size() != seg.len() {
      return Err(corrupt(seg, format!("layout needs {} bytes, segment has {}", config.segment_size(), seg.len())));
    }
    Ok(config)
  }
}

fn sub_offset(index: u32) -> usize {
  IR_CH_SUBSCRIBERS + index as usize * IR_SUB_SIZE
}

/// Whether the channel is closed.
pub fn is_closed(seg: &Segment) -> bool {
  seg.u32_at(IR_CH_CLOSED).load(Ordering::Acquire) != 0
}

/// Marks the channel closed; the caller then rings the data doorbell so sleeping subscribers see it.
pub fn close(seg: &Segment) {
  seg.u32_at(IR_CH_CLOSED).store(1, Ordering::Release);
}

/// Messages published so far (for listings; Relaxed, may lag).
pub fn published(seg: &Segment) -> u64 {
  seg.u64_at(IR_CH_NEXT_SEQ).load(Ordering::Relaxed)
}

/// Number of joined (ACTIVE) subscribers: each sees every message published from now on.
pub fn subscriber_count(seg: &Segment, config: &ChannelConfig) -> u32 {
  (0..config.max_subscribers)
    .filter(|&i| seg.u32_at(sub_offset(i) + IR_SUB_STATE).load(Ordering::Relaxed) == IR_SUB_ACTIVE)
    .count() as u32
}

/// Broker: reserves a free subscriber slot for `owner`; `None` when all are taken.
pub fn reserve_subscriber(seg: &Segment, config: &ChannelConfig, owner: u32) -> Option<u32> {
  (0..config.max_subscribers).find(|&i| {
    let state = seg.u32_at(sub_offset(i) + IR_SUB_STATE);
    if state.compare_exchange(IR_SUB_FREE, IR_SUB_RESERVED, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
      seg.u32_at(sub_offset(i) + IR_SUB_OWNER).store(owner, Ordering::Relaxed);
      true
    } else {
      false
    }
  })
}

/// Broker or subscriber: frees a subscriber slot; the caller then rings the space doorbell.
pub fn free_subscriber(seg: &Segment, config: &ChannelConfig, index: u32) {
  if index < config.max_subscribers {
    // SYNC: release space — the publisher stops gating on this cursor.
    seg.u32_at(sub_offset(index) + IR_SUB_STATE).store(IR_SUB_FREE, Ordering::Release);
  }
}

/// Broker: the subscriber slots owned by app `owner`.
pub fn subscribers_of(seg: &Segment, config: &ChannelConfig, owner: u32) -> Vec<u32> {
  (0..config.max_subscribers)
    .filter(|&i| {
      seg.u32_at(sub_offset(i) + IR_SUB_STATE).load(Ordering::Acquire) != IR_SUB_FREE
        && seg.u32_at(sub_offset(i) + IR_SUB_OWNER).load(Ordering::Relaxed) == owner
    })
    .collect()
}

/// The publisher's side of a channel.
#[derive(Debug)]
pub struct PublisherCursor {
  config: ChannelConfig,
  /// Bytes written; the shared tail word is only ever a copy of this (never read back: a corrupted
  /// shared word must not steer our writes).
  tail: u64,
  /// Sequence number of the next message.
  next_seq: u64,
  /// Oldest intact position; the shared `min_valid` word is a copy.
  min_valid: u64,
  /// A lower bound of every active subscriber's position, refreshed only when the ring looks full.
  cached_min: u64,
}

impl PublisherCursor {
  /// The publisher of the channel in `seg`.
  /// A new channel starts empty; a publisher taking over a channel starts after its last record.
  pub fn new(seg: &Segment, config: ChannelConfig) -> PublisherCursor {
    let tail = seg.u64_at(IR_CH_TAIL).load(Ordering::Acquire);
    let min_valid = seg.u64_at(IR_CH_MIN_VALID).load(Ordering::Acquire);
    let next_seq = seg.u64_at(IR_CH_NEXT_SEQ).load(Ordering::Relaxed);
    // Positions below 2^62 leave room to add a ring's worth without overflow: no channel gets there
    // (at 10 GB/s that takes over 14 years), so anything beyond is a corrupted word.
    let sane = tail % IR_FRAME_ALIGN as u64 == 0
      && min_valid % IR_FRAME_ALIGN as u64 == 0
      && min_valid <= tail
      && tail - min_valid <= config.capacity
      && tail < 1 << 62;
    // An inconsistent channel restarts from an empty ring at position 0.
    let (tail, min_valid) = if sane { (tail, min_valid) } else { (0, 0) };
    PublisherCursor { config, tail, next_seq, min_valid, cached_min: tail }
  }

  /// The channel's configuration.
  pub fn config(&self) -> &ChannelConfig {
    &self.config
  }

  /// The slowest active subscriber's position, or `tail` when there is none. Positions outside
  /// `[tail - capacity, tail]` are corrupt and ignored (a broken subscriber must not stall the channel),
  /// except a JOINING cursor more than a ring behind, which gates every publish until it settles
  /// (wire-format.md §7.3, found by spec/models/broadcast.pml).
  fn slowest(&self, seg: &Segment, tail: u64) -> u64 {
    // SYNC: wake check — pairs with the SeqCst fence in `SubscriberCursor::join` (Dekker pair: either
    // we see the joining subscriber or it sees our tail).
    fence(Ordering::SeqCst);
    let mut min = tail;
    for i in 0..self.config.max_subscribers {
      let slot = sub_offset(i);
      // SYNC: observe cursor — pairs with the subscriber's Release store of its position.
      let state = seg.u32_at(slot + IR_SUB_STATE).load(Ordering::Acquire);
      if state == IR_SUB_ACTIVE || state == IR_SUB_JOINING {
        let pos = seg.u64_at(slot + IR_SUB_POS).load(Ordering::Acquire);
        if pos <= tail && tail - pos <= self.config.capacity {
          min = min.min(pos);
        } else if state == IR_SUB_JOINING && pos <= tail {
          // Caught mid-join with the position of its first tail load (§7.6): its settled position is
          // not visible yet and may be one we would overwrite. Gate completely until it settles.
          min = min.min(tail.saturating_sub(self.config.capacity));
        }
      }
    }
    min
  }

  /// Publishes one message whose payload `fill` writes in place. Returns its sequence number, or
  /// `Full` (block policy, a subscriber is a whole ring behind; nothing written) or `TooLarge`. The
  /// caller rings the data doorbell afterwards.
  pub fn try_publish(&mut self, seg: &Segment, len: usize, fill: impl FnOnce(&mut [u8])) -> Result<u64, RingError> {
    let cap = self.config.capacity;
    if len > self.config.max_payload() {
      return Err(RingError::TooLarge { size: len, max: self.config.max_payload() });
    }
    let tail = self.tail;
    let seq = self.next_seq;
    let size = record_size(len) as u64;
    let pad = padding_before(tail, cap, size);
    let end = tail + pad + size;
    if self.config.policy == IR_POLICY_BLOCK && end - self.cached_min > cap {
      self.cached_min = self.slowest(seg, tail);
      if end - self.cached_min > cap {
        return Err(RingError::Full);
      }
    }
    self.retire_until(seg, end.saturating_sub(cap));
    let data = self.config.data();
    let mut at = tail;
    if pad > 0 {
      // Padding carries the next message's sequence number, so a reader landing on it counts right.
      write_header(seg, data + (at & (cap - 1)) as usize, (pad - 16) as u32, IR_FRAME_KIND_PADDING, seq);
      at += pad;
    }
    let offset = data + (at & (cap - 1)) as usize;
    write_header(seg, offset, len as u32, IR_FRAME_KIND_DATA, seq);
    let payload = seg.bytes_ptr(offset + IR_FRAME_HEADER_SIZE, len);
    // SAFETY: in the segment (checked by `bytes_ptr`) and written by this publisher only. Under
    // `block` no subscriber reads these bytes until the tail store below publishes them. Under `lossy`
    // a lagging subscriber in another process may still be copying the retired record that lived
    // here: it does so with atomic word loads, never through a reference, and throws away what it
    // copied once it sees `min_valid` past it (the retirement above, ordered before these writes).
    fill(unsafe { std::slice::from_raw_parts_mut(payload, len) });
    // The sequence number a taken-over channel continues from is a shared word: it may be anything.
    self.next_seq = seq.wrapping_add(1);
    self.tail = end;
    seg.u64_at(IR_CH_NEXT_SEQ).store(self.next_seq, Ordering::Relaxed);
    // SYNC: publish record — pairs with the subscribers' Acquire load of the tail. SeqCst rather than
    // Release: with the SeqCst load in `Doorbell::ring_after_seqcst_store` it forms the wake check's
    // Dekker pair without a separate fence (an `xchg` instead of `mov` + `mfence` on x86).
    seg.u64_at(IR_CH_TAIL).store(end, Ordering::SeqCst);
    Ok(seq)
  }

  /// Advances `min_valid` past every record that starts before `target`, before they are overwritten.
  fn retire_until(&mut self, seg: &Segment, target: u64) {
    let mut min_valid = self.min_valid;
    if min_valid >= target {
      return;
    }
    let cap = self.config.capacity;
    let data = self.config.data();
    while min_valid < target {
      let in_ring = min_valid & (cap - 1);
      let header = read_header(seg, data + in_ring as usize);
      let size =
        if header.kind == IR_FRAME_KIND_PADDING { cap - in_ring } else { record_size(header.len as usize) as u64 };
      if size == 0 || size > cap - in_ring || min_valid % IR_FRAME_ALIGN as u64 != 0 {
        // Our own records were overwritten by someone else: skip to the target, readers will see
        // whatever lies there and report it as corrupt.
        min_valid = target;
        break;
      }
      min_valid += size;
    }
    self.min_valid = min_valid;
    // SYNC: retire after publish — Release, so a subscriber that loads this min_valid (Acquire) and
    // then the tail sees at least the tail that published every record retired here (§7.5, skip).
    seg.u64_at(IR_CH_MIN_VALID).store(min_valid, Ordering::Release);
    // SYNC: retire records — the Release fence orders the store of min_valid before our overwrites;
    // pairs with the Acquire fence a lossy subscriber issues after copying a record.
    fence(Ordering::Release);
  }
}

/// What one receive attempt found (C: `ir_recv_e`). A corrupt ring is the `Err` beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecvOutcome<R> {
  /// The next message, consumed: what the closure returned for it.
  Message(R),
  /// Nothing was published since the last message; the channel is still open.
  Empty,
  /// The subscriber fell behind a lossy channel and skipped `missed` messages; the next receive
  /// continues with the oldest message still in the ring.
  Lagged {
    /// Number of messages lost.
    missed: u64,
  },
  /// The channel is closed and every message published before it closed has been read.
  Closed,
}

/// A subscriber's side of a channel.
#[derive(Debug)]
pub struct SubscriberCursor {
  config: ChannelConfig,
  index: u32,
  pos: u64,
  next_seq: u64,
  /// The tail as last loaded: records before it are published, so under `block` the subscriber
  /// reads up to it without touching the publisher's cache line again.
  seen_tail: u64,
  /// Position at the last wake of the publisher (see `wants_publisher_wake`).
  woke_at: u64,
  /// Private copy of the record being read (lossy channels and observers: the publisher may overwrite).
  copy: Vec<u8>,
  /// Whether this cursor reads the lossy way: on a lossy channel, or as an observer of any channel.
  lossy: bool,
}

impl SubscriberCursor {
  /// Joins the channel in slot `index` (reserved by the broker); the subscriber will see every
  /// message published after this call.
  pub fn join(seg: &Segment, config: ChannelConfig, index: u32) -> Result<SubscriberCursor, RingError> {
    SubscriberCursor::join_as(seg, config, index, false)
  }

  /// Joins as an observer (state OBSERVING, wire-format.md §7.8): the publisher never waits for this
  /// cursor, even on a `block` channel; it reads the lossy way and reports what it missed as `Lagged`.
  pub fn observe(seg: &Segment, config: ChannelConfig, index: u32) -> Result<SubscriberCursor, RingError> {
    SubscriberCursor::join_as(seg, config, index, true)
  }

  fn join_as(seg: &Segment, config: ChannelConfig, index: u32, observer: bool) -> Result<SubscriberCursor, RingError> {
    if index >= config.max_subscribers {
      return Err(corrupt(seg, format!("subscriber index {index} out of range")));
    }
    let slot = sub_offset(index);
    let tail = seg.u64_at(IR_CH_TAIL).load(Ordering::Acquire);
    seg.u64_at(slot + IR_SUB_POS).store(tail, Ordering::Relaxed);
    seg.u32_at(slot + IR_SUB_STATE).store(IR_SUB_JOINING, Ordering::Release);
    // SYNC: wake check — pairs with the fence in `PublisherCursor::slowest`.
    fence(Ordering::SeqCst);
    let later = seg.u64_at(IR_CH_TAIL).load(Ordering::Acquire);
    let next_seq = seg.u64_at(IR_CH_NEXT_SEQ).load(Ordering::Relaxed);
    // Start at the later tail: moving the cursor forward is always safe, the publisher may only have
    // seen the older value. Only then does the slot count as joined (ACTIVE): a publisher that waits
    // until the listing counts its subscribers loses nothing.
    let pos = later;
    seg.u64_at(slot + IR_SUB_POS).store(pos, Ordering::Release);
    let state = if observer { IR_SUB_OBSERVING } else { IR_SUB_ACTIVE };
    seg.u32_at(slot + IR_SUB_STATE).store(state, Ordering::Release);
    let lossy = observer || config.policy == IR_POLICY_LOSSY;
    Ok(SubscriberCursor { config, index, pos, next_seq, seen_tail: pos, woke_at: pos, copy: Vec::new(), lossy })
  }

  /// The slot index.
  pub fn index(&self) -> u32 {
    self.index
  }

  /// The channel's configuration.
  pub fn config(&self) -> &ChannelConfig {
    &self.config
  }

  /// Whether a message (or the end of the channel) is waiting.
  pub fn ready(&self, seg: &Segment) -> bool {
    seg.u64_at(IR_CH_TAIL).load(Ordering::Acquire) != self.pos || is_closed(seg)
  }

  /// Hands the next message to `f` and releases it afterwards ([`RecvOutcome::Message`]), or says
  /// why there is none; `Err` when the ring is corrupt. `f` is called at most once, and only with a
  /// payload that is intact: read in place under `block`, a verified private copy under `lossy`.
  /// After a message the caller rings the space doorbell (it costs nothing unless the publisher
  /// sleeps).
  pub fn try_recv<R>(&mut self, seg: &Segment, f: impl FnOnce(Frame<'_>) -> R) -> Result<RecvOutcome<R>, RingError> {
    let cap = self.config.capacity;
    let data = self.config.data();
    let lossy = self.lossy;
    loop {
      let tail = if !lossy && self.pos != self.seen_tail {
        self.seen_tail
      } else {
        // SYNC: observe record — pairs with the publisher's Release store of the tail.
        self.seen_tail = seg.u64_at(IR_CH_TAIL).load(Ordering::Acquire);
        self.seen_tail
      };
      if self.pos == tail {
        return Ok(if is_closed(seg) && seg.u64_at(IR_CH_TAIL).load(Ordering::Acquire) == self.pos {
          RecvOutcome::Closed
        } else {
          RecvOutcome::Empty
        });
      }
      let available = tail.wrapping_sub(self.pos);
      if lossy && (available > cap || self.pos < seg.u64_at(IR_CH_MIN_VALID).load(Ordering::Acquire)) {
        let missed = self.skip_to_oldest(seg)?;
        return Ok(RecvOutcome::Lagged { missed });
      }
      if available > cap || self.pos % IR_FRAME_ALIGN as u64 != 0 {
        return Err(corrupt(seg, format!("subscriber {} at {} is out of step with tail {tail}", self.index, self.pos)));
      }
      let in_ring = self.pos & (cap - 1);
      let offset = data + in_ring as usize;
      let header = read_header(seg, offset);
      let checked = check_record(seg, header, in_ring, cap, available, &[IR_FRAME_KIND_DATA]);
      if lossy && self.overwritten(seg) {
        continue;
      }
      let size = checked?;
      if header.kind == IR_FRAME_KIND_PADDING {
        self.advance(seg, size);
        continue;
      }
      let len = header.len as usize;
      let payload: &[u8] = if lossy {
        // The publisher may be overwriting these bytes right now: no reference to them is formed,
        // they are loaded word by word into our copy, which counts only if the check below passes.
        copy_words(seg, offset + IR_FRAME_HEADER_SIZE, len, &mut self.copy);
        if self.overwritten(seg) {
          continue;
        }
        &self.copy
      } else {
        let ptr = seg.bytes_ptr(offset + IR_FRAME_HEADER_SIZE, len);
        // SAFETY: inside the segment (checked by `bytes_ptr`), and immutable while we hold it: under
        // `block` the publisher never writes at or after our cursor (§7.3), which moves only after `f`.
        unsafe { std::slice::from_raw_parts(ptr, len) }
      };
      let missed = header.seq.wrapping_sub(self.next_seq);
      if lossy && missed != 0 && missed < u64::MAX / 2 {
        // A record with a later sequence number than expected: messages were lost in between.
        self.next_seq = header.seq;
        return Ok(RecvOutcome::Lagged { missed });
      }
      let out = f(Frame { kind: header.kind, seq: header.seq, payload });
      self.next_seq = header.seq.wrapping_add(1);
      self.advance(seg, size);
      return Ok(RecvOutcome::Message(out));
    }
  }

  /// After copying a record of a lossy channel: whether the publisher retired it meanwhile.
  fn overwritten(&self, seg: &Segment) -> bool {
    // SYNC: retire records — pairs with the Release fence in `retire_until`.
    fence(Ordering::Acquire);
    self.pos < seg.u64_at(IR_CH_MIN_VALID).load(Ordering::Relaxed)
  }

  /// Lossy: the publisher lapped us; continue at the oldest intact record and return how many
  /// messages were lost.
  fn skip_to_oldest(&mut self, seg: &Segment) -> Result<u64, RingError> {
    // SYNC: retire after publish — pairs with the Release store of min_valid in `retire_until`.
    let min_valid = seg.u64_at(IR_CH_MIN_VALID).load(Ordering::Acquire);
    // A fresh tail, loaded after min_valid: the tail of the attempt may be a ring's worth older, and
    // min_valid legitimately beyond it (the publisher retires before it stores its next tail).
    let tail = seg.u64_at(IR_CH_TAIL).load(Ordering::Acquire);
    if min_valid > tail || min_valid % IR_FRAME_ALIGN as u64 != 0 {
      return Err(corrupt(seg, format!("min_valid {min_valid} is beyond tail {tail}")));
    }
    self.pos = min_valid;
    let header = read_header(seg, self.config.data() + (min_valid & (self.config.capacity - 1)) as usize);
    let missed = if self.overwritten(seg) { 0 } else { header.seq.wrapping_sub(self.next_seq) };
    // Sequence numbers of the records still to be read decide the count; a torn read counts later.
    let missed = if missed < u64::MAX / 2 { missed } else { 0 };
    self.next_seq = self.next_seq.wrapping_add(missed);
    seg.u64_at(sub_offset(self.index) + IR_SUB_POS).store(self.pos, Ordering::Release);
    Ok(missed)
  }

  fn advance(&mut self, seg: &Segment, size: u64) {
    self.pos += size;
    // SYNC: release space — pairs with the publisher's Acquire load of the cursor.
    seg.u64_at(sub_offset(self.index) + IR_SUB_POS).store(self.pos, Ordering::Release);
  }

  /// After a receive: whether to ring the space doorbell now. Under `block` a publisher can only be
  /// waiting when the ring is full, so waking it once this subscriber has caught up with the tail it
  /// knows, or has freed an eighth of the ring, is prompt enough, and spares a fence per message.
  pub fn wants_publisher_wake(&mut self) -> bool {
    if self.pos == self.seen_tail || self.pos.wrapping_sub(self.woke_at) >= self.config.capacity / 8 {
      self.woke_at = self.pos;
      true
    } else {
      false
    }
  }

  /// Leaves the channel: frees the slot so the publisher stops waiting for this cursor.
  pub fn leave(&self, seg: &Segment) {
    free_subscriber(seg, &self.config, self.index);
  }
}

/// Copies the `len` bytes at `offset` into `out` with Relaxed atomic 8-byte loads: a lossy record's
/// payload, which the publisher may overwrite meanwhile. Forming a `&[u8]` over such bytes would be
/// undefined behaviour; atomic loads of memory another process writes are not, and a torn copy is
/// discarded by the caller's `min_valid` re-check. Reads whole words: the record's size is rounded up
/// to `IR_FRAME_ALIGN` (16), so the last word is still inside the record that `check_record` accepted.
fn copy_words(seg: &Segment, offset: usize, len: usize, out: &mut Vec<u8>) {
  const WORD: usize = std::mem::size_of::<u64>();
  let words = len.div_ceil(WORD);
  let base = seg.bytes_ptr(offset, words * WORD);
  out.clear();
  out.reserve(words * WORD);
  for i in 0..words {
    // SAFETY: inside the segment (checked by `bytes_ptr` for all the words) and 8-byte aligned (the
    // data area and every record start at a multiple of 8, the payload 16 bytes into its record);
    // AtomicU64 has the layout of u64 and shared memory is only accessed atomically here.
    let word = unsafe { &*(base.add(i * WORD) as *const AtomicU64) };
    out.extend_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
  }
  out.truncate(len);
}
