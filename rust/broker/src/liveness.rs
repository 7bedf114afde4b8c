//! Watches app processes with pidfds (Linux ≥ 5.3) on a thread of its own and reports deaths at
//! once, ringing the broker's doorbell; where pidfds are unavailable the broker falls back to
//! checking pid and start time every second.

use std::os::fd::OwnedFd;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use impulse_ring_core::bus::ControlSegment;
use impulse_ring_core::sys;

/// Watches processes; `watch` adds one, `deaths` yields the (slot, pid) pairs whose process exited.
pub struct Liveness {
  add: Sender<(u32, u32, OwnedFd)>,
  deaths: Receiver<(u32, u32)>,
}

impl Liveness {
  /// Starts the watcher thread.
  pub fn start(ctl: Arc<ControlSegment>) -> Liveness {
    let (add, added) = std::sync::mpsc::channel::<(u32, u32, OwnedFd)>();
    let (died, deaths) = std::sync::mpsc::channel();
    std::thread::Builder::new()
      .name("liveness".into())
      .spawn(move || {
        let mut watched: Vec<(u32, u32, OwnedFd)> = Vec::new();
        loop {
          loop {
            match added.try_recv() {
              Ok(entry) => watched.push(entry),
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
          }
          if !ready.is_empty() {
            ctl.broker_doorbell().ring();
          }
        }
      })
      .expect("spawn the liveness thread");
    Liveness { add, deaths }
  }

  /// Watches the process `pid` of app `slot`. `false` when pidfds are unavailable (the caller then
  /// relies on the periodic pid and start time check).
  pub fn watch(&self, slot: u32, pid: u32) -> bool {
    match sys::pidfd_open(pid) {
      Ok(fd) => self.add.send((slot, pid, fd)).is_ok(),
      Err(_) => false,
    }
  }

  /// (slot, pid) of the processes that exited since the last call.
  pub fn deaths(&self) -> Vec<(u32, u32)> {
    self.deaths.try_iter().collect()
  }
}
