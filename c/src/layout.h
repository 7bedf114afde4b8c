/* The byte layout of every shared segment as C structs with atomic fields, each offset checked at
 * compile time against the constants of the generated header impulse_ring_wire.h (whose source is
 * rust/core/src/layout.rs), so the two implementations cannot drift apart silently. */
#ifndef IR_LAYOUT_H
#define IR_LAYOUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "impulse_ring_wire.h"

/* Shared words are only ever touched with lock-free atomics of their own width; a mapping shared with
 * another process would not see a lock taken by a non-lock-free fallback. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(sizeof(_Atomic uint32_t) == 4 && sizeof(_Atomic uint64_t) == 8, "atomics have the width of their type");
_Static_assert(_Alignof(_Atomic uint64_t) == 8, "64-bit words are naturally aligned");

/* The first 64 bytes of every segment. */
typedef struct ir_seg_header {
  _Atomic uint32_t magic;
  _Atomic uint32_t version;
  _Atomic uint32_t kind;
  uint32_t reserved0;
  _Atomic uint64_t size;
  _Atomic uint32_t creator_pid;
  uint32_t reserved1;
  _Atomic uint64_t creator_start;
  uint8_t reserved2[24];
} ir_seg_header_t;

_Static_assert(offsetof(ir_seg_header_t, magic) == IR_SEG_MAGIC, "segment magic");
_Static_assert(offsetof(ir_seg_header_t, version) == IR_SEG_VERSION, "segment version");
_Static_assert(offsetof(ir_seg_header_t, kind) == IR_SEG_KIND, "segment kind");
_Static_assert(offsetof(ir_seg_header_t, size) == IR_SEG_SIZE, "segment size");
_Static_assert(offsetof(ir_seg_header_t, creator_pid) == IR_SEG_CREATOR_PID, "segment creator pid");
_Static_assert(offsetof(ir_seg_header_t, creator_start) == IR_SEG_CREATOR_START, "segment creator start");
_Static_assert(sizeof(ir_seg_header_t) == IR_SEG_HEADER_SIZE, "segment header size");

/* A futex word and the count of threads about to sleep on it. */
typedef struct ir_doorbell {
  _Atomic uint32_t seq;
  _Atomic uint32_t sleepers;
} ir_doorbell_t;

_Static_assert(offsetof(ir_doorbell_t, seq) == IR_DOORBELL_SEQ, "doorbell seq");
_Static_assert(offsetof(ir_doorbell_t, sleepers) == IR_DOORBELL_SLEEPERS, "doorbell sleepers");

/* The header of an SPSC ring; `capacity` data bytes follow it. Producer and consumer words live on
 * separate cache lines. */
typedef struct ir_ring_header {
  _Atomic uint64_t tail;
  _Atomic uint32_t producer_waiting;
  uint8_t reserved0[52];
  _Atomic uint64_t head;
  uint8_t reserved1[56];
  _Atomic uint64_t capacity;
  uint8_t reserved2[56];
} ir_ring_header_t;

_Static_assert(offsetof(ir_ring_header_t, tail) == IR_RING_TAIL, "ring tail");
_Static_assert(offsetof(ir_ring_header_t, producer_waiting) == IR_RING_PRODUCER_WAITING, "ring producer_waiting");
_Static_assert(offsetof(ir_ring_header_t, head) == IR_RING_HEAD, "ring head");
_Static_assert(offsetof(ir_ring_header_t, capacity) == IR_RING_CAPACITY, "ring capacity");
_Static_assert(sizeof(ir_ring_header_t) == IR_RING_HEADER_SIZE, "ring header size");

/* A record header. The first word packs len (bits 0-31), kind (32-47) and flags (48-63), read and
 * written as one 64-bit atomic like the Rust core does. */
typedef struct ir_frame_header {
  _Atomic uint64_t len_kind_flags;
  _Atomic uint64_t seq;
} ir_frame_header_t;

_Static_assert(IR_FRAME_LEN == 0 && IR_FRAME_KIND == 4 && IR_FRAME_FLAGS == 6, "frame word packing");
_Static_assert(offsetof(ir_frame_header_t, seq) == IR_FRAME_SEQ, "frame seq");
_Static_assert(sizeof(ir_frame_header_t) == IR_FRAME_HEADER_SIZE, "frame header size");

/* The control segment's header, up to app slot 0. */
typedef struct ir_ctl_header {
  ir_seg_header_t seg;
  _Atomic uint32_t broker_pid;
  _Atomic uint32_t max_apps;
  _Atomic uint64_t broker_start;
  _Atomic uint32_t ring_capacity;
  _Atomic uint32_t shutting_down;
  _Atomic uint64_t heartbeat;
  uint8_t reserved0[32];
  ir_doorbell_t broker_doorbell;
  uint8_t reserved1[120];
} ir_ctl_header_t;

_Static_assert(offsetof(ir_ctl_header_t, broker_pid) == IR_CTL_BROKER_PID, "ctl broker pid");
_Static_assert(offsetof(ir_ctl_header_t, max_apps) == IR_CTL_MAX_APPS, "ctl max apps");
_Static_assert(offsetof(ir_ctl_header_t, broker_start) == IR_CTL_BROKER_START, "ctl broker start");
_Static_assert(offsetof(ir_ctl_header_t, ring_capacity) == IR_CTL_RING_CAPACITY, "ctl ring capacity");
_Static_assert(offsetof(ir_ctl_header_t, shutting_down) == IR_CTL_SHUTTING_DOWN, "ctl shutting down");
_Static_assert(offsetof(ir_ctl_header_t, heartbeat) == IR_CTL_HEARTBEAT, "ctl heartbeat");
_Static_assert(offsetof(ir_ctl_header_t, broker_doorbell) == IR_CTL_BROKER_DOORBELL, "ctl broker doorbell");
_Static_assert(sizeof(ir_ctl_header_t) == IR_CTL_SLOTS, "ctl header ends where slot 0 starts");

/* An app slot's header; the request ring and the reply ring follow it. */
typedef struct ir_slot_header {
  _Atomic uint32_t state;
  _Atomic uint32_t pid;
  _Atomic uint64_t start;
  _Atomic uint32_t generation;
  uint8_t reserved0[44];
  ir_doorbell_t doorbell;
  uint8_t reserved1[184];
} ir_slot_header_t;

_Static_assert(offsetof(ir_slot_header_t, state) == IR_SLOT_STATE, "slot state");
_Static_assert(offsetof(ir_slot_header_t, pid) == IR_SLOT_PID, "slot pid");
_Static_assert(offsetof(ir_slot_header_t, start) == IR_SLOT_START, "slot start");
_Static_assert(offsetof(ir_slot_header_t, generation) == IR_SLOT_GENERATION, "slot generation");
_Static_assert(offsetof(ir_slot_header_t, doorbell) == IR_SLOT_DOORBELL, "slot doorbell");
_Static_assert(sizeof(ir_slot_header_t) == IR_SLOT_REQUEST_RING, "slot header ends at the request ring");

/* A channel segment's header, up to subscriber slot 0. */
typedef struct ir_channel_header {
  ir_seg_header_t seg;
  _Atomic uint64_t tail;
  _Atomic uint64_t next_seq;
  uint8_t reserved0[48];
  _Atomic uint64_t min_valid;
  uint8_t reserved1[56];
  ir_doorbell_t data_doorbell;
  uint8_t reserved2[56];
  ir_doorbell_t space_doorbell;
  uint8_t reserved3[56];
  _Atomic uint32_t closed;
  uint8_t reserved4[60];
  _Atomic uint64_t capacity;
  _Atomic uint64_t channel_id;
  _Atomic uint64_t fingerprint;
  _Atomic uint32_t policy;
  _Atomic uint32_t max_subscribers;
  uint8_t reserved5[96];
} ir_channel_header_t;

_Static_assert(offsetof(ir_channel_header_t, tail) == IR_CH_TAIL, "channel tail");
_Static_assert(offsetof(ir_channel_header_t, next_seq) == IR_CH_NEXT_SEQ, "channel next seq");
_Static_assert(offsetof(ir_channel_header_t, min_valid) == IR_CH_MIN_VALID, "channel min valid");
_Static_assert(offsetof(ir_channel_header_t, data_doorbell) == IR_CH_DATA_DOORBELL, "channel data doorbell");
_Static_assert(offsetof(ir_channel_header_t, space_doorbell) == IR_CH_SPACE_DOORBELL, "channel space doorbell");
_Static_assert(offsetof(ir_channel_header_t, closed) == IR_CH_CLOSED, "channel closed");
_Static_assert(offsetof(ir_channel_header_t, capacity) == IR_CH_CAPACITY, "channel capacity");
_Static_assert(offsetof(ir_channel_header_t, channel_id) == IR_CH_CHANNEL_ID, "channel id");
_Static_assert(offsetof(ir_channel_header_t, fingerprint) == IR_CH_FINGERPRINT, "channel fingerprint");
_Static_assert(offsetof(ir_channel_header_t, policy) == IR_CH_POLICY, "channel policy");
_Static_assert(offsetof(ir_channel_header_t, max_subscribers) == IR_CH_MAX_SUBSCRIBERS, "channel max subscribers");
_Static_assert(sizeof(ir_channel_header_t) == IR_CH_SUBSCRIBERS, "channel header ends at subscriber slot 0");

/* One subscriber's slot in a channel segment. */
typedef struct ir_sub_slot {
  _Atomic uint32_t state;
  _Atomic uint32_t owner;
  _Atomic uint64_t pos;
  uint8_t reserved[48];
} ir_sub_slot_t;

_Static_assert(offsetof(ir_sub_slot_t, state) == IR_SUB_STATE, "subscriber state");
_Static_assert(offsetof(ir_sub_slot_t, owner) == IR_SUB_OWNER, "subscriber owner");
_Static_assert(offsetof(ir_sub_slot_t, pos) == IR_SUB_POS, "subscriber pos");
_Static_assert(sizeof(ir_sub_slot_t) == IR_SUB_SIZE, "subscriber slot size");

/* A call link segment's header; the request ring and the response ring follow it. */
typedef struct ir_link_header {
  ir_seg_header_t seg;
  _Atomic uint64_t link_id;
  _Atomic uint64_t function_id;
  _Atomic uint32_t caller;
  _Atomic uint32_t provider;
  _Atomic uint32_t caller_gone;
  _Atomic uint32_t provider_gone;
  _Atomic uint64_t request_fp;
  _Atomic uint64_t response_fp;
  uint8_t reserved[144];
} ir_link_header_t;

_Static_assert(offsetof(ir_link_header_t, link_id) == IR_LINK_LINK_ID, "link id");
_Static_assert(offsetof(ir_link_header_t, function_id) == IR_LINK_FUNCTION_ID, "link function id");
_Static_assert(offsetof(ir_link_header_t, caller) == IR_LINK_CALLER, "link caller");
_Static_assert(offsetof(ir_link_header_t, provider) == IR_LINK_PROVIDER, "link provider");
_Static_assert(offsetof(ir_link_header_t, caller_gone) == IR_LINK_CALLER_GONE, "link caller gone");
_Static_assert(offsetof(ir_link_header_t, provider_gone) == IR_LINK_PROVIDER_GONE, "link provider gone");
_Static_assert(offsetof(ir_link_header_t, request_fp) == IR_LINK_REQUEST_FP, "link request fingerprint");
_Static_assert(offsetof(ir_link_header_t, response_fp) == IR_LINK_RESPONSE_FP, "link response fingerprint");
_Static_assert(sizeof(ir_link_header_t) == IR_LINK_REQUEST_RING, "link header ends at the request ring");

/* Size of an app slot for a given ring capacity (layout.rs `control_slot_size`). */
static inline uint64_t ir_control_slot_size(uint64_t ring_capacity) {
  return IR_SLOT_REQUEST_RING + 2 * (IR_RING_HEADER_SIZE + ring_capacity);
}

/* Offset of a channel's data area (layout.rs `channel_data_offset`). */
static inline uint64_t ir_channel_data_offset(uint64_t max_subscribers) {
  return IR_CH_SUBSCRIBERS + max_subscribers * IR_SUB_SIZE;
}

/* Offset of a link's response ring (layout.rs `link_response_ring`). */
static inline uint64_t ir_link_response_ring(uint64_t capacity) {
  return IR_LINK_REQUEST_RING + IR_RING_HEADER_SIZE + capacity;
}

/* Bytes a record of `len` payload bytes occupies (layout.rs `record_size`). */
static inline uint64_t ir_record_size(uint64_t len) {
  return (IR_FRAME_HEADER_SIZE + len + IR_FRAME_ALIGN - 1) & ~(uint64_t)(IR_FRAME_ALIGN - 1);
}

/* The largest payload a ring of `capacity` accepts: half the ring, so that a record and the padding
 * before it always fit an empty ring (layout.rs `max_payload`). */
static inline uint64_t ir_max_payload(uint64_t capacity) {
  return capacity / 2 - IR_FRAME_HEADER_SIZE;
}

/* A power of two within the spec's bounds (segment.rs `valid_capacity`). */
static inline int ir_valid_capacity(uint64_t capacity) {
  return capacity >= IR_MIN_RING_CAPACITY && capacity <= IR_MAX_RING_CAPACITY && (capacity & (capacity - 1)) == 0;
}

#endif /* IR_LAYOUT_H */
