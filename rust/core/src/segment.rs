//! A mapped shared memory segment: creation (`O_EXCL`, explicit mode), opening with header checks,
//! and bounds-checked access to the atomic words and byte ranges the layout names.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use memmap2::MmapRaw;

use crate::layout::*;
use crate::sigbus::Guard;
use crate::sys;

/// Why a segment could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
  /// The shared memory object does not exist.
  #[error("shared memory segment {name} does not exist")]
  NotFound {
    /// Name of the segment.
    name: String,
  },
  /// The name is taken (creation uses `O_EXCL`).
  #[error("shared memory segment {name} already exists")]
  AlreadyExists {
    /// Name of the segment.
    name: String,
  },
  /// The creator has not finished initialising the segment.
  #[error("segment {name} is not ready yet (its version word is still 0)")]
  NotReady {
    /// Name of the segment.
    name: String,
  },
  /// The segment was written by another version of the spec.
  #[error("segment {name} has wire version {found}, this library speaks version {expected}")]
  VersionMismatch {
    /// Name of the segment.
    name: String,
    /// The version this library implements.
    expected: u32,
    /// The version found in the segment.
    found: u32,
  },
  /// The header contradicts itself or the object it lives in.
  #[error("segment {name} is corrupt: {what}")]
  Corrupt {
    /// Name of the segment.
    name: String,
    /// What was wrong.
    what: String,
  },
  /// Any other system error.
  #[error("shared memory segment {name}: {source}")]
  Io {
    /// Name of the segment.
    name: String,
    /// The underlying error.
    source: io::Error,
  },
}

/// A mapped segment. Dropping it unmaps the memory; it never unlinks the name (see [`Segment::unlink`]).
pub struct Segment {
  /// Registers the mapping with the SIGBUS handler; declared before `map`, so it is dropped before
  /// the mapping goes.
  guard: Guard,
  map: MmapRaw,
  name: String,
  /// (device, inode) of the object mapped, to tell whether `name` still refers to it.
  identity: (u64, u64),
}

impl std::fmt::Debug for Segment {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("Segment").field("name", &self.name).field("len", &self.len()).finish()
  }
}

impl Segment {
  /// Creates the segment `name` (`O_EXCL`) of `size` bytes with file mode `mode`, zero-filled, and
  /// writes its header except the version word; call [`Segment::mark_ready`] once the rest is laid out.
  pub fn create(name: &str, size: usize, kind: u32, mode: u32) -> Result<Segment, SegmentError> {
    let io_err = |source: io::Error| match source.kind() {
      io::ErrorKind::AlreadyExists => SegmentError::AlreadyExists { name: name.to_string() },
      _ => SegmentError::Io { name: name.to_string(), source },
    };
    let file = sys::shm_create(name, mode).map_err(io_err)?;
    let mapped = file.set_len(size as u64).and_then(|()| MmapRaw::map_raw(&file));
    let map = match mapped {
      Ok(map) => map,
      Err(e) => {
        let _ = sys::shm_unlink(name);
        return Err(io_err(e));
      }
    };
    let identity = sys::file_identity(&file).map_err(io_err)?;
    let seg = Segment { guard: guard(&map), map, name: name.to_string(), identity };
    seg.u32_at(IR_SEG_MAGIC).store(IR_MAGIC, Ordering::Relaxed);
    seg.u32_at(IR_SEG_KIND).store(kind, Ordering::Relaxed);
    seg.u64_at(IR_SEG_SIZE).store(size as u64, Ordering::Relaxed);
    let pid = sys::getpid();
    seg.u32_at(IR_SEG_CREATOR_PID).store(pid, Ordering::Relaxed);
    seg.u64_at(IR_SEG_CREATOR_START).store(sys::process_start_time(pid).unwrap_or(0), Ordering::Relaxed);
    Ok(seg)
  }

  /// Stores the version word, which tells openers that the segment is fully laid out.
  pub fn mark_ready(&self) {
    // SYNC: publish segment — pairs with the Acquire load in `open`.
    self.u32_at(IR_SEG_VERSION).store(IR_SPEC_VERSION, Ordering::Release);
  }

  /// Opens the existing segment `name` and checks its header: magic, version, kind and size.
  pub fn open(name: &str, kind: u32) -> Result<Segment, SegmentError> {
    let file = sys::shm_open(name).map_err(|source| match source.kind() {
      io::ErrorKind::NotFound => SegmentError::NotFound { name: name.to_string() },
      _ => SegmentError::Io { name: name.to_string(), source },
    })?;
    let len = file.metadata().map_err(|source| SegmentError::Io { name: name.to_string(), source })?.len();
    let corrupt = |what: String| SegmentError::Corrupt { name: name.to_string(), what };
    if len < IR_SEG_HEADER_SIZE as u64 {
      // Its creator has not sized it yet (or it is garbage): not a usable segment yet either way.
      return Err(SegmentError::NotReady { name: name.to_string() });
    }
    let map = MmapRaw::map_raw(&file).map_err(|source| SegmentError::Io { name: name.to_string(), source })?;
    let identity = sys::file_identity(&file).map_err(|source| SegmentError::Io { name: name.to_string(), source })?;
    let seg = Segment { guard: guard(&map), map, name: name.to_string(), identity };
    // SYNC: observe segment — pairs with the Release store in `mark_ready`.
    let version = seg.u32_at(IR_SEG_VERSION).load(Ordering::Acquire);
    if version == 0 {
      return Err(SegmentError::NotReady { name: name.to_string() });
    }
    let magic = seg.u32_at(IR_SEG_MAGIC).load(Ordering::Relaxed);
    if magic != IR_MAGIC {
      return Err(corrupt(format!("magic is {magic:#010x}, expected {IR_MAGIC:#010x}")));
    }
    if version != IR_SPEC_VERSION {
      return Err(SegmentError::VersionMismatch { name: name.to_string(), expected: IR_SPEC_VERSION, found: version });
    }
    let found_kind = seg.u32_at(IR_SEG_KIND).load(Ordering::Relaxed);
    if found_kind != kind {
      return Err(corrupt(format!("kind is {found_kind}, expected {kind}")));
    }
    let size = seg.u64_at(IR_SEG_SIZE).load(Ordering::Relaxed);
    if size != len {
      return Err(corrupt(format!("header says {size} bytes but the object is {len} bytes")));
    }
    Ok(seg)
  }

  /// Removes the segment's name so no one else can open it, if the name still refers to this segment:
  /// a name removed by someone else and reused for another object is left alone.
  pub fn unlink(&self) -> io::Result<()> {
    if !self.name_is_ours() {
      return Ok(());
    }
    sys::shm_unlink(&self.name)
  }

  /// The (device, inode) of the object this segment maps.
  pub fn identity(&self) -> (u64, u64) {
    self.identity
  }

  /// Whether the segment's name still refers to this segment (not removed, not replaced).
  pub fn name_is_ours(&self) -> bool {
    sys::shm_identity(&self.name).is_ok_and(|identity| identity == self.identity)
  }

  /// Whether an access to the mapping faulted because the object was truncated under it (only noticed
  /// once [`sigbus::install`](crate::sigbus::install) has run; without it the fault kills the process).
  /// The lost pages now read zeros: treat the segment as `Corrupt`.
  pub fn truncated(&self) -> bool {
    self.guard.faulted()
  }

  /// The segment's shared memory name (with the leading `/`).
  pub fn name(&self) -> &str {
    &self.name
  }

  /// Size of the mapping in bytes.
  pub fn len(&self) -> usize {
    self.map.len()
  }

  /// Whether the mapping is empty (never true for a valid segment).
  pub fn is_empty(&self) -> bool {
    self.map.len() == 0
  }

  /// Pid and start time of the process that created the segment.
  pub fn creator(&self) -> (u32, u64) {
    (self.u32_at(IR_SEG_CREATOR_PID).load(Ordering::Relaxed), self.u64_at(IR_SEG_CREATOR_START).load(Ordering::Relaxed))
  }

  /// The 32-bit atomic word at `offset`.
  ///
  /// # Panics
  /// If `offset` is misaligned or out of bounds. Offsets passed here come from the layout constants
  /// or from values already validated against the segment size, so a panic is a bug in this crate.
  pub fn u32_at(&self, offset: usize) -> &AtomicU32 {
    assert!(offset % 4 == 0 && offset + 4 <= self.len(), "u32 word at {offset} outside {}", self.name);
    // SAFETY: in bounds and aligned (mmap returns page-aligned memory); AtomicU32 has the layout of
    // u32 and shared memory is only ever accessed atomically or through raw byte copies.
    unsafe { &*(self.map.as_mut_ptr().add(offset) as *const AtomicU32) }
  }

  /// The 64-bit atomic word at `offset`; see [`Segment::u32_at`] for the panics.
  pub fn u64_at(&self, offset: usize) -> &AtomicU64 {
    assert!(offset % 8 == 0 && offset + 8 <= self.len(), "u64 word at {offset} outside {}", self.name);
    // SAFETY: as in `u32_at`.
    unsafe { &*(self.map.as_mut_ptr().add(offset) as *const AtomicU64) }
  }

  /// Raw pointer to `len` bytes at `offset`, checked to lie inside the mapping.
  pub fn bytes_ptr(&self, offset: usize, len: usize) -> *mut u8 {
    assert!(offset.checked_add(len).is_some_and(|end| end <= self.len()), "bytes {offset}+{len} outside {}", self.name);
    // SAFETY: in bounds, checked above.
    unsafe { self.map.as_mut_ptr().add(offset) }
  }
}

fn guard(map: &MmapRaw) -> Guard {
  Guard::new(map.as_ptr(), map.len())
}

/// Whether a ring or channel capacity is acceptable: a power of two within the spec's bounds.
pub fn valid_capacity(capacity: u64) -> bool {
  capacity.is_power_of_two() && (IR_MIN_RING_CAPACITY..=IR_MAX_RING_CAPACITY).contains(&capacity)
}

#[cfg(test)]
mod tests {
  use super::*;

  fn test_name(tag: &str) -> String {
    impulse_ring_test_support::ns::segment_name(&format!("unit-{tag}"))
  }

  #[test]
  fn create_then_open_checks_header() {
    let name = test_name("seg");
    let seg = Segment::create(&name, 4096, IR_KIND_CHANNEL, 0o600).unwrap();
    assert!(matches!(Segment::open(&name, IR_KIND_CHANNEL), Err(SegmentError::NotReady { .. })));
    seg.mark_ready();
    let opened = Segment::open(&name, IR_KIND_CHANNEL).unwrap();
    assert_eq!(opened.len(), 4096);
    assert!(matches!(Segment::open(&name, IR_KIND_LINK), Err(SegmentError::Corrupt { .. })));
    assert!(matches!(Segment::create(&name, 4096, IR_KIND_CHANNEL, 0o600), Err(SegmentError::AlreadyExists { .. })));
    seg.u32_at(IR_SEG_VERSION).store(7, Ordering::Relaxed);
    assert!(matches!(Segment::open(&name, IR_KIND_CHANNEL), Err(SegmentError::VersionMismatch { found: 7, .. })));
    seg.u32_at(IR_SEG_VERSION).store(1, Ordering::Relaxed);
    seg.u64_at(IR_SEG_SIZE).store(1 << 40, Ordering::Relaxed);
    assert!(matches!(Segment::open(&name, IR_KIND_CHANNEL), Err(SegmentError::Corrupt { .. })));
    seg.unlink().unwrap();
    assert!(matches!(Segment::open(&name, IR_KIND_CHANNEL), Err(SegmentError::NotFound { .. })));
  }

  #[test]
  fn created_segment_has_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let name = test_name("mode");
    let seg = Segment::create(&name, 4096, IR_KIND_LINK, 0o600).unwrap();
    let mode = std::fs::metadata(format!("/dev/shm{name}")).unwrap().permissions().mode();
    seg.unlink().unwrap();
    assert_eq!(mode & 0o777, 0o600);
  }
}
