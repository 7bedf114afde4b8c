//! What the broker knows: registered apps, channels, functions and call links, by id. Only the
//! broker's thread touches it; ids are unique for the broker's lifetime and never reused.

use std::collections::{BTreeMap, BTreeSet};

use impulse_ring_core::broadcast::ChannelConfig;
use impulse_ring_core::bus::LinkSegment;
use impulse_ring_core::layout::{IR_LINK_CALLER_GONE, IR_LINK_PROVIDER_GONE};
use impulse_ring_core::seal::Session;
use impulse_ring_core::segment::Segment;

use crate::keys::KeyHash;
use crate::outbox::Outbox;

/// A registered app, by slot.
pub struct App {
  pub name: String,
  pub pid: u32,
  pub start: u64,
  /// The session secret of this registration, which unseals the keys the app presents (bootstrap.md §5.5).
  pub session: Session,
  /// Replies that did not fit the reply ring yet, in order.
  pub outbox: Outbox,
}

pub struct Channel {
  pub name: String,
  /// The slot of the publishing app.
  pub owner: u32,
  pub key: Option<KeyHash>,
  /// The schema JSON the publisher presented, verbatim (the registry `Describe` answers from).
  pub schema: String,
  pub seg: Segment,
  pub config: ChannelConfig,
}

pub struct Function {
  pub name: String,
  /// The slot of the providing app.
  pub owner: u32,
  pub key: Option<KeyHash>,
  /// The schema JSONs the provider presented, verbatim.
  pub request_schema: String,
  pub response_schema: String,
  pub request_fp: u64,
  pub response_fp: u64,
}

pub struct Link {
  pub function_id: u64,
  pub caller: u32,
  pub provider: u32,
  pub seg: LinkSegment,
}

/// One end of a call link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkSide {
  Caller,
  Provider,
}

impl LinkSide {
  /// The offset of this side's gone flag in the link header.
  pub fn gone_flag(self) -> usize {
    match self {
      LinkSide::Caller => IR_LINK_CALLER_GONE,
      LinkSide::Provider => IR_LINK_PROVIDER_GONE,
    }
  }

  /// The app at this side of `link`.
  pub fn app(self, link: &Link) -> u32 {
    match self {
      LinkSide::Caller => link.caller,
      LinkSide::Provider => link.provider,
    }
  }

  /// The other side.
  pub fn other(self) -> LinkSide {
    match self {
      LinkSide::Caller => LinkSide::Provider,
      LinkSide::Provider => LinkSide::Caller,
    }
  }
}

/// Every app, channel, function and link of the namespace.
#[derive(Default)]
pub struct Registry {
  pub apps: BTreeMap<u32, App>,
  /// Apps that sent `Monitor`: each gets a `MonitorEvent` for everything that happens from then on.
  pub monitors: BTreeSet<u32>,
  pub channels: BTreeMap<u64, Channel>,
  pub functions: BTreeMap<u64, Function>,
  pub links: BTreeMap<u64, Link>,
  /// The last id handed out; channels, functions and links share one sequence.
  last_id: u64,
}

impl Registry {
  /// A fresh channel, function or link id (from 1).
  pub fn new_id(&mut self) -> u64 {
    self.last_id += 1;
    self.last_id
  }

  pub fn channel_named(&self, name: &str) -> Option<(u64, &Channel)> {
    self.channels.iter().find(|(_, c)| c.name == name).map(|(&id, c)| (id, c))
  }

  pub fn function_named(&self, name: &str) -> Option<(u64, &Function)> {
    self.functions.iter().find(|(_, f)| f.name == name).map(|(&id, f)| (id, f))
  }

  /// Ids of the channels app `slot` publishes.
  pub fn channels_of(&self, slot: u32) -> Vec<u64> {
    self.channels.iter().filter(|(_, c)| c.owner == slot).map(|(&id, _)| id).collect()
  }

  /// Ids of the functions app `slot` exposes.
  pub fn functions_of(&self, slot: u32) -> Vec<u64> {
    self.functions.iter().filter(|(_, f)| f.owner == slot).map(|(&id, _)| id).collect()
  }

  /// Ids of the links where app `slot` is the caller.
  pub fn calls_of(&self, slot: u32) -> Vec<u64> {
    self.links.iter().filter(|(_, l)| l.caller == slot).map(|(&id, _)| id).collect()
  }

  /// Ids of the links to function `function_id`.
  pub fn links_to(&self, function_id: u64) -> Vec<u64> {
    self.links.iter().filter(|(_, l)| l.function_id == function_id).map(|(&id, _)| id).collect()
  }
}
