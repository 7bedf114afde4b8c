/* The single-producer single-consumer byte ring that carries control records and calls (the same
 * protocol as rust/core/src/ring.rs). Records are 16-byte-aligned frames written contiguously, with
 * padding at the wrap; the producer publishes with a Release store of the tail, the consumer frees
 * space with a Release store of the head. Every header read from shared memory is checked before it
 * is trusted: a corrupt ring yields IR_ERR_CORRUPT, never an out-of-bounds access. */
#include <string.h>

#include "internal.h"
#include "ring.h"

ir_error_e ir_ring_open(const ir_seg_t *seg, uint64_t base, uint64_t expected_capacity, ir_ring_t *out) {
  if (base > seg->len || seg->len - base < IR_RING_HEADER_SIZE) {
    return ir_fail(IR_ERR_CORRUPT, "ring in %s is corrupt: header at %llu lies outside the segment", seg->name,
                   (unsigned long long)base);
  }
  ir_ring_header_t *header = ir_seg_at(seg, base);
  uint64_t capacity = atomic_load_explicit(&header->capacity, memory_order_relaxed);
  bool fits = capacity <= seg->len - base - IR_RING_HEADER_SIZE;
  if (capacity != expected_capacity || !ir_valid_capacity(capacity) || !fits) {
    return ir_fail(IR_ERR_CORRUPT, "ring in %s is corrupt: ring at %llu has capacity %llu, expected %llu", seg->name,
                   (unsigned long long)base, (unsigned long long)capacity, (unsigned long long)expected_capacity);
  }
  out->header = header;
  out->data = (uint8_t *)header + IR_RING_HEADER_SIZE;
  out->capacity = capacity;
  out->segment = seg->name;
  return IR_OK;
}

ir_error_e ir_ring_try_write(const ir_ring_t *ring, uint16_t kind, uint64_t seq, const void *a, size_t alen,
                             const void *b, size_t blen) {
  uint64_t max = ir_max_payload(ring->capacity);
  if (alen > max || blen > max - alen) {
    return ir_fail(IR_ERR_TOO_LARGE, "payload of %zu bytes is larger than the maximum of %llu bytes", alen + blen,
                   (unsigned long long)max);
  }
  uint64_t len = alen + blen;
  uint64_t tail = atomic_load_explicit(&ring->header->tail, memory_order_relaxed);
  /* SYNC: observe freed space — pairs with the consumer's Release store of the head. */
  uint64_t head = atomic_load_explicit(&ring->header->head, memory_order_acquire);
  uint64_t used = tail - head;
  if (used > ring->capacity || tail % IR_FRAME_ALIGN != 0) {
    return ir_fail(IR_ERR_CORRUPT, "ring in %s is corrupt: tail %llu and head %llu are inconsistent", ring->segment,
                   (unsigned long long)tail, (unsigned long long)head);
  }
  uint64_t size = ir_record_size(len);
  uint64_t pad = ir_padding_before(tail, ring->capacity, size);
  if (ring->capacity - used < pad + size) {
    return IR_ERR_WOULD_BLOCK;
  }
  uint64_t at = tail;
  if (pad > 0) {
    ir_write_header(ring->data + (at & (ring->capacity - 1)), (uint32_t)(pad - IR_FRAME_HEADER_SIZE),
                    IR_FRAME_KIND_PADDING, 0);
    at += pad;
  }
  uint8_t *record = ring->data + (at & (ring->capacity - 1));
  ir_write_header(record, (uint32_t)len, kind, seq);
  if (alen > 0) {
    memcpy(record + IR_FRAME_HEADER_SIZE, a, alen);
  }
  if (blen > 0) {
    memcpy(record + IR_FRAME_HEADER_SIZE + alen, b, blen);
  }
  /* SYNC: publish record — pairs with the consumer's Acquire load of the tail. */
  atomic_store_explicit(&ring->header->tail, at + size, memory_order_release);
  return IR_OK;
}

void ir_ring_set_producer_waiting(const ir_ring_t *ring, bool waiting) {
  /* SYNC: producer-waiting check — SeqCst pairs with the consumer's fence in ir_ring_producer_waiting
   * (a Dekker pair: either the consumer sees the flag or the producer's re-check sees the freed head). */
  atomic_store_explicit(&ring->header->producer_waiting, waiting ? 1 : 0, memory_order_seq_cst);
  /* Keeps the producer's re-check of the head after the store (as on the doorbell's sleep path). */
  atomic_thread_fence(memory_order_seq_cst);
}

bool ir_ring_producer_waiting(const ir_ring_t *ring) {
  /* SYNC: producer-waiting check — orders our head store before this load; pairs with the SeqCst
   * store in ir_ring_set_producer_waiting. */
  atomic_thread_fence(memory_order_seq_cst);
  return atomic_load_explicit(&ring->header->producer_waiting, memory_order_relaxed) != 0;
}

bool ir_ring_has_data(const ir_ring_t *ring) {
  /* SYNC: observe record. */
  return atomic_load_explicit(&ring->header->tail, memory_order_acquire) !=
         atomic_load_explicit(&ring->header->head, memory_order_relaxed);
}

ir_error_e ir_ring_peek(const ir_ring_t *ring, uint32_t allowed, ir_frame_t *frame, bool *found) {
  *found = false;
  uint64_t head = atomic_load_explicit(&ring->header->head, memory_order_relaxed);
  /* SYNC: observe record — pairs with the producer's Release store of the tail. */
  uint64_t tail = atomic_load_explicit(&ring->header->tail, memory_order_acquire);
  for (;;) {
    if (head == tail) {
      if (head != atomic_load_explicit(&ring->header->head, memory_order_relaxed)) {
        /* Only padding was left: free it now, as the Rust consumer does on its next record. */
        atomic_store_explicit(&ring->header->head, head, memory_order_release);
      }
      return IR_OK;
    }
    uint64_t available = tail - head;
    if (available > ring->capacity || head % IR_FRAME_ALIGN != 0) {
      return ir_fail(IR_ERR_CORRUPT, "ring in %s is corrupt: tail %llu and head %llu are inconsistent", ring->segment,
                     (unsigned long long)tail, (unsigned long long)head);
    }
    uint64_t in_ring = head & (ring->capacity - 1);
    ir_raw_header_t header = ir_read_header(ring->data + in_ring);
    uint64_t size = 0;
    ir_error_e code = ir_check_record(ring->segment, header, in_ring, ring->capacity, available, allowed, &size);
    if (code != IR_OK) {
      return code;
    }
    if (header.kind == IR_FRAME_KIND_PADDING) {
      head += size;
      continue;
    }
    frame->kind = header.kind;
    frame->seq = header.seq;
    frame->len = header.len;
    frame->payload = ring->data + in_ring + IR_FRAME_HEADER_SIZE;
    frame->next = head + size;
    *found = true;
    return IR_OK;
  }
}

void ir_ring_consume(const ir_ring_t *ring, const ir_frame_t *frame) {
  /* SYNC: release space — pairs with the producer's Acquire load of the head. */
  atomic_store_explicit(&ring->header->head, frame->next, memory_order_release);
}
