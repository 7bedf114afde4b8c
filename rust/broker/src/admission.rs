//! The admission rules of the control plane as pure functions of what the broker knows: names,
//! capacities, schemas, keys and fingerprints. No process and no segment is involved, so every rule is
//! unit-tested here; the broker only applies them to its registry.

use impulse_ring_core::avro::{self, fingerprint_hex};
use impulse_ring_core::error_code::ErrorCode;
use impulse_ring_core::layout::*;
use impulse_ring_core::names;
use impulse_ring_core::segment::valid_capacity;

use crate::keys::{admits, KeyHash};

/// A refused request: the code and the sentence the app will see, and for `SchemaMismatch` both
/// fingerprints.
#[derive(Debug)]
pub struct Failure {
  pub code: ErrorCode,
  pub message: String,
  pub expected: u64,
  pub presented: u64,
}

/// A failure without fingerprints.
pub fn fail(code: ErrorCode, message: impl Into<String>) -> Failure {
  Failure { code, message: message.into(), expected: 0, presented: 0 }
}

/// Channel and function names: 1 to `MAX_NAME_LEN` bytes without control characters.
pub fn check_name(name: &str) -> Result<(), Failure> {
  if name.is_empty() || name.len() > names::MAX_NAME_LEN || name.chars().any(char::is_control) {
    return Err(fail(
      ErrorCode::InvalidArgument,
      format!("names are 1 to {} bytes without control characters", names::MAX_NAME_LEN),
    ));
  }
  Ok(())
}

/// App names: 1 to `MAX_APP_NAME_LEN` bytes.
pub fn check_app_name(name: &str) -> Result<(), Failure> {
  if name.is_empty() || name.len() > names::MAX_APP_NAME_LEN {
    return Err(fail(ErrorCode::InvalidArgument, format!("app names are 1 to {} bytes", names::MAX_APP_NAME_LEN)));
  }
  Ok(())
}

/// The ring capacity a `PublishChannel` asks for (0: the default), checked.
pub fn channel_capacity(requested: i64) -> Result<u64, Failure> {
  let capacity = if requested == 0 { IR_DEFAULT_CHANNEL_CAPACITY } else { requested as u64 };
  if requested < 0 || !valid_capacity(capacity) {
    return Err(fail(
      ErrorCode::InvalidArgument,
      format!("capacity {requested} must be a power of two from {IR_MIN_RING_CAPACITY} to {IR_MAX_RING_CAPACITY}"),
    ));
  }
  Ok(capacity)
}

/// The fingerprint of a schema an app sent; `what` says which schema, for the message.
pub fn schema_fingerprint(what: &str, json: &str) -> Result<u64, Failure> {
  avro::parse_schema(json)
    .map(|parsed| parsed.fingerprint)
    .map_err(|e| fail(ErrorCode::InvalidSchema, format!("{what}: {e}")))
}

/// Whether a subscriber presenting `key` and a schema with fingerprint `presented` may join the
/// channel `name`. The key is checked first: a process without it learns nothing about the schema.
pub fn admit_subscriber(
  name: &str,
  required: &Option<KeyHash>,
  key: Option<&[u8]>,
  expected: u64,
  presented: u64,
) -> Result<(), Failure> {
  if !admits(required, key) {
    return Err(fail(ErrorCode::WrongKey, format!("wrong key for channel `{name}`")));
  }
  if presented != expected {
    return Err(Failure {
      code: ErrorCode::SchemaMismatch,
      message: format!(
        "schema mismatch on channel `{name}`: the channel's schema is {}, the subscriber presented {}",
        fingerprint_hex(expected),
        fingerprint_hex(presented)
      ),
      expected,
      presented,
    });
  }
  Ok(())
}

/// Whether a caller presenting `key` and schemas with fingerprints `presented` (request, response) may
/// call the function `name` whose schemas are `expected`. The key is checked first.
pub fn admit_caller(
  name: &str,
  required: &Option<KeyHash>,
  key: Option<&[u8]>,
  expected: (u64, u64),
  presented: (u64, u64),
) -> Result<(), Failure> {
  if !admits(required, key) {
    return Err(fail(ErrorCode::WrongKey, format!("wrong key for function `{name}`")));
  }
  for (what, expected, presented) in [("request", expected.0, presented.0), ("response", expected.1, presented.1)] {
    if expected != presented {
      return Err(Failure {
        code: ErrorCode::SchemaMismatch,
        message: format!(
          "{what} schema mismatch on function `{name}`: the function's is {}, the caller presented {}",
          fingerprint_hex(expected),
          fingerprint_hex(presented)
        ),
        expected,
        presented,
      });
    }
  }
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn names_are_bounded_and_without_control_characters() {
    assert!(check_name("sensors/temperature.v2").is_ok());
    for bad in ["", "a\nb", "tab\there", &"x".repeat(names::MAX_NAME_LEN + 1)] {
      assert_eq!(check_name(bad).expect_err(bad).code, ErrorCode::InvalidArgument);
    }
    assert!(check_app_name(&"a".repeat(names::MAX_APP_NAME_LEN)).is_ok());
    assert!(check_app_name("").is_err());
  }

  #[test]
  fn capacities_are_powers_of_two_in_range_and_zero_means_the_default() {
    assert_eq!(channel_capacity(0).ok(), Some(IR_DEFAULT_CHANNEL_CAPACITY));
    assert_eq!(channel_capacity(4096).ok(), Some(4096));
    for bad in [-4096, 1, 4095, 6144, 1 << 31, i64::MIN] {
      assert_eq!(channel_capacity(bad).expect_err("bad capacity").code, ErrorCode::InvalidArgument, "{bad}");
    }
  }

  #[test]
  fn the_key_is_checked_before_the_schema() {
    let key = Some(KeyHash::new(b"k"));
    let err = admit_subscriber("c", &key, Some(b"wrong"), 1, 2).expect_err("wrong key");
    assert_eq!(err.code, ErrorCode::WrongKey);
    assert!(!err.message.contains(&fingerprint_hex(1)), "a keyless process learns the schema: {}", err.message);
    assert_eq!(admit_subscriber("c", &key, None, 1, 1).expect_err("no key").code, ErrorCode::WrongKey);
    assert!(admit_subscriber("c", &key, Some(b"k"), 1, 1).is_ok());
    assert_eq!(admit_caller("f", &key, None, (1, 2), (1, 2)).expect_err("no key").code, ErrorCode::WrongKey);
  }

  #[test]
  fn a_schema_mismatch_carries_both_fingerprints() {
    let err = admit_subscriber("c", &None, None, 0xaa, 0xbb).expect_err("mismatch");
    assert_eq!((err.code, err.expected, err.presented), (ErrorCode::SchemaMismatch, 0xaa, 0xbb));
    assert!(err.message.contains(&fingerprint_hex(0xaa)) && err.message.contains(&fingerprint_hex(0xbb)));
    let err = admit_caller("f", &None, Some(b"any"), (1, 2), (1, 3)).expect_err("response mismatch");
    assert_eq!((err.code, err.expected, err.presented), (ErrorCode::SchemaMismatch, 2, 3));
    assert!(err.message.starts_with("response schema mismatch"), "{}", err.message);
    assert!(admit_caller("f", &None, None, (1, 2), (1, 2)).is_ok());
  }

  #[test]
  fn invalid_schemas_name_which_schema() {
    let err = schema_fingerprint("schema of channel `c`", "{\"type\":\"fixed\",\"name\":\"F\",\"size\":-1}")
      .expect_err("negative size");
    assert_eq!(err.code, ErrorCode::InvalidSchema);
    assert!(err.message.starts_with("schema of channel `c`: "), "{}", err.message);
    assert_eq!(schema_fingerprint("s", "\"int\"").ok(), Some(0x7275d51a3f395c8f));
  }
}
