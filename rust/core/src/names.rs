//! Names of shared objects: every segment of a namespace is `/impulse-ring.<ns>.<what>`, so a
//! broker can find and remove all of them, and tests in different namespaces never collide.

/// Environment variable that selects the namespace.
pub const NS_ENV: &str = "IMPULSE_RING_NS";
/// The namespace used when `IMPULSE_RING_NS` is unset.
pub const DEFAULT_NS: &str = "impulse";
/// Common prefix of every segment name (without the leading `/`).
pub const PREFIX: &str = "impulse-ring.";
/// Longest namespace name.
pub const MAX_NS_LEN: usize = 64;
/// Longest channel or function name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest app name, in bytes.
pub const MAX_APP_NAME_LEN: usize = 128;

/// A namespace name is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid namespace {ns:?}: use 1 to {MAX_NS_LEN} characters of A-Z, a-z, 0-9, '_' and '-'")]
pub struct InvalidNamespace {
  /// The rejected name.
  pub ns: String,
}

/// Checks a namespace name.
pub fn check_namespace(ns: &str) -> Result<(), InvalidNamespace> {
  let ok =
    !ns.is_empty() && ns.len() <= MAX_NS_LEN && ns.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
  if ok {
    Ok(())
  } else {
    Err(InvalidNamespace { ns: ns.to_string() })
  }
}

/// The namespace from `IMPULSE_RING_NS`, or the default.
pub fn namespace_from_env() -> String {
  std::env::var(NS_ENV).ok().filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_NS.to_string())
}

/// Name of the control segment of `ns`.
pub fn control(ns: &str) -> String {
  format!("/{PREFIX}{ns}.ctl")
}

/// A second name of the control segment of `ns`, outside the namespace prefix (it starts with a dot), so
/// the broker can restore the public name after a stray cleanup removed it. Only the broker uses it.
pub fn control_keep(ns: &str) -> String {
  format!("/.{PREFIX}{ns}.ctl")
}

/// Name of the broker's lock file of `ns`: a plain file under `/dev/shm`, next to the segments, that the
/// serving broker holds `flock`ed; it is what keeps a second broker out, even when the control segment's
/// name has been removed.
pub fn lock(ns: &str) -> String {
  format!("/{PREFIX}{ns}.lock")
}

/// Name of a channel segment.
pub fn channel(ns: &str, channel_id: u64) -> String {
  format!("/{PREFIX}{ns}.ch.{channel_id}")
}

/// Name of a call link segment.
pub fn link(ns: &str, link_id: u64) -> String {
  format!("/{PREFIX}{ns}.ln.{link_id}")
}

/// The prefix (without `/`) shared by every segment of `ns`, for listing `/dev/shm`.
pub fn namespace_prefix(ns: &str) -> String {
  format!("{PREFIX}{ns}.")
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn namespaces_are_checked_and_names_composed() {
    assert!(check_namespace("impulse").is_ok());
    assert!(check_namespace("t-1_a").is_ok());
    assert!(check_namespace("").is_err());
    assert!(check_namespace("a/b").is_err());
    assert!(check_namespace("a.b").is_err());
    assert_eq!(control("x"), "/impulse-ring.x.ctl");
    assert_eq!(lock("x"), "/impulse-ring.x.lock");
    assert_eq!(control_keep("x"), "/.impulse-ring.x.ctl");
    assert!(!control_keep("x")[1..].starts_with(&namespace_prefix("x")));
    assert_eq!(channel("x", 3), "/impulse-ring.x.ch.3");
    assert_eq!(link("x", 4), "/impulse-ring.x.ln.4");
  }
}
