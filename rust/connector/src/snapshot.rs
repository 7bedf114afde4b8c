//! A value that is written rarely and read on every poll: writers replace it under a lock and bump a
//! version; a reader keeps a [`Cached`] copy and takes the lock only when the version moved, so the
//! reactor's hot loop neither locks nor allocates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::session::lock;

/// The shared value.
#[derive(Default)]
pub(crate) struct Published<T> {
  current: Mutex<Arc<T>>,
  version: AtomicU64,
}

/// A reader's copy of a [`Published`] value.
#[derive(Default)]
pub(crate) struct Cached<T> {
  version: u64,
  value: Arc<T>,
}

impl<T> Published<T> {
  /// Replaces the value.
  pub fn set(&self, value: T) {
    let mut current = lock(&self.current);
    *current = Arc::new(value);
    // Bumped after the store and under the lock: a reader that sees the new version gets this value
    // or a newer one.
    self.version.fetch_add(1, Ordering::Release);
  }

  /// The current value (takes the lock).
  pub fn get(&self) -> Arc<T> {
    lock(&self.current).clone()
  }

  /// The current value through `cache`, locking only when it changed since the cache was filled.
  pub fn read<'a>(&self, cache: &'a mut Cached<T>) -> &'a Arc<T> {
    let version = self.version.load(Ordering::Acquire);
    if version != cache.version {
      cache.value = self.get();
      cache.version = version;
    }
    &cache.value
  }
}
