//! The Avro binary encoding of primitives (zigzag varints, lengths, unions) and the Single Object
//! Encoding header every frame payload starts with. Decoding never panics and never allocates more
//! than the input could hold.

use super::fingerprint_hex;

/// The two magic bytes that open an Avro Single Object Encoding.
pub const SOE_MAGIC: [u8; 2] = [0xC3, 0x01];

/// Length of a Single Object Encoding header: the magic and the 8-byte little-endian fingerprint.
pub const SOE_HEADER_LEN: usize = 10;

/// The Single Object Encoding header for a schema fingerprint: `C3 01` then the fingerprint as 8
/// little-endian bytes.
pub fn soe_header(fingerprint: u64) -> [u8; SOE_HEADER_LEN] {
  let mut header = [0u8; SOE_HEADER_LEN];
  header[..2].copy_from_slice(&SOE_MAGIC);
  header[2..].copy_from_slice(&fingerprint.to_le_bytes());
  header
}

/// Splits a Single Object Encoding into its fingerprint and datum bytes.
pub fn split_soe(bytes: &[u8]) -> Result<(u64, &[u8]), DecodeError> {
  if bytes.len() < SOE_HEADER_LEN {
    return Err(DecodeError::Truncated { needed: SOE_HEADER_LEN, available: bytes.len() });
  }
  let (header, datum) = bytes.split_at(SOE_HEADER_LEN);
  if header[..2] != SOE_MAGIC {
    return Err(DecodeError::BadMagic { found: [header[0], header[1]] });
  }
  let mut fp = [0u8; 8];
  fp.copy_from_slice(&header[2..]);
  Ok((u64::from_le_bytes(fp), datum))
}

/// Why bytes did not decode. Decoding never panics and never allocates more than the input could hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
  /// The input ended before the value did.
  #[error("truncated input: needed {needed} more bytes, {available} available")]
  Truncated {
    /// Bytes the value needed at this point.
    needed: usize,
    /// Bytes that were left.
    available: usize,
  },
  /// A varint ran past 10 bytes or past 64 bits.
  #[error("varint longer than 64 bits")]
  VarintOverflow,
  /// A value declared `int` does not fit in 32 bits.
  #[error("int out of range: {value}")]
  IntOutOfRange {
    /// The decoded value.
    value: i64,
  },
  /// A boolean byte other than 0 or 1.
  #[error("invalid boolean byte {byte:#04x}")]
  BadBoolean {
    /// The byte found.
    byte: u8,
  },
  /// A union branch index outside the union.
  #[error("union branch {branch} out of range (the union has {branches} branches)")]
  BadUnionBranch {
    /// The branch index read.
    branch: i64,
    /// How many branches the union has.
    branches: usize,
  },
  /// A `string` whose bytes are not UTF-8.
  #[error("string is not valid utf-8")]
  InvalidUtf8,
  /// A length, count or block size that is negative or larger than the remaining input.
  #[error("length {length} out of range ({available} bytes left)")]
  LengthOutOfRange {
    /// The length read.
    length: i64,
    /// Bytes that were left.
    available: usize,
  },
  /// An array block whose items did not fill exactly its declared byte size.
  #[error("array block declared {declared} bytes but its items used {used}")]
  BlockSizeMismatch {
    /// The byte size the block declared.
    declared: usize,
    /// The bytes its items took.
    used: usize,
  },
  /// Bytes were left after the value.
  #[error("{count} trailing bytes after the value")]
  TrailingBytes {
    /// How many bytes were left.
    count: usize,
  },
  /// A Single Object Encoding that does not start with `C3 01`.
  #[error("not a single object encoding: magic {:02x} {:02x}, expected c3 01", found[0], found[1])]
  BadMagic {
    /// The first two bytes found.
    found: [u8; 2],
  },
  /// A Single Object Encoding written with another schema than the one expected.
  #[error("schema fingerprint mismatch: expected {}, found {}", fingerprint_hex(*expected), fingerprint_hex(*found))]
  FingerprintMismatch {
    /// The fingerprint the reader expected.
    expected: u64,
    /// The fingerprint in the header.
    found: u64,
  },
}

/// Appends a `long`: zigzag, then a little-endian base-128 varint.
pub fn put_long(out: &mut Vec<u8>, value: i64) {
  let mut n = ((value << 1) ^ (value >> 63)) as u64;
  while n >= 0x80 {
    out.push((n as u8) | 0x80);
    n >>= 7;
  }
  out.push(n as u8);
}

/// Appends an `int` (same encoding as `long`).
pub fn put_int(out: &mut Vec<u8>, value: i32) {
  put_long(out, i64::from(value));
}

/// Appends a `boolean`: one byte, 0 or 1.
pub fn put_bool(out: &mut Vec<u8>, value: bool) {
  out.push(u8::from(value));
}

/// Appends `bytes`: the length as a `long`, then the bytes.
pub fn put_bytes(out: &mut Vec<u8>, value: &[u8]) {
  put_long(out, value.len() as i64);
  out.extend_from_slice(value);
}

/// Appends a `string`: its UTF-8 bytes as `bytes`.
pub fn put_string(out: &mut Vec<u8>, value: &str) {
  put_bytes(out, value.as_bytes());
}

/// Reads a `long`, advancing `input`.
pub fn get_long(input: &mut &[u8]) -> Result<i64, DecodeError> {
  let mut n: u64 = 0;
  for i in 0..10 {
    let Some((&byte, rest)) = input.split_first() else {
      return Err(DecodeError::Truncated { needed: 1, available: 0 });
    };
    *input = rest;
    // The tenth byte holds only the 64th bit.
    if i == 9 && byte > 1 {
      return Err(DecodeError::VarintOverflow);
    }
    n |= u64::from(byte & 0x7f) << (7 * i);
    if byte & 0x80 == 0 {
      return Ok(((n >> 1) as i64) ^ -((n & 1) as i64));
    }
  }
  Err(DecodeError::VarintOverflow)
}

/// Reads an `int`, advancing `input`.
pub fn get_int(input: &mut &[u8]) -> Result<i32, DecodeError> {
  let value = get_long(input)?;
  i32::try_from(value).map_err(|_| DecodeError::IntOutOfRange { value })
}

/// Reads a `boolean`, advancing `input`.
pub fn get_bool(input: &mut &[u8]) -> Result<bool, DecodeError> {
  let Some((&byte, rest)) = input.split_first() else {
    return Err(DecodeError::Truncated { needed: 1, available: 0 });
  };
  *input = rest;
  match byte {
    0 => Ok(false),
    1 => Ok(true),
    _ => Err(DecodeError::BadBoolean { byte }),
  }
}

/// Reads a length (of bytes, a string or a block) and checks it against the remaining input.
pub(super) fn get_length(input: &mut &[u8]) -> Result<usize, DecodeError> {
  let length = get_long(input)?;
  match usize::try_from(length) {
    Ok(n) if n <= input.len() => Ok(n),
    _ => Err(DecodeError::LengthOutOfRange { length, available: input.len() }),
  }
}

/// Reads `bytes` without copying, advancing `input`.
pub fn get_bytes_ref<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], DecodeError> {
  let n = get_length(input)?;
  let (value, rest) = input.split_at(n);
  *input = rest;
  Ok(value)
}

/// Reads `bytes`, advancing `input`.
pub fn get_bytes(input: &mut &[u8]) -> Result<Vec<u8>, DecodeError> {
  get_bytes_ref(input).map(<[u8]>::to_vec)
}

/// Reads a `string` without copying, advancing `input`.
pub fn get_str<'a>(input: &mut &'a [u8]) -> Result<&'a str, DecodeError> {
  std::str::from_utf8(get_bytes_ref(input)?).map_err(|_| DecodeError::InvalidUtf8)
}

/// Reads a `string`, advancing `input`.
pub fn get_string(input: &mut &[u8]) -> Result<String, DecodeError> {
  get_str(input).map(str::to_owned)
}

/// Reads the branch index of a union of `branches` branches.
pub fn get_union_branch(input: &mut &[u8], branches: usize) -> Result<usize, DecodeError> {
  let branch = get_long(input)?;
  match usize::try_from(branch) {
    Ok(b) if b < branches => Ok(b),
    _ => Err(DecodeError::BadUnionBranch { branch, branches }),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn long_uses_zigzag_varints() {
    let cases: [(i64, &[u8]); 7] = [
      (0, &[0x00]),
      (-1, &[0x01]),
      (1, &[0x02]),
      (-64, &[0x7f]),
      (64, &[0x80, 0x01]),
      (i64::MAX, &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
      (i64::MIN, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
    ];
    for (value, bytes) in cases {
      let mut out = Vec::new();
      put_long(&mut out, value);
      assert_eq!(out, bytes, "{value}");
      let mut input = bytes;
      assert_eq!(get_long(&mut input), Ok(value));
      assert!(input.is_empty());
    }
  }

  #[test]
  fn overlong_varints_and_big_ints_are_rejected() {
    let mut eleven: &[u8] = &[0xff; 11];
    assert_eq!(get_long(&mut eleven), Err(DecodeError::VarintOverflow));
    let mut tenth_too_big: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
    assert_eq!(get_long(&mut tenth_too_big), Err(DecodeError::VarintOverflow));
    let mut out = Vec::new();
    put_long(&mut out, i64::from(i32::MAX) + 1);
    assert_eq!(get_int(&mut out.as_slice()), Err(DecodeError::IntOutOfRange { value: i64::from(i32::MAX) + 1 }));
  }

  #[test]
  fn soe_header_is_magic_then_little_endian_fingerprint() {
    let header = soe_header(0x7275d51a3f395c8f);
    assert_eq!(header, [0xc3, 0x01, 0x8f, 0x5c, 0x39, 0x3f, 0x1a, 0xd5, 0x75, 0x72]);
    let mut bytes = header.to_vec();
    bytes.push(0x2a);
    assert_eq!(split_soe(&bytes), Ok((0x7275d51a3f395c8f, &[0x2a][..])));
    assert_eq!(split_soe(&bytes[..9]), Err(DecodeError::Truncated { needed: 10, available: 9 }));
    bytes[1] = 0x02;
    assert_eq!(split_soe(&bytes), Err(DecodeError::BadMagic { found: [0xc3, 0x02] }));
  }
}
