/* Internal interfaces of the C connector, layer by layer like the Rust core: system calls (sys.c, the
 * only file that makes any), mapped segments (segment.c), doorbells and waiting (doorbell.c), the SPSC
 * ring (ring.c), the channel ring (broadcast.c), and the error plumbing (error.c). Nothing here is
 * part of the API. */
#ifndef IR_INTERNAL_H
#define IR_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "impulse_ring.h"
#include "layout.h"

/* ---- Errors (error.c) ---- */

/* Records a message (printf format) as the calling thread's error. */
void ir_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Records the message and evaluates to `code`. Internal layers fail through this; the API entry
 * points copy the message to the connection (ir_conn_record). A macro, so that static analysis sees
 * the code that comes back. */
#define ir_fail(code, ...) (ir_set_error(__VA_ARGS__), (code))

/* The calling thread's last error message. */
const char *ir_thread_error(void);

/* The error a shared error code from the wire stands for (a Failed or CallError record): the code
 * itself when it is one of wire-format.md §11, Protocol for anything else (0 included: a failure
 * without a cause is a broken peer). The one place where C trusts a code it did not make. */
ir_error_e ir_error_from_wire(int32_t code);

/* Free strings: a malloc'd copy of `s`, NULL when out of memory (names.c). */
char *ir_strdup(const char *s);

/* ---- System calls (sys.c) ---- */

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t ir_now_ns(void);

/* The absolute deadline for a timeout in milliseconds; -1 (none) for a negative timeout. */
int64_t ir_deadline(int64_t timeout_ms);

/* Sleeps on a shared futex word while it holds `expected`, at most `timeout_ns` (>0). */
void ir_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns);

/* Wakes every sleeper on a shared futex word, in any process. */
void ir_futex_wake_all(_Atomic uint32_t *word);

/* Field 22 of /proc/PID/stat (start time in clock ticks since boot); 0 when unknown. */
uint64_t ir_process_start_time(uint32_t pid);

/* Whether process `pid` started at `start_time` runs (a zombie counts as dead). */
bool ir_process_alive(uint32_t pid, uint64_t start_time);

/* This process's id. */
uint32_t ir_getpid(void);

/* Fills `out` with `len` bytes from the kernel's random source (getrandom(2), retried on EINTR and
 * short reads); 0 on success, else an errno value. */
int ir_random_bytes(uint8_t *out, size_t len);

/* Sleeps for `ns` nanoseconds (a signal may cut it short). */
void ir_sleep_ns(int64_t ns);

/* Gives up the CPU to another runnable thread (sched_yield). */
void ir_yield(void);

/* Whether a shared memory object called `name` ("/impulse-ring....") exists. */
bool ir_shm_exists(const char *name);

/* Opens the shared memory object `name` read-write and maps all of it: on success *base and *len.
 * On failure returns an errno value, ENOENT when it does not exist; a size below `min_len` is ENODATA
 * (its creator has not sized it yet) with *len set to the size found. */
int ir_shm_map(const char *name, size_t min_len, uint8_t **base, size_t *len);

/* Unmaps what ir_shm_map mapped. */
void ir_shm_unmap(uint8_t *base, size_t len);

/* A CPU hint inside spin loops. */
static inline void ir_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* ---- Segments (segment.c) ---- */

#define IR_SEG_NAME_MAX 256

/* A mapped shared memory segment whose header was checked. */
typedef struct ir_seg {
  uint8_t *base;
  size_t len;
  char name[IR_SEG_NAME_MAX];
} ir_seg_t;

/* Opens and maps the segment `name` and checks magic, version, kind and size against the object.
 * A segment that does not exist or is not ready yet fails with IR_ERR_IO and sets *missing, so the
 * caller picks its own code (NoBroker for the control segment). Else VersionMismatch, Corrupt, Io. */
ir_error_e ir_seg_open(const char *name, uint32_t kind, ir_seg_t *out, bool *missing);

/* Unmaps a segment (never unlinks: the broker owns every name). */
void ir_seg_close(ir_seg_t *seg);

/* A pointer `off` bytes into the segment; callers have validated that `off + size` fits. */
static inline void *ir_seg_at(const ir_seg_t *seg, uint64_t off) {
  return seg->base + off;
}

/* ---- Waiting (doorbell.c) ---- */

/* How an endpoint waits. */
typedef struct ir_wait {
  ir_wait_e strategy;
  int64_t spin_ns;
  int64_t yield_ns;
} ir_wait_t;

/* The default: adaptive, 50 µs of spinning then 50 µs of yielding (a futex wake-up costs ~20 µs). */
void ir_wait_default(ir_wait_t *wait);

/* Validates and applies ir_set_wait's arguments. */
ir_error_e ir_wait_set(ir_wait_t *wait, ir_wait_e strategy, uint32_t spin_us, uint32_t yield_us);

/* The longest single futex sleep: waiters wake this often to re-check conditions nobody rings for. */
#define IR_MAX_SLEEP_NS (200LL * 1000 * 1000)

/* Wakes the doorbell's sleepers, if any; call after the Release store that published the news. */
void ir_bell_ring(ir_doorbell_t *bell);

/* A condition to wait for: returns true when done. Must be cheap and read with Acquire ordering. */
typedef bool (*ir_check_fn)(void *ctx);

/* Called at most every IR_MAX_SLEEP_NS while waiting (after sleeps and long spins), for checks too
 * costly for every round such as the broker's liveness. */
typedef void (*ir_idle_fn)(void *ctx);

/* Waits until `check(ctx)` is true (returns true) or the absolute `deadline_ns` passes (returns
 * false; -1 waits forever). `idle` may be NULL. */
bool ir_bell_wait(ir_doorbell_t *bell, const ir_wait_t *wait, int64_t deadline_ns, ir_check_fn check, void *ctx,
                  ir_idle_fn idle, void *idle_ctx);

/* ---- SPSC ring (ring.c) ---- */

/* A ring at a fixed offset of a segment, with its capacity validated. */
typedef struct ir_ring {
  ir_ring_header_t *header;
  uint8_t *data;
  uint64_t capacity;
  const char *segment; /* name, for messages */
} ir_ring_t;

/* A record found in a ring; `payload` points into shared memory. */
typedef struct ir_frame {
  uint16_t kind;
  uint64_t seq;
  const uint8_t *payload;
  uint32_t len;
  uint64_t next; /* the head after this record (ring) or the cursor after it (channel) */
} ir_frame_t;

/* The ring at offset `base` of `seg`, whose capacity must equal `expected_capacity` and fit. */
ir_error_e ir_ring_open(const ir_seg_t *seg, uint64_t base, uint64_t expected_capacity, ir_ring_t *out);

/* Producer: writes one record whose payload is `a` then `b` (either may be empty). WouldBlock when
 * full (nothing written), TooLarge when it can never fit, Corrupt. The caller rings the consumer. */
ir_error_e ir_ring_try_write(const ir_ring_t *ring, uint16_t kind, uint64_t seq, const void *a, size_t alen,
                             const void *b, size_t blen);

/* Producer: announces (true) or withdraws that it waits for space; SeqCst (a Dekker pair with
 * ir_ring_producer_waiting). */
void ir_ring_set_producer_waiting(const ir_ring_t *ring, bool waiting);

/* Consumer: whether the producer waits for space (ring its doorbell then). Call after consuming. */
bool ir_ring_producer_waiting(const ir_ring_t *ring);

/* Consumer: whether a record is waiting. */
bool ir_ring_has_data(const ir_ring_t *ring);

/* Consumer: the next record (skipping padding), in place; *found is false when the ring is empty.
 * `allowed` is a bit mask of (1 << kind). The record stays valid until ir_ring_consume. */
ir_error_e ir_ring_peek(const ir_ring_t *ring, uint32_t allowed, ir_frame_t *frame, bool *found);

/* Consumer: frees the record returned by the last peek. */
void ir_ring_consume(const ir_ring_t *ring, const ir_frame_t *frame);

/* ---- Channel ring (broadcast.c) ---- */

/* The validated, immutable part of a channel header. */
typedef struct ir_chcfg {
  uint64_t capacity;
  uint64_t channel_id;
  uint64_t fingerprint;
  uint32_t policy;
  uint32_t max_subscribers;
} ir_chcfg_t;

ir_error_e ir_chcfg_read(const ir_seg_t *seg, ir_chcfg_t *out);

/* The publisher's side. `tail`, `next_seq` and `min_valid` are private copies: the shared words are
 * written from them and never read back, so a corrupted shared word cannot steer our writes. */
typedef struct ir_pub_cursor {
  ir_chcfg_t config;
  ir_channel_header_t *header;
  ir_sub_slot_t *subs;
  uint8_t *data;
  uint64_t tail;
  uint64_t next_seq;
  uint64_t min_valid;
  uint64_t cached_min;
} ir_pub_cursor_t;

void ir_pub_cursor_init(ir_pub_cursor_t *cursor, const ir_seg_t *seg, const ir_chcfg_t *config);

/* Publishes one message (payload `a` then `b`). WouldBlock when a subscriber is a whole ring behind
 * (block policy; nothing written), TooLarge. The caller rings the data doorbell. */
ir_error_e ir_pub_try_publish(ir_pub_cursor_t *cursor, const void *a, size_t alen, const void *b, size_t blen);

/* The subscriber's side. */
typedef struct ir_sub_cursor {
  ir_chcfg_t config;
  ir_channel_header_t *header;
  ir_sub_slot_t *slot;
  uint8_t *data;
  const char *segment;
  uint32_t index;
  uint64_t pos;
  uint64_t next_seq;
  uint8_t *copy; /* private copy of a lossy channel's record */
  size_t copy_cap;
} ir_sub_cursor_t;

/* Joins the channel in the slot `index` the broker reserved. */
ir_error_e ir_sub_cursor_join(ir_sub_cursor_t *cursor, const ir_seg_t *seg, const ir_chcfg_t *config, uint32_t index);

/* Outcome of ir_sub_try_recv beyond a frame. */
typedef enum ir_recv_e { IR_RECV_EMPTY, IR_RECV_FRAME, IR_RECV_LAGGED, IR_RECV_CLOSED } ir_recv_e;

/* The next message: IR_RECV_FRAME with `frame` (its payload valid until ir_sub_advance, in shared
 * memory or in the private copy), IR_RECV_LAGGED with *missed, IR_RECV_CLOSED, or IR_RECV_EMPTY. */
ir_error_e ir_sub_try_recv(ir_sub_cursor_t *cursor, ir_frame_t *frame, ir_recv_e *outcome, uint64_t *missed);

/* Releases the frame returned by the last ir_sub_try_recv. */
void ir_sub_advance(ir_sub_cursor_t *cursor, const ir_frame_t *frame);

/* Frees the subscriber slot and the copy buffer. */
void ir_sub_cursor_leave(ir_sub_cursor_t *cursor);

#endif /* IR_INTERNAL_H */
