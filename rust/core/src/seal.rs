//! Sealed access keys (bootstrap.md §5.5): an access key never appears in clear in shared memory,
//! not even in flight. `Register` carries the app's ephemeral X25519 public key and `Registered` the
//! broker's; both sides derive the same 32-byte session secret, and every key field of a later request
//! carries the key XORed with a keystream drawn from that secret and the request's id.
//!
//! A process that reads the control segment sees both public keys and the sealed bytes; without one of
//! the two private keys, which never leave their processes, it learns nothing of the key, and a sealed
//! key copied out of one session means nothing in another.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

/// Length of an X25519 public or private key, and of the session secret.
pub const KEY_LEN: usize = 32;

/// The label of the session derivation (bootstrap.md §5.5).
pub const SESSION_LABEL: &[u8] = b"impulse-ring session v1";

/// The label of the keystream (bootstrap.md §5.5).
pub const KEYSTREAM_LABEL: &[u8] = b"impulse-ring key v1";

type HmacSha256 = hmac::Hmac<Sha256>;

/// Why a session could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
  /// The peer's public key is not 32 bytes.
  #[error("the peer's X25519 public key is {0} bytes; it must be {KEY_LEN}")]
  PublicKeyLength(usize),
  /// The shared secret is all zeros: the peer sent a point of small order.
  #[error("the peer's X25519 public key is a point of small order (the shared secret is all zeros)")]
  SmallOrder,
}

/// One side's ephemeral X25519 key pair, fresh for each registration.
pub struct KeyPair {
  secret: [u8; KEY_LEN],
  public: [u8; KEY_LEN],
}

impl KeyPair {
  /// A fresh key pair from the kernel's random bytes.
  pub fn generate() -> std::io::Result<KeyPair> {
    let mut secret = [0u8; KEY_LEN];
    crate::sys::random_bytes(&mut secret)?;
    Ok(KeyPair::from_secret(secret))
  }

  /// The key pair of a given private key (clamped by X25519 itself); for test vectors.
  pub fn from_secret(secret: [u8; KEY_LEN]) -> KeyPair {
    let public = x25519_dalek::x25519(secret, x25519_dalek::X25519_BASEPOINT_BYTES);
    KeyPair { secret, public }
  }

  /// The public key, sent to the peer.
  pub fn public(&self) -> [u8; KEY_LEN] {
    self.public
  }

  /// The X25519 shared secret with the peer's public key, refused when all zeros.
  fn shared(&self, peer_public: &[u8]) -> Result<[u8; KEY_LEN], SealError> {
    let peer: [u8; KEY_LEN] = peer_public.try_into().map_err(|_| SealError::PublicKeyLength(peer_public.len()))?;
    let shared = x25519_dalek::x25519(self.secret, peer);
    if shared.iter().fold(0u8, |acc, b| acc | b) == 0 {
      return Err(SealError::SmallOrder);
    }
    Ok(shared)
  }

  /// The app's side: the session with the broker whose public key came in `Registered`.
  pub fn app_session(&self, broker_public: &[u8]) -> Result<Session, SealError> {
    let shared = self.shared(broker_public)?;
    Ok(Session::derive(&shared, &self.public, broker_public))
  }

  /// The broker's side: the session with the app whose public key came in `Register`.
  pub fn broker_session(&self, app_public: &[u8]) -> Result<Session, SealError> {
    let shared = self.shared(app_public)?;
    Ok(Session::derive(&shared, app_public, &self.public))
  }
}

impl Drop for KeyPair {
  fn drop(&mut self) {
    // Best effort: the private key lives only in this process, but need not outlive its use.
    self.secret = [0u8; KEY_LEN];
  }
}

/// The session secret of one registration.
#[derive(Clone, PartialEq, Eq)]
pub struct Session([u8; KEY_LEN]);

impl std::fmt::Debug for Session {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.write_str("Session(..)")
  }
}

impl Session {
  /// `HMAC-SHA256(shared, SESSION_LABEL ‖ app_public ‖ broker_public)`.
  fn derive(shared: &[u8; KEY_LEN], app_public: &[u8], broker_public: &[u8]) -> Session {
    let mut mac = hmac_over(shared);
    mac.update(SESSION_LABEL);
    mac.update(app_public);
    mac.update(broker_public);
    Session(mac.finalize().into_bytes().into())
  }

  /// The session secret's bytes; for test vectors.
  pub fn secret(&self) -> &[u8; KEY_LEN] {
    &self.0
  }

  /// `key` sealed for the request `request_id`: the same length, each byte XORed with the keystream.
  pub fn seal(&self, request_id: i64, key: &[u8]) -> Vec<u8> {
    let mut out = key.to_vec();
    self.apply_keystream(request_id, &mut out);
    out
  }

  /// The key a sealed field carries (sealing is its own inverse).
  pub fn unseal(&self, request_id: i64, sealed: &[u8]) -> Vec<u8> {
    self.seal(request_id, sealed)
  }

  /// XORs `bytes` with blocks `HMAC-SHA256(session, KEYSTREAM_LABEL ‖ request_id as i64 LE ‖ j as u32 LE)`,
  /// j = 0, 1, ...
  fn apply_keystream(&self, request_id: i64, bytes: &mut [u8]) {
    for (j, chunk) in bytes.chunks_mut(KEY_LEN).enumerate() {
      let mut mac = hmac_over(&self.0);
      mac.update(KEYSTREAM_LABEL);
      mac.update(&request_id.to_le_bytes());
      mac.update(&(j as u32).to_le_bytes());
      let block = mac.finalize().into_bytes();
      for (b, k) in chunk.iter_mut().zip(block.iter()) {
        *b ^= k;
      }
    }
  }
}

fn hmac_over(key: &[u8; KEY_LEN]) -> HmacSha256 {
  // HMAC takes a key of any length; 32 bytes cannot fail.
  <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC-SHA256 accepts a 32-byte key")
}

#[cfg(test)]
mod tests {
  use super::*;

  fn hex(s: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect();
    bytes.try_into().unwrap()
  }

  #[test]
  fn rfc7748_diffie_hellman() {
    let alice = KeyPair::from_secret(hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
    let bob = KeyPair::from_secret(hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
    assert_eq!(alice.public(), hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"));
    assert_eq!(bob.public(), hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"));
    assert_eq!(
      alice.shared(&bob.public()).unwrap(),
      hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    );
  }

  #[test]
  fn both_sides_derive_one_session_and_unseal() {
    let app = KeyPair::generate().unwrap();
    let broker = KeyPair::generate().unwrap();
    let a = app.app_session(&broker.public()).unwrap();
    let b = broker.broker_session(&app.public()).unwrap();
    assert_eq!(a, b);
    let key = b"a key longer than one block of the keystream, 32 bytes";
    let sealed = a.seal(7, key);
    assert_eq!(sealed.len(), key.len());
    assert_ne!(&sealed[..], &key[..]);
    assert_eq!(b.unseal(7, &sealed), key.to_vec());
    assert_ne!(b.unseal(8, &sealed), key.to_vec(), "the keystream depends on the request id");
    assert_eq!(a.seal(7, b""), Vec::<u8>::new());
  }

  #[test]
  fn refuses_bad_public_keys() {
    let app = KeyPair::generate().unwrap();
    assert_eq!(app.app_session(&[9u8; 31]).unwrap_err(), SealError::PublicKeyLength(31));
    assert_eq!(app.broker_session(&[0u8; 32]).unwrap_err(), SealError::SmallOrder);
  }
}
