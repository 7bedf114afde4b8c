//! The Python connector's native extension, `impulse_ring._native`: atomic access to 32- and 64-bit
//! words of a mapped buffer, futex wait/wake on them, and the X25519 function, because Python's
//! standard library has none of them. Nothing of the Ring protocol lives here: offsets, orderings and
//! algorithms (the sealing of access keys too) are chosen by the pure-Python code that follows spec/.
//!
//! A [`Region`] is an address and a length handed over by Python (the mapping of an `mmap` object,
//! kept alive and pinned by the caller). Every access checks that the word lies inside the region
//! and is aligned to its width, so no offset read from shared memory can make it touch memory
//! outside the mapping.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rustix::thread::futex;

/// Memory orderings, numbered as the Python side names them (`RELAXED` .. `SEQCST`).
fn ordering(order: u32) -> PyResult<Ordering> {
  Ok(match order {
    0 => Ordering::Relaxed,
    1 => Ordering::Acquire,
    2 => Ordering::Release,
    3 => Ordering::AcqRel,
    4 => Ordering::SeqCst,
    other => return Err(PyValueError::new_err(format!("unknown memory ordering {other}"))),
  })
}

/// Orderings a load accepts (Release and AcqRel make no sense for a load and would panic).
fn load_ordering(order: u32) -> PyResult<Ordering> {
  match ordering(order)? {
    Ordering::Release | Ordering::AcqRel => Err(PyValueError::new_err("a load cannot have Release ordering")),
    o => Ok(o),
  }
}

/// Orderings a store accepts.
fn store_ordering(order: u32) -> PyResult<Ordering> {
  match ordering(order)? {
    Ordering::Acquire | Ordering::AcqRel => Err(PyValueError::new_err("a store cannot have Acquire ordering")),
    o => Ok(o),
  }
}

/// The failure ordering of a compare-exchange whose success ordering is `success`.
fn failure_ordering(success: Ordering) -> Ordering {
  match success {
    Ordering::Release | Ordering::Relaxed => Ordering::Relaxed,
    Ordering::SeqCst => Ordering::SeqCst,
    _ => Ordering::Acquire,
  }
}

/// A mapped buffer: `len` bytes at `base`, valid for as long as this object lives.
#[pyclass(module = "impulse_ring._native", frozen)]
struct Region {
  /// Page-aligned address of the mapping's first byte.
  base: usize,
  /// Length of the mapping in bytes.
  len: usize,
}

impl Region {
  /// The address of the `width`-byte word at `offset`, after checking bounds and alignment.
  fn word(&self, offset: usize, width: usize) -> PyResult<usize> {
    if offset % width != 0 {
      return Err(PyValueError::new_err(format!("offset {offset} is not aligned to {width} bytes")));
    }
    if offset.checked_add(width).is_none_or(|end| end > self.len) {
      return Err(PyValueError::new_err(format!("offset {offset} is outside the {}-byte region", self.len)));
    }
    Ok(self.base + offset)
  }

  fn u32_at(&self, offset: usize) -> PyResult<&AtomicU32> {
    let address = self.word(offset, 4)?;
    // SAFETY: `word` checked that the 4 bytes lie inside the mapping and are 4-aligned; the mapping
    // lives as long as `self` (the constructor's contract), and shared words are only ever accessed
    // atomically.
    Ok(unsafe { AtomicU32::from_ptr(address as *mut u32) })
  }

  fn u64_at(&self, offset: usize) -> PyResult<&AtomicU64> {
    let address = self.word(offset, 8)?;
    // SAFETY: as in `u32_at`, for 8 aligned bytes.
    Ok(unsafe { AtomicU64::from_ptr(address as *mut u64) })
  }
}

#[pymethods]
impl Region {
  /// Wraps `len` bytes at `address`.
  ///
  /// The caller promises that the memory is a live, writable, page-aligned mapping of at least `len`
  /// bytes and stays mapped for as long as the region exists (the Python wrapper pins its `mmap` with
  /// a ctypes export, so it cannot be closed underneath).
  #[new]
  fn new(address: usize, len: usize) -> PyResult<Region> {
    if address == 0 || address % 4096 != 0 {
      return Err(PyValueError::new_err(format!("address {address:#x} is not page-aligned")));
    }
    if address.checked_add(len).is_none() {
      return Err(PyValueError::new_err("the region wraps around the address space"));
    }
    Ok(Region { base: address, len })
  }

  /// Length in bytes.
  #[getter]
  fn len(&self) -> usize {
    self.len
  }

  /// Atomic load of the `u32` at `offset`.
  fn load32(&self, offset: usize, order: u32) -> PyResult<u32> {
    Ok(self.u32_at(offset)?.load(load_ordering(order)?))
  }

  /// Atomic load of the `u64` at `offset`.
  fn load64(&self, offset: usize, order: u32) -> PyResult<u64> {
    Ok(self.u64_at(offset)?.load(load_ordering(order)?))
  }

  /// Atomic store of a `u32` at `offset`.
  fn store32(&self, offset: usize, value: u32, order: u32) -> PyResult<()> {
    self.u32_at(offset)?.store(value, store_ordering(order)?);
    Ok(())
  }

  /// Atomic store of a `u64` at `offset`.
  fn store64(&self, offset: usize, value: u64, order: u32) -> PyResult<()> {
    self.u64_at(offset)?.store(value, store_ordering(order)?);
    Ok(())
  }

  /// Compare-and-swap of the `u32` at `offset`; returns the value found (equal to `expected` on success).
  fn cas32(&self, offset: usize, expected: u32, new: u32, order: u32) -> PyResult<u32> {
    let success = ordering(order)?;
    let word = self.u32_at(offset)?;
    Ok(word.compare_exchange(expected, new, success, failure_ordering(success)).unwrap_or_else(|found| found))
  }

  /// Compare-and-swap of the `u64` at `offset`; returns the value found.
  fn cas64(&self, offset: usize, expected: u64, new: u64, order: u32) -> PyResult<u64> {
    let success = ordering(order)?;
    let word = self.u64_at(offset)?;
    Ok(word.compare_exchange(expected, new, success, failure_ordering(success)).unwrap_or_else(|found| found))
  }

  /// Wrapping fetch-add on the `u32` at `offset` (a negative `delta` subtracts); returns the old value.
  fn fetch_add32(&self, offset: usize, delta: i64, order: u32) -> PyResult<u32> {
    Ok(self.u32_at(offset)?.fetch_add(delta as u32, ordering(order)?))
  }

  /// Wrapping fetch-add on the `u64` at `offset`; returns the old value.
  fn fetch_add64(&self, offset: usize, delta: i64, order: u32) -> PyResult<u64> {
    Ok(self.u64_at(offset)?.fetch_add(delta as u64, ordering(order)?))
  }

  /// `FUTEX_WAIT` (shared, not private) on the `u32` at `offset` while it holds `expected`, for at most
  /// `timeout` seconds. Returns when woken, on timeout, on a signal or when the word differs; the
  /// caller re-checks its condition in every case. The GIL is released while the thread sleeps.
  fn futex_wait(&self, py: Python<'_>, offset: usize, expected: u32, timeout: f64) -> PyResult<()> {
    let word = self.u32_at(offset)?;
    if !timeout.is_finite() || timeout <= 0.0 {
      return Ok(());
    }
    let seconds = timeout.trunc();
    let spec = futex::Timespec { tv_sec: seconds as i64, tv_nsec: ((timeout - seconds) * 1e9) as i64 };
    let result = py.detach(|| futex::wait(word, futex::Flags::empty(), expected, Some(&spec)));
    match result {
      Ok(()) => Ok(()),
      Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::INTR || e == rustix::io::Errno::TIMEDOUT => {
        Ok(())
      }
      Err(e) => Err(PyOSError::new_err(format!("futex wait failed: {e}"))),
    }
  }

  /// `FUTEX_WAKE` (shared) of up to `count` sleepers on the `u32` at `offset`; returns how many woke.
  fn futex_wake(&self, offset: usize, count: u32) -> PyResult<usize> {
    let word = self.u32_at(offset)?;
    futex::wake(word, futex::Flags::empty(), count).map_err(|e| PyOSError::new_err(format!("futex wake failed: {e}")))
  }
}

/// A memory fence of the given ordering (`SEQCST` for the doorbell's Dekker pair, `ACQUIRE` and
/// `RELEASE` for the channel's seqlock-style re-checks).
#[pyfunction]
#[pyo3(name = "fence")]
fn fence_(order: u32) -> PyResult<()> {
  match ordering(order)? {
    Ordering::Relaxed => Err(PyValueError::new_err("a fence cannot be Relaxed")),
    o => {
      fence(o);
      Ok(())
    }
  }
}

/// The 32 bytes of an X25519 argument, or a `ValueError` naming `what` and the length found.
fn x25519_argument(bytes: &[u8], what: &str) -> PyResult<[u8; 32]> {
  bytes.try_into().map_err(|_| PyValueError::new_err(format!("an X25519 {what} is 32 bytes, not {}", bytes.len())))
}

/// X25519 of RFC 7748 §5: the `scalar` (clamped here, as the RFC says) times the point with
/// u-coordinate `u` (its top bit masked); 32 bytes. `x25519(private, BASEPOINT)` is a public key,
/// `x25519(own private, peer public)` the shared secret, which is all zero when the peer's point
/// has small order (the caller checks). Both arguments must be 32 bytes (else `ValueError`).
/// Constant time in the scalar; does not block.
#[pyfunction]
fn x25519<'py>(py: Python<'py>, scalar: &[u8], u: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
  let scalar = x25519_argument(scalar, "scalar")?;
  let u = x25519_argument(u, "u-coordinate")?;
  Ok(PyBytes::new(py, &x25519_dalek::x25519(scalar, u)))
}

/// The module `impulse_ring._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
  m.add_class::<Region>()?;
  m.add_function(wrap_pyfunction!(fence_, m)?)?;
  m.add_function(wrap_pyfunction!(x25519, m)?)?;
  m.add("X25519_BASEPOINT", PyBytes::new(m.py(), &x25519_dalek::X25519_BASEPOINT_BYTES))?;
  Ok(())
}
