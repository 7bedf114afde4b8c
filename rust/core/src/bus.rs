//! The segments of a namespace as whole objects: the control segment (app slots with their rings and
//! doorbells) and call links. Both the broker and the connectors go through these views, so the
//! offsets of `layout` are combined in one place.

use std::sync::atomic::Ordering;

use crate::doorbell::Doorbell;
use crate::frame::RingError;
use crate::layout::*;
use crate::ring::Ring;
use crate::segment::{valid_capacity, Segment, SegmentError};
use crate::{names, sys};

/// The control segment of a namespace.
#[derive(Debug)]
pub struct ControlSegment {
  seg: Segment,
  max_apps: u32,
  ring_capacity: u64,
}

impl ControlSegment {
  /// Broker: creates the control segment of `ns` (fails with `AlreadyExists` if one exists).
  pub fn create(ns: &str, max_apps: u32, ring_capacity: u32, mode: u32) -> Result<ControlSegment, SegmentError> {
    let size = control_segment_size(max_apps as usize, ring_capacity as usize);
    let seg = Segment::create(&names::control(ns), size, IR_KIND_CONTROL, mode)?;
    let pid = sys::getpid();
    seg.u32_at(IR_CTL_BROKER_PID).store(pid, Ordering::Relaxed);
    seg.u64_at(IR_CTL_BROKER_START).store(sys::process_start_time(pid).unwrap_or(0), Ordering::Relaxed);
    seg.u32_at(IR_CTL_MAX_APPS).store(max_apps, Ordering::Relaxed);
    seg.u32_at(IR_CTL_RING_CAPACITY).store(ring_capacity, Ordering::Relaxed);
    seg.u64_at(IR_CTL_HEARTBEAT).store(sys::monotonic_ms(), Ordering::Relaxed);
    let ctl = ControlSegment { seg, max_apps, ring_capacity: ring_capacity as u64 };
    for slot in 0..max_apps {
      Ring::init(&ctl.seg, ctl.request_ring_base(slot), ctl.ring_capacity);
      Ring::init(&ctl.seg, ctl.reply_ring_base(slot), ctl.ring_capacity);
    }
    ctl.seg.mark_ready();
    Ok(ctl)
  }

  /// Opens the control segment of `ns` and validates its header.
  pub fn open(ns: &str) -> Result<ControlSegment, SegmentError> {
    let seg = Segment::open(&names::control(ns), IR_KIND_CONTROL)?;
    let max_apps = seg.u32_at(IR_CTL_MAX_APPS).load(Ordering::Relaxed);
    let ring_capacity = seg.u32_at(IR_CTL_RING_CAPACITY).load(Ordering::Relaxed) as u64;
    let expected = control_segment_size(max_apps as usize, ring_capacity as usize);
    if max_apps == 0 || max_apps > 4096 || !valid_capacity(ring_capacity) || expected != seg.len() {
      return Err(SegmentError::Corrupt {
        name: seg.name().to_string(),
        what: format!("{max_apps} slots of ring capacity {ring_capacity} do not match {} bytes", seg.len()),
      });
    }
    Ok(ControlSegment { seg, max_apps, ring_capacity })
  }

  /// The mapped segment.
  pub fn segment(&self) -> &Segment {
    &self.seg
  }

  /// Number of app slots.
  pub fn max_apps(&self) -> u32 {
    self.max_apps
  }

  /// The broker's pid and start time.
  pub fn broker(&self) -> (u32, u64) {
    (
      self.seg.u32_at(IR_CTL_BROKER_PID).load(Ordering::Relaxed),
      self.seg.u64_at(IR_CTL_BROKER_START).load(Ordering::Relaxed),
    )
  }

  /// Whether the broker process that owns this segment is alive.
  pub fn broker_alive(&self) -> bool {
    let (pid, start) = self.broker();
    sys::process_alive(pid, start)
  }

  /// Whether the broker has started shutting down.
  pub fn shutting_down(&self) -> bool {
    self.seg.u32_at(IR_CTL_SHUTTING_DOWN).load(Ordering::Acquire) != 0
  }

  /// Broker: announces shutdown.
  pub fn set_shutting_down(&self) {
    self.seg.u32_at(IR_CTL_SHUTTING_DOWN).store(1, Ordering::Release);
  }

  /// Broker: stores the heartbeat.
  pub fn beat(&self) {
    self.seg.u64_at(IR_CTL_HEARTBEAT).store(sys::monotonic_ms(), Ordering::Relaxed);
  }

  /// The doorbell the broker sleeps on.
  pub fn broker_doorbell(&self) -> Doorbell<'_> {
    Doorbell::at(&self.seg, IR_CTL_BROKER_DOORBELL)
  }

  fn slot_base(&self, slot: u32) -> usize {
    assert!(slot < self.max_apps, "slot {slot} out of range");
    IR_CTL_SLOTS + slot as usize * control_slot_size(self.ring_capacity as usize)
  }

  fn request_ring_base(&self, slot: u32) -> usize {
    self.slot_base(slot) + IR_SLOT_REQUEST_RING
  }

  fn reply_ring_base(&self, slot: u32) -> usize {
    self.request_ring_base(slot) + IR_RING_HEADER_SIZE + self.ring_capacity as usize
  }

  /// The doorbell app `slot` sleeps on.
  pub fn app_doorbell(&self, slot: u32) -> Doorbell<'_> {
    Doorbell::at(&self.seg, self.slot_base(slot) + IR_SLOT_DOORBELL)
  }

  /// The app → broker ring of `slot`.
  pub fn request_ring(&self, slot: u32) -> Result<Ring, RingError> {
    Ring::open(&self.seg, self.request_ring_base(slot), self.ring_capacity)
  }

  /// The broker → app ring of `slot`.
  pub fn reply_ring(&self, slot: u32) -> Result<Ring, RingError> {
    Ring::open(&self.seg, self.reply_ring_base(slot), self.ring_capacity)
  }

  /// The state word of `slot`.
  pub fn slot_state(&self, slot: u32) -> u32 {
    self.seg.u32_at(self.slot_base(slot) + IR_SLOT_STATE).load(Ordering::Acquire)
  }

  /// The generation word of `slot` (bootstrap.md §3.2). Acquire: pairs with the broker's Release store
  /// of the slot state after it bumped the generation.
  pub fn slot_generation(&self, slot: u32) -> u32 {
    self.seg.u32_at(self.slot_base(slot) + IR_SLOT_GENERATION).load(Ordering::Acquire)
  }

  /// App: whether the broker has fenced this app off `slot`, which it claimed when the slot's generation
  /// was `generation`: the slot was fenced or freed since (bootstrap.md §3.2).
  pub fn fenced(&self, slot: u32, generation: u32) -> bool {
    self.slot_state(slot) == IR_SLOT_FENCED || self.slot_generation(slot) != generation
  }

  /// Broker: fences `slot`, whose app was dropped while its process lives on: the generation moves on
  /// (so the app sees it is fenced) and the state becomes FENCED, which no app may claim; the slot is
  /// freed with [`free_slot`](Self::free_slot) once that process has exited.
  pub fn fence_slot(&self, slot: u32) {
    let base = self.slot_base(slot);
    self.seg.u32_at(base + IR_SLOT_GENERATION).fetch_add(1, Ordering::Relaxed);
    // SYNC: publish fence — pairs with the app's Acquire loads in `fenced`.
    self.seg.u32_at(base + IR_SLOT_STATE).store(IR_SLOT_FENCED, Ordering::Release);
  }

  /// The pid and start time an app wrote into its slot.
  pub fn slot_owner(&self, slot: u32) -> (u32, u64) {
    let base = self.slot_base(slot);
    (
      self.seg.u32_at(base + IR_SLOT_PID).load(Ordering::Relaxed),
      self.seg.u64_at(base + IR_SLOT_START).load(Ordering::Relaxed),
    )
  }

  /// App: claims a free slot with a CAS and writes its identity into it.
  pub fn claim_slot(&self) -> Option<u32> {
    let pid = sys::getpid();
    let start = sys::process_start_time(pid).unwrap_or(0);
    (0..self.max_apps).find(|&slot| {
      let base = self.slot_base(slot);
      let claimed = self
        .seg
        .u32_at(base + IR_SLOT_STATE)
        .compare_exchange(IR_SLOT_FREE, IR_SLOT_CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok();
      if claimed {
        self.seg.u32_at(base + IR_SLOT_PID).store(pid, Ordering::Relaxed);
        self.seg.u64_at(base + IR_SLOT_START).store(start, Ordering::Release);
      }
      claimed
    })
  }

  /// Broker: sets the state of `slot`.
  pub fn set_slot_state(&self, slot: u32, state: u32) {
    self.seg.u32_at(self.slot_base(slot) + IR_SLOT_STATE).store(state, Ordering::Release);
  }

  /// Broker: clears the sleeper count of the doorbell of `slot` whose process is dead. Its threads
  /// may have died asleep; left counted, they would make every later waker of this slot pay for a
  /// `FUTEX_WAKE`. Only for a dead process: a live one's sleepers still decrement the count.
  pub fn clear_dead_sleepers(&self, slot: u32) {
    self.seg.u32_at(self.slot_base(slot) + IR_SLOT_DOORBELL + IR_DOORBELL_SLEEPERS).store(0, Ordering::Relaxed);
  }

  /// Broker: empties the slot's rings and frees it for the next app.
  pub fn free_slot(&self, slot: u32) {
    let base = self.slot_base(slot);
    Ring::init(&self.seg, self.request_ring_base(slot), self.ring_capacity).reset(&self.seg);
    Ring::init(&self.seg, self.reply_ring_base(slot), self.ring_capacity).reset(&self.seg);
    self.seg.u32_at(base + IR_SLOT_PID).store(0, Ordering::Relaxed);
    self.seg.u64_at(base + IR_SLOT_START).store(0, Ordering::Relaxed);
    self.seg.u32_at(base + IR_SLOT_GENERATION).fetch_add(1, Ordering::Relaxed);
    // SYNC: publish free slot — pairs with the app's CAS (Acquire) in `claim_slot`.
    self.seg.u32_at(base + IR_SLOT_STATE).store(IR_SLOT_FREE, Ordering::Release);
  }
}

/// A call link segment: the request ring (caller → provider) and the response ring (provider → caller).
#[derive(Debug)]
pub struct LinkSegment {
  seg: Segment,
  capacity: u64,
}

/// The immutable identity of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkInfo {
  /// Link id.
  pub link_id: u64,
  /// Function id.
  pub function_id: u64,
  /// App id of the caller.
  pub caller: u32,
  /// App id of the provider.
  pub provider: u32,
  /// Fingerprint of the request schema.
  pub request_fp: u64,
  /// Fingerprint of the response schema.
  pub response_fp: u64,
}

impl LinkSegment {
  /// Broker: creates a link segment.
  pub fn create(name: &str, info: LinkInfo, capacity: u64, mode: u32) -> Result<LinkSegment, SegmentError> {
    let seg = Segment::create(name, link_segment_size(capacity as usize), IR_KIND_LINK, mode)?;
    seg.u64_at(IR_LINK_LINK_ID).store(info.link_id, Ordering::Relaxed);
    seg.u64_at(IR_LINK_FUNCTION_ID).store(info.function_id, Ordering::Relaxed);
    seg.u32_at(IR_LINK_CALLER).store(info.caller, Ordering::Relaxed);
    seg.u32_at(IR_LINK_PROVIDER).store(info.provider, Ordering::Relaxed);
    seg.u64_at(IR_LINK_REQUEST_FP).store(info.request_fp, Ordering::Relaxed);
    seg.u64_at(IR_LINK_RESPONSE_FP).store(info.response_fp, Ordering::Relaxed);
    Ring::init(&seg, IR_LINK_REQUEST_RING, capacity);
    Ring::init(&seg, link_response_ring(capacity as usize), capacity);
    seg.mark_ready();
    Ok(LinkSegment { seg, capacity })
  }

  /// Opens a link segment and validates its layout.
  pub fn open(name: &str) -> Result<LinkSegment, SegmentError> {
    let seg = Segment::open(name, IR_KIND_LINK)?;
    let corrupt = |what: String| SegmentError::Corrupt { name: name.to_string(), what };
    if seg.len() < IR_LINK_REQUEST_RING + IR_RING_HEADER_SIZE {
      return Err(corrupt(format!("{} bytes is too small for a link", seg.len())));
    }
    let capacity = seg.u64_at(IR_LINK_REQUEST_RING + IR_RING_CAPACITY).load(Ordering::Relaxed);
    if !valid_capacity(capacity) || link_segment_size(capacity as usize) != seg.len() {
      return Err(corrupt(format!("ring capacity {capacity} does not match {} bytes", seg.len())));
    }
    let link = LinkSegment { seg, capacity };
    link.request_ring().map_err(|e| corrupt(e.to_string()))?;
    link.response_ring().map_err(|e| corrupt(e.to_string()))?;
    Ok(link)
  }

  /// The mapped segment.
  pub fn segment(&self) -> &Segment {
    &self.seg
  }

  /// The link's identity, as written by the broker.
  pub fn info(&self) -> LinkInfo {
    LinkInfo {
      link_id: self.seg.u64_at(IR_LINK_LINK_ID).load(Ordering::Relaxed),
      function_id: self.seg.u64_at(IR_LINK_FUNCTION_ID).load(Ordering::Relaxed),
      caller: self.seg.u32_at(IR_LINK_CALLER).load(Ordering::Relaxed),
      provider: self.seg.u32_at(IR_LINK_PROVIDER).load(Ordering::Relaxed),
      request_fp: self.seg.u64_at(IR_LINK_REQUEST_FP).load(Ordering::Relaxed),
      response_fp: self.seg.u64_at(IR_LINK_RESPONSE_FP).load(Ordering::Relaxed),
    }
  }

  /// The caller → provider ring.
  pub fn request_ring(&self) -> Result<Ring, RingError> {
    Ring::open(&self.seg, IR_LINK_REQUEST_RING, self.capacity)
  }

  /// The provider → caller ring.
  pub fn response_ring(&self) -> Result<Ring, RingError> {
    Ring::open(&self.seg, link_response_ring(self.capacity as usize), self.capacity)
  }

  /// Whether the caller (`IR_LINK_CALLER_GONE`) or provider (`IR_LINK_PROVIDER_GONE`) side is gone.
  pub fn gone(&self, which: usize) -> bool {
    self.seg.u32_at(which).load(Ordering::Acquire) != 0
  }

  /// Broker: marks one side gone (`IR_LINK_CALLER_GONE` or `IR_LINK_PROVIDER_GONE`).
  pub fn set_gone(&self, which: usize) {
    self.seg.u32_at(which).store(1, Ordering::Release);
  }
}
