//! The reactor: one thread per connection that sleeps on the app's doorbell and wakes for replies and
//! events from the broker, responses to our calls and requests to our functions. It routes each event
//! to its layer (the session, the caller side, the provider side) and checks the broker's health at
//! least every `HEALTH_EVERY`. It sits above all three; none of them knows it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use impulse_ring_core::control::ControlMessage;

use crate::caller::Callers;
use crate::error::Error;
use crate::monitor::MonitorSink;
use crate::provider::Provider;
use crate::session::Session;
use crate::snapshot::Cached;

/// How often the reactor checks that the broker is alive, and its longest sleep.
const HEALTH_EVERY: Duration = Duration::from_millis(200);

/// What the reactor works on.
pub(crate) struct Reactor {
  pub session: Arc<Session>,
  pub callers: Arc<Callers>,
  pub provider: Arc<Provider>,
  pub monitor: Arc<MonitorSink>,
  /// Tells the reactor to stop; set (and the thread joined) before `Unregister` is posted, so that
  /// nothing reads the reply ring once the broker may reset it for the slot's next owner.
  pub stop: Arc<AtomicBool>,
}

impl Reactor {
  fn on_event(&self, event: ControlMessage) {
    match event {
      ControlMessage::LinkOpened(m) => self.provider.open_link(&self.session, m),
      ControlMessage::LinkClosed(m) => {
        self.provider.link_closed(m.link_id as u64);
        self.callers.link_closed(m.link_id as u64, &m.message);
      }
      ControlMessage::BrokerShutdown(_) => self.broker_gone(),
      ControlMessage::MonitorEvent(m) => self.monitor.deliver(m),
      _ => {}
    }
  }

  fn broker_gone(&self) {
    self.session.mark_broker_gone();
    self.callers.fail_all(&Error::BrokerGone { ns: self.session.ns.clone() });
  }

  /// The thread's body.
  pub fn run(self) {
    let session = &*self.session;
    let (mut callers, mut serving) = (Cached::default(), Cached::default());
    let mut last_health = Instant::now();
    let mut gone_seen = false;
    while !self.stop.load(Ordering::Acquire) {
      let deadline = Instant::now() + HEALTH_EVERY;
      session.doorbell().wait_until(session.wait, Some(deadline), || {
        let work = session.has_replies()
          || self.stop.load(Ordering::Acquire)
          || (!session.broker_gone() && session.fenced())
          || Callers::has_work(self.callers.published().read(&mut callers))
          || Provider::has_work(self.provider.published().read(&mut serving));
        work.then_some(())
      });
      session.read_replies(|event| self.on_event(event));
      if !gone_seen && session.broker_gone() {
        // Noticed by the session (a corrupt reply ring, a fence): the calls in flight cannot complete
        // either.
        gone_seen = true;
        self.callers.fail_all(&Error::BrokerGone { ns: session.ns.clone() });
      }
      Callers::pump(session, self.callers.published().read(&mut callers));
      self.provider.pump(session, self.provider.published().read(&mut serving));
      if last_health.elapsed() >= HEALTH_EVERY && !session.broker_gone() {
        last_health = Instant::now();
        if !session.ctl.broker_alive() {
          self.broker_gone();
        }
      }
    }
  }
}
