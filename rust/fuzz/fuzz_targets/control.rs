//! Control records (spec/wire-format.md §10): `ControlMessage::decode_frame_payload` over arbitrary
//! frame payloads, as a broker reads them from an app's request ring. Never panics; whatever decodes
//! re-encodes to a payload that decodes to the same message. The input is tried as it is and behind a
//! valid Single Object Encoding header, so the fuzzer need not find the control fingerprint first.
#![no_main]

use impulse_ring_core::avro;
use impulse_ring_core::control::{control_fingerprint, ControlMessage};
use libfuzzer_sys::fuzz_target;

fn check(payload: &[u8]) {
  if let Ok(message) = ControlMessage::decode_frame_payload(payload) {
    let again = ControlMessage::decode_frame_payload(&message.encode_frame_payload())
      .expect("a decoded control message re-encodes to a payload that decodes");
    assert_eq!(again, message, "control message changed through encode and decode");
  }
}

fuzz_target!(|data: &[u8]| {
  check(data);
  let mut framed = avro::soe_header(control_fingerprint()).to_vec();
  framed.extend_from_slice(data);
  check(&framed);
});
