//! The control records an app and the broker exchange, and their frame payload: Single Object
//! Encoding of the Avro union of every record. The union's branch index is the opcode, so records are
//! only ever appended to [`ControlMessage`], never reordered. `spec/schemas/control.avsc` is generated from here.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::avro::{self, AvroField, AvroRecord, DecodeError};
use crate::avro_record;

/// Namespace of every control record.
pub const NAMESPACE: &str = "impulse.ring.control";

avro_record! {
  /// An app introduces itself to the broker; the first record on a freshly claimed slot.
  pub struct Register in "impulse.ring.control" {
    /// Chosen by the app, echoed in the reply.
    pub request_id: i64,
    /// A human-readable name, shown by `ring ls`.
    pub app_name: String,
    /// The app's process id.
    pub pid: i64,
    /// The app's process start time (clock ticks since boot, field 22 of /proc/PID/stat), against pid reuse.
    pub start_time: i64,
    /// The app's ephemeral X25519 public key (32 bytes), fresh for this registration; access keys are sealed with the session it sets up (bootstrap.md §5.5).
    pub public_key: Vec<u8>,
  }
}

avro_record! {
  /// The broker accepted a Register.
  pub struct Registered in "impulse.ring.control" {
    /// Echo of the request's id.
    pub request_id: i64,
    /// The app's id on this broker, also its slot index.
    pub app_id: i32,
    /// The broker's process id, watched by the app for liveness.
    pub broker_pid: i64,
    /// The broker's ephemeral X25519 public key (32 bytes), fresh for this registration (bootstrap.md §5.5).
    pub public_key: Vec<u8>,
  }
}

avro_record! {
  /// Publish a data channel.
  pub struct PublishChannel in "impulse.ring.control" {
    /// Chosen by the app, echoed in the reply.
    pub request_id: i64,
    /// The channel's name, unique in the namespace.
    pub name: String,
    /// The schema JSON of every message; the broker computes its fingerprint.
    pub schema: String,
    /// The access key subscribers must present, sealed for this request (bootstrap.md §5.5), or null for an open channel.
    pub key: Option<Vec<u8>>,
    /// Ring capacity in bytes; 0 asks for the broker's default.
    pub capacity: i64,
    /// True for the lossy overflow policy, false for block.
    pub lossy: bool,
  }
}

avro_record! {
  /// The broker created a channel's segment.
  pub struct ChannelPublished in "impulse.ring.control" {
    /// Echo of the request's id.
    pub request_id: i64,
    /// The channel's id on this broker.
    pub channel_id: i64,
    /// Name of the channel's shared memory segment.
    pub segment: String,
    /// Fingerprint of the channel's schema.
    pub fingerprint: i64,
    /// Ring capacity in bytes.
    pub capacity: i64,
    /// Largest payload a frame may carry.
    pub max_payload: i64,
  }
}

avro_record! {
  /// Subscribe to a data channel.
  pub struct Subscribe in "impulse.ring.control" {
    /// Chosen by the app, echoed in the reply.
    pub request_id: i64,
    /// The channel's name.
    pub name: String,
    /// The schema JSON the subscriber reads with; its fingerprint must equal the channel's.
    pub schema: String,
    /// The access key, sealed for this request (bootstrap.md §5.5), or null.
    pub key: Option<Vec<u8>>,
  }
}

avro_record! {
  /// The broker admitted a subscriber.
  pub struct Subscribed in "impulse.ring.control" {
    /// Echo of the request's id.
    pub request_id: i64,
    /// The channel's id.
    pub channel_id: i64,
    /// Name of the channel's shared memory segment.
    pub segment: String,
    /// The subscriber's cursor index in the segment.
    pub subscriber_index: i32,
    /// Fingerprint of the channel's schema.
    pub fingerprint: i64,
    /// True when the channel is lossy.
    pub lossy: bool,
  }
}

avro_record! {
  /// Give up a subscription.
  pub struct Unsubscribe in "impulse.ring.control" {
    /// Chosen by the app, echoed in the reply.
    pub request_id: i64,
    /// The channel's id.
    pub channel_id: i64,
    /// The subscriber's cursor index.
    pub subscriber_index: i32,
  }
}

avro_record! {
  /// The publisher closes its channel.
  pub struct CloseChannel in "impulse.ring.control" {
    /// Chosen by the app, echoed in the reply.
    pub request_id: i64,
    /// The channel's id.
    pub channel_id: i64,
  }
}

avro_record! {
  /// Expose a function.
  pub struct ExposeFunction in "impulse.ring.control" {
    /// Chosen by the app, echoed in the reply.
    pub request_id: i64,
    /// The function's name, unique in the namespace.
    pub name: String,
    /// Schema JSON of the requests.
    pub request_schema: String,
    /// Schema JSON of the responses.
    pub response_schema: String,
    /// The access key callers must present, sealed for this request (bootstrap.md §5.5), or null.
    pub key: Option<Vec<u8>>,
  }
}

avro_record! {
  /// The broker registered a function.
  pub struct FunctionExposed in "impulse.ring.control" {
    /// Echo of the request's id.
    pub request_id: i64,
    /// The function's id on this broker.
    pub function_id: i64,
    /// Fingerprint of the request schema.
    pub request_fingerprint: i64,
    /// Fingerprint of the response schema.
    pub response_fingerprint: i64,
  }
}

avro_record! {
  /// A caller asks for a link to a function.
  pub struct ResolveFunction in "impulse.ring.control" {
    /// Chosen by the app, echoed in the reply.
    pub request_id: i64,
    /// The function's name.
    pub name: String,
    /// Schema JSON of the requests; its fingerprint must equal the function's.
    pub request_schema: String,
    /// Schema JSON of the responses; its fingerprint must equal the function's.
    pub response_schema: String,
    /// The access key, sealed for this request (bootstrap.md §5.5), or null.
    pub key: Option<Vec<u8>>,
  }
}

avro_record! {
  /// The broker created a link between a caller and a function.
  pub struct FunctionResolved in "impulse.ring.control" {
    /// Echo of the request's id.
    pub request_id: i64,
    /// The function's id.
    pub function_id: i64,
    /// The link's id.
    pub link_id: i64,
    /// Name of the link's shared memory segment.
    pub segment: String,
    /// Fingerprint of the request schema.
    pub request_fingerprint: i64,
    /// Fingerprint of the response schema.
    pub response_fingerprint: i64,
    /// Largest payload a request or response frame may carry.
    pub max_payload: i64,
  }
}

avro_record! {
  /// The provider withdraws a function.
  pub struct WithdrawFunction in "impulse.ring.control" {
    /// Chosen by the app, echoed in the reply.
    pub request_id: i64,
    /// The function's id.
    pub function_id: i64,
  }
}

avro_record! {
  /// Event to a provider: a caller has a new link to one of its functions.
  pub struct LinkOpened in "impulse.ring.control" {
    /// The function's id.
    pub function_id: i64,
    /// The link's id.
    pub link_id: i64,
    /// Name of the link's shared memory segment.
    pub segment: String,
  }
}

avro_record! {
  /// Event: the other side of a link is gone.
  pub struct LinkClosed in "impulse.ring.control" {
    /// The link's id.
    pub link_id: i64,
    /// Why, as an error code.
    pub code: i32,
    /// Why, in words.
    pub message: String,
  }
}

avro_record! {
  /// Event to a subscriber: the channel is closed.
  pub struct ChannelClosed in "impulse.ring.control" {
    /// The channel's id.
    pub channel_id: i64,
  }
}

avro_record! {
  /// Ask for what is on the bus.
  pub struct List in "impulse.ring.control" {
    /// Chosen by the app, echoed in the reply.
    pub request_id: i64,
  }
}

avro_record! {
  /// A registered app, in a Listing.
  pub struct AppInfo in "impulse.ring.control" {
    /// The app's id.
    pub app_id: i32,
    /// The app's name.
    pub name: String,
    /// The app's process id.
    pub pid: i64,
  }
}

avro_record! {
  /// A published channel, in a Listing.
  pub struct ChannelInfo in "impulse.ring.control" {
    /// The channel's id.
    pub channel_id: i64,
    /// The channel's name.
    pub name: String,
    /// The publishing app's id.
    pub owner_app_id: i32,
    /// Fingerprint of the channel's schema.
    pub fingerprint: i64,
    /// Ring capacity in bytes.
    pub capacity: i64,
    /// True when the channel is lossy.
    pub lossy: bool,
    /// Number of subscribers.
    pub subscribers: i32,
    /// Messages published so far.
    pub published: i64,
  }
}

avro_record! {
  /// An exposed function, in a Listing.
  pub struct FunctionInfo in "impulse.ring.control" {
    /// The function's id.
    pub function_id: i64,
    /// The function's name.
    pub name: String,
    /// The providing app's id.
    pub owner_app_id: i32,
    /// Fingerprint of the request schema.
    pub request_fingerprint: i64,
    /// Fingerprint of the response schema.
    pub response_fingerprint: i64,
  }
}

avro_record! {
  /// What is on the bus.
  pub struct Listing in "impulse.ring.control" {
    /// Echo of the request's id.
    pub request_id: i64,
    /// Registered apps.
    pub apps: Vec<AppInfo>,
    /// Published channels.
    pub channels: Vec<ChannelInfo>,
    /// Exposed functions.
    pub functions: Vec<FunctionInfo>,
  }
}

avro_record! {
  /// The app leaves the bus; the broker closes what it owns.
  pub struct Unregister in "impulse.ring.control" {
    /// Chosen by the app, echoed in the reply.
    pub request_id: i64,
  }
}

avro_record! {
  /// Generic success of a request.
  pub struct Done in "impulse.ring.control" {
    /// Echo of the request's id.
    pub request_id: i64,
  }
}

avro_record! {
  /// A request failed.
  pub struct Failed in "impulse.ring.control" {
    /// Echo of the request's id.
    pub request_id: i64,
    /// Why, as an error code.
    pub code: i32,
    /// Why, in words.
    pub message: String,
    /// The registered fingerprint when the code is SchemaMismatch, else 0.
    pub expected_fingerprint: i64,
    /// The presented fingerprint when the code is SchemaMismatch, else 0.
    pub presented_fingerprint: i64,
  }
}

avro_record! {
  /// Payload of a call's error response.
  pub struct CallError in "impulse.ring.control" {
    /// Why, as an error code.
    pub code: i32,
    /// Why, in words.
    pub message: String,
  }
}

avro_record! {
  /// Event: the broker is shutting down.
  pub struct BrokerShutdown in "impulse.ring.control" {
    /// Why, in words.
    pub reason: String,
  }
}

avro_record! {
  /// Ask the broker what it knows of a channel or function: schemas, owner, live figures.
  pub struct Describe in "impulse.ring.control" {
    /// Chosen by the app, echoed in the reply.
    pub request_id: i64,
    /// The channel's or function's name; empty to look up by `id` instead.
    pub name: String,
    /// The channel's or function's id (ids are unique across both), used when `name` is empty.
    pub id: i64,
  }
}

avro_record! {
  /// A subscriber of a channel, in a Description.
  pub struct SubscriberDescription in "impulse.ring.control" {
    /// The subscriber's cursor index.
    pub index: i32,
    /// The subscribing app's id.
    pub app_id: i32,
    /// The subscribing app's name.
    pub app_name: String,
    /// The subscribing app's process id.
    pub pid: i64,
    /// Byte position of the next record it reads.
    pub position: i64,
    /// Messages published that it has not read yet.
    pub lag: i64,
    /// Messages it missed (lossy channels), as the subscriber reports them.
    pub missed: i64,
  }
}

avro_record! {
  /// A channel, in a Description.
  pub struct ChannelDescription in "impulse.ring.control" {
    /// The channel's id.
    pub channel_id: i64,
    /// The channel's name.
    pub name: String,
    /// The schema JSON the publisher presented.
    pub schema: String,
    /// Its fingerprint.
    pub fingerprint: i64,
    /// The publishing app's id.
    pub owner_app_id: i32,
    /// The publishing app's name.
    pub owner_app_name: String,
    /// The publishing app's process id.
    pub owner_pid: i64,
    /// True when subscribers must present a key (the key itself is never shown).
    pub key_gated: bool,
    /// Ring capacity in bytes.
    pub capacity: i64,
    /// True when the channel is lossy.
    pub lossy: bool,
    /// Messages published so far.
    pub published: i64,
    /// Bytes written to the ring so far (frames with their headers and padding).
    pub published_bytes: i64,
    /// Joined subscribers.
    pub subscribers: Vec<SubscriberDescription>,
  }
}

avro_record! {
  /// A function, in a Description.
  pub struct FunctionDescription in "impulse.ring.control" {
    /// The function's id.
    pub function_id: i64,
    /// The function's name.
    pub name: String,
    /// Schema JSON of the requests.
    pub request_schema: String,
    /// Schema JSON of the responses.
    pub response_schema: String,
    /// Fingerprint of the request schema.
    pub request_fingerprint: i64,
    /// Fingerprint of the response schema.
    pub response_fingerprint: i64,
    /// The providing app's id.
    pub owner_app_id: i32,
    /// The providing app's name.
    pub owner_app_name: String,
    /// The providing app's process id.
    pub owner_pid: i64,
    /// True when callers must present a key.
    pub key_gated: bool,
    /// Callers linked to it.
    pub links: i32,
    /// Calls written by its callers so far.
    pub calls: i64,
    /// Error responses so far (handler errors, undecodable requests, oversized responses).
    pub errors: i64,
    /// Calls written and not answered yet.
    pub in_flight: i64,
  }
}

avro_record! {
  /// The broker's answer to Describe: the channel and the function of that name or id (a name may
  /// be both a channel's and a function's; at least one entry is present).
  pub struct Description in "impulse.ring.control" {
    /// Echo of the request's id.
    pub request_id: i64,
    /// The channel, if one matches.
    pub channels: Vec<ChannelDescription>,
    /// The function, if one matches.
    pub functions: Vec<FunctionDescription>,
  }
}

avro_record! {
  /// Ask the broker to send this app a MonitorEvent for everything that happens on the control
  /// plane from now on, until the app leaves.
  pub struct Monitor in "impulse.ring.control" {
    /// Chosen by the app, echoed in the reply (`Done`).
    pub request_id: i64,
  }
}

avro_record! {
  /// Event, to apps that asked with Monitor: something happened on the control plane.
  pub struct MonitorEvent in "impulse.ring.control" {
    /// When, in nanoseconds since the Unix epoch (the broker's clock).
    pub time_ns: i64,
    /// What: `app-joined`, `app-left`, `app-died`, `app-dropped`, `channel-published`, `channel-closed`,
    /// `subscribed`, `unsubscribed`, `function-exposed`, `function-withdrawn`, `function-resolved`, `refused`.
    pub kind: String,
    /// The app that acted (or left, or died).
    pub app_id: i32,
    /// Its name.
    pub app_name: String,
    /// Its process id.
    pub pid: i64,
    /// The channel or function concerned, or empty.
    pub subject: String,
    /// More, in words: why an app left, what was refused and why.
    pub detail: String,
  }
}

macro_rules! control_messages {
  ($($opcode:literal => $name:ident),* $(,)?) => {
    /// Any control record: one branch of the control union. The variant's position is its opcode.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum ControlMessage {
      $(
        #[doc = concat!("Opcode ", stringify!($opcode), ": [`", stringify!($name), "`].")]
        $name($name),
      )*
    }

    /// Number of branches of the control union.
    pub const CONTROL_BRANCHES: usize = [$($opcode),*].len();

    // The opcodes written above must be 0, 1, 2, ... in order: the union's branch index is the opcode.
    const _: () = {
      let opcodes = [$($opcode),*];
      let mut i = 0;
      while i < opcodes.len() {
        assert!(opcodes[i] == i, "control opcodes must be 0, 1, 2, ... in order");
        i += 1;
      }
    };

    impl ControlMessage {
      /// The union branch index, also the opcode.
      pub fn opcode(&self) -> usize {
        match self {
          $(ControlMessage::$name(_) => $opcode,)*
        }
      }

      /// The record's short name (`Register`).
      pub fn name(&self) -> &'static str {
        match self {
          $(ControlMessage::$name(_) => stringify!($name),)*
        }
      }

      /// The record as JSON, the readable form of `spec/vectors/control.txt`.
      pub fn to_json(&self) -> Value {
        match self {
          $(ControlMessage::$name(record) => record.to_json(),)*
        }
      }

      fn encode_record(&self, out: &mut Vec<u8>) {
        match self {
          $(ControlMessage::$name(record) => record.encode(out),)*
        }
      }

      fn decode_record(opcode: usize, input: &mut &[u8]) -> Result<ControlMessage, DecodeError> {
        match opcode {
          $($opcode => $name::decode(input).map(ControlMessage::$name),)*
          _ => Err(DecodeError::BadUnionBranch { branch: opcode as i64, branches: CONTROL_BRANCHES }),
        }
      }
    }

    $(
      impl From<$name> for ControlMessage {
        fn from(record: $name) -> ControlMessage {
          ControlMessage::$name(record)
        }
      }
    )*

    /// Every branch of the control union in opcode order: (opcode, full name, the record's own schema JSON).
    pub fn control_records() -> Vec<(usize, &'static str, String)> {
      vec![$(($opcode, <$name as AvroRecord>::FULL_NAME, <$name as AvroRecord>::schema_json())),*]
    }

    fn union_schema() -> Value {
      let mut defined = BTreeSet::new();
      Value::Array(vec![$(<$name as AvroField>::schema(&mut defined)),*])
    }
  };
}

control_messages! {
  0 => Register,
  1 => Registered,
  2 => PublishChannel,
  3 => ChannelPublished,
  4 => Subscribe,
  5 => Subscribed,
  6 => Unsubscribe,
  7 => CloseChannel,
  8 => ExposeFunction,
  9 => FunctionExposed,
  10 => ResolveFunction,
  11 => FunctionResolved,
  12 => WithdrawFunction,
  13 => LinkOpened,
  14 => LinkClosed,
  15 => ChannelClosed,
  16 => List,
  17 => Listing,
  18 => Unregister,
  19 => Done,
  20 => Failed,
  21 => CallError,
  22 => BrokerShutdown,
  23 => Describe,
  24 => Description,
  25 => Monitor,
  26 => MonitorEvent,
}

/// The control schema, `spec/schemas/control.avsc`: pretty JSON of the union of every record in
/// opcode order, nested records defined once.
pub fn control_schema_json() -> String {
  avro::schema_to_pretty_json(&union_schema())
}

/// The CRC-64-AVRO fingerprint of the control schema, carried in every control frame's header: the wire
/// constant [`IR_CONTROL_FINGERPRINT`](crate::layout::IR_CONTROL_FINGERPRINT). A test checks that it is the
/// fingerprint of [`control_schema_json`], so the records and the constant cannot drift apart.
pub const fn control_fingerprint() -> u64 {
  crate::layout::IR_CONTROL_FINGERPRINT
}

impl ControlMessage {
  /// The request id a request carries or a reply echoes; `None` for events and `CallError`.
  pub fn request_id(&self) -> Option<i64> {
    use ControlMessage as M;
    match self {
      M::Register(m) => Some(m.request_id),
      M::Registered(m) => Some(m.request_id),
      M::PublishChannel(m) => Some(m.request_id),
      M::ChannelPublished(m) => Some(m.request_id),
      M::Subscribe(m) => Some(m.request_id),
      M::Subscribed(m) => Some(m.request_id),
      M::Unsubscribe(m) => Some(m.request_id),
      M::CloseChannel(m) => Some(m.request_id),
      M::ExposeFunction(m) => Some(m.request_id),
      M::FunctionExposed(m) => Some(m.request_id),
      M::ResolveFunction(m) => Some(m.request_id),
      M::FunctionResolved(m) => Some(m.request_id),
      M::WithdrawFunction(m) => Some(m.request_id),
      M::List(m) => Some(m.request_id),
      M::Listing(m) => Some(m.request_id),
      M::Unregister(m) => Some(m.request_id),
      M::Done(m) => Some(m.request_id),
      M::Failed(m) => Some(m.request_id),
      M::Describe(m) => Some(m.request_id),
      M::Description(m) => Some(m.request_id),
      M::Monitor(m) => Some(m.request_id),
      M::LinkOpened(_)
      | M::LinkClosed(_)
      | M::ChannelClosed(_)
      | M::CallError(_)
      | M::BrokerShutdown(_)
      | M::MonitorEvent(_) => None,
    }
  }
}

impl ControlMessage {
  /// The frame payload: the SOE header with [`control_fingerprint`], the union branch as a `long`,
  /// then the record.
  pub fn encode_frame_payload(&self) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    self.encode_frame_payload_into(&mut out);
    out
  }

  /// Appends the frame payload to `out` (see [`Self::encode_frame_payload`]).
  pub fn encode_frame_payload_into(&self, out: &mut Vec<u8>) {
    out.extend_from_slice(&avro::soe_header(control_fingerprint()));
    avro::put_long(out, self.opcode() as i64);
    self.encode_record(out);
  }

  /// Decodes a frame payload, checking the magic, the control fingerprint, the branch and that no
  /// byte is left over.
  pub fn decode_frame_payload(payload: &[u8]) -> Result<ControlMessage, DecodeError> {
    let (found, mut datum) = avro::split_soe(payload)?;
    let expected = control_fingerprint();
    if found != expected {
      return Err(DecodeError::FingerprintMismatch { expected, found });
    }
    let opcode = avro::get_union_branch(&mut datum, CONTROL_BRANCHES)?;
    let message = ControlMessage::decode_record(opcode, &mut datum)?;
    if !datum.is_empty() {
      return Err(DecodeError::TrailingBytes { count: datum.len() });
    }
    Ok(message)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn samples() -> Vec<ControlMessage> {
    vec![
      Register { request_id: 1, app_name: "app".into(), pid: 42, start_time: 7, public_key: vec![9; 32] }.into(),
      PublishChannel {
        request_id: 2,
        name: "metrics".into(),
        schema: "\"long\"".into(),
        key: Some(b"k".to_vec()),
        capacity: 4096,
        lossy: true,
      }
      .into(),
      Listing {
        request_id: 3,
        apps: vec![AppInfo { app_id: 0, name: "a".into(), pid: 1 }],
        channels: vec![],
        functions: vec![FunctionInfo {
          function_id: 1,
          name: "add".into(),
          owner_app_id: 0,
          request_fingerprint: -1,
          response_fingerprint: 1,
        }],
      }
      .into(),
      Failed {
        request_id: 4,
        code: 6,
        message: "schema mismatch".into(),
        expected_fingerprint: 1,
        presented_fingerprint: 2,
      }
      .into(),
    ]
  }

  #[test]
  fn frame_payloads_round_trip() {
    for message in samples() {
      let payload = message.encode_frame_payload();
      assert_eq!(payload[..2], avro::SOE_MAGIC);
      assert_eq!(payload[2..10], control_fingerprint().to_le_bytes());
      assert_eq!(payload[10], (message.opcode() * 2) as u8, "the branch is a zigzag long");
      assert_eq!(ControlMessage::decode_frame_payload(&payload), Ok(message));
    }
  }

  #[test]
  fn a_foreign_fingerprint_is_refused_naming_both() {
    let mut payload = ControlMessage::from(Done { request_id: 1 }).encode_frame_payload();
    payload[2] ^= 0xff;
    let err = ControlMessage::decode_frame_payload(&payload).expect_err("foreign fingerprint");
    let found = u64::from_le_bytes(payload[2..10].try_into().expect("8 bytes"));
    assert_eq!(err, DecodeError::FingerprintMismatch { expected: control_fingerprint(), found });
    let message = err.to_string();
    assert!(message.contains(&avro::fingerprint_hex(control_fingerprint())), "{message}");
    assert!(message.contains(&avro::fingerprint_hex(found)), "{message}");
  }

  #[test]
  fn an_unknown_opcode_is_a_bad_union_branch() {
    let mut payload = avro::soe_header(control_fingerprint()).to_vec();
    avro::put_long(&mut payload, CONTROL_BRANCHES as i64);
    assert_eq!(
      ControlMessage::decode_frame_payload(&payload),
      Err(DecodeError::BadUnionBranch { branch: CONTROL_BRANCHES as i64, branches: CONTROL_BRANCHES })
    );
  }

  #[test]
  fn truncated_or_garbled_payloads_are_errors_not_panics() {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for message in samples() {
      let payload = message.encode_frame_payload();
      for len in 0..payload.len() {
        assert!(ControlMessage::decode_frame_payload(&payload[..len]).is_err(), "{} cut at {len}", message.name());
      }
      for _ in 0..2_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut garbled = payload.clone();
        // Keep the header so the garbage reaches the record decoder.
        let at = 10 + (seed as usize) % (garbled.len() - 10);
        garbled[at] = (seed >> 32) as u8;
        let _ = ControlMessage::decode_frame_payload(&garbled);
      }
    }
  }

  #[test]
  fn control_schema_parses_and_names_every_record_in_opcode_order() {
    let parsed = avro::parse_schema(&control_schema_json()).expect("control schema parses");
    assert_eq!(parsed.fingerprint, control_fingerprint());
    let records = control_records();
    assert_eq!(records.len(), CONTROL_BRANCHES);
    let mut last = 0;
    for (opcode, full_name, _) in records {
      let at = parsed.canonical.find(&format!("{{\"name\":\"{full_name}\"")).expect("record in the union");
      assert!(opcode == 0 || at > last, "{full_name} out of order");
      last = at;
      assert!(full_name.starts_with("impulse.ring.control."));
    }
  }
}
