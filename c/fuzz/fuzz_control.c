/* Control records (spec/wire-format.md §10): ir_ctl_decode over arbitrary frame payloads, as the C
 * connector reads them from its reply ring. Never crashes or reads out of bounds (ASan, UBSan);
 * whatever decodes re-encodes to a payload that decodes to the same message (compared as JSON). The
 * input is tried as it is and behind a valid Single Object Encoding header. */
#include <assert.h>

#include "../src/control.h"
#include "fuzz_common.h"

static void check(const uint8_t *payload, size_t len) {
  ir_ctl_msg_t msg;
  char why[256];
  memset(&msg, 0, sizeof msg);
  if (ir_ctl_decode(payload, len, &msg, why, sizeof why) == IR_OK) {
    ir_avro_writer_t enc, json1, json2;
    ir_avro_writer_init_dynamic(&enc);
    ir_avro_writer_init_dynamic(&json1);
    ir_avro_writer_init_dynamic(&json2);
    ir_ctl_encode(&msg, &enc);
    ir_ctl_to_json(&msg, &json1);
    ir_ctl_msg_t again;
    memset(&again, 0, sizeof again);
    if (ir_ctl_decode(enc.data, enc.len, &again, why, sizeof why) != IR_OK) {
      abort(); /* a decoded message must re-encode to a payload that decodes */
    }
    ir_ctl_to_json(&again, &json2);
    if (json1.len != json2.len || memcmp(json1.data, json2.data, json1.len) != 0) {
      abort(); /* the message changed through encode and decode */
    }
    ir_ctl_free(&again);
    ir_avro_writer_free(&enc);
    ir_avro_writer_free(&json1);
    ir_avro_writer_free(&json2);
  }
  ir_ctl_free(&msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check(data, size);
  uint8_t *framed = malloc(IR_AVRO_SOE_HEADER_LEN + size);
  ir_avro_soe_header(framed, IR_CONTROL_FINGERPRINT);
  if (size > 0) {
    memcpy(framed + IR_AVRO_SOE_HEADER_LEN, data, size);
  }
  check(framed, IR_AVRO_SOE_HEADER_LEN + size);
  free(framed);
  return 0;
}
