/* The session: one app's registration with the broker of its namespace. It owns the app slot, the
 * two control rings, the request/reply exchange, the routing of broker events and the broker's
 * liveness. Channels (channel.c), the caller side of calls (caller.c), the provider side (provider.c)
 * and listing (list.c) sit on top of it; it includes none of them. What it cannot handle itself (link
 * events, calls to fail when the broker goes) it hands to the layers attached to it (ir_layer_ops_t). */
#ifndef IR_SESSION_H
#define IR_SESSION_H

#include <pthread.h>

#include "control.h"
#include "internal.h"
#include "names.h"
#include "seal.h"

#define IR_MAX_NAME_LEN 128
#define IR_MAX_APP_NAME_LEN 128
/* How long a control request may wait for the broker's reply. */
#define IR_CONTROL_TIMEOUT_MS 10000

/* A thread waiting for the reply to one control request; lives on that thread's stack. */
typedef struct ir_reply_waiter {
  int64_t request_id;
  bool filled;
  ir_ctl_msg_t reply;
  struct ir_reply_waiter *next;
} ir_reply_waiter_t;

/* A layer above the session (the caller or provider side of calls). Every hook runs with conn->lock
 * held and must not wait. */
typedef struct ir_layer_ops {
  /* Creates the layer's state on first use; NULL when out of memory. */
  void *(*create)(void);
  /* An event the session does not handle itself (LinkOpened, LinkClosed). */
  void (*event)(ir_conn_t *conn, void *state, const ir_ctl_msg_t *msg);
  /* Makes progress without blocking; true when something completed that another thread may wait for.
   * May be NULL. */
  bool (*progress)(ir_conn_t *conn, void *state);
  /* Fails everything pending (the broker is gone). May be NULL. */
  void (*fail_all)(ir_conn_t *conn, void *state, ir_error_e code, const char *message);
  /* Frees the state (connection teardown). */
  void (*destroy)(ir_conn_t *conn, void *state);
} ir_layer_ops_t;

#define IR_MAX_LAYERS 2

struct ir_conn {
  char ns[IR_MAX_NS_LEN + 1];
  /* "/impulse-ring.<ns>.": every segment the broker names must start with it. */
  char prefix[IR_SEG_PREFIX_MAX];
  uint32_t app_id;
  /* The slot's generation when we claimed it; once it changes (or the slot is FENCED) the broker has
   * dropped us and the slot is no longer ours (bootstrap.md §3.2). Valid once `claimed`. */
  uint32_t generation;
  bool claimed;
  ir_seg_t ctl;
  ir_ctl_header_t *header;
  uint32_t max_apps;
  uint64_t ring_capacity;
  ir_ring_t request_ring;
  ir_ring_t reply_ring;
  uint32_t broker_pid;
  uint64_t broker_start;
  ir_wait_t wait;
  /* The session secret of this registration (bootstrap.md §5.5), which seals every key the app
   * presents; set once, from the broker's Registered, before any request can carry a key, and wiped
   * with the connection. */
  uint8_t session[IR_X25519_LEN];

  /* Guards everything below it except the atomics; never held while waiting or in a user callback. */
  pthread_mutex_t lock;
  /* Serialises writers of the request ring (it has a single producer); held while waiting for room. */
  pthread_mutex_t post_lock;
  /* One thread serves (runs handlers and callbacks) at a time (serve.c). */
  pthread_mutex_t serve_lock;
  pthread_mutex_t error_lock;

  _Atomic uint64_t next_request_id;
  _Atomic bool broker_gone;
  _Atomic bool closed;
  /* Set under post_lock as Unregister is written: no record may follow it into the request ring. */
  _Atomic bool unregistered;
  _Atomic bool stop;
  _Atomic int64_t last_health_ns;
  /* One reference for the connection itself and one per open handle; freed at zero. */
  _Atomic uint32_t refs;

  ir_reply_waiter_t *waiters;
  struct {
    const ir_layer_ops_t *ops;
    void *state;
  } layers[IR_MAX_LAYERS];

  char last_error[1024];
};

/* ---- Slots ---- */

/* The header of app slot `slot` (ours or a peer's); NULL when the index is out of range. */
ir_slot_header_t *ir_conn_slot(ir_conn_t *conn, uint32_t slot);

/* The doorbell of app `slot`; NULL when the index is out of range (ir_bell_ring accepts NULL). */
ir_doorbell_t *ir_conn_app_bell(ir_conn_t *conn, uint32_t slot);

/* Our own slot's doorbell: where every thread of ours that waits on the broker or a peer sleeps. */
ir_doorbell_t *ir_conn_own_bell(ir_conn_t *conn);

/* ---- Layers ---- */

/* The state of layer `ops`, created and attached on first use; NULL when out of memory or when every
 * layer slot is taken. Called with conn->lock held. */
void *ir_conn_layer(ir_conn_t *conn, const ir_layer_ops_t *ops);

/* The state of layer `ops` if it is attached, else NULL. Called with conn->lock held. */
void *ir_conn_layer_if_any(ir_conn_t *conn, const ir_layer_ops_t *ops);

/* ---- Errors ---- */

/* Copies the thread's error message into the connection's last error; returns `code`. */
ir_error_e ir_conn_record(ir_conn_t *conn, ir_error_e code);

/* Fails with BrokerGone, naming the namespace: the one wording of that error. */
ir_error_e ir_conn_fail_broker_gone(const ir_conn_t *conn);

/* ---- Lifetime and liveness ---- */

/* Takes and releases a reference on the connection (handles hold one each). */
void ir_conn_ref(ir_conn_t *conn);
void ir_conn_unref(ir_conn_t *conn);

/* Whether the broker is known to be gone: a flag or the segment's shutting-down word. Cheap. */
bool ir_conn_gone(ir_conn_t *conn);

/* Whether the broker is shutting down (it closes every channel and link as it leaves). */
bool ir_conn_shutting_down(ir_conn_t *conn);

/* Checks the broker's process (pid and start time), at most every 200 ms; an ir_idle_fn. */
void ir_conn_health(void *conn);

/* Fails with BrokerGone or Closed when the connection cannot make requests. */
ir_error_e ir_conn_usable(ir_conn_t *conn);

/* ---- Requests ---- */

/* Gives `msg` a fresh request id (unless it has one) and writes it to the broker without waiting for
 * an answer. A `key` the record holds in clear is sealed with that id on the way (bootstrap.md §5.5):
 * the request ring only ever sees the sealed bytes. */
ir_error_e ir_conn_post(ir_conn_t *conn, ir_ctl_msg_t *msg);

/* Gives `msg` a fresh request id, sends it and waits for its reply (a Failed reply becomes its error,
 * as does a reply of another kind than `expected`). Fails at once with Closed or BrokerGone when the
 * connection cannot make requests (ir_conn_usable). The caller frees *reply with ir_ctl_free on
 * success. */
ir_error_e ir_conn_request(ir_conn_t *conn, ir_ctl_msg_t *msg, ir_ctl_msg_t *reply, ir_opcode_e expected);

/* Makes progress without blocking: reads control replies and events, and lets every layer progress.
 * Takes conn->lock. */
void ir_conn_progress(ir_conn_t *conn);

/* Checks that a segment name the broker sent belongs to this namespace. */
ir_error_e ir_conn_check_segment_name(const ir_conn_t *conn, const char *name);

#endif /* IR_SESSION_H */
