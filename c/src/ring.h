/* Frames: the 16-byte record header every ring uses, and the checks a reader applies before it
 * trusts a record found in shared memory (rust/core/src/frame.rs). Shared by ring.c and broadcast.c. */
#ifndef IR_RING_H
#define IR_RING_H

#include "internal.h"

/* A record header as read from shared memory, not yet validated. */
typedef struct ir_raw_header {
  uint32_t len;
  uint16_t kind;
  uint64_t seq;
} ir_raw_header_t;

/* Headers are read and written with Relaxed atomics: the Acquire load / Release store of the tail
 * that publishes the record orders them. */
static inline ir_raw_header_t ir_read_header(const uint8_t *at) {
  ir_frame_header_t *header = (ir_frame_header_t *)at;
  uint64_t word = atomic_load_explicit(&header->len_kind_flags, memory_order_relaxed);
  ir_raw_header_t raw = {
      .len = (uint32_t)word,
      .kind = (uint16_t)(word >> 32),
      .seq = atomic_load_explicit(&header->seq, memory_order_relaxed),
  };
  return raw;
}

static inline void ir_write_header(uint8_t *at, uint32_t len, uint16_t kind, uint64_t seq) {
  ir_frame_header_t *header = (ir_frame_header_t *)at;
  atomic_store_explicit(&header->len_kind_flags, (uint64_t)len | ((uint64_t)kind << 32), memory_order_relaxed);
  atomic_store_explicit(&header->seq, seq, memory_order_relaxed);
}

/* The padding to insert before a record of `size` bytes at `tail` (0 when it fits before the end). */
static inline uint64_t ir_padding_before(uint64_t tail, uint64_t capacity, uint64_t size) {
  uint64_t to_end = capacity - (tail & (capacity - 1));
  return to_end < size ? to_end : 0;
}

/* Checks the header found at `offset_in_ring` when `available` published bytes follow it; on success
 * *size is the bytes the record occupies. `allowed` is a mask of (1 << kind); padding always is. */
static inline ir_error_e ir_check_record(const char *segment, ir_raw_header_t header, uint64_t offset_in_ring,
                                         uint64_t capacity, uint64_t available, uint32_t allowed, uint64_t *size) {
  uint64_t to_end = capacity - offset_in_ring;
  if (header.kind == IR_FRAME_KIND_PADDING) {
    if ((uint64_t)header.len + IR_FRAME_HEADER_SIZE != to_end || to_end > available) {
      return ir_fail(IR_ERR_CORRUPT, "ring in %s is corrupt: padding of %u bytes does not reach the end of the ring",
                     segment, header.len);
    }
    *size = to_end;
    return IR_OK;
  }
  if (header.kind >= 32 || (allowed & (1u << header.kind)) == 0) {
    return ir_fail(IR_ERR_CORRUPT, "ring in %s is corrupt: record kind %u is not allowed here", segment, header.kind);
  }
  if ((uint64_t)header.len > ir_max_payload(capacity)) {
    return ir_fail(IR_ERR_CORRUPT, "ring in %s is corrupt: record length %u exceeds the ring's maximum payload",
                   segment, header.len);
  }
  uint64_t record = ir_record_size(header.len);
  if (record > to_end || record > available) {
    return ir_fail(IR_ERR_CORRUPT,
                   "ring in %s is corrupt: record of %llu bytes overruns the published data or the ring end", segment,
                   (unsigned long long)record);
  }
  *size = record;
  return IR_OK;
}

#define IR_KIND_BIT(kind) (1u << (kind))

#endif /* IR_RING_H */
