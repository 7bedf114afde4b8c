/* impulse_ring_avro.h: a small Avro binary codec for C, enough for Ring's control records and for apps
 * that encode their datums by hand. It has no schema object: you write and read a record field by
 * field, in the order of the schema's "fields", with the function for each field's type.
 *
 * Both the writer and the reader keep a sticky error: after the first failure every further call is
 * a no-op (readers return 0 / NULL), so a whole record can be handled and checked once at the end.
 *
 * Example: the datum of {"type":"record","name":"Reading","fields":[{"name":"seq","type":"long"},
 * {"name":"celsius","type":"double"},{"name":"sensor","type":"string"}]}
 *
 *   ir_avro_writer_t w;
 *   ir_avro_writer_init_dynamic(&w);
 *   ir_avro_write_long(&w, 7);
 *   ir_avro_write_double(&w, 21.5);
 *   ir_avro_write_string(&w, "greenhouse");
 *   if (!ir_avro_writer_ok(&w)) { ... out of memory ... }
 *   ir_publish(pub, w.data, w.len, IR_FOREVER);
 *   ir_avro_writer_free(&w);
 *
 *   ir_avro_reader_t r;
 *   ir_avro_reader_init(&r, datum, len);
 *   int64_t seq = ir_avro_read_long(&r);
 *   double celsius = ir_avro_read_double(&r);
 *   size_t n;
 *   const char *sensor = ir_avro_read_string(&r, &n);   // not NUL-terminated: use n
 *   if (!ir_avro_reader_finish(&r)) { puts(ir_avro_reader_error(&r)); }
 *
 * Other types: a union writes its branch index then the branch's value (["null","string"]: branch 0
 * and nothing, or branch 1 and a string). An array or map is written as blocks: a count, that many
 * items (for a map, each a string key then the value), and a final count of 0; ir_avro_write_array
 * helpers below do the counting. Readers accept negative block counts (followed by a byte size).
 */
#ifndef IMPULSE_RING_AVRO_H
#define IMPULSE_RING_AVRO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef IR_API
#define IR_API __attribute__((visibility("default")))
#endif

/* Length of a Single Object Encoding header: C3 01 and the schema fingerprint, 8 bytes little-endian.
 * The connector adds and strips it: ir_publish takes and ir_receive returns bare datums. */
#define IR_AVRO_SOE_HEADER_LEN 10

/* ---- Writing ---- */

/* A growing or fixed output buffer. `data` and `len` are the bytes written so far. */
typedef struct ir_avro_writer {
  uint8_t *data;
  size_t len;
  size_t cap;
  bool growable; /* data is malloc'd by the writer */
  bool failed;   /* a write did not fit (fixed buffer) or memory ran out */
} ir_avro_writer_t;

/* A writer into the caller's buffer `buf` of `cap` bytes; writes beyond it fail (sticky). */
IR_API void ir_avro_writer_init(ir_avro_writer_t *w, void *buf, size_t cap);

/* A writer into a buffer it allocates and grows; release it with ir_avro_writer_free. */
IR_API void ir_avro_writer_init_dynamic(ir_avro_writer_t *w);

/* Frees a dynamic writer's buffer (a no-op for a fixed one) and empties the writer. */
IR_API void ir_avro_writer_free(ir_avro_writer_t *w);

/* Forgets the bytes written (keeping the buffer) and clears the error. */
IR_API void ir_avro_writer_reset(ir_avro_writer_t *w);

/* True while every write so far succeeded. */
IR_API bool ir_avro_writer_ok(const ir_avro_writer_t *w);

/* `null` is encoded as nothing; present for symmetry with the schema. */
IR_API void ir_avro_write_null(ir_avro_writer_t *w);
IR_API void ir_avro_write_boolean(ir_avro_writer_t *w, bool value);
/* `int` and `long`: zigzag, then a little-endian base-128 varint. */
IR_API void ir_avro_write_int(ir_avro_writer_t *w, int32_t value);
IR_API void ir_avro_write_long(ir_avro_writer_t *w, int64_t value);
/* `float` and `double`: IEEE 754, little-endian. */
IR_API void ir_avro_write_float(ir_avro_writer_t *w, float value);
IR_API void ir_avro_write_double(ir_avro_writer_t *w, double value);
/* `bytes`: the length as a long, then the bytes. */
IR_API void ir_avro_write_bytes(ir_avro_writer_t *w, const void *data, size_t len);
/* `string`: UTF-8 bytes, encoded as `bytes`. `value` is NUL-terminated; _n takes a length. */
IR_API void ir_avro_write_string(ir_avro_writer_t *w, const char *value);
IR_API void ir_avro_write_string_n(ir_avro_writer_t *w, const char *value, size_t len);
/* `fixed`: exactly the schema's size in bytes, no length. */
IR_API void ir_avro_write_fixed(ir_avro_writer_t *w, const void *data, size_t len);
/* `enum`: the symbol's index as an int. */
IR_API void ir_avro_write_enum(ir_avro_writer_t *w, int32_t index);
/* A union: the 0-based branch index (then write the branch's value). */
IR_API void ir_avro_write_union_branch(ir_avro_writer_t *w, int64_t branch);
/* Arrays and maps: ir_avro_write_block_count(w, n) before n items (n > 0), and
 * ir_avro_write_block_end(w) after the last block (an empty array is just the end). */
IR_API void ir_avro_write_block_count(ir_avro_writer_t *w, int64_t count);
IR_API void ir_avro_write_block_end(ir_avro_writer_t *w);
/* Raw bytes, for a datum encoded elsewhere. */
IR_API void ir_avro_write_raw(ir_avro_writer_t *w, const void *data, size_t len);

/* ---- Reading ---- */

/* A cursor over `len` bytes that it does not own. */
typedef struct ir_avro_reader {
  const uint8_t *data;
  size_t len;
  size_t pos;
  bool failed;
  char error[96];
} ir_avro_reader_t;

IR_API void ir_avro_reader_init(ir_avro_reader_t *r, const void *data, size_t len);

/* True while every read so far succeeded. */
IR_API bool ir_avro_reader_ok(const ir_avro_reader_t *r);

/* True when every read succeeded and every byte was consumed (else records "N trailing bytes"). */
IR_API bool ir_avro_reader_finish(ir_avro_reader_t *r);

/* Why the reader failed ("" if it did not): truncated input, varint overflow, int out of range,
 * invalid boolean, union branch out of range, invalid UTF-8, length out of range, trailing bytes. */
IR_API const char *ir_avro_reader_error(const ir_avro_reader_t *r);

/* Bytes not yet read. */
IR_API size_t ir_avro_reader_remaining(const ir_avro_reader_t *r);

IR_API bool ir_avro_read_boolean(ir_avro_reader_t *r);
IR_API int32_t ir_avro_read_int(ir_avro_reader_t *r);
IR_API int64_t ir_avro_read_long(ir_avro_reader_t *r);
IR_API float ir_avro_read_float(ir_avro_reader_t *r);
IR_API double ir_avro_read_double(ir_avro_reader_t *r);
/* `bytes` and `string` are returned in place (pointing into the reader's input, not NUL-terminated),
 * with their length in *len; strings are checked to be UTF-8. NULL on error. */
IR_API const uint8_t *ir_avro_read_bytes(ir_avro_reader_t *r, size_t *len);
IR_API const char *ir_avro_read_string(ir_avro_reader_t *r, size_t *len);
/* `fixed` of `len` bytes, in place. */
IR_API const uint8_t *ir_avro_read_fixed(ir_avro_reader_t *r, size_t len);
IR_API int32_t ir_avro_read_enum(ir_avro_reader_t *r);
/* A union's branch index, checked to be below `branches`. */
IR_API int64_t ir_avro_read_union_branch(ir_avro_reader_t *r, int64_t branches);
/* The item count of the next array or map block: 0 at the end. A negative count on the wire (which
 * carries the block's byte size next) is returned as its absolute value. Counts above the remaining
 * input are refused, since every item takes at least a byte (arrays of null are not supported). */
IR_API int64_t ir_avro_read_block_count(ir_avro_reader_t *r);

/* ---- Single Object Encoding ---- */

/* Writes C3 01 and `fingerprint` as 8 little-endian bytes into `out`. */
IR_API void ir_avro_soe_header(uint8_t out[IR_AVRO_SOE_HEADER_LEN], uint64_t fingerprint);

/* Splits a Single Object Encoding: checks the magic, returns the fingerprint in *fingerprint and the
 * datum's offset (IR_AVRO_SOE_HEADER_LEN). False when `len` is too short or the magic is wrong. */
IR_API bool ir_avro_soe_split(const uint8_t *payload, size_t len, uint64_t *fingerprint);

#ifdef __cplusplus
}
#endif

#endif /* IMPULSE_RING_AVRO_H */
