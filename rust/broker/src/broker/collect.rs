//! Collection: what the broker frees when an app leaves or dies (its channels, subscriptions,
//! functions, links and slot), the periodic liveness poll that finds dead apps without pidfds, and the
//! shutdown that frees the whole namespace.

use impulse_ring_core::broadcast;
use impulse_ring_core::control::*;
use impulse_ring_core::doorbell::Doorbell;
use impulse_ring_core::error_code::ErrorCode;
use impulse_ring_core::layout::*;
use impulse_ring_core::{names, sys};
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use super::observe::Event;
use super::Broker;
use crate::registry::LinkSide;

impl Broker {
  /// Polls every slot once a second: the fallback for app deaths without pidfds, and the reclamation
  /// of slots that match no live, verified registration (a claim abandoned or never followed by a
  /// Register, or a state word some process wrote by hand), each after its grace period.
  pub(super) fn check_liveness_by_polling(&mut self) {
    let now = Instant::now();
    for slot in 0..self.ctl.max_apps() {
      let state = self.ctl.slot_state(slot);
      if let Some(&(pid, start)) = self.fenced.get(&slot) {
        if !sys::process_alive_checked(pid, start).unwrap_or(true) {
          self.unfence(slot);
        }
        continue;
      }
      if let Some(app) = self.reg.apps.get(&slot) {
        self.suspect_slots.remove(&slot);
        // A process that cannot be checked (`/proc` unreadable, say at the fd limit) is not declared dead.
        if !sys::process_alive_checked(app.pid, app.start).unwrap_or(true) {
          self.collect_app(slot, "exited");
        }
        continue;
      }
      let (pid, start) = self.ctl.slot_owner(slot);
      let owner_alive = pid != 0 && sys::process_alive_checked(pid, start).unwrap_or(true);
      let Some(grace) = reclaim_grace(state, owner_alive) else {
        self.suspect_slots.remove(&slot);
        continue;
      };
      let since = *self.suspect_slots.entry(slot).or_insert(now);
      if now.duration_since(since) >= grace {
        info!(slot, state, pid, owner_alive, "reclaiming a slot that matches no registration");
        self.suspect_slots.remove(&slot);
        self.ctl.free_slot(slot);
      }
    }
  }

  /// Treats every segment truncated under the broker (the SIGBUS handler caught a fault in it, impulse_ring_core::sigbus) as corrupt: a channel
  /// closes, a link is failed on both sides. `false` when the control segment itself was truncated:
  /// the namespace cannot go on.
  pub(super) fn check_truncation(&mut self) -> bool {
    if self.ctl.segment().truncated() {
      error!(
        "{} was truncated under the broker (SIGBUS caught): the control segment is corrupt; shutting down",
        self.ctl.segment().name()
      );
      return false;
    }
    let channels: Vec<u64> = self.reg.channels.iter().filter(|(_, c)| c.seg.truncated()).map(|(&id, _)| id).collect();
    for id in channels {
      if let Some(ch) = self.reg.channels.get(&id) {
        warn!(channel = %ch.name, segment = ch.seg.name(), "channel segment truncated (SIGBUS caught): corrupt; closing it");
      }
      self.close_channel(id);
    }
    let links: Vec<u64> =
      self.reg.links.iter().filter(|(_, l)| l.seg.segment().truncated()).map(|(&id, _)| id).collect();
    for id in links {
      let Some(link) = self.reg.links.remove(&id) else { continue };
      warn!(
        link_id = id,
        segment = link.seg.segment().name(),
        "link segment truncated (SIGBUS caught): corrupt; closing it"
      );
      let _ = link.seg.segment().unlink();
      for side in [LinkSide::Caller, LinkSide::Provider] {
        let app = side.app(&link);
        let message = format!("link {id} is corrupt: its segment was truncated");
        self.send(app, LinkClosed { link_id: id as i64, code: ErrorCode::Corrupt as i32, message }.into());
        self.ctl.app_doorbell(app).ring();
      }
    }
    true
  }

  pub(super) fn close_channel(&mut self, channel_id: u64) {
    let Some(ch) = self.reg.channels.remove(&channel_id) else {
      return;
    };
    broadcast::close(&ch.seg);
    Doorbell::at(&ch.seg, IR_CH_DATA_DOORBELL).ring();
    let _ = ch.seg.unlink();
    info!(channel = %ch.name, channel_id, "channel closed");
    self.notify(Event::ChannelClosed, ch.owner, &ch.name, format!("id {channel_id}"));
  }

  pub(super) fn withdraw_function(&mut self, function_id: u64) {
    let Some(f) = self.reg.functions.remove(&function_id) else {
      return;
    };
    let links: Vec<u64> = self.reg.links_to(function_id);
    for link_id in links {
      self.close_link(link_id, LinkSide::Provider, &format!("the provider of `{}` is gone", f.name));
    }
    info!(function = %f.name, function_id, "function withdrawn");
    self.notify(Event::FunctionWithdrawn, f.owner, &f.name, format!("id {function_id}"));
  }

  /// Closes a link because one side (`gone`) is gone and tells the other side.
  pub(super) fn close_link(&mut self, link_id: u64, gone: LinkSide, message: &str) {
    let Some(link) = self.reg.links.remove(&link_id) else {
      return;
    };
    link.seg.set_gone(gone.gone_flag());
    let _ = link.seg.segment().unlink();
    let other = gone.other().app(&link);
    if self.reg.apps.contains_key(&other) {
      let closed =
        LinkClosed { link_id: link_id as i64, code: ErrorCode::PeerGone as i32, message: message.to_string() };
      self.send(other, closed.into());
      self.ctl.app_doorbell(other).ring();
    }
  }

  /// Drops app `slot` for breaking the protocol (a corrupt request ring): collects it like a departed
  /// app, but if its process lives on, its slot is fenced instead of freed (bootstrap.md §3.2), so that
  /// the stale process can neither read the next app's replies nor write requests in its name. The
  /// pidfd watch (or the poll) frees the slot once that process has exited.
  pub(super) fn drop_app(&mut self, slot: u32, why: &str) {
    let owner = self.reg.apps.get(&slot).map(|app| (app.pid, app.start));
    let Some((pid, start)) = owner.filter(|&(pid, start)| sys::process_alive(pid, start)) else {
      self.collect_app(slot, why);
      return;
    };
    self.release_app(slot, why, true);
    self.ctl.fence_slot(slot);
    self.fenced.insert(slot, (pid, start));
    // Wakes the stale app so that it notices the fence at once.
    self.ctl.app_doorbell(slot).ring();
    warn!(slot, pid, "app {why} and lives on: its slot is fenced until it exits");
  }

  /// Frees the slot fenced for a dropped app whose process has now exited.
  pub(super) fn unfence(&mut self, slot: u32) {
    if let Some((pid, _)) = self.fenced.remove(&slot) {
      self.liveness.unwatch(slot, pid);
      self.ctl.clear_dead_sleepers(slot);
      self.ctl.free_slot(slot);
      info!(slot, pid, "the fenced app exited; its slot is free again");
    }
  }

  /// Frees everything app `slot` held: its channels close, its subscriptions end, its functions and
  /// links go (callers see PeerGone), its segments are unlinked, its slot is freed.
  pub(super) fn collect_app(&mut self, slot: u32, why: &str) {
    self.release_app(slot, why, false);
    self.ctl.free_slot(slot);
  }

  /// Everything of [`collect_app`](Self::collect_app) but freeing the slot; a `fencing` collection
  /// keeps the pidfd watch, whose report frees the slot later.
  fn release_app(&mut self, slot: u32, why: &str, fencing: bool) {
    self.ctl.set_slot_state(slot, IR_SLOT_CLOSING);
    // The app's own monitor subscription ends first: it is not told of its own departure.
    self.reg.monitors.remove(&slot);
    let owned: Vec<u64> = self.reg.channels_of(slot);
    for id in owned {
      self.close_channel(id);
    }
    let mut ended = Vec::new();
    for ch in self.reg.channels.values() {
      for index in broadcast::subscribers_of(&ch.seg, &ch.config, slot) {
        broadcast::free_subscriber(&ch.seg, &ch.config, index);
        Doorbell::at(&ch.seg, IR_CH_SPACE_DOORBELL).ring();
        ended.push((ch.name.clone(), index));
      }
    }
    for (name, index) in ended {
      self.notify(Event::Unsubscribed, slot, &name, format!("cursor {index}: the subscriber is gone"));
    }
    let functions: Vec<u64> = self.reg.functions_of(slot);
    for id in functions {
      self.withdraw_function(id);
    }
    let calls: Vec<u64> = self.reg.calls_of(slot);
    for id in calls {
      self.close_link(id, LinkSide::Caller, "the caller is gone");
    }
    if self.reg.apps.contains_key(&slot) {
      let event = match why {
        "unregistered" => Event::AppLeft,
        "exited" => Event::AppDied,
        _ => Event::AppDropped,
      };
      self.notify(event, slot, "", why);
    }
    if let Some(app) = self.reg.apps.remove(&slot) {
      if !fencing {
        self.liveness.unwatch(slot, app.pid);
      }
      info!(app = %app.name, app_id = slot, pid = app.pid, start = app.start, "app {why}");
      if !sys::process_alive(app.pid, app.start) {
        self.ctl.clear_dead_sleepers(slot);
      }
    }
  }

  /// Tells every app, closes everything, unlinks every segment of the namespace and releases its lock.
  /// A broker that `lost` its namespace unlinks only names that still refer to its own objects (its
  /// segments check that themselves) and sweeps nothing: the rest may belong to another broker.
  pub(super) fn shutdown(&mut self, lost: bool) {
    info!("shutting down");
    self.ctl.set_shutting_down();
    let slots: Vec<u32> = self.reg.apps.keys().copied().collect();
    for &slot in &slots {
      self.send(slot, BrokerShutdown { reason: "the broker is shutting down".into() }.into());
    }
    let channels: Vec<u64> = self.reg.channels.keys().copied().collect();
    for id in channels {
      self.close_channel(id);
    }
    let links: Vec<u64> = self.reg.links.keys().copied().collect();
    for id in links {
      if let Some(link) = self.reg.links.remove(&id) {
        link.seg.set_gone(LinkSide::Provider.gone_flag());
        link.seg.set_gone(LinkSide::Caller.gone_flag());
        let _ = link.seg.segment().unlink();
      }
    }
    for &slot in &slots {
      self.ctl.app_doorbell(slot).ring();
    }
    let _ = self.ctl.segment().unlink();
    let keep = names::control_keep(&self.ns);
    if sys::shm_identity(&keep).ok() == Some(self.ctl.segment().identity()) {
      let _ = sys::shm_unlink(&keep);
    }
    let lock = self.lock.take();
    if !lost {
      // Anything else under our prefix was ours too, except the lock: it goes last.
      let lock_name = lock.as_ref().map(|l| l.name().to_string()).unwrap_or_default();
      for name in sys::shm_list(&names::namespace_prefix(&self.ns)).unwrap_or_default() {
        if format!("/{name}") != lock_name {
          let _ = sys::shm_unlink(&format!("/{name}"));
        }
      }
    }
    if let Some(lock) = lock {
      lock.release();
    }
    info!("broker stopped");
  }
}

/// How long a slot without a registration may keep its state before the broker frees it; `None` for a
/// slot that is fine as it is (free).
///
/// A claim by a live process gets [`CLAIM_GRACE`] to register (a connector sends Register right after
/// its claim, and waits 10 s for the answer). Anything else (a claim whose process is gone, an app
/// caught between its CAS and its identity stores, a state word written by hand) looks abandoned on two
/// polls in a row before it is freed.
pub(super) fn reclaim_grace(state: u32, owner_alive: bool) -> Option<Duration> {
  match (state, owner_alive) {
    (IR_SLOT_FREE, _) => None,
    (IR_SLOT_CLAIMED, true) => Some(CLAIM_GRACE),
    _ => Some(ABANDONED_GRACE),
  }
}

/// How long a live process may hold a claimed slot without registering.
pub(super) const CLAIM_GRACE: Duration = Duration::from_secs(5);

/// Just under the poll interval: a slot is freed on the second poll that finds it abandoned.
const ABANDONED_GRACE: Duration = Duration::from_millis(900);

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn only_free_slots_are_left_alone() {
    assert_eq!(reclaim_grace(IR_SLOT_FREE, true), None);
    assert_eq!(reclaim_grace(IR_SLOT_FREE, false), None);
    assert_eq!(reclaim_grace(IR_SLOT_CLAIMED, true), Some(CLAIM_GRACE));
    for state in [IR_SLOT_CLAIMED, IR_SLOT_ACTIVE, IR_SLOT_CLOSING, 77] {
      assert_eq!(reclaim_grace(state, false), Some(ABANDONED_GRACE), "{state}");
    }
    // ACTIVE or CLOSING without a registration is never legitimate, even with a live pid in it.
    assert_eq!(reclaim_grace(IR_SLOT_ACTIVE, true), Some(ABANDONED_GRACE));
    assert_eq!(reclaim_grace(IR_SLOT_CLOSING, true), Some(ABANDONED_GRACE));
  }
}
