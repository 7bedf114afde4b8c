//! The Single Object Encoding header and the Avro primitive decoders every message and control record
//! goes through (spec/wire-format.md §9): `split_soe`, then a sequence of `long`, `int`, `boolean`,
//! `bytes`, `string` and union-branch reads chosen by the input itself. Never panics, never reads past
//! the input, and every successful read consumes at least one byte or a known width.
#![no_main]

use impulse_ring_core::avro;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
  if let Ok((fingerprint, body)) = avro::split_soe(data) {
    assert_eq!(&avro::soe_header(fingerprint)[..], &data[..data.len() - body.len()]);
  }
  let Some((&ops, mut input)) = data.split_first() else { return };
  for step in 0..16 {
    let before = input.len();
    let ok = match (ops.rotate_left(step * 3) & 7, step) {
      (0, _) => avro::get_long(&mut input).is_ok(),
      (1, _) => avro::get_int(&mut input).is_ok(),
      (2, _) => avro::get_bool(&mut input).is_ok(),
      (3, _) => avro::get_bytes(&mut input).is_ok(),
      (4, _) => avro::get_string(&mut input).is_ok(),
      (5, n) => avro::get_union_branch(&mut input, 1 + n as usize).is_ok(),
      (6, _) => avro::get_str(&mut input).is_ok(),
      _ => avro::get_bytes_ref(&mut input).is_ok(),
    };
    assert!(input.len() <= before);
    if ok {
      assert!(input.len() < before, "a successful read consumed nothing");
    } else {
      break;
    }
  }
});
