/* The Avro reader of impulse_ring_avro.h (spec/wire-format.md §9), what apps decode messages with:
 * ir_avro_soe_split, then a sequence of reads of every primitive type chosen by the input itself.
 * Never crashes or reads past the input; a failed read is sticky and the position never moves
 * backwards or beyond the end. */
#include "fuzz_common.h"
#include "impulse_ring_avro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint64_t fingerprint;
  (void)ir_avro_soe_split(data, size, &fingerprint);
  if (size == 0) {
    return 0;
  }
  uint32_t ops = data[0] | (size > 1 ? (uint32_t)data[1] << 8 : 0) | (size > 2 ? (uint32_t)data[2] << 16 : 0);
  size_t skip = size < 3 ? size : 3;
  ir_avro_reader_t r;
  ir_avro_reader_init(&r, data + skip, size - skip);
  for (int step = 0; step < 8; step++) {
    size_t before = r.pos;
    size_t len = 0;
    switch ((ops >> (3 * step)) & 7) {
      case 0:
        (void)ir_avro_read_long(&r);
        break;
      case 1:
        (void)ir_avro_read_int(&r);
        break;
      case 2:
        (void)ir_avro_read_boolean(&r);
        break;
      case 3: {
        const uint8_t *bytes = ir_avro_read_bytes(&r, &len);
        if (bytes != NULL && len > 0 && (bytes < r.data || bytes + len > r.data + r.len)) {
          abort();
        }
        break;
      }
      case 4: {
        const char *text = ir_avro_read_string(&r, &len);
        if (text != NULL && len > 0 &&
            ((const uint8_t *)text < r.data || (const uint8_t *)text + len > r.data + r.len)) {
          abort();
        }
        break;
      }
      case 5:
        (void)ir_avro_read_double(&r);
        (void)ir_avro_read_float(&r);
        break;
      case 6:
        (void)ir_avro_read_union_branch(&r, 1 + step);
        (void)ir_avro_read_enum(&r);
        break;
      default:
        (void)ir_avro_read_block_count(&r);
        (void)ir_avro_read_fixed(&r, (size_t)step * 3);
        break;
    }
    if (r.pos < before || r.pos > r.len) {
      abort();
    }
    if (!ir_avro_reader_ok(&r)) {
      break;
    }
  }
  (void)ir_avro_reader_finish(&r);
  (void)ir_avro_reader_remaining(&r);
  return 0;
}
