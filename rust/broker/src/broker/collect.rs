//! Collection: what the broker frees when an app leaves or dies (its channels, subscriptions,
//! functions, links and slot), the periodic liveness poll that finds dead apps without pidfds, and the
//! shutdown that frees the whole namespace.

use impulse_ring_core::broadcast;
use impulse_ring_core::control::*;
use impulse_ring_core::doorbell::Doorbell;
use impulse_ring_core::error_code::ErrorCode;
use impulse_ring_core::layout::*;
use impulse_ring_core::{names, sys};
use tracing::{debug, info};

use super::Broker;
use crate::registry::LinkSide;

impl Broker {
  /// Polls pid and start time: the fallback without pidfds, and the only check for apps that
  /// claimed a slot and died before registering.
  pub(super) fn check_liveness_by_polling(&mut self) {
    for slot in 0..self.ctl.max_apps() {
      let state = self.ctl.slot_state(slot);
      let (pid, start) = self.ctl.slot_owner(slot);
      // A process that cannot be checked (`/proc` unreadable, say at the fd limit) is not declared dead.
      if state == IR_SLOT_FREE || pid != 0 && sys::process_alive_checked(pid, start).unwrap_or(true) {
        self.suspect_claims.remove(&slot);
        continue;
      }
      if self.reg.apps.contains_key(&slot) {
        self.collect_app(slot, "exited");
      } else if state == IR_SLOT_CLAIMED {
        // Claimed by a process that died before (or while) writing its identity. It may also be an
        // app between its CAS and its stores (we may even see its pid and not yet its start time):
        // free only a slot that looks abandoned on two polls in a row.
        if !self.suspect_claims.insert(slot) {
          debug!(slot, "freeing a slot claimed by a process that is gone");
          self.suspect_claims.remove(&slot);
          self.ctl.free_slot(slot);
        }
      }
    }
  }

  pub(super) fn close_channel(&mut self, channel_id: u64) {
    let Some(ch) = self.reg.channels.remove(&channel_id) else {
      return;
    };
    broadcast::close(&ch.seg);
    Doorbell::at(&ch.seg, IR_CH_DATA_DOORBELL).ring();
    let _ = ch.seg.unlink();
    info!(channel = %ch.name, channel_id, "channel closed");
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

  /// Frees everything app `slot` held: its channels close, its subscriptions end, its functions and
  /// links go (callers see PeerGone), its segments are unlinked, its slot is freed.
  pub(super) fn collect_app(&mut self, slot: u32, why: &str) {
    self.ctl.set_slot_state(slot, IR_SLOT_CLOSING);
    let owned: Vec<u64> = self.reg.channels_of(slot);
    for id in owned {
      self.close_channel(id);
    }
    for ch in self.reg.channels.values() {
      for index in broadcast::subscribers_of(&ch.seg, &ch.config, slot) {
        broadcast::free_subscriber(&ch.seg, &ch.config, index);
        Doorbell::at(&ch.seg, IR_CH_SPACE_DOORBELL).ring();
      }
    }
    let functions: Vec<u64> = self.reg.functions_of(slot);
    for id in functions {
      self.withdraw_function(id);
    }
    let calls: Vec<u64> = self.reg.calls_of(slot);
    for id in calls {
      self.close_link(id, LinkSide::Caller, "the caller is gone");
    }
    if let Some(app) = self.reg.apps.remove(&slot) {
      self.liveness.unwatch(slot, app.pid);
      info!(app = %app.name, app_id = slot, pid = app.pid, start = app.start, "app {why}");
      if !sys::process_alive(app.pid, app.start) {
        self.ctl.clear_dead_sleepers(slot);
      }
    }
    self.ctl.free_slot(slot);
  }

  /// Tells every app, closes everything, unlinks every segment of the namespace.
  pub(super) fn shutdown(&mut self) {
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
    // Anything else under our prefix was ours too.
    if let Ok(rest) = sys::shm_list(&names::namespace_prefix(&self.ns)) {
      for name in rest {
        let _ = sys::shm_unlink(&format!("/{name}"));
      }
    }
    info!("broker stopped");
  }
}
