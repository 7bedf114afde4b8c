//! Ring's entries in `/dev/shm`: listing them by prefix, and failing (after removing them) when a
//! run or a test left some behind (BRIEF: "nothing leaks"). Every Ring object is named
//! `impulse-ring.<ns>.<what>`; a caller only ever lists and removes names under a prefix it owns.

use std::{collections::BTreeSet, io, path::Path, time::Duration};

/// Where POSIX shared memory objects appear on Linux.
pub const SHM_DIR: &str = "/dev/shm";

/// The prefix of every shared-memory object Ring creates, in any namespace.
pub const RING_PREFIX: &str = "impulse-ring.";

/// The prefix shared by every object of namespace `ns`: `impulse-ring.<ns>.`.
pub fn namespace_prefix(ns: &str) -> String {
  format!("{RING_PREFIX}{ns}.")
}

/// The prefix shared by every object of every namespace that starts with `ns_prefix` (a run's).
pub fn run_prefix(ns_prefix: &str) -> String {
  format!("{RING_PREFIX}{ns_prefix}")
}

/// The names in `/dev/shm` that start with `prefix`.
pub fn snapshot(prefix: &str) -> io::Result<BTreeSet<String>> {
  let entries = std::fs::read_dir(SHM_DIR)
    .map_err(|e| io::Error::new(e.kind(), format!("cannot list {SHM_DIR} ({e}); Ring needs POSIX shm")))?;
  let mut names = BTreeSet::new();
  for entry in entries {
    let name = entry?.file_name().to_string_lossy().into_owned();
    if name.starts_with(prefix) {
      names.insert(name);
    }
  }
  Ok(names)
}

/// The names of namespace `ns` in `/dev/shm`.
pub fn segments_of(ns: &str) -> Vec<String> {
  snapshot(&namespace_prefix(ns)).map(|set| set.into_iter().collect()).unwrap_or_default()
}

/// Removes `/dev/shm/<name>`; a name that vanished meanwhile is not an error.
pub fn remove(name: &str) {
  let _ = std::fs::remove_file(Path::new(SHM_DIR).join(name));
}

/// Fails naming every `prefix` entry that was not in `before`, after removing them. Entries get a
/// short grace period first, because a broker may still be unlinking as its process exits.
pub fn ensure_no_leaks(before: &BTreeSet<String>, prefix: &str, who: &str) -> Result<(), String> {
  let mut leaked = Vec::new();
  for _ in 0..10 {
    leaked = snapshot(prefix).map_err(|e| e.to_string())?.difference(before).cloned().collect();
    if leaked.is_empty() {
      return Ok(());
    }
    std::thread::sleep(Duration::from_millis(100));
  }
  for name in &leaked {
    // The error below is the report; removing the names keeps the next run's picture clean.
    remove(name);
  }
  let list = leaked.iter().map(|n| format!("  {SHM_DIR}/{n}")).collect::<Vec<_>>().join("\n");
  Err(format!("{who} leaked {} shared-memory segment(s), now removed:\n{list}", leaked.len()))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_leak_is_named_and_removed_and_other_names_are_left_alone() {
    let mine = crate::ns::namespace("shm-leak");
    let other = crate::ns::namespace("shm-other");
    let (prefix, bystander) = (namespace_prefix(&mine), format!("{}ctl", namespace_prefix(&other)));
    std::fs::write(Path::new(SHM_DIR).join(&bystander), b"").unwrap();
    let before = snapshot(&prefix).unwrap();
    std::fs::write(Path::new(SHM_DIR).join(format!("{prefix}ch.1")), b"").unwrap();
    let err = ensure_no_leaks(&before, &prefix, "the test").unwrap_err();
    assert!(err.contains(&format!("{prefix}ch.1")), "{err}");
    assert!(snapshot(&prefix).unwrap().is_empty());
    assert!(Path::new(SHM_DIR).join(&bystander).exists(), "a name outside the prefix was touched");
    remove(&bystander);
  }
}
