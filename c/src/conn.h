/* The connection's internal state, shared by conn.c (registration, control requests, events,
 * liveness), channel.c (publishers and subscribers) and call.c (functions and calls). */
#ifndef IR_CONN_H
#define IR_CONN_H

#include <pthread.h>

#include "control.h"
#include "internal.h"

#define IR_MAX_NS_LEN 64
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

typedef struct ir_caller_link ir_caller_link_t;
typedef struct ir_served_link ir_served_link_t;

struct ir_conn {
  char ns[IR_MAX_NS_LEN + 1];
  /* "/impulse-ring.<ns>.": every segment the broker names must start with it. */
  char prefix[IR_MAX_NS_LEN + 32];
  uint32_t app_id;
  ir_seg_t ctl;
  ir_ctl_header_t *header;
  uint32_t max_apps;
  uint64_t ring_capacity;
  ir_ring_t request_ring;
  ir_ring_t reply_ring;
  uint32_t broker_pid;
  uint64_t broker_start;
  ir_wait_t wait;

  /* Guards everything below it except the atomics; never held while waiting or in a user callback. */
  pthread_mutex_t lock;
  /* Serialises writers of the request ring (it has a single producer); held while waiting for room. */
  pthread_mutex_t post_lock;
  /* One thread serves (runs handlers and callbacks) at a time. */
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
  ir_caller_link_t *callers;
  ir_served_link_t *served;
  ir_function_t *functions;
  ir_call_t *finished; /* completed ir_call_async calls whose callbacks have not run yet */
  ir_response_t *response;

  char last_error[1024];
};

/* The doorbell of app `slot` (ours or a peer's); NULL when the index is out of range. */
ir_doorbell_t *ir_conn_app_bell(ir_conn_t *conn, uint32_t slot);

/* Copies the thread's error message into the connection's last error; returns `code`. */
ir_error_e ir_conn_record(ir_conn_t *conn, ir_error_e code);

/* Takes and releases a reference on the connection (handles hold one each). */
void ir_conn_ref(ir_conn_t *conn);
void ir_conn_unref(ir_conn_t *conn);

/* Whether the broker is known to be gone: a flag or the segment's shutting-down word. Cheap. */
bool ir_conn_gone(ir_conn_t *conn);

/* Checks the broker's process (pid and start time), at most every 200 ms; an ir_idle_fn. */
void ir_conn_health(void *conn);

/* Fails with BrokerGone or Closed when the connection cannot make requests. */
ir_error_e ir_conn_usable(ir_conn_t *conn);

/* A fresh request id. */
int64_t ir_conn_request_id(ir_conn_t *conn);

/* Writes a control record to the broker without waiting for an answer. */
ir_error_e ir_conn_post(ir_conn_t *conn, const ir_ctl_msg_t *msg);

/* Sends a request carrying `request_id` and waits for its reply (a Failed reply becomes its error).
 * The caller frees *reply with ir_ctl_free on success. */
ir_error_e ir_conn_request(ir_conn_t *conn, int64_t request_id, const ir_ctl_msg_t *msg, ir_ctl_msg_t *reply,
                           ir_opcode_e expected);

/* Makes progress without blocking: reads control replies and events, reads call responses, expires
 * calls. Takes conn->lock. */
void ir_conn_progress(ir_conn_t *conn);

/* Checks that a segment name the broker sent belongs to this namespace. */
ir_error_e ir_conn_check_segment_name(ir_conn_t *conn, const char *name);

/* ---- call.c hooks, called with conn->lock held ---- */

void ir_calls_link_opened(ir_conn_t *conn, const ir_ctl_link_opened_t *event);
void ir_calls_link_closed(ir_conn_t *conn, uint64_t link_id, const char *message);
void ir_calls_fail_all(ir_conn_t *conn, ir_error_e code, const char *message);
/* Reads responses and expires calls; true when a call completed. */
bool ir_calls_progress(ir_conn_t *conn);
/* Frees every link, function record and call still held (connection teardown). */
void ir_calls_teardown(ir_conn_t *conn);

#endif /* IR_CONN_H */
