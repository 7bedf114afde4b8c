//! The namespace lock: `/dev/shm/impulse-ring.<ns>.lock`, a plain file next to the segments that the
//! serving broker holds `flock`ed for as long as it runs. The kernel drops the lock when the broker
//! dies, so a crashed broker never blocks its successor, and a second broker is kept out even when the
//! control segment's name has been removed. The file holds the broker's pid (text), for the message
//! a refused broker prints.

use std::fs::File;
use std::io::{Read, Seek, Write};

use impulse_ring_core::{names, sys};

/// The held lock of one namespace.
pub struct NamespaceLock {
  name: String,
  file: File,
}

/// Why the lock was not taken.
pub enum LockError {
  /// Another process holds it; its pid if the file says.
  Held { pid: Option<u32> },
  /// The file could not be created, opened or locked.
  Io(std::io::Error),
}

impl NamespaceLock {
  /// Takes the lock of `ns`, creating its file with `mode`, and writes our pid into it.
  pub fn take(ns: &str, mode: u32) -> Result<NamespaceLock, LockError> {
    let name = names::lock(ns);
    match sys::lock_shm_file(&name, mode) {
      Ok(Some((file, _))) => {
        let mut lock = NamespaceLock { name, file };
        lock.write_pid().map_err(LockError::Io)?;
        Ok(lock)
      }
      Ok(None) => Err(LockError::Held { pid: holder_pid(&name) }),
      Err(e) => Err(LockError::Io(e)),
    }
  }

  /// The lock file's name (with the leading `/`), which the namespace sweeps must spare.
  pub fn name(&self) -> &str {
    &self.name
  }

  /// Whether the lock file's name still refers to the file we hold.
  pub fn name_is_ours(&self) -> bool {
    match (sys::shm_identity(&self.name), sys::file_identity(&self.file)) {
      (Ok(named), Ok(held)) => named == held,
      _ => false,
    }
  }

  /// After the name was removed: takes a lock on a fresh file of the same name. `false` when another
  /// process took it first (a second broker: this one must go).
  pub fn restore(&mut self, mode: u32) -> bool {
    match sys::lock_shm_file(&self.name, mode) {
      Ok(Some((file, _))) => {
        self.file = file;
        self.write_pid().is_ok()
      }
      _ => false,
    }
  }

  /// Removes the file (if its name is still ours) and releases the lock.
  pub fn release(self) {
    if self.name_is_ours() {
      let _ = sys::shm_unlink(&self.name);
    }
  }

  fn write_pid(&mut self) -> std::io::Result<()> {
    self.file.set_len(0)?;
    self.file.rewind()?;
    writeln!(self.file, "{}", sys::getpid())
  }
}

fn holder_pid(name: &str) -> Option<u32> {
  let mut text = String::new();
  std::fs::File::open(format!("/dev/shm{name}")).ok()?.read_to_string(&mut text).ok()?;
  text.trim().parse().ok()
}
