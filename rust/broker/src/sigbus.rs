//! Surviving truncation: any process with access can `truncate` a segment the broker maps, and the
//! broker's next access to a page past the new end raises SIGBUS, whose default action kills it. The
//! broker registers each mapping it uses ([`Guard`]); the SIGBUS handler maps a private zero page over
//! the faulting page of a registered mapping (`MAP_FIXED`), marks the mapping faulted and returns, so
//! the access completes (reading zeros, which every validation treats as empty or corrupt). The broker
//! then treats the segment as `Corrupt` (see [`Guard::faulted`]). A SIGBUS anywhere else keeps its
//! default action.
//!
//! The handler is async-signal-safe: it reads a fixed table of atomics and calls `mmap` and `signal`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How many mappings can be guarded at once; beyond it a mapping goes unguarded (logged).
const TABLE_LEN: usize = 4096;

struct Entry {
  /// First byte of the mapping; 0 for a free entry.
  start: AtomicUsize,
  len: AtomicUsize,
  faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Entry = Entry { start: AtomicUsize::new(0), len: AtomicUsize::new(0), faulted: AtomicBool::new(false) };

static TABLE: [Entry; TABLE_LEN] = [FREE; TABLE_LEN];
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);

/// Installs the SIGBUS handler; call once, before the first mapping is guarded.
pub fn install() -> std::io::Result<()> {
  // SAFETY: sysconf has no preconditions.
  let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
  if page > 0 {
    PAGE_SIZE.store(page as usize, Ordering::Relaxed);
  }
  // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the handler has the SA_SIGINFO
  // signature and only does async-signal-safe work.
  unsafe {
    let mut action: libc::sigaction = std::mem::zeroed();
    action.sa_sigaction = on_sigbus as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO;
    libc::sigemptyset(&mut action.sa_mask);
    if libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) != 0 {
      return Err(std::io::Error::last_os_error());
    }
  }
  Ok(())
}

extern "C" fn on_sigbus(_signal: libc::c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
  // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; si_addr is set for SIGBUS.
  let addr = unsafe { (*info).si_addr() } as usize;
  let page = PAGE_SIZE.load(Ordering::Relaxed);
  for entry in &TABLE {
    let start = entry.start.load(Ordering::Acquire);
    if start != 0 && addr >= start && addr - start < entry.len.load(Ordering::Relaxed) {
      let at = addr & !(page - 1);
      // SAFETY: the page lies inside a mapping the broker owns (registered by a live Guard); replacing
      // it with a private zero page only changes what that mapping's accesses see.
      let mapped = unsafe {
        libc::mmap(
          at as *mut libc::c_void,
          page,
          libc::PROT_READ | libc::PROT_WRITE,
          libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
          -1,
          0,
        )
      };
      if mapped != libc::MAP_FAILED {
        entry.faulted.store(true, Ordering::Release);
        return;
      }
      break;
    }
  }
  // Not ours (or the page could not be replaced): the default action, when the access repeats.
  // SAFETY: resetting a disposition is async-signal-safe.
  unsafe {
    libc::signal(libc::SIGBUS, libc::SIG_DFL);
  }
}

/// A mapping the SIGBUS handler guards, for as long as the guard lives.
pub struct Guard {
  index: Option<usize>,
}

impl Guard {
  /// Guards the `len` bytes at `start`.
  pub fn new(start: *const u8, len: usize) -> Guard {
    for (index, entry) in TABLE.iter().enumerate() {
      if entry.start.load(Ordering::Relaxed) == 0 {
        entry.len.store(len, Ordering::Relaxed);
        entry.faulted.store(false, Ordering::Relaxed);
        // SYNC: publish entry — pairs with the handler's Acquire load of `start`.
        entry.start.store(start as usize, Ordering::Release);
        return Guard { index: Some(index) };
      }
    }
    tracing::warn!("more than {TABLE_LEN} mappings: a truncation of this one would kill the broker");
    Guard { index: None }
  }

  /// Guards a whole segment.
  pub fn segment(seg: &impulse_ring_core::segment::Segment) -> Guard {
    Guard::new(seg.bytes_ptr(0, seg.len()), seg.len())
  }

  /// Whether an access faulted since the guard was made: the object was truncated under the mapping,
  /// which now reads zeros where it lost pages.
  pub fn faulted(&self) -> bool {
    self.index.is_some_and(|i| TABLE[i].faulted.load(Ordering::Acquire))
  }
}

impl Drop for Guard {
  fn drop(&mut self) {
    if let Some(i) = self.index {
      TABLE[i].start.store(0, Ordering::Release);
    }
  }
}
