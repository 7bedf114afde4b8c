//! Access keys: the broker keeps only a salted SHA-256 of each key and compares in constant time.
//! Keys are never logged. A key here is the unsealed bytes (bootstrap.md §5.5): what the app's user gave.

use sha2::{Digest, Sha256};

/// A key as the broker stores it.
pub struct KeyHash {
  salt: [u8; 16],
  hash: [u8; 32],
}

impl KeyHash {
  /// Hashes `key` with a fresh random salt.
  pub fn new(key: &[u8]) -> KeyHash {
    let mut salt = [0u8; 16];
    if impulse_ring_core::sys::random_bytes(&mut salt).is_err() {
      salt = fallback_salt();
    }
    let hash = digest(&salt, key);
    KeyHash { salt, hash }
  }

  /// Whether `presented` is the key; constant time in the key's content.
  pub fn matches(&self, presented: &[u8]) -> bool {
    let other = digest(&self.salt, presented);
    self.hash.iter().zip(other.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
  }
}

/// A salt without the kernel's randomness: the salt only defeats precomputed tables, so it must be unique
/// (per key and per broker run), not secret. Wall-clock nanoseconds since the epoch, the pid and a
/// per-process counter make it so.
fn fallback_salt() -> [u8; 16] {
  static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
  let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
  let mut salt = [0u8; 16];
  salt[..8].copy_from_slice(&(now.as_nanos() as u64).to_le_bytes());
  salt[8..12].copy_from_slice(&impulse_ring_core::sys::getpid().to_le_bytes());
  salt[12..].copy_from_slice(&COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_le_bytes());
  salt
}

fn digest(salt: &[u8], key: &[u8]) -> [u8; 32] {
  let mut h = Sha256::new();
  h.update(salt);
  h.update(key);
  h.finalize().into()
}

/// Whether an app presenting `presented` may use a resource guarded by `required`.
pub fn admits(required: &Option<KeyHash>, presented: Option<&[u8]>) -> bool {
  match (required, presented) {
    (None, _) => true,
    (Some(hash), Some(key)) => hash.matches(key),
    (Some(_), None) => false,
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn keys_match_only_themselves() {
    let k = KeyHash::new(b"secret");
    assert!(k.matches(b"secret"));
    assert!(!k.matches(b"secreT"));
    assert!(!k.matches(b""));
    assert!(admits(&None, Some(b"anything")));
    assert!(!admits(&Some(KeyHash::new(b"a")), None));
  }

  #[test]
  fn fallback_salts_differ_and_carry_the_wall_clock() {
    let (a, b) = (fallback_salt(), fallback_salt());
    assert_ne!(a, b);
    // The old fallback was `SystemTime::now().elapsed()`: a few nanoseconds, the same on every run.
    let nanos = u64::from_le_bytes(a[..8].try_into().unwrap());
    assert!(nanos > 1_700_000_000 * 1_000_000_000, "{nanos}");
  }
}
