//! Surviving truncation: any process with access can `truncate` a segment that a process maps, and that
//! process's next access to a page past the new end raises SIGBUS, whose default action kills it. Every
//! [`Segment`](crate::segment::Segment) registers its mapping here ([`Guard`]); once [`install`] has
//! run, the SIGBUS handler maps a private zero page over the faulting page of a registered mapping
//! (`MAP_FIXED`), marks the mapping faulted and returns, so the access completes (reading zeros, which
//! every validation treats as empty or corrupt). The owner then treats the segment as `Corrupt` (see
//! [`Segment::truncated`](crate::segment::Segment::truncated)). A SIGBUS anywhere else goes to the
//! disposition that was in place before [`install`] (the process's own handler, or the default action,
//! which kills it).
//!
//! The broker installs the handler at start, the Rust connector when it first connects.
//! The handler is async-signal-safe: it reads a fixed table of atomics and calls `mmap`, `signal` or
//! the previous handler.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

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

/// The SIGBUS disposition before [`install`], for faults outside Ring's mappings.
struct Previous(libc::sigaction);

// SAFETY: a sigaction is plain data (a handler address, a mask, flags), written once before the handler
// is installed and only read afterwards.
unsafe impl Sync for Previous {}
// SAFETY: as above.
unsafe impl Send for Previous {}

static PREVIOUS: OnceLock<Previous> = OnceLock::new();
static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the SIGBUS handler, once per process (later calls do nothing and return the first result's
/// success). Mappings are guarded whether or not it is installed; only faults after it are caught.
pub fn install() -> std::io::Result<()> {
  let mut result = Ok(());
  INSTALL.call_once(|| {
    result = install_once();
    INSTALLED.store(result.is_ok(), Ordering::Release);
  });
  result
}

/// Whether [`install`] succeeded in this process.
pub fn installed() -> bool {
  INSTALLED.load(Ordering::Acquire)
}

fn install_once() -> std::io::Result<()> {
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
    let mut previous: libc::sigaction = std::mem::zeroed();
    if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
      return Err(std::io::Error::last_os_error());
    }
    let _ = PREVIOUS.set(Previous(previous));
    if libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) != 0 {
      return Err(std::io::Error::last_os_error());
    }
  }
  Ok(())
}

extern "C" fn on_sigbus(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
  // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; si_addr is set for SIGBUS.
  let addr = unsafe { (*info).si_addr() } as usize;
  let page = PAGE_SIZE.load(Ordering::Relaxed);
  for entry in &TABLE {
    let start = entry.start.load(Ordering::Acquire);
    if start != 0 && addr >= start && addr - start < entry.len.load(Ordering::Relaxed) {
      let at = addr & !(page - 1);
      // SAFETY: the page lies inside a mapping this process owns (registered by a live Guard); replacing
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
  // Not ours (or the page could not be replaced): the disposition before ours.
  match PREVIOUS.get().map(|p| p.0) {
    Some(previous) if previous.sa_sigaction != libc::SIG_DFL && previous.sa_sigaction != libc::SIG_IGN => {
      if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: with SA_SIGINFO, sa_sigaction is the address of a three-argument handler.
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
          unsafe { std::mem::transmute(previous.sa_sigaction) };
        handler(signal, info, context);
      } else {
        // SAFETY: without SA_SIGINFO, sa_sigaction is the address of a one-argument handler.
        let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(previous.sa_sigaction) };
        handler(signal);
      }
    }
    // The default action, when the access repeats (an ignored SIGBUS of a fault kills as well).
    // SAFETY: resetting a disposition is async-signal-safe.
    _ => unsafe {
      libc::signal(libc::SIGBUS, libc::SIG_DFL);
    },
  }
}

/// A mapping the SIGBUS handler guards, for as long as the guard lives; drop it before unmapping.
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
    // More mappings than the table holds: a truncation of this one kills the process as before.
    Guard { index: None }
  }

  /// Whether the mapping is in the table (false past TABLE_LEN mappings at once).
  pub fn guarded(&self) -> bool {
    self.index.is_some()
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
