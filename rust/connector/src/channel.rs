//! Data channels: a `Publisher` writes Single Object Encoded messages straight into the channel's
//! shared ring; each `Subscriber` reads them in place with its own cursor.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use impulse_ring_core::avro::{soe_header, SOE_HEADER_LEN};
use impulse_ring_core::broadcast::{self, ChannelConfig, PublisherCursor, RecvOutcome, SubscriberCursor};
use impulse_ring_core::control::*;
use impulse_ring_core::doorbell::{Doorbell, WaitStrategy};
use impulse_ring_core::frame::RingError;
use impulse_ring_core::layout::*;
use impulse_ring_core::segment::{Segment, SegmentError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{open_soe, Codec};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::op_error::{PublishChannelError, PublishError, RecvError, SubscribeError};
use crate::session::{ring_error, segment_error, truncated, Session};

/// Options of a published channel.
#[derive(Clone, Debug)]
pub struct PublishOptions {
  /// Ring capacity in bytes: a power of two from 4096 to 1 GiB; 0 takes the default (1 MiB).
  pub capacity: u64,
  /// `false` (default): `block`, nothing is lost, the publisher waits for the slowest subscriber.
  /// `true`: `lossy`, the publisher never waits, a lagging subscriber is told how many it missed.
  pub lossy: bool,
  /// How `publish` waits for space under `block`.
  pub wait: WaitStrategy,
  /// How long `publish` may wait for space before failing with `Timeout`; `None` waits forever.
  pub send_timeout: Option<Duration>,
}

impl Default for PublishOptions {
  fn default() -> Self {
    PublishOptions {
      capacity: 0,
      lossy: false,
      wait: WaitStrategy::default(),
      send_timeout: Some(Duration::from_secs(10)),
    }
  }
}

/// The publishing end of a channel. Dropping it closes the channel: subscribers read what is left,
/// then see `Closed`.
pub struct Publisher {
  session: Arc<Session>,
  name: String,
  seg: Segment,
  cursor: PublisherCursor,
  codec: Codec,
  options: PublishOptions,
  scratch: Vec<u8>,
}

impl Publisher {
  /// The channel's name.
  pub fn name(&self) -> &str {
    &self.name
  }

  /// The broker's id of the channel.
  pub fn channel_id(&self) -> u64 {
    self.cursor.config().channel_id
  }

  /// The CRC-64-AVRO fingerprint of the channel's schema.
  pub fn fingerprint(&self) -> u64 {
    self.codec.fingerprint
  }

  /// The largest datum `publish_raw` accepts.
  pub fn max_datum(&self) -> usize {
    self.cursor.config().max_payload() - SOE_HEADER_LEN
  }

  /// Encodes `value` with the channel's schema and publishes it.
  pub fn publish<T: Serialize>(&mut self, value: &T) -> Result<(), PublishError> {
    let mut scratch = std::mem::take(&mut self.scratch);
    scratch.clear();
    let result = self.codec.encode_soe(value, &mut scratch).and_then(|()| self.put(&scratch[SOE_HEADER_LEN..], true));
    self.scratch = scratch;
    result.map_err(Into::into)
  }

  /// Publishes a pre-encoded Avro datum of the channel's schema (no header: the connector adds it).
  pub fn publish_raw(&mut self, datum: &[u8]) -> Result<(), PublishError> {
    self.put(datum, true).map_err(Into::into)
  }

  /// Like `publish_raw`, but fails with `WouldBlock` instead of waiting when the ring is full.
  pub fn try_publish_raw(&mut self, datum: &[u8]) -> Result<(), PublishError> {
    self.put(datum, false).map_err(Into::into)
  }

  fn put(&mut self, datum: &[u8], wait: bool) -> Result<()> {
    let header = soe_header(self.codec.fingerprint);
    let len = SOE_HEADER_LEN + datum.len();
    let seg = &self.seg;
    let channel_truncated = || truncated(seg, &format!("channel `{}`", self.name));
    if seg.truncated() {
      return Err(channel_truncated());
    }
    let cursor = &mut self.cursor;
    let mut attempt = || {
      cursor.try_publish(seg, len, |dst| {
        dst[..SOE_HEADER_LEN].copy_from_slice(&header);
        dst[SOE_HEADER_LEN..].copy_from_slice(datum);
      })
    };
    let outcome = match attempt() {
      Err(RingError::Full) if wait => {
        let deadline = self.options.send_timeout.map(|t| Instant::now() + t);
        let space = Doorbell::at(seg, IR_CH_SPACE_DOORBELL);
        space
          .wait_until(self.options.wait, deadline, || match attempt() {
            Err(RingError::Full) => None,
            other => Some(other),
          })
          .unwrap_or(Err(RingError::Full))
          .map_err(|e| match e {
            RingError::Full => Error::Timeout {
              what: format!("publishing on `{}` (a subscriber is a whole ring behind)", self.name),
              after: self.options.send_timeout.unwrap_or_default(),
            },
            other => ring_error(other),
          })
      }
      Err(RingError::Full) => Err(Error::WouldBlock { channel: self.name.clone() }),
      other => other.map_err(ring_error),
    };
    outcome?;
    if seg.truncated() {
      // The message went into a page the object lost: no subscriber will see it.
      return Err(channel_truncated());
    }
    // `try_publish` stored the tail with SeqCst.
    Doorbell::at(seg, IR_CH_DATA_DOORBELL).ring_after_seqcst_store();
    Ok(())
  }
}

impl Drop for Publisher {
  fn drop(&mut self) {
    // Close at once (subscribers need not wait for the broker), then let the broker unlink.
    broadcast::close(&self.seg);
    Doorbell::at(&self.seg, IR_CH_DATA_DOORBELL).ring();
    let request_id = self.session.request_id();
    let _ = self.session.post(CloseChannel { request_id, channel_id: self.channel_id() as i64 }.into());
  }
}

/// Options of a subscription.
#[derive(Clone, Debug, Default)]
pub struct SubscribeOptions {
  /// How `recv` waits for messages.
  pub wait: WaitStrategy,
  /// Join as an observer (what `ring tap` does): the publisher never waits for this subscriber, even
  /// on a `block` channel; when the publisher laps it, `recv` reports `Lagged` with the messages
  /// missed, as on a lossy channel.
  pub observe: bool,
}

/// The receiving end of a channel.
pub struct Subscriber {
  session: Arc<Session>,
  name: String,
  seg: Segment,
  cursor: SubscriberCursor,
  /// Shared so that a typed receive can decode while the cursor is borrowed mutably.
  codec: Arc<Codec>,
  options: SubscribeOptions,
  /// Messages missed so far (lossy), mirrored in the cursor's `IR_SUB_MISSED` word for `Describe`.
  missed: u64,
  last_seq: Option<u64>,
}

impl Subscriber {
  /// The channel's name.
  pub fn name(&self) -> &str {
    &self.name
  }

  /// The CRC-64-AVRO fingerprint of the channel's schema.
  pub fn fingerprint(&self) -> u64 {
    self.codec.fingerprint
  }

  /// The sequence number of the message received last (0 is the channel's first message ever), or
  /// `None` before the first.
  pub fn last_seq(&self) -> Option<u64> {
    self.last_seq
  }

  /// Waits up to `timeout` for the next message and hands its datum to `f`, in place in shared
  /// memory (a private copy on a lossy channel). `Ok(None)` on timeout. Errors: `Closed` once the
  /// channel is closed and drained, `Lagged` (lossy) when messages were lost before this one,
  /// `BrokerGone`, `Decode`, `Corrupt`.
  pub fn recv_with<R>(&mut self, timeout: Duration, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, RecvError> {
    self.receive(Some(Instant::now() + timeout), f).map_err(Into::into)
  }

  /// Receives without waiting.
  pub fn try_recv_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, RecvError> {
    self.receive(Some(Instant::now()), f).map_err(Into::into)
  }

  /// Waits up to `timeout` for the next message, decoded into `T`.
  pub fn recv<T: DeserializeOwned>(&mut self, timeout: Duration) -> Result<Option<T>, RecvError> {
    let codec = self.codec.clone();
    let decoded = self.recv_with(timeout, |datum| codec.decode(datum))?;
    decoded.transpose().map_err(Into::into)
  }

  /// Receives and decodes without waiting.
  pub fn try_recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, RecvError> {
    let codec = self.codec.clone();
    let decoded = self.try_recv_with(|datum| codec.decode(datum))?;
    decoded.transpose().map_err(Into::into)
  }

  /// Waits up to `timeout` for the next message and returns a copy of its datum.
  pub fn recv_raw(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, RecvError> {
    self.recv_with(timeout, <[u8]>::to_vec)
  }

  fn receive<R>(&mut self, deadline: Option<Instant>, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
    let fingerprint = self.codec.fingerprint;
    let seg = &self.seg;
    let cursor = &mut self.cursor;
    let session = &self.session;
    let name = &self.name;
    let mut f = Some(f);
    let mut seq = None;
    let channel_truncated = || Some(Err(truncated(seg, &format!("channel `{name}`"))));
    let mut attempt = || -> Option<Result<R>> {
      if seg.truncated() {
        return channel_truncated();
      }
      let read = cursor.try_recv(seg, |frame| {
        seq = Some(frame.seq);
        open_soe(frame.payload, fingerprint).map(|datum| f.take().map(|f| f(datum)))
      });
      if seg.truncated() {
        // Part of what was read came from a lost page (zeros): it is not the message.
        return channel_truncated();
      }
      match read {
        Ok(RecvOutcome::Message(Ok(Some(out)))) => Some(Ok(out)),
        Ok(RecvOutcome::Message(Ok(None))) => Some(Err(Error::Protocol { message: "message handed out twice".into() })),
        Ok(RecvOutcome::Message(Err(e))) => Some(Err(e)),
        Ok(RecvOutcome::Empty) if session.broker_gone() => Some(Err(Error::BrokerGone { ns: session.ns.clone() })),
        Ok(RecvOutcome::Empty) => None,
        // A broker that shuts down closes every channel: that is the broker leaving, not the publisher.
        Ok(RecvOutcome::Closed) if session.ctl.shutting_down() => {
          Some(Err(Error::BrokerGone { ns: session.ns.clone() }))
        }
        Ok(RecvOutcome::Closed) => Some(Err(Error::Closed { what: format!("channel `{name}`") })),
        Ok(RecvOutcome::Lagged { missed }) => Some(Err(Error::Lagged { missed })),
        Err(e) => Some(Err(ring_error(e))),
      }
    };
    let data = Doorbell::at(seg, IR_CH_DATA_DOORBELL);
    let outcome = data.wait_until(self.options.wait, deadline, &mut attempt);
    if matches!(outcome, Some(Ok(_))) {
      self.last_seq = seq;
    }
    if let Some(Err(Error::Lagged { missed })) = outcome {
      self.missed += missed;
      let slot = IR_CH_SUBSCRIBERS + cursor.index() as usize * IR_SUB_SIZE;
      seg.u64_at(slot + IR_SUB_MISSED).store(self.missed, Ordering::Relaxed);
    }
    if matches!(outcome, Some(Ok(_)) | Some(Err(Error::Decode { .. }))) && cursor.wants_publisher_wake() {
      Doorbell::at(seg, IR_CH_SPACE_DOORBELL).ring();
    }
    outcome.transpose()
  }
}

impl Drop for Subscriber {
  fn drop(&mut self) {
    if self.session.closing() {
      // The broker freed our subscriber slot with the app; it may already be someone else's.
      return;
    }
    self.cursor.leave(&self.seg);
    Doorbell::at(&self.seg, IR_CH_SPACE_DOORBELL).ring();
    let request_id = self.session.request_id();
    let unsubscribe = Unsubscribe {
      request_id,
      channel_id: self.cursor.config().channel_id as i64,
      subscriber_index: self.cursor.index() as i32,
    };
    let _ = self.session.post(unsubscribe.into());
  }
}

impl Connection {
  /// Publishes the channel `name` with the Avro schema `schema_json`; subscribers must present the
  /// same schema and, if `key` is set, the same key.
  pub fn publish_channel(
    &self,
    name: &str,
    schema_json: &str,
    key: Option<&str>,
    options: PublishOptions,
  ) -> Result<Publisher, PublishChannelError> {
    let codec = Codec::new(schema_json)?;
    let request_id = self.session.request_id();
    let publish = PublishChannel {
      request_id,
      name: name.to_string(),
      schema: schema_json.to_string(),
      key: self.session.seal_key(request_id, key)?,
      capacity: options.capacity as i64,
      lossy: options.lossy,
    };
    let published = match self.session.request(request_id, publish.into())? {
      ControlMessage::ChannelPublished(m) => m,
      other => {
        return Err(Error::Protocol { message: format!("expected ChannelPublished, got {}", other.name()) }.into())
      }
    };
    let seg = Segment::open(&published.segment, IR_KIND_CHANNEL).map_err(segment_error)?;
    let config = ChannelConfig::read(&seg).map_err(ring_error)?;
    check_channel(&config, published.channel_id, codec.fingerprint)?;
    let cursor = PublisherCursor::new(&seg, config);
    Ok(Publisher {
      session: self.session.clone(),
      name: name.to_string(),
      seg,
      cursor,
      codec,
      options,
      scratch: Vec::new(),
    })
  }

  /// Subscribes to the channel `name`, presenting `key` and the schema `schema_json`.
  pub fn subscribe(&self, name: &str, key: Option<&str>, schema_json: &str) -> Result<Subscriber, SubscribeError> {
    self.subscribe_with(name, key, schema_json, SubscribeOptions::default())
  }

  /// Subscribes to the channel with broker id `channel_id` (as `ring ls` shows it), presenting `key`
  /// and `schema_json`. The id is looked up in the broker's listing, then subscribed to by name.
  pub fn subscribe_by_id(
    &self,
    channel_id: u64,
    key: Option<&str>,
    schema_json: &str,
  ) -> Result<Subscriber, SubscribeError> {
    let listing = self.list().map_err(Error::from)?;
    let Some(channel) = listing.channels.iter().find(|c| c.channel_id as u64 == channel_id) else {
      return Err(Error::UnknownChannel { message: format!("no channel with id {channel_id} is published") }.into());
    };
    self.subscribe(&channel.name, key, schema_json)
  }

  /// Subscribes with explicit options.
  pub fn subscribe_with(
    &self,
    name: &str,
    key: Option<&str>,
    schema_json: &str,
    options: SubscribeOptions,
  ) -> Result<Subscriber, SubscribeError> {
    let codec = Codec::new(schema_json)?;
    let request_id = self.session.request_id();
    let subscribe = Subscribe {
      request_id,
      name: name.to_string(),
      schema: schema_json.to_string(),
      key: self.session.seal_key(request_id, key)?,
    };
    let subscribed = match self.session.request(request_id, subscribe.into())? {
      ControlMessage::Subscribed(m) => m,
      other => return Err(Error::Protocol { message: format!("expected Subscribed, got {}", other.name()) }.into()),
    };
    let seg = Segment::open(&subscribed.segment, IR_KIND_CHANNEL).map_err(|e| match e {
      // The publisher closed the channel (and the broker unlinked it) after the broker answered.
      SegmentError::NotFound { .. } => Error::Closed { what: format!("channel `{name}`") },
      other => segment_error(other),
    })?;
    let config = ChannelConfig::read(&seg).map_err(ring_error)?;
    check_channel(&config, subscribed.channel_id, codec.fingerprint)?;
    let index = subscribed.subscriber_index as u32;
    let cursor = if options.observe {
      SubscriberCursor::observe(&seg, config, index)
    } else {
      SubscriberCursor::join(&seg, config, index)
    }
    .map_err(ring_error)?;
    Ok(Subscriber {
      session: self.session.clone(),
      name: name.to_string(),
      seg,
      cursor,
      codec: Arc::new(codec),
      options,
      missed: 0,
      last_seq: None,
    })
  }
}

/// The segment the broker named must be the channel the broker described.
fn check_channel(config: &ChannelConfig, channel_id: i64, fingerprint: u64) -> Result<()> {
  if config.channel_id != channel_id as u64 || config.fingerprint != fingerprint {
    return Err(Error::Corrupt {
      message: format!("channel segment holds channel {} of schema {:016x}", config.channel_id, config.fingerprint),
    });
  }
  Ok(())
}
