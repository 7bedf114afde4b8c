//! Access keys: the broker keeps only a salted SHA-256 of each key and compares in constant time.
//! Keys are never logged.

use sha2::{Digest, Sha256};

/// A key as the broker stores it.
pub struct KeyHash {
  salt: [u8; 16],
  hash: [u8; 32],
}

impl KeyHash {
  /// Hashes `key` with a fresh random salt.
  pub fn new(key: &str) -> KeyHash {
    let mut salt = [0u8; 16];
    // The salt only defeats precomputed tables; a failed getrandom still leaves a unique-enough salt.
    if impulse_ring_core::sys::random_bytes(&mut salt).is_err() {
      salt[..8]
        .copy_from_slice(&(std::time::SystemTime::now().elapsed().unwrap_or_default().as_nanos() as u64).to_le_bytes());
    }
    let hash = digest(&salt, key);
    KeyHash { salt, hash }
  }

  /// Whether `presented` is the key; constant time in the key's content.
  pub fn matches(&self, presented: &str) -> bool {
    let other = digest(&self.salt, presented);
    self.hash.iter().zip(other.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
  }
}

fn digest(salt: &[u8], key: &str) -> [u8; 32] {
  let mut h = Sha256::new();
  h.update(salt);
  h.update(key.as_bytes());
  h.finalize().into()
}

/// Whether an app presenting `presented` may use a resource guarded by `required`.
pub fn admits(required: &Option<KeyHash>, presented: Option<&str>) -> bool {
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
    let k = KeyHash::new("secret");
    assert!(k.matches("secret"));
    assert!(!k.matches("secreT"));
    assert!(!k.matches(""));
    assert!(admits(&None, Some("anything")));
    assert!(!admits(&Some(KeyHash::new("a")), None));
  }
}
