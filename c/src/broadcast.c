/* The channel ring: one publisher, up to max_subscribers subscribers, each with its own cursor (the
 * protocol of rust/core/src/broadcast.rs). Under `block` the publisher never passes the slowest
 * active subscriber; under `lossy` it overwrites, retiring records first by advancing min_valid, and
 * a subscriber that finds itself behind min_valid skips ahead and learns from the sequence numbers
 * how many messages it missed. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "ring.h"

ir_error_e ir_chcfg_read(const ir_seg_t *seg, ir_chcfg_t *out) {
  if (seg->len < IR_CH_SUBSCRIBERS) {
    return ir_fail(IR_ERR_CORRUPT, "ring in %s is corrupt: %zu bytes is too small for a channel", seg->name, seg->len);
  }
  ir_channel_header_t *header = ir_seg_at(seg, 0);
  ir_chcfg_t config = {
      .capacity = atomic_load_explicit(&header->capacity, memory_order_relaxed),
      .channel_id = atomic_load_explicit(&header->channel_id, memory_order_relaxed),
      .fingerprint = atomic_load_explicit(&header->fingerprint, memory_order_relaxed),
      .policy = atomic_load_explicit(&header->policy, memory_order_relaxed),
      .max_subscribers = atomic_load_explicit(&header->max_subscribers, memory_order_relaxed),
  };
  if (!ir_valid_capacity(config.capacity)) {
    return ir_fail(IR_ERR_CORRUPT, "ring in %s is corrupt: capacity %llu is not a power of two in range", seg->name,
                   (unsigned long long)config.capacity);
  }
  if (config.policy > IR_POLICY_LOSSY) {
    return ir_fail(IR_ERR_CORRUPT, "ring in %s is corrupt: unknown overflow policy %u", seg->name, config.policy);
  }
  if (config.max_subscribers == 0 || config.max_subscribers > 4096) {
    return ir_fail(IR_ERR_CORRUPT, "ring in %s is corrupt: %u subscriber slots is out of range", seg->name,
                   config.max_subscribers);
  }
  uint64_t size = ir_channel_data_offset(config.max_subscribers) + config.capacity;
  if (size != (uint64_t)seg->len) {
    return ir_fail(IR_ERR_CORRUPT, "ring in %s is corrupt: layout needs %llu bytes, segment has %zu", seg->name,
                   (unsigned long long)size, seg->len);
  }
  *out = config;
  return IR_OK;
}

void ir_pub_cursor_init(ir_pub_cursor_t *cursor, const ir_seg_t *seg, const ir_chcfg_t *config) {
  ir_channel_header_t *header = ir_seg_at(seg, 0);
  uint64_t tail = atomic_load_explicit(&header->tail, memory_order_acquire);
  uint64_t min_valid = atomic_load_explicit(&header->min_valid, memory_order_acquire);
  uint64_t next_seq = atomic_load_explicit(&header->next_seq, memory_order_relaxed);
  bool sane = tail % IR_FRAME_ALIGN == 0 && min_valid % IR_FRAME_ALIGN == 0 && min_valid <= tail &&
              tail - min_valid <= config->capacity;
  /* An inconsistent channel restarts from a clean ring. */
  if (!sane) {
    tail = 0;
    min_valid = 0;
  }
  cursor->config = *config;
  cursor->header = header;
  cursor->subs = ir_seg_at(seg, IR_CH_SUBSCRIBERS);
  cursor->data = ir_seg_at(seg, ir_channel_data_offset(config->max_subscribers));
  cursor->tail = tail;
  cursor->next_seq = next_seq;
  cursor->min_valid = min_valid;
  cursor->cached_min = tail;
}

/* The slowest active subscriber's position, or `tail` when there is none. Positions outside
 * [tail - capacity, tail] are corrupt and ignored: a broken subscriber must not stall the channel;
 * except a JOINING cursor more than a ring behind, which gates every publish until it settles (§7.3). */
static uint64_t slowest(const ir_pub_cursor_t *cursor, uint64_t tail) {
  /* SYNC: join check — pairs with the SeqCst fence in ir_sub_cursor_join (a Dekker pair: either we
   * see the joining subscriber or it sees our tail). */
  atomic_thread_fence(memory_order_seq_cst);
  uint64_t min = tail;
  for (uint32_t i = 0; i < cursor->config.max_subscribers; i++) {
    ir_sub_slot_t *slot = &cursor->subs[i];
    /* SYNC: observe cursor — pairs with the subscriber's Release store of its position. */
    uint32_t state = atomic_load_explicit(&slot->state, memory_order_acquire);
    if (state == IR_SUB_ACTIVE || state == IR_SUB_JOINING) {
      uint64_t pos = atomic_load_explicit(&slot->pos, memory_order_acquire);
      uint64_t capacity = cursor->config.capacity;
      if (pos <= tail && tail - pos <= capacity) {
        if (pos < min) {
          min = pos;
        }
      } else if (state == IR_SUB_JOINING && pos <= tail) {
        /* Caught mid-join with the position of its first tail load (§7.6): its settled position is
         * not visible yet and may be one we would overwrite. Gate completely until it settles. */
        uint64_t gate = tail >= capacity ? tail - capacity : 0;
        if (gate < min) {
          min = gate;
        }
      }
    }
  }
  return min;
}

/* Advances min_valid past every record that starts before `target`, before they are overwritten. */
static void retire_until(ir_pub_cursor_t *cursor, uint64_t target) {
  uint64_t min_valid = cursor->min_valid;
  if (min_valid >= target) {
    return;
  }
  uint64_t cap = cursor->config.capacity;
  while (min_valid < target) {
    uint64_t in_ring = min_valid & (cap - 1);
    ir_raw_header_t header = ir_read_header(cursor->data + in_ring);
    uint64_t size = header.kind == IR_FRAME_KIND_PADDING ? cap - in_ring : ir_record_size(header.len);
    if (size == 0 || size > cap - in_ring || min_valid % IR_FRAME_ALIGN != 0) {
      /* Our own records were overwritten by someone else: skip to the target; readers will report
       * whatever lies there as corrupt. */
      min_valid = target;
      break;
    }
    min_valid += size;
  }
  cursor->min_valid = min_valid;
  atomic_store_explicit(&cursor->header->min_valid, min_valid, memory_order_relaxed);
  /* SYNC: retire records — orders the store of min_valid before our overwrites; pairs with the Acquire
   * fence a lossy subscriber issues after copying a record. */
  atomic_thread_fence(memory_order_release);
}

ir_error_e ir_pub_try_publish(ir_pub_cursor_t *cursor, const void *a, size_t alen, const void *b, size_t blen) {
  uint64_t cap = cursor->config.capacity;
  uint64_t max = ir_max_payload(cap);
  if (alen > max || blen > max - alen) {
    return ir_fail(IR_ERR_TOO_LARGE, "payload of %zu bytes is larger than the maximum of %llu bytes", alen + blen,
                   (unsigned long long)max);
  }
  uint64_t len = alen + blen;
  uint64_t tail = cursor->tail;
  uint64_t seq = cursor->next_seq;
  uint64_t size = ir_record_size(len);
  uint64_t pad = ir_padding_before(tail, cap, size);
  uint64_t end = tail + pad + size;
  if (cursor->config.policy == IR_POLICY_BLOCK && end - cursor->cached_min > cap) {
    cursor->cached_min = slowest(cursor, tail);
    if (end - cursor->cached_min > cap) {
      return IR_ERR_WOULD_BLOCK;
    }
  }
  retire_until(cursor, end > cap ? end - cap : 0);
  uint64_t at = tail;
  if (pad > 0) {
    /* Padding carries the next message's sequence number, so a reader landing on it counts right. */
    ir_write_header(cursor->data + (at & (cap - 1)), (uint32_t)(pad - IR_FRAME_HEADER_SIZE), IR_FRAME_KIND_PADDING,
                    seq);
    at += pad;
  }
  uint8_t *record = cursor->data + (at & (cap - 1));
  ir_write_header(record, (uint32_t)len, IR_FRAME_KIND_DATA, seq);
  if (alen > 0) {
    memcpy(record + IR_FRAME_HEADER_SIZE, a, alen);
  }
  if (blen > 0) {
    memcpy(record + IR_FRAME_HEADER_SIZE + alen, b, blen);
  }
  cursor->next_seq = seq + 1;
  cursor->tail = end;
  atomic_store_explicit(&cursor->header->next_seq, seq + 1, memory_order_relaxed);
  /* SYNC: publish record — pairs with the subscribers' Acquire load of the tail. */
  atomic_store_explicit(&cursor->header->tail, end, memory_order_release);
  return IR_OK;
}

ir_error_e ir_sub_cursor_join(ir_sub_cursor_t *cursor, const ir_seg_t *seg, const ir_chcfg_t *config, uint32_t index) {
  if (index >= config->max_subscribers) {
    return ir_fail(IR_ERR_CORRUPT, "ring in %s is corrupt: subscriber index %u out of range", seg->name, index);
  }
  memset(cursor, 0, sizeof *cursor);
  ir_channel_header_t *header = ir_seg_at(seg, 0);
  ir_sub_slot_t *slot = (ir_sub_slot_t *)ir_seg_at(seg, IR_CH_SUBSCRIBERS) + index;
  uint64_t tail = atomic_load_explicit(&header->tail, memory_order_acquire);
  atomic_store_explicit(&slot->pos, tail, memory_order_relaxed);
  atomic_store_explicit(&slot->state, IR_SUB_JOINING, memory_order_release);
  /* SYNC: join check — pairs with the fence in slowest(). */
  atomic_thread_fence(memory_order_seq_cst);
  uint64_t pos = atomic_load_explicit(&header->tail, memory_order_acquire);
  uint64_t next_seq = atomic_load_explicit(&header->next_seq, memory_order_relaxed);
  /* Moving the cursor forward is always safe: the publisher may only have seen the older value. Only
   * then does the slot count as joined, so a publisher that waits for its subscribers loses nothing. */
  atomic_store_explicit(&slot->pos, pos, memory_order_release);
  atomic_store_explicit(&slot->state, IR_SUB_ACTIVE, memory_order_release);
  cursor->config = *config;
  cursor->header = header;
  cursor->slot = slot;
  cursor->data = ir_seg_at(seg, ir_channel_data_offset(config->max_subscribers));
  cursor->segment = seg->name;
  cursor->index = index;
  cursor->pos = pos;
  cursor->next_seq = next_seq;
  return IR_OK;
}

static bool is_closed(const ir_sub_cursor_t *cursor) {
  return atomic_load_explicit(&cursor->header->closed, memory_order_acquire) != 0;
}

/* After copying a record of a lossy channel: whether the publisher retired it meanwhile. */
static bool overwritten(const ir_sub_cursor_t *cursor) {
  /* SYNC: retire records — pairs with the Release fence in retire_until. */
  atomic_thread_fence(memory_order_acquire);
  return cursor->pos < atomic_load_explicit(&cursor->header->min_valid, memory_order_relaxed);
}

static void store_pos(ir_sub_cursor_t *cursor) {
  /* SYNC: release space — pairs with the publisher's Acquire load of the cursor. */
  atomic_store_explicit(&cursor->slot->pos, cursor->pos, memory_order_release);
}

/* Lossy: the publisher lapped us; continue at the oldest intact record and report the loss. */
static ir_error_e skip_to_oldest(ir_sub_cursor_t *cursor, uint64_t tail, uint64_t *missed) {
  uint64_t min_valid = atomic_load_explicit(&cursor->header->min_valid, memory_order_acquire);
  if (min_valid > tail || min_valid % IR_FRAME_ALIGN != 0) {
    return ir_fail(IR_ERR_CORRUPT, "ring in %s is corrupt: min_valid %llu is beyond tail %llu", cursor->segment,
                   (unsigned long long)min_valid, (unsigned long long)tail);
  }
  cursor->pos = min_valid;
  ir_raw_header_t header = ir_read_header(cursor->data + (min_valid & (cursor->config.capacity - 1)));
  uint64_t lost = overwritten(cursor) ? 0 : header.seq - cursor->next_seq;
  /* Sequence numbers of the records still to be read decide the count; a torn read counts later. */
  if (lost >= UINT64_MAX / 2) {
    lost = 0;
  }
  cursor->next_seq += lost;
  store_pos(cursor);
  *missed = lost;
  return IR_OK;
}

ir_error_e ir_sub_try_recv(ir_sub_cursor_t *cursor, ir_frame_t *frame, ir_recv_e *outcome, uint64_t *missed) {
  uint64_t cap = cursor->config.capacity;
  bool lossy = cursor->config.policy == IR_POLICY_LOSSY;
  for (;;) {
    /* SYNC: observe record — pairs with the publisher's Release store of the tail. */
    uint64_t tail = atomic_load_explicit(&cursor->header->tail, memory_order_acquire);
    if (cursor->pos == tail) {
      bool closed =
          is_closed(cursor) && atomic_load_explicit(&cursor->header->tail, memory_order_acquire) == cursor->pos;
      *outcome = closed ? IR_RECV_CLOSED : IR_RECV_EMPTY;
      return IR_OK;
    }
    uint64_t available = tail - cursor->pos;
    if (lossy &&
        (available > cap || cursor->pos < atomic_load_explicit(&cursor->header->min_valid, memory_order_acquire))) {
      *outcome = IR_RECV_LAGGED;
      return skip_to_oldest(cursor, tail, missed);
    }
    if (available > cap || cursor->pos % IR_FRAME_ALIGN != 0) {
      return ir_fail(IR_ERR_CORRUPT, "ring in %s is corrupt: subscriber %u at %llu is out of step with tail %llu",
                     cursor->segment, cursor->index, (unsigned long long)cursor->pos, (unsigned long long)tail);
    }
    uint64_t in_ring = cursor->pos & (cap - 1);
    ir_raw_header_t header = ir_read_header(cursor->data + in_ring);
    uint64_t size = 0;
    ir_error_e checked =
        ir_check_record(cursor->segment, header, in_ring, cap, available, IR_KIND_BIT(IR_FRAME_KIND_DATA), &size);
    if (lossy && overwritten(cursor)) {
      continue;
    }
    if (checked != IR_OK) {
      return checked;
    }
    if (header.kind == IR_FRAME_KIND_PADDING) {
      cursor->pos += size;
      store_pos(cursor);
      continue;
    }
    const uint8_t *payload = cursor->data + in_ring + IR_FRAME_HEADER_SIZE;
    if (lossy) {
      if (cursor->copy_cap < header.len) {
        size_t want = header.len < 256 ? 256 : header.len;
        uint8_t *grown = realloc(cursor->copy, want);
        if (grown == NULL) {
          return ir_fail(IR_ERR_IO, "out of memory copying a message of %u bytes", header.len);
        }
        cursor->copy = grown;
        cursor->copy_cap = want;
      }
      if (header.len > 0) {
        memcpy(cursor->copy, payload, header.len);
      }
      if (overwritten(cursor)) {
        continue;
      }
      payload = cursor->copy;
      uint64_t lost = header.seq - cursor->next_seq;
      if (lost != 0 && lost < UINT64_MAX / 2) {
        /* A record with a later sequence number than expected: messages were lost in between. */
        cursor->next_seq = header.seq;
        *missed = lost;
        *outcome = IR_RECV_LAGGED;
        return IR_OK;
      }
    }
    frame->kind = header.kind;
    frame->seq = header.seq;
    frame->len = header.len;
    frame->payload = payload;
    frame->next = cursor->pos + size;
    *outcome = IR_RECV_FRAME;
    return IR_OK;
  }
}

void ir_sub_advance(ir_sub_cursor_t *cursor, const ir_frame_t *frame) {
  cursor->next_seq = frame->seq + 1;
  cursor->pos = frame->next;
  store_pos(cursor);
}

void ir_sub_cursor_leave(ir_sub_cursor_t *cursor) {
  if (cursor->slot != NULL) {
    /* SYNC: release space — the publisher stops gating on this cursor. */
    atomic_store_explicit(&cursor->slot->state, IR_SUB_FREE, memory_order_release);
    cursor->slot = NULL;
  }
  free(cursor->copy);
  cursor->copy = NULL;
  cursor->copy_cap = 0;
}
