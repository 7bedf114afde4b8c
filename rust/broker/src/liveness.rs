//! Watches app processes with pidfds (Linux ≥ 5.3) on a thread of its own and reports deaths at
//! once, ringing the broker's doorbell; where pidfds are unavailable the broker falls back to
//! checking pid and start time every second. A watch lasts as long as the registration: `unwatch`
//! closes its pidfd, so reconnecting apps cost the broker no file descriptor.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use impulse_ring_core::bus::ControlSegment;
use impulse_ring_core::sys;

enum Command {
  Watch { slot: u32, pid: u32, fd: OwnedFd },
  Unwatch { slot: u32, pid: u32 },
}

/// Watches processes; `watch` adds one, `deaths` yields the (slot, pid) pairs whose process exited.
pub struct Liveness {
  commands: Sender<Command>,
  deaths: Receiver<(u32, u32)>,
  /// Deaths sent and not yet taken: the broker's wake condition reads it.
  pending: Arc<AtomicUsize>,
}

impl Liveness {
  /// Starts the watcher thread.
  pub fn start(ctl: Arc<ControlSegment>) -> Liveness {
    let (commands, received) = std::sync::mpsc::channel::<Command>();
    let (died, deaths) = std::sync::mpsc::channel();
    let pending = Arc::new(AtomicUsize::new(0));
    let pending_deaths = pending.clone();
    std::thread::Builder::new()
      .name("liveness".into())
      .spawn(move || {
        let mut watched: Vec<(u32, u32, OwnedFd)> = Vec::new();
        loop {
          loop {
            match received.try_recv() {
              Ok(Command::Watch { slot, pid, fd }) => watched.push((slot, pid, fd)),
              // Dropping the entry closes its pidfd.
              Ok(Command::Unwatch { slot, pid }) => watched.retain(|&(s, p, _)| (s, p) != (slot, pid)),
              Err(std::sync::mpsc::TryRecvError::Empty) => break,
              Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
            }
          }
          let fds: Vec<&OwnedFd> = watched.iter().map(|(_, _, fd)| fd).collect();
          let ready = if fds.is_empty() {
            std::thread::sleep(Duration::from_millis(50));
            Vec::new()
          } else {
            sys::poll_readable(&fds, Duration::from_millis(50)).unwrap_or_default()
          };
          for &i in ready.iter().rev() {
            let (slot, pid, _) = watched.swap_remove(i);
            if died.send((slot, pid)).is_err() {
              return;
            }
            pending_deaths.fetch_add(1, Ordering::Release);
          }
          if !ready.is_empty() {
            ctl.broker_doorbell().ring();
          }
        }
      })
      .expect("spawn the liveness thread");
    Liveness { commands, deaths, pending }
  }

  /// Watches the process `pid` of app `slot`. Fails when no pidfd can be opened (pidfds unavailable,
  /// or the broker is out of file descriptors).
  pub fn watch(&self, slot: u32, pid: u32) -> io::Result<()> {
    let fd = sys::pidfd_open(pid)?;
    self.commands.send(Command::Watch { slot, pid, fd }).map_err(|_| io::Error::other("the liveness thread is gone"))
  }

  /// Stops watching app `slot` (process `pid`) and closes its pidfd.
  pub fn unwatch(&self, slot: u32, pid: u32) {
    let _ = self.commands.send(Command::Unwatch { slot, pid });
  }

  /// (slot, pid) of the processes that exited since the last call.
  pub fn deaths(&self) -> Vec<(u32, u32)> {
    let deaths: Vec<_> = self.deaths.try_iter().collect();
    self.pending.fetch_sub(deaths.len(), Ordering::AcqRel);
    deaths
  }

  /// Whether deaths wait to be taken.
  pub fn has_deaths(&self) -> bool {
    self.pending.load(Ordering::Acquire) != 0
  }
}
