/* The SPSC ring (spec/wire-format.md §6) and the channel ring (§7) over arbitrary bytes: indices,
 * capacity words, channel header, subscriber slots and every frame header come from the fuzzer, as
 * the C connector finds them in a link or channel segment a broken or hostile app wrote to. The first
 * input byte picks the ring kind; most inputs keep a valid capacity/header so the readers get past
 * their open checks, and some start from a healthy ring the C producer wrote, then corrupted. Never
 * crashes or touches memory outside the segment (ASan, UBSan). */
#include <stdatomic.h>

#include "fuzz_common.h"

#define CAPACITY 4096u

/* Every payload byte is read, so ASan checks the whole range the reader handed out. */
static volatile uint8_t sink;

/* A healthy ring written by the C producer itself (records of the input's lengths, some consumed,
 * wrapping), then up to 3 of its words overwritten with the input's values: reads go deep. */
static void healthy_then_corrupt(ir_seg_t *seg, const uint8_t *data, size_t size) {
  ir_ring_header_t *header = (ir_ring_header_t *)seg->base;
  memset(seg->base, 0, seg->len);
  atomic_store_explicit(&header->capacity, CAPACITY, memory_order_relaxed);
  ir_ring_t ring;
  if (ir_ring_open(seg, 0, CAPACITY, &ring) != IR_OK) {
    abort(); /* a freshly laid out ring must open */
  }
  static uint8_t payload[CAPACITY];
  uint64_t writes = fuzz_take(&data, &size, 1) % 64;
  uint64_t consumed = fuzz_take(&data, &size, 1) % 64;
  for (uint64_t i = 0; i < writes; i++) {
    size_t n = fuzz_take(&data, &size, 2) % (CAPACITY / 2 - 16 + 1);
    ir_frame_t frame;
    bool found = false;
    if (ir_ring_try_write(&ring, IR_FRAME_KIND_CONTROL, i, payload, n, NULL, 0) != IR_OK || i < consumed) {
      if (ir_ring_peek(&ring, 1u << IR_FRAME_KIND_CONTROL, &frame, &found) == IR_OK && found) {
        ir_ring_consume(&ring, &frame);
      }
    }
  }
  uint64_t corruptions = fuzz_take(&data, &size, 1) % 4;
  for (uint64_t i = 0; i < corruptions; i++) {
    size_t at = (fuzz_take(&data, &size, 2) % (seg->len / 8)) * 8;
    uint64_t value = fuzz_take(&data, &size, 8);
    memcpy(seg->base + at, &value, sizeof value);
  }
}

static void fuzz_spsc(uint64_t flags, const uint8_t *data, size_t size) {
  size_t len = IR_RING_HEADER_SIZE + CAPACITY;
  ir_seg_t seg = fuzz_segment(len, 0, data, size);
  if (flags & 8) {
    healthy_then_corrupt(&seg, data, size);
  } else if ((flags & 2) == 0) {
    ir_ring_header_t *header = (ir_ring_header_t *)seg.base;
    atomic_store_explicit(&header->capacity, CAPACITY, memory_order_relaxed);
  }
  ir_ring_t ring;
  if (ir_ring_open(&seg, 0, CAPACITY, &ring) == IR_OK) {
    uint32_t allowed =
        (flags & 4) ? (1u << IR_FRAME_KIND_CONTROL) : (1u << IR_FRAME_KIND_CALL_OK) | (1u << IR_FRAME_KIND_CALL_ERROR);
    for (int i = 0; i < 64; i++) {
      (void)ir_ring_has_data(&ring);
      ir_frame_t frame;
      bool found = false;
      if (ir_ring_peek(&ring, allowed, &frame, &found) != IR_OK || !found) {
        break;
      }
      for (uint32_t k = 0; k < frame.len; k++) {
        sink ^= frame.payload[k];
      }
      ir_ring_consume(&ring, &frame);
    }
    (void)ir_ring_producer_waiting(&ring);
    static uint8_t payload[2 * CAPACITY];
    size_t write_len = (flags >> 8) % sizeof payload;
    (void)ir_ring_try_write(&ring, IR_FRAME_KIND_CONTROL, 1, payload, write_len, payload, write_len / 3);
  }
  free(seg.base);
}

static void fuzz_channel(uint64_t flags, const uint8_t *data, size_t size) {
  uint32_t max_subscribers = 1 + ((flags >> 3) & 3);
  uint32_t index = (flags >> 5) % (max_subscribers + 1);
  const uint8_t *words = data;
  size_t left = size;
  uint64_t tail = fuzz_take(&words, &left, 8);
  uint64_t min_valid = fuzz_take(&words, &left, 8);
  uint64_t next_seq = fuzz_take(&words, &left, 8);
  size_t len = IR_CH_SUBSCRIBERS + (size_t)max_subscribers * IR_SUB_SIZE + CAPACITY;
  ir_seg_t seg = fuzz_segment(len, 0, words, left);
  ir_channel_header_t *header = (ir_channel_header_t *)seg.base;
  if ((flags & 2) == 0) {
    atomic_store_explicit(&header->capacity, CAPACITY, memory_order_relaxed);
    atomic_store_explicit(&header->policy, (flags >> 7) & 1, memory_order_relaxed);
    atomic_store_explicit(&header->max_subscribers, max_subscribers, memory_order_relaxed);
  }
  ir_chcfg_t config;
  if (ir_chcfg_read(&seg, &config) == IR_OK) {
    ir_pub_cursor_t publisher;
    ir_pub_cursor_init(&publisher, &seg, &config);
    ir_sub_cursor_t subscriber;
    if (ir_sub_cursor_join(&subscriber, &seg, &config, index) == IR_OK) {
      atomic_store_explicit(&header->tail, tail, memory_order_relaxed);
      atomic_store_explicit(&header->min_valid, min_valid, memory_order_relaxed);
      atomic_store_explicit(&header->next_seq, next_seq, memory_order_relaxed);
      for (int i = 0; i < 64; i++) {
        ir_frame_t frame;
        ir_recv_e outcome;
        uint64_t missed = 0;
        if (ir_sub_try_recv(&subscriber, &frame, &outcome, &missed) != IR_OK) {
          break;
        }
        if (outcome == IR_RECV_FRAME) {
          for (uint32_t k = 0; k < frame.len; k++) {
            sink ^= frame.payload[k];
          }
          ir_sub_advance(&subscriber, &frame);
        } else if (outcome != IR_RECV_LAGGED) {
          break;
        }
      }
      ir_sub_cursor_leave(&subscriber);
    }
    static uint8_t payload[CAPACITY];
    size_t sizes[] = {(flags >> 9) % 64, (flags >> 9) % CAPACITY, CAPACITY / 2 - 16, CAPACITY / 2 - 15};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      (void)ir_pub_try_publish(&publisher, payload, sizes[i] / 2, payload, sizes[i] - sizes[i] / 2);
    }
  }
  free(seg.base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint64_t flags = fuzz_take(&data, &size, 3);
  if (flags & 1) {
    fuzz_channel(flags, data, size);
  } else {
    fuzz_spsc(flags, data, size);
  }
  return 0;
}
