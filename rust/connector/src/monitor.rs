//! The control plane as it happens: after `Monitor`, the broker sends this app a `MonitorEvent` for
//! every app joining or leaving, channel and function appearing or going, subscription and refusal.
//! The reactor hands them to the [`MonitorSink`]; a [`Monitor`] handle reads them. Depends on the
//! session only.

use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use impulse_ring_core::control::MonitorEvent;

use crate::error::{Error, Result};
use crate::session::{lock, Session};

/// Where the reactor puts monitor events; empty until the app asks for them.
#[derive(Default)]
pub(crate) struct MonitorSink {
  sender: Mutex<Option<Sender<MonitorEvent>>>,
}

impl MonitorSink {
  /// Reactor: one event from the broker.
  pub fn deliver(&self, event: MonitorEvent) {
    if let Some(sender) = lock(&self.sender).as_ref() {
      let _ = sender.send(event);
    }
  }

  /// A new receiving end; events from now on go to it (and no longer to an earlier one).
  pub fn open(&self) -> Receiver<MonitorEvent> {
    let (tx, rx) = channel();
    *lock(&self.sender) = Some(tx);
    rx
  }
}

/// Control-plane events of the bus, from [`crate::Connection::monitor`].
pub struct Monitor {
  pub(crate) session: Arc<Session>,
  pub(crate) events: Receiver<MonitorEvent>,
}

impl Monitor {
  /// Waits up to `timeout` for the next event; `Ok(None)` on timeout, `BrokerGone` once the broker is
  /// gone and every event it sent has been read.
  pub fn next(&self, timeout: Duration) -> Result<Option<MonitorEvent>> {
    match self.events.recv_timeout(timeout) {
      Ok(event) => Ok(Some(event)),
      Err(RecvTimeoutError::Timeout) if self.session.broker_gone() => {
        Err(Error::BrokerGone { ns: self.session.ns.clone() })
      }
      Err(RecvTimeoutError::Timeout) => Ok(None),
      Err(RecvTimeoutError::Disconnected) => Err(Error::BrokerGone { ns: self.session.ns.clone() }),
    }
  }
}
