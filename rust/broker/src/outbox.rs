//! Replies and events on their way to one app: what did not fit its reply ring yet waits here, in
//! order. The broker never waits for an app; it writes what the ring takes and keeps the rest, within
//! bounds: past [`BACKLOG_BYTES`] the broker stops reading the app's requests (back-pressure: the app's
//! request ring fills and its writes wait), and past [`MAX_BYTES`] (only events that other apps cause
//! can get there) records are dropped with a logged reason. An app's outbox goes with the app.

use std::collections::VecDeque;

use impulse_ring_core::control::{ControlMessage, Failed};
use impulse_ring_core::error_code::ErrorCode;
use impulse_ring_core::frame::RingError;
use impulse_ring_core::layout::IR_FRAME_KIND_CONTROL;
use impulse_ring_core::ring::Ring;
use impulse_ring_core::segment::Segment;
use tracing::warn;

/// Queued bytes past which the broker reads no more requests of the app: eight control rings' worth.
pub const BACKLOG_BYTES: usize = 512 * 1024;

/// Queued bytes past which records for the app are dropped.
pub const MAX_BYTES: usize = 4 * BACKLOG_BYTES;

/// The encoded control records waiting for one app's reply ring.
#[derive(Default)]
pub struct Outbox {
  queue: VecDeque<Vec<u8>>,
  /// Sum of the lengths in `queue`.
  bytes: usize,
}

impl Outbox {
  pub fn is_empty(&self) -> bool {
    self.queue.is_empty()
  }

  /// Whether the app has fallen so far behind that its requests must wait.
  pub fn backlogged(&self) -> bool {
    self.bytes >= BACKLOG_BYTES
  }

  /// Queues an encoded record; `false` (and the record dropped) when the outbox is full.
  pub fn push(&mut self, payload: Vec<u8>) -> bool {
    if self.bytes + payload.len() > MAX_BYTES {
      return false;
    }
    self.bytes += payload.len();
    self.queue.push_back(payload);
    true
  }

  fn pop(&mut self) {
    if let Some(payload) = self.queue.pop_front() {
      self.bytes -= payload.len();
    }
  }

  /// Writes as much as `ring` takes; whether anything was written. When the ring fills, the broker
  /// asks to be woken (`producer_waiting`) when the app reads.
  pub fn flush(&mut self, slot: u32, ring: &Ring, seg: &Segment) -> bool {
    let mut wrote = false;
    while let Some(payload) = self.queue.front() {
      match ring.try_write_bytes(seg, IR_FRAME_KIND_CONTROL, 0, payload) {
        Ok(()) => {
          self.pop();
          wrote = true;
        }
        Err(RingError::Full) => {
          ring.set_producer_waiting(seg, true);
          break;
        }
        Err(e) => {
          // Only a corrupt ring gets here (sizes are checked by `encode_reply`): drop the record
          // rather than block every later one.
          warn!(slot, "dropping a reply: {e}");
          self.pop();
        }
      }
    }
    if self.queue.is_empty() {
      ring.set_producer_waiting(seg, false);
    }
    wrote
  }
}

/// Encodes `message` for a reply ring whose frames carry at most `max_payload` bytes. A reply too large
/// for it (a listing of a crowded bus) becomes `Failed` with `TooLarge`, so the app hears at once why
/// instead of waiting for its timeout.
pub fn encode_reply(message: &ControlMessage, max_payload: usize) -> Vec<u8> {
  let payload = message.encode_frame_payload();
  if payload.len() <= max_payload {
    return payload;
  }
  warn!(record = message.name(), size = payload.len(), max_payload, "reply too large for the reply ring");
  let failed: ControlMessage = Failed {
    request_id: message.request_id().unwrap_or(0),
    code: ErrorCode::TooLarge as i32,
    message: format!(
      "the {} reply is {} bytes, more than the {max_payload} a control record can carry",
      message.name(),
      payload.len()
    ),
    expected_fingerprint: 0,
    presented_fingerprint: 0,
  }
  .into();
  failed.encode_frame_payload()
}

#[cfg(test)]
mod tests {
  use super::*;
  use impulse_ring_core::control::{AppInfo, Listing};

  fn listing(apps: usize) -> ControlMessage {
    let apps = (0..apps).map(|i| AppInfo { app_id: i as i32, name: "a".repeat(128), pid: 1 }).collect();
    Listing { request_id: 42, apps, channels: vec![], functions: vec![] }.into()
  }

  #[test]
  fn the_outbox_counts_its_bytes_and_refuses_past_its_bound() {
    let mut outbox = Outbox::default();
    let record = vec![0u8; 32 * 1024];
    let mut pushed = 0;
    while outbox.push(record.clone()) {
      pushed += 1;
      assert_eq!(outbox.backlogged(), pushed * record.len() >= BACKLOG_BYTES);
    }
    assert_eq!(pushed, MAX_BYTES / record.len());
    for _ in 0..pushed {
      outbox.pop();
    }
    assert!(outbox.is_empty() && !outbox.backlogged() && outbox.push(record));
  }

  #[test]
  fn a_reply_that_fits_is_sent_as_it_is() {
    let small = listing(2);
    assert_eq!(encode_reply(&small, 32_752), small.encode_frame_payload());
  }

  #[test]
  fn a_reply_too_large_for_the_ring_becomes_too_large_for_its_request() {
    let big = listing(300);
    let payload = encode_reply(&big, 32_752);
    assert!(payload.len() <= 32_752);
    match ControlMessage::decode_frame_payload(&payload).expect("decodes") {
      ControlMessage::Failed(f) => {
        assert_eq!((f.request_id, f.code), (42, ErrorCode::TooLarge as i32));
        assert!(f.message.starts_with("the Listing reply is "), "{}", f.message);
      }
      other => panic!("expected Failed, got {other:?}"),
    }
  }
}
