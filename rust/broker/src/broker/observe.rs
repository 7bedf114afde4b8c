//! What the tools see: the schema registry's `Describe` answers (schemas, owners and live figures) and
//! the `MonitorEvent`s sent to apps that asked with `Monitor` (spec/bootstrap.md §5.3).

use impulse_ring_core::control::*;
use impulse_ring_core::error_code::ErrorCode;
use impulse_ring_core::figures;
use impulse_ring_core::layout::IR_POLICY_LOSSY;
use tracing::debug;

use super::Broker;
use crate::admission::{fail, Failure};
use crate::outbox::encode_reply;
use crate::registry::{Channel, Function};

/// What a `MonitorEvent` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
  AppJoined,
  AppLeft,
  AppDied,
  AppDropped,
  ChannelPublished,
  ChannelClosed,
  Subscribed,
  Unsubscribed,
  FunctionExposed,
  FunctionWithdrawn,
  FunctionResolved,
  Refused,
}

impl Event {
  /// The event's `kind`, as spec/bootstrap.md names it.
  pub fn kind(self) -> &'static str {
    match self {
      Event::AppJoined => "app-joined",
      Event::AppLeft => "app-left",
      Event::AppDied => "app-died",
      Event::AppDropped => "app-dropped",
      Event::ChannelPublished => "channel-published",
      Event::ChannelClosed => "channel-closed",
      Event::Subscribed => "subscribed",
      Event::Unsubscribed => "unsubscribed",
      Event::FunctionExposed => "function-exposed",
      Event::FunctionWithdrawn => "function-withdrawn",
      Event::FunctionResolved => "function-resolved",
      Event::Refused => "refused",
    }
  }
}

impl Broker {
  /// Answers `Describe`: the channel and the function named `name`, or, when `name` is empty, the one
  /// whose id is `id`.
  pub(super) fn describe(&self, m: Describe) -> Result<Description, Failure> {
    let (channel, function) = if m.name.is_empty() {
      let id = m.id as u64;
      (self.reg.channels.get(&id).map(|c| (id, c)), self.reg.functions.get(&id).map(|f| (id, f)))
    } else {
      (self.reg.channel_named(&m.name), self.reg.function_named(&m.name))
    };
    if channel.is_none() && function.is_none() {
      let what = if m.name.is_empty() { format!("has id {}", m.id) } else { format!("is named `{}`", m.name) };
      return Err(fail(ErrorCode::UnknownChannel, format!("no channel or function {what}")));
    }
    Ok(Description {
      request_id: m.request_id,
      channels: channel.map(|(id, c)| self.channel_description(id, c)).into_iter().collect(),
      functions: function.map(|(id, f)| self.function_description(id, f)).into_iter().collect(),
    })
  }

  fn channel_description(&self, id: u64, c: &Channel) -> ChannelDescription {
    let (owner_app_name, owner_pid) = self.app_identity(c.owner);
    let live = figures::channel(&c.seg, &c.config);
    let subscribers = live
      .subscribers
      .iter()
      .map(|s| {
        let (app_name, pid) = self.app_identity(s.owner);
        SubscriberDescription {
          index: s.index as i32,
          app_id: s.owner as i32,
          app_name,
          pid,
          position: s.position as i64,
          lag: s.lag as i64,
          missed: s.missed as i64,
        }
      })
      .collect();
    ChannelDescription {
      channel_id: id as i64,
      name: c.name.clone(),
      schema: c.schema.clone(),
      fingerprint: c.config.fingerprint as i64,
      owner_app_id: c.owner as i32,
      owner_app_name,
      owner_pid,
      key_gated: c.key.is_some(),
      capacity: c.config.capacity as i64,
      lossy: c.config.policy == IR_POLICY_LOSSY,
      published: live.published as i64,
      published_bytes: live.bytes as i64,
      subscribers,
    }
  }

  fn function_description(&self, id: u64, f: &Function) -> FunctionDescription {
    let (owner_app_name, owner_pid) = self.app_identity(f.owner);
    let links: Vec<figures::LinkFigures> =
      self.reg.links.values().filter(|l| l.function_id == id).map(|l| figures::link(l.seg.segment())).collect();
    let sum = |value: fn(&figures::LinkFigures) -> u64| links.iter().map(value).fold(0u64, u64::saturating_add);
    FunctionDescription {
      function_id: id as i64,
      name: f.name.clone(),
      request_schema: f.request_schema.clone(),
      response_schema: f.response_schema.clone(),
      request_fingerprint: f.request_fp as i64,
      response_fingerprint: f.response_fp as i64,
      owner_app_id: f.owner as i32,
      owner_app_name,
      owner_pid,
      key_gated: f.key.is_some(),
      links: links.len() as i32,
      calls: sum(|l| l.calls) as i64,
      errors: sum(|l| l.failed) as i64,
      in_flight: sum(|l| l.in_flight()) as i64,
    }
  }

  /// The name and pid of app `slot`, or empty ones when it is not registered (a cursor whose owner word
  /// is garbage, say).
  fn app_identity(&self, slot: u32) -> (String, i64) {
    self.reg.apps.get(&slot).map_or_else(|| (String::new(), 0), |a| (a.name.clone(), a.pid as i64))
  }

  /// Sends every monitor a `MonitorEvent` about app `slot`, which must still be registered (events of
  /// an app leaving are sent before it is removed). A monitor that does not read loses events past its
  /// outbox's bound; they are counted in the debug log only, since the monitor's own slowness is the cause.
  pub(super) fn notify(&mut self, event: Event, slot: u32, subject: &str, detail: impl Into<String>) {
    if self.reg.monitors.is_empty() {
      return;
    }
    let (app_name, pid) = self.app_identity(slot);
    let message: ControlMessage = MonitorEvent {
      time_ns: now_ns(),
      kind: event.kind().to_string(),
      app_id: slot as i32,
      app_name,
      pid,
      subject: subject.to_string(),
      detail: detail.into(),
    }
    .into();
    let monitors: Vec<u32> = self.reg.monitors.iter().copied().collect();
    for monitor in monitors {
      let Ok(ring) = self.ctl.reply_ring(monitor) else { continue };
      let payload = encode_reply(&message, ring.max_payload());
      let Some(app) = self.reg.apps.get_mut(&monitor) else { continue };
      if !app.outbox.push(payload) {
        debug!(monitor, kind = event.kind(), "dropped an event for a monitor that does not read");
        continue;
      }
      self.flush_outbox(monitor);
    }
  }
}

/// Nanoseconds since the Unix epoch.
fn now_ns() -> i64 {
  let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
  i64::try_from(now.as_nanos()).unwrap_or(i64::MAX)
}

/// The channel or function a request concerns, for a `refused` event: its name, or its id.
pub fn subject(message: &ControlMessage) -> String {
  match message {
    ControlMessage::PublishChannel(m) => m.name.clone(),
    ControlMessage::Subscribe(m) => m.name.clone(),
    ControlMessage::ExposeFunction(m) => m.name.clone(),
    ControlMessage::ResolveFunction(m) => m.name.clone(),
    ControlMessage::Describe(m) if m.name.is_empty() => format!("id {}", m.id),
    ControlMessage::Describe(m) => m.name.clone(),
    ControlMessage::Unsubscribe(m) => format!("channel id {}", m.channel_id),
    ControlMessage::CloseChannel(m) => format!("channel id {}", m.channel_id),
    ControlMessage::WithdrawFunction(m) => format!("function id {}", m.function_id),
    _ => String::new(),
  }
}
