//! Namespaces of a test run. `cargo ringctl test-matrix` sets [`PREFIX_ENV`] to a prefix of its own
//! (`tm<pid>-`) for everything it runs; every test builds its namespaces with [`namespace`], so the
//! run can check and clean exactly what it made and leave a namespace someone else owns alone.

/// Environment variable holding the run's namespace prefix (letters, digits, `_` and `-`; may be
/// empty or unset, as in a plain `cargo test`). Every connector's tests honour it.
pub const PREFIX_ENV: &str = "IMPULSE_RING_TEST_NS_PREFIX";

/// Longest namespace name (spec/bootstrap.md §2).
pub const MAX_NS_LEN: usize = 64;

/// The run's namespace prefix, `""` outside a test-matrix run.
///
/// # Panics
/// If the variable holds a character a namespace may not contain: every name built on it would be
/// refused later, with a less helpful message.
pub fn run_prefix() -> String {
  let prefix = std::env::var(PREFIX_ENV).unwrap_or_default();
  assert!(
    prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
    "{PREFIX_ENV}={prefix:?}: use only A-Z, a-z, 0-9, '_' and '-'"
  );
  prefix
}

/// A namespace for one test: `<run prefix><tag>-<pid>`, unique per test process and tag.
///
/// # Panics
/// If the name is longer than [`MAX_NS_LEN`] or `tag` has a character a namespace may not contain.
pub fn namespace(tag: &str) -> String {
  let ns = format!("{}{tag}-{}", run_prefix(), std::process::id());
  assert!(
    ns.len() <= MAX_NS_LEN && ns.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
    "test namespace {ns:?} is invalid: use a shorter tag of A-Z, a-z, 0-9, '_' and '-'"
  );
  ns
}

/// A segment name (with the leading `/`) outside any broker's namespace, for tests of the core that
/// create segments by hand: `/impulse-ring.<run prefix><tag>-<pid>`.
pub fn segment_name(tag: &str) -> String {
  format!("/{}{}", crate::shm::RING_PREFIX, namespace(tag))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn namespaces_carry_the_tag_and_the_pid() {
    let ns = namespace("unit");
    assert!(ns.ends_with(&format!("unit-{}", std::process::id())), "{ns}");
    assert!(ns.starts_with(&run_prefix()));
    assert_eq!(segment_name("unit"), format!("/impulse-ring.{ns}"));
  }

  #[test]
  #[should_panic(expected = "is invalid")]
  fn a_tag_that_makes_a_bad_namespace_is_refused() {
    namespace("a.b");
  }
}
