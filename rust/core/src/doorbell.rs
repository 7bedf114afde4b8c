//! Doorbells and wait strategies: how a consumer sleeps until a producer has news, without any system
//! call while both are active. A doorbell is a futex word plus a sleeper count; a waker pays for
//! `FUTEX_WAKE` only when the count says someone sleeps.

use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::layout::{IR_DOORBELL_SEQ, IR_DOORBELL_SLEEPERS};
use crate::segment::Segment;
use crate::sys;

/// How an endpoint waits for data or space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStrategy {
  /// Spin on the shared words until the deadline: lowest latency, one core busy while waiting.
  BusySpin,
  /// Spin for `spin`, then yield the CPU for `yield_for`, then sleep on the futex (the default).
  Adaptive {
    /// How long to spin before yielding.
    spin: Duration,
    /// How long to yield before sleeping.
    yield_for: Duration,
  },
  /// Sleep on the futex at once.
  Blocking,
}

impl Default for WaitStrategy {
  /// Adaptive, with a spin window a little longer than a futex wake-up on a VM (~20 µs).
  fn default() -> Self {
    WaitStrategy::Adaptive { spin: Duration::from_micros(50), yield_for: Duration::from_micros(50) }
  }
}

/// The longest single futex sleep; waiters wake this often to re-check conditions nobody rings for
/// (a peer that died without a broker to report it).
pub const MAX_SLEEP: Duration = Duration::from_millis(200);

/// A doorbell inside a segment.
#[derive(Clone, Copy)]
pub struct Doorbell<'a> {
  seq: &'a AtomicU32,
  sleepers: &'a AtomicU32,
}

impl<'a> Doorbell<'a> {
  /// The doorbell whose words start at `offset` in `seg`.
  pub fn at(seg: &'a Segment, offset: usize) -> Doorbell<'a> {
    Doorbell { seq: seg.u32_at(offset + IR_DOORBELL_SEQ), sleepers: seg.u32_at(offset + IR_DOORBELL_SLEEPERS) }
  }

  /// Wakes every sleeper, if there is one. Call it after the Release store that published the news.
  pub fn ring(&self) {
    // SYNC: doorbell sleep check — the SeqCst fence orders the caller's publishing store before the sleeper
    // count load; it pairs with the SeqCst increment in `wait_until` (a Dekker pair: either the
    // sleeper sees the news or the waker sees the sleeper).
    fence(Ordering::SeqCst);
    if self.sleepers.load(Ordering::Relaxed) != 0 {
      self.seq.fetch_add(1, Ordering::Release);
      sys::futex_wake_all(self.seq);
    }
  }

  /// Like [`Doorbell::ring`], for a caller whose publishing store was itself SeqCst: a SeqCst store
  /// followed by a SeqCst load of the sleeper count needs no fence between them.
  pub fn ring_after_seqcst_store(&self) {
    // SYNC: doorbell sleep check — pairs with the SeqCst increment and fence in `wait_until`.
    if self.sleepers.load(Ordering::SeqCst) != 0 {
      self.seq.fetch_add(1, Ordering::Release);
      sys::futex_wake_all(self.seq);
    }
  }

  /// Waits until `check` returns `Some`, or `deadline` passes (then `None`). `check` is called often
  /// and must be cheap; it must read the shared words it waits on with Acquire ordering.
  pub fn wait_until<T>(
    &self,
    strategy: WaitStrategy,
    deadline: Option<Instant>,
    mut check: impl FnMut() -> Option<T>,
  ) -> Option<T> {
    if let Some(v) = check() {
      return Some(v);
    }
    let start = Instant::now();
    let (spin, yield_for) = match strategy {
      WaitStrategy::BusySpin => (Duration::MAX, Duration::ZERO),
      WaitStrategy::Adaptive { spin, yield_for } => (spin, yield_for),
      WaitStrategy::Blocking => (Duration::ZERO, Duration::ZERO),
    };
    let mut rounds: u32 = 0;
    // Blocking goes to sleep at once; the others spin (and yield) first.
    let mut polling = !matches!(strategy, WaitStrategy::Blocking);
    while polling {
      rounds = rounds.wrapping_add(1);
      if let Some(v) = check() {
        return Some(v);
      }
      // Reading the clock costs more than a check: do it every 64 rounds.
      if rounds % 64 != 0 {
        std::hint::spin_loop();
        continue;
      }
      let now = Instant::now();
      if deadline.is_some_and(|d| now >= d) {
        return None;
      }
      let waited = now - start;
      if waited < spin {
        std::hint::spin_loop();
      } else if waited < spin.saturating_add(yield_for) {
        std::thread::yield_now();
      } else {
        polling = false;
      }
    }
    loop {
      let seq = self.seq.load(Ordering::Acquire);
      // SYNC: doorbell sleep check — pairs with the fence in `ring` and `ring_after_seqcst_store`.
      self.sleepers.fetch_add(1, Ordering::SeqCst);
      // The RMW alone does not keep the check's Acquire loads after it on every architecture (arm64
      // LDAPR may pass it): the fence does.
      fence(Ordering::SeqCst);
      let found = check();
      if found.is_none() {
        let timeout = match deadline {
          Some(d) => d.saturating_duration_since(Instant::now()).min(MAX_SLEEP),
          None => MAX_SLEEP,
        };
        if !timeout.is_zero() {
          sys::futex_wait(self.seq, seq, Some(timeout));
        }
      }
      self.sleepers.fetch_sub(1, Ordering::SeqCst);
      if let Some(v) = found.or_else(&mut check) {
        return Some(v);
      }
      if deadline.is_some_and(|d| Instant::now() >= d) {
        return None;
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::layout::IR_KIND_LINK;
  use std::sync::atomic::AtomicBool;
  use std::sync::Arc;

  #[test]
  fn blocking_waiter_is_woken_by_ring_well_before_the_safety_timeout() {
    let name = format!("/impulse-ring.unit-{}-bell", sys::getpid());
    let seg = Arc::new(Segment::create(&name, 4096, IR_KIND_LINK, 0o600).unwrap());
    seg.unlink().unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let (seg2, flag2) = (seg.clone(), flag.clone());
    let waker = std::thread::spawn(move || {
      // Ring only once the waiter sleeps, so that the wake-up path is what is tested.
      while seg2.u32_at(128 + IR_DOORBELL_SLEEPERS).load(Ordering::Acquire) == 0 {
        std::thread::sleep(Duration::from_millis(1));
      }
      let seq = seg2.u32_at(128 + IR_DOORBELL_SEQ).load(Ordering::Relaxed);
      flag2.store(true, Ordering::Release);
      Doorbell::at(&seg2, 128).ring();
      (seq, Instant::now())
    });
    let bell = Doorbell::at(&seg, 128);
    let got = bell.wait_until(WaitStrategy::Blocking, Some(Instant::now() + Duration::from_secs(5)), || {
      flag.load(Ordering::Acquire).then_some(())
    });
    let woke = Instant::now();
    let (seq_before, rung) = waker.join().unwrap();
    assert_eq!(got, Some(()));
    assert_ne!(seg.u32_at(128 + IR_DOORBELL_SEQ).load(Ordering::Relaxed), seq_before, "ring saw no sleeper");
    // Without the futex wake the waiter would sleep out MAX_SLEEP (200 ms) before it looked again.
    let after = woke.saturating_duration_since(rung);
    assert!(after < MAX_SLEEP / 2, "woken {after:?} after the ring: the ring did not wake it");
    assert_eq!(seg.u32_at(128 + IR_DOORBELL_SLEEPERS).load(Ordering::Relaxed), 0);
  }

  #[test]
  fn wait_times_out_with_none() {
    let name = format!("/impulse-ring.unit-{}-bell2", sys::getpid());
    let seg = Segment::create(&name, 4096, IR_KIND_LINK, 0o600).unwrap();
    seg.unlink().unwrap();
    let bell = Doorbell::at(&seg, 128);
    let start = Instant::now();
    let got: Option<()> = bell.wait_until(WaitStrategy::default(), Some(start + Duration::from_millis(30)), || None);
    assert!(got.is_none());
    assert!(start.elapsed() >= Duration::from_millis(30));
  }
}
