//! Live figures of channels and links, derived from words their writers already store (the tail and
//! `next_seq` of the publisher, each subscriber's position and missed count, the counters of a link),
//! for the broker's `Describe` and `List` answers. Nothing here writes or waits: every word is loaded
//! Relaxed and every value is treated as a hint, validated before it steers a read, and clamped.

use std::sync::atomic::Ordering;

use crate::broadcast::ChannelConfig;
use crate::frame::read_header;
use crate::layout::*;
use crate::segment::Segment;

/// A subscriber cursor as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscriberFigures {
  /// The cursor's index in the segment.
  pub index: u32,
  /// App id of the subscriber.
  pub owner: u32,
  /// Byte position of the next record it reads.
  pub position: u64,
  /// Messages published that it has not read yet.
  pub lag: u64,
  /// Messages it missed (lossy), as it reported them.
  pub missed: u64,
}

/// A channel as seen from outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelFigures {
  /// Messages published (`next_seq`).
  pub published: u64,
  /// Bytes written to the ring (`tail`: frames with their headers and padding).
  pub bytes: u64,
  /// Every joined subscriber (ACTIVE) and observer (OBSERVING).
  pub subscribers: Vec<SubscriberFigures>,
}

/// The figures of a channel segment whose header `config` was validated when it was opened.
pub fn channel(seg: &Segment, config: &ChannelConfig) -> ChannelFigures {
  let published = seg.u64_at(IR_CH_NEXT_SEQ).load(Ordering::Relaxed);
  let tail = seg.u64_at(IR_CH_TAIL).load(Ordering::Relaxed);
  let mut subscribers = Vec::new();
  for index in 0..config.max_subscribers {
    let slot = IR_CH_SUBSCRIBERS + index as usize * IR_SUB_SIZE;
    let state = seg.u32_at(slot + IR_SUB_STATE).load(Ordering::Relaxed);
    if state != IR_SUB_ACTIVE && state != IR_SUB_OBSERVING {
      continue;
    }
    let position = seg.u64_at(slot + IR_SUB_POS).load(Ordering::Relaxed);
    let next = seq_at(seg, config, position, tail).unwrap_or(published);
    subscribers.push(SubscriberFigures {
      index,
      owner: seg.u32_at(slot + IR_SUB_OWNER).load(Ordering::Relaxed),
      position,
      lag: published.saturating_sub(next),
      missed: seg.u64_at(slot + IR_SUB_MISSED).load(Ordering::Relaxed),
    });
  }
  ChannelFigures { published, bytes: tail, subscribers }
}

/// The sequence number of the message a cursor at `position` reads next, when the record there is
/// still intact and looks sane; `None` when it is caught up or the bytes do not check out.
fn seq_at(seg: &Segment, config: &ChannelConfig, position: u64, tail: u64) -> Option<u64> {
  let capacity = config.capacity;
  let min_valid = seg.u64_at(IR_CH_MIN_VALID).load(Ordering::Relaxed);
  // A lossy cursor behind `min_valid` reads from `min_valid` on.
  let mut pos = position.max(min_valid);
  for _ in 0..2 {
    if pos >= tail || tail - pos > capacity || pos % IR_FRAME_ALIGN as u64 != 0 {
      return None;
    }
    let in_ring = pos & (capacity - 1);
    let header = read_header(seg, channel_data_offset(config.max_subscribers as usize) + in_ring as usize);
    if header.kind != IR_FRAME_KIND_PADDING {
      return Some(header.seq);
    }
    // Padding runs to the end of the ring; the next record starts the ring again.
    pos += capacity - in_ring;
  }
  None
}

/// A link's call counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkFigures {
  /// Requests the caller wrote.
  pub calls: u64,
  /// Responses the provider wrote.
  pub served: u64,
  /// Error responses among them.
  pub failed: u64,
}

impl LinkFigures {
  /// Calls written and not answered yet.
  pub fn in_flight(&self) -> u64 {
    self.calls.saturating_sub(self.served)
  }
}

/// The counters of a link segment.
pub fn link(seg: &Segment) -> LinkFigures {
  LinkFigures {
    calls: seg.u64_at(IR_LINK_CALLS).load(Ordering::Relaxed),
    served: seg.u64_at(IR_LINK_SERVED).load(Ordering::Relaxed),
    failed: seg.u64_at(IR_LINK_FAILED).load(Ordering::Relaxed),
  }
}
