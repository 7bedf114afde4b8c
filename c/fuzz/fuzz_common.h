/* Helpers of the C fuzz targets (libFuzzer, `clang -fsanitize=fuzzer,address,undefined`): a
 * segment-shaped buffer the readers under test take for shared memory. Built by `cargo ringctl fuzz`. */
#ifndef IR_FUZZ_COMMON_H
#define IR_FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/internal.h"

/* Reads up to 8 little-endian bytes from the front of the input, advancing it (missing bytes: 0). */
static inline uint64_t fuzz_take(const uint8_t **data, size_t *size, size_t n) {
  uint64_t value = 0;
  for (size_t i = 0; i<n && * size> 0; i++) {
    value |= (uint64_t) * *data << (8 * i);
    (*data)++;
    (*size)--;
  }
  return value;
}

/* A segment of exactly `len` bytes (64-byte aligned, as a mapping is), holding `data` from offset
 * `at` on and zeroes elsewhere. AddressSanitizer reports any access past `len`. */
static inline ir_seg_t fuzz_segment(size_t len, size_t at, const uint8_t *data, size_t size) {
  ir_seg_t seg;
  memset(&seg, 0, sizeof seg);
  size_t rounded = (len + 63) & ~(size_t)63;
  seg.base = aligned_alloc(64, rounded);
  memset(seg.base, 0, rounded);
  if (at < len) {
    memcpy(seg.base + at, data, size < len - at ? size : len - at);
  }
  seg.len = len;
  strcpy(seg.name, "/fuzz");
  return seg;
}

#endif /* IR_FUZZ_COMMON_H */
