/* The small Avro binary codec of impulse_ring_avro.h: zigzag varints, IEEE floats, length-prefixed
 * bytes and UTF-8 strings, unions and blocked arrays/maps. Decoding never reads past its input and
 * never trusts a length it has not checked against the bytes that remain. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impulse_ring_avro.h"

/* ---- Writer ---- */

void ir_avro_writer_init(ir_avro_writer_t *w, void *buf, size_t cap) {
  w->data = buf;
  w->len = 0;
  w->cap = buf != NULL ? cap : 0;
  w->growable = false;
  w->failed = false;
}

void ir_avro_writer_init_dynamic(ir_avro_writer_t *w) {
  w->data = NULL;
  w->len = 0;
  w->cap = 0;
  w->growable = true;
  w->failed = false;
}

void ir_avro_writer_free(ir_avro_writer_t *w) {
  if (w->growable) {
    free(w->data);
    w->data = NULL;
    w->cap = 0;
  }
  w->len = 0;
  w->failed = false;
}

void ir_avro_writer_reset(ir_avro_writer_t *w) {
  w->len = 0;
  w->failed = false;
}

bool ir_avro_writer_ok(const ir_avro_writer_t *w) {
  return !w->failed;
}

/* Makes room for `n` more bytes; false (and sticky) when it cannot. */
static bool reserve(ir_avro_writer_t *w, size_t n) {
  if (w->failed) {
    return false;
  }
  if (n <= w->cap - w->len) {
    return true;
  }
  if (!w->growable || n > SIZE_MAX / 2 - w->len) {
    w->failed = true;
    return false;
  }
  size_t want = w->cap < 64 ? 64 : w->cap;
  while (want - w->len < n) {
    want *= 2;
  }
  uint8_t *grown = realloc(w->data, want);
  if (grown == NULL) {
    w->failed = true;
    return false;
  }
  w->data = grown;
  w->cap = want;
  return true;
}

void ir_avro_write_raw(ir_avro_writer_t *w, const void *data, size_t len) {
  if (len == 0 || !reserve(w, len)) {
    return;
  }
  memcpy(w->data + w->len, data, len);
  w->len += len;
}

void ir_avro_write_null(ir_avro_writer_t *w) {
  (void)w;
}

void ir_avro_write_boolean(ir_avro_writer_t *w, bool value) {
  uint8_t byte = value ? 1 : 0;
  ir_avro_write_raw(w, &byte, 1);
}

void ir_avro_write_long(ir_avro_writer_t *w, int64_t value) {
  uint8_t buf[10];
  size_t n = 0;
  /* Zigzag: the sign moves to bit 0 (shift as unsigned: left-shifting a negative value is undefined). */
  uint64_t z = ((uint64_t)value << 1) ^ (uint64_t)(value < 0 ? -1 : 0);
  while (z >= 0x80) {
    buf[n++] = (uint8_t)(z | 0x80);
    z >>= 7;
  }
  buf[n++] = (uint8_t)z;
  ir_avro_write_raw(w, buf, n);
}

void ir_avro_write_int(ir_avro_writer_t *w, int32_t value) {
  ir_avro_write_long(w, value);
}

void ir_avro_write_float(ir_avro_writer_t *w, float value) {
  uint32_t bits;
  memcpy(&bits, &value, sizeof bits);
  uint8_t buf[4];
  for (int i = 0; i < 4; i++) {
    buf[i] = (uint8_t)(bits >> (8 * i));
  }
  ir_avro_write_raw(w, buf, sizeof buf);
}

void ir_avro_write_double(ir_avro_writer_t *w, double value) {
  uint64_t bits;
  memcpy(&bits, &value, sizeof bits);
  uint8_t buf[8];
  for (int i = 0; i < 8; i++) {
    buf[i] = (uint8_t)(bits >> (8 * i));
  }
  ir_avro_write_raw(w, buf, sizeof buf);
}

void ir_avro_write_bytes(ir_avro_writer_t *w, const void *data, size_t len) {
  ir_avro_write_long(w, (int64_t)len);
  ir_avro_write_raw(w, data, len);
}

void ir_avro_write_string_n(ir_avro_writer_t *w, const char *value, size_t len) {
  ir_avro_write_bytes(w, value, len);
}

void ir_avro_write_string(ir_avro_writer_t *w, const char *value) {
  ir_avro_write_bytes(w, value, value != NULL ? strlen(value) : 0);
}

void ir_avro_write_fixed(ir_avro_writer_t *w, const void *data, size_t len) {
  ir_avro_write_raw(w, data, len);
}

void ir_avro_write_enum(ir_avro_writer_t *w, int32_t index) {
  ir_avro_write_int(w, index);
}

void ir_avro_write_union_branch(ir_avro_writer_t *w, int64_t branch) {
  ir_avro_write_long(w, branch);
}

void ir_avro_write_block_count(ir_avro_writer_t *w, int64_t count) {
  ir_avro_write_long(w, count);
}

void ir_avro_write_block_end(ir_avro_writer_t *w) {
  ir_avro_write_long(w, 0);
}

/* ---- Reader ---- */

void ir_avro_reader_init(ir_avro_reader_t *r, const void *data, size_t len) {
  r->data = data;
  r->len = data != NULL ? len : 0;
  r->pos = 0;
  r->failed = false;
  r->error[0] = '\0';
}

bool ir_avro_reader_ok(const ir_avro_reader_t *r) {
  return !r->failed;
}

const char *ir_avro_reader_error(const ir_avro_reader_t *r) {
  return r->error;
}

size_t ir_avro_reader_remaining(const ir_avro_reader_t *r) {
  return r->len - r->pos;
}

static void fail(ir_avro_reader_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(ir_avro_reader_t *r, const char *fmt, ...) {
  if (r->failed) {
    return;
  }
  r->failed = true;
  va_list args;
  va_start(args, fmt);
  (void)vsnprintf(r->error, sizeof r->error, fmt, args);
  va_end(args);
}

bool ir_avro_reader_finish(ir_avro_reader_t *r) {
  if (!r->failed && r->pos != r->len) {
    fail(r, "%zu trailing bytes after the value", r->len - r->pos);
  }
  return !r->failed;
}

/* Takes `n` bytes; NULL (and sticky) when fewer remain. */
static const uint8_t *take(ir_avro_reader_t *r, size_t n) {
  if (r->failed) {
    return NULL;
  }
  if (n > r->len - r->pos) {
    fail(r, "truncated input: needed %zu more bytes, %zu available", n, r->len - r->pos);
    return NULL;
  }
  const uint8_t *at = r->data + r->pos;
  r->pos += n;
  return at;
}

int64_t ir_avro_read_long(ir_avro_reader_t *r) {
  uint64_t n = 0;
  for (int i = 0; i < 10; i++) {
    const uint8_t *byte = take(r, 1);
    if (byte == NULL) {
      return 0;
    }
    /* The tenth byte holds only the 64th bit. */
    if (i == 9 && *byte > 1) {
      break;
    }
    n |= (uint64_t)(*byte & 0x7f) << (7 * i);
    if ((*byte & 0x80) == 0) {
      return (int64_t)(n >> 1) ^ -(int64_t)(n & 1);
    }
  }
  fail(r, "varint longer than 64 bits");
  return 0;
}

int32_t ir_avro_read_int(ir_avro_reader_t *r) {
  int64_t value = ir_avro_read_long(r);
  if (value < INT32_MIN || value > INT32_MAX) {
    fail(r, "int out of range: %lld", (long long)value);
    return 0;
  }
  return (int32_t)value;
}

bool ir_avro_read_boolean(ir_avro_reader_t *r) {
  const uint8_t *byte = take(r, 1);
  if (byte == NULL) {
    return false;
  }
  if (*byte > 1) {
    fail(r, "invalid boolean byte 0x%02x", *byte);
    return false;
  }
  return *byte == 1;
}

float ir_avro_read_float(ir_avro_reader_t *r) {
  const uint8_t *at = take(r, 4);
  if (at == NULL) {
    return 0;
  }
  uint32_t bits = 0;
  for (int i = 0; i < 4; i++) {
    bits |= (uint32_t)at[i] << (8 * i);
  }
  float value;
  memcpy(&value, &bits, sizeof value);
  return value;
}

double ir_avro_read_double(ir_avro_reader_t *r) {
  const uint8_t *at = take(r, 8);
  if (at == NULL) {
    return 0;
  }
  uint64_t bits = 0;
  for (int i = 0; i < 8; i++) {
    bits |= (uint64_t)at[i] << (8 * i);
  }
  double value;
  memcpy(&value, &bits, sizeof value);
  return value;
}

/* A length (of bytes or a string) checked against the remaining input. */
static size_t read_length(ir_avro_reader_t *r) {
  int64_t length = ir_avro_read_long(r);
  if (r->failed) {
    return 0;
  }
  if (length < 0 || (uint64_t)length > r->len - r->pos) {
    fail(r, "length %lld out of range (%zu bytes left)", (long long)length, r->len - r->pos);
    return 0;
  }
  return (size_t)length;
}

const uint8_t *ir_avro_read_bytes(ir_avro_reader_t *r, size_t *len) {
  size_t n = read_length(r);
  const uint8_t *at = take(r, n);
  *len = at != NULL ? n : 0;
  return at;
}

/* Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool valid_utf8(const uint8_t *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    uint32_t min;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      n = 1;
      min = 0x80;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      min = 0x800;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      min = 0x10000;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n > len - i - 1) {
      return false;
    }
    for (size_t k = 1; k <= n; k++) {
      if ((s[i + k] & 0xc0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

const char *ir_avro_read_string(ir_avro_reader_t *r, size_t *len) {
  const uint8_t *at = ir_avro_read_bytes(r, len);
  if (at == NULL) {
    return NULL;
  }
  if (!valid_utf8(at, *len)) {
    fail(r, "string is not valid utf-8");
    *len = 0;
    return NULL;
  }
  return (const char *)at;
}

const uint8_t *ir_avro_read_fixed(ir_avro_reader_t *r, size_t len) {
  return take(r, len);
}

int32_t ir_avro_read_enum(ir_avro_reader_t *r) {
  return ir_avro_read_int(r);
}

int64_t ir_avro_read_union_branch(ir_avro_reader_t *r, int64_t branches) {
  int64_t branch = ir_avro_read_long(r);
  if (r->failed) {
    return 0;
  }
  if (branch < 0 || branch >= branches) {
    fail(r, "union branch %lld out of range (the union has %lld branches)", (long long)branch, (long long)branches);
    return 0;
  }
  return branch;
}

int64_t ir_avro_read_block_count(ir_avro_reader_t *r) {
  int64_t count = ir_avro_read_long(r);
  if (r->failed) {
    return 0;
  }
  if (count < 0) {
    if (count == INT64_MIN) {
      fail(r, "block count out of range");
      return 0;
    }
    count = -count;
    (void)read_length(r); /* the block's byte size, checked but not needed to read it item by item */
  }
  if ((uint64_t)count > r->len - r->pos) {
    fail(r, "length %lld out of range (%zu bytes left)", (long long)count, r->len - r->pos);
    return 0;
  }
  return count;
}

void ir_avro_soe_header(uint8_t out[IR_AVRO_SOE_HEADER_LEN], uint64_t fingerprint) {
  out[0] = 0xC3;
  out[1] = 0x01;
  for (int i = 0; i < 8; i++) {
    out[2 + i] = (uint8_t)(fingerprint >> (8 * i));
  }
}

bool ir_avro_soe_split(const uint8_t *payload, size_t len, uint64_t *fingerprint) {
  if (len < IR_AVRO_SOE_HEADER_LEN || payload[0] != 0xC3 || payload[1] != 0x01) {
    return false;
  }
  uint64_t fp = 0;
  for (int i = 0; i < 8; i++) {
    fp |= (uint64_t)payload[2 + i] << (8 * i);
  }
  *fingerprint = fp;
  return true;
}
