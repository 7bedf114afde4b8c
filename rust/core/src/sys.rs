//! The only module with raw system calls: POSIX shared memory, futex wait/wake, pidfd and process
//! identity. Everything above this layer is plain memory and atomics.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::fs::Mode;
use rustix::shm;

/// Creates a new shared memory object; fails with `AlreadyExists` if the name is taken (`O_EXCL`).
pub fn shm_create(name: &str, mode: u32) -> io::Result<File> {
  let fd: OwnedFd =
    shm::open(name, shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR, Mode::from_bits_truncate(mode))?;
  // An explicit fchmod: the umask must not narrow or widen the mode the namespace asked for.
  rustix::fs::fchmod(&fd, Mode::from_bits_truncate(mode))?;
  Ok(File::from(fd))
}

/// Opens an existing shared memory object for reading and writing.
pub fn shm_open(name: &str) -> io::Result<File> {
  let fd: OwnedFd = shm::open(name, shm::OFlags::RDWR, Mode::empty())?;
  Ok(File::from(fd))
}

/// Removes a shared memory name; mappings that exist stay valid until unmapped.
pub fn shm_unlink(name: &str) -> io::Result<()> {
  shm::unlink(name).map_err(io::Error::from)
}

/// Gives the shared memory object `existing` a second name `new` (a hard link under `/dev/shm`).
pub fn shm_link(existing: &str, new: &str) -> io::Result<()> {
  std::fs::hard_link(format!("/dev/shm{existing}"), format!("/dev/shm{new}"))
}

/// The identity (device, inode) of the shared memory object `name` names now.
pub fn shm_identity(name: &str) -> io::Result<(u64, u64)> {
  use std::os::unix::fs::MetadataExt;
  let meta = std::fs::metadata(format!("/dev/shm{name}"))?;
  Ok((meta.dev(), meta.ino()))
}

/// The identity (device, inode) of an open file.
pub fn file_identity(file: &File) -> io::Result<(u64, u64)> {
  use std::os::unix::fs::MetadataExt;
  let meta = file.metadata()?;
  Ok((meta.dev(), meta.ino()))
}

/// Takes the exclusive `flock` of the file `/dev/shm<name>`, creating it with `mode` if needed.
/// `Ok(None)` when another process holds it. The lock is held until the file is closed; the returned
/// file is the one its name refers to (a name removed and recreated meanwhile is retried). The flag
/// says whether this call created the file.
pub fn lock_shm_file(name: &str, mode: u32) -> io::Result<Option<(File, bool)>> {
  use rustix::fs::{flock, FlockOperation, OFlags};
  let path = format!("/dev/shm{name}");
  for _ in 0..100 {
    let (fd, created) = match rustix::fs::open(
      &path,
      OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC,
      Mode::from_bits_truncate(mode),
    ) {
      Ok(fd) => (fd, true),
      Err(rustix::io::Errno::EXIST) => (rustix::fs::open(&path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?, false),
      Err(e) => return Err(e.into()),
    };
    if created {
      rustix::fs::fchmod(&fd, Mode::from_bits_truncate(mode))?;
    }
    match flock(&fd, FlockOperation::NonBlockingLockExclusive) {
      Ok(()) => {}
      Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
      Err(e) => return Err(e.into()),
    }
    let file = File::from(fd);
    // The holder before us may have unlinked the name between our open and our flock: then we hold a
    // lock on a nameless file, and must lock the file the name refers to now.
    if shm_identity(name).ok() == Some(file_identity(&file)?) {
      return Ok(Some((file, created)));
    }
  }
  Err(io::Error::other(format!("{path} keeps being replaced")))
}

/// Lists the shared memory names (without the leading `/`) that start with `prefix`.
pub fn shm_list(prefix: &str) -> io::Result<Vec<String>> {
  let mut names = Vec::new();
  for entry in std::fs::read_dir("/dev/shm")? {
    let name = entry?.file_name();
    if let Some(name) = name.to_str() {
      if name.starts_with(prefix) {
        names.push(name.to_string());
      }
    }
  }
  names.sort();
  Ok(names)
}

/// Sleeps while `*word == expected`, at most `timeout` (forever when `None`). Returns on a wake, a
/// timeout, a signal or a changed value; callers re-check their condition in every case.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
  let ts = timeout.map(|d| rustix::time::Timespec {
    tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
    tv_nsec: d.subsec_nanos() as _,
  });
  // Shared (not private) futex: the word lives in memory mapped by several processes.
  let _ = rustix::thread::futex::wait(word, rustix::thread::futex::Flags::empty(), expected, ts.as_ref());
}

/// Wakes every thread sleeping on `word`, in any process.
pub fn futex_wake_all(word: &AtomicU32) {
  let _ = rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), i32::MAX as u32);
}

/// The calling process's id.
pub fn getpid() -> u32 {
  rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// The state letter (field 3) and start time (field 22) of `/proc/PID/stat`; `None` when the
/// process does not exist (or cannot be read).
fn process_stat(pid: u32) -> Option<(char, u64)> {
  process_stat_checked(pid).ok().flatten()
}

/// Like [`process_stat`], but an error other than "no such process" (such as running out of file
/// descriptors) is an error, not a dead process.
fn process_stat_checked(pid: u32) -> io::Result<Option<(char, u64)>> {
  let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
    Ok(stat) => stat,
    Err(e) if is_errno(&e, &[rustix::io::Errno::NOENT, rustix::io::Errno::SRCH]) => return Ok(None),
    Err(e) => return Err(e),
  };
  Ok(parse_stat(&stat))
}

fn is_errno(e: &io::Error, errnos: &[rustix::io::Errno]) -> bool {
  errnos.iter().any(|errno| e.raw_os_error() == Some(errno.raw_os_error()))
}

fn parse_stat(stat: &str) -> Option<(char, u64)> {
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
  let state = fields.next()?.chars().next()?;
  // The state was field 3; field 22 is 19 further.
  let start = fields.nth(18)?.parse().ok()?;
  Some((state, start))
}

/// A process's start time in clock ticks since boot (field 22 of `/proc/PID/stat`); together with the
/// pid it names one process, even after the pid is reused. `None` when the process does not exist.
pub fn process_start_time(pid: u32) -> Option<u64> {
  process_stat(pid).map(|(_, start)| start)
}

/// Whether the process `pid` that started at `start_time` is still alive (a zombie counts as dead).
pub fn process_alive(pid: u32, start_time: u64) -> bool {
  process_alive_checked(pid, start_time).unwrap_or(false)
}

/// [`process_alive`] that tells "dead" from "cannot tell" (`/proc` could not be read, for example at
/// the file descriptor limit: `EMFILE`), so that a broker out of fds does not declare live apps dead.
pub fn process_alive_checked(pid: u32, start_time: u64) -> io::Result<bool> {
  if pid == 0 {
    return Ok(false);
  }
  Ok(matches!(process_stat_checked(pid)?, Some((state, start)) if state != 'Z' && state != 'X' && start == start_time))
}

/// Whether an i/o error means the process (or the system) ran out of file descriptors.
pub fn out_of_fds(e: &io::Error) -> bool {
  is_errno(e, &[rustix::io::Errno::MFILE, rustix::io::Errno::NFILE])
}

/// Whether process `pid` maps the shared memory object `name` (as `/name` under `/dev/shm`), from
/// `/proc/PID/maps`. An error when the file cannot be read: the process is gone, or belongs to another
/// user (reading another user's maps takes `CAP_SYS_PTRACE`), or the fds ran out.
pub fn process_maps_shm(pid: u32, name: &str) -> io::Result<bool> {
  let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
  let path = format!("/dev/shm{name}");
  // The path is the last field; a mapping of an object unlinked since ends in " (deleted)".
  Ok(maps.lines().any(|line| line.ends_with(&path) && line[..line.len() - path.len()].ends_with(' ')))
}

/// Opens a pidfd for `pid` (Linux ≥ 5.3): it becomes readable when the process exits.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
  let pid = rustix::process::Pid::from_raw(pid as i32).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
  rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).map_err(io::Error::from)
}

/// Waits up to `timeout` for any of `fds` to become readable and returns the indices that are.
pub fn poll_readable(fds: &[&OwnedFd], timeout: Duration) -> io::Result<Vec<usize>> {
  use rustix::event::{PollFd, PollFlags};
  let mut polls: Vec<PollFd<'_>> = fds.iter().map(|fd| PollFd::new(*fd, PollFlags::IN)).collect();
  let ts = rustix::time::Timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: timeout.subsec_nanos() as _ };
  match rustix::event::poll(&mut polls, Some(&ts)) {
    Ok(_) => {}
    Err(rustix::io::Errno::INTR) => return Ok(Vec::new()),
    Err(e) => return Err(e.into()),
  }
  Ok(polls.iter().enumerate().filter(|(_, p)| !p.revents().is_empty()).map(|(i, _)| i).collect())
}

/// Fills `buf` with random bytes from the kernel.
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
  let mut filled = 0;
  while filled < buf.len() {
    filled += rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty())?;
  }
  Ok(())
}

/// Milliseconds of `CLOCK_MONOTONIC`, comparable between processes on one machine.
pub fn monotonic_ms() -> u64 {
  let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
  ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_process_maps_what_it_mapped_and_nothing_else() {
    let name = format!("/impulse-ring.sys-test-{}.ctl", getpid());
    let file = shm_create(&name, 0o600).expect("shm_create");
    file.set_len(4096).expect("set_len");
    // SAFETY: a fresh object of 4096 bytes that nothing else maps; unmapped when `map` drops.
    let map = unsafe { memmap2::MmapMut::map_mut(&file) }.expect("mmap");
    assert_eq!(process_maps_shm(getpid(), &name).ok(), Some(true));
    assert_eq!(process_maps_shm(getpid(), &format!("{name}x")).ok(), Some(false));
    assert_eq!(process_maps_shm(getpid(), &name[..name.len() - 1]).ok(), Some(false));
    drop(map);
    shm_unlink(&name).expect("unlink");
  }

  #[test]
  fn own_process_is_alive_and_a_wrong_start_time_is_not() {
    let pid = getpid();
    let start = process_start_time(pid).expect("own start time");
    assert!(process_alive(pid, start));
    assert!(!process_alive(pid, start + 1));
    assert!(!process_alive(0, 0));
  }
}
