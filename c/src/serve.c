/* Serving: the loop (ir_serve) and the single step (ir_poll_one) where an app that exposes functions
 * answers requests and where ir_call_async callbacks run. It sits above the session and both sides of
 * calls, and is the only file that uses both. */
#include <stdio.h>

#include "caller.h"
#include "provider.h"
#include "session.h"

/* One round of serving: events, responses, callbacks and at most `max` requests. Returns whether it
 * did anything. Called with serve_lock held. */
static bool serve_round(ir_conn_t *conn, int max) {
  ir_conn_progress(conn);
  bool any = ir_caller_run_callbacks(conn);
  for (int i = 0; i < max && ir_provider_serve_one(conn); i++) {
    any = true;
  }
  return any;
}

static bool has_work(void *arg) {
  ir_conn_t *conn = arg;
  if (atomic_load_explicit(&conn->stop, memory_order_acquire) || ir_conn_gone(conn)) {
    return true;
  }
  if (ir_ring_has_data(&conn->reply_ring)) {
    return true;
  }
  pthread_mutex_lock(&conn->lock);
  bool work = ir_caller_has_work(conn) || ir_provider_has_work(conn);
  pthread_mutex_unlock(&conn->lock);
  return work;
}

static ir_error_e serve(ir_conn_t *conn, int64_t timeout_ms) {
  if (conn == NULL) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_serve: conn must not be NULL");
  }
  int64_t deadline = ir_deadline(timeout_ms);
  pthread_mutex_lock(&conn->serve_lock);
  ir_error_e code = IR_OK;
  for (;;) {
    if (atomic_exchange_explicit(&conn->stop, false, memory_order_acq_rel)) {
      break;
    }
    if (atomic_load_explicit(&conn->closed, memory_order_acquire)) {
      code = ir_fail(IR_ERR_CLOSED, "the connection is closed");
      break;
    }
    bool worked = serve_round(conn, 64);
    if (ir_conn_gone(conn)) {
      code = ir_conn_fail_broker_gone(conn);
      break;
    }
    if (deadline >= 0 && ir_now_ns() >= deadline) {
      break;
    }
    if (worked) {
      continue;
    }
    (void)ir_bell_wait(ir_conn_own_bell(conn), &conn->wait, deadline, has_work, conn, ir_conn_health, conn);
  }
  pthread_mutex_unlock(&conn->serve_lock);
  return code;
}

ir_error_e ir_serve(ir_conn_t *conn, int64_t timeout_ms) {
  return ir_conn_record(conn, serve(conn, timeout_ms));
}

void ir_serve_stop(ir_conn_t *conn) {
  if (conn != NULL) {
    atomic_store_explicit(&conn->stop, true, memory_order_release);
    ir_bell_ring(ir_conn_own_bell(conn));
  }
}

static ir_error_e poll_one(ir_conn_t *conn, int64_t timeout_ms) {
  if (conn == NULL) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_poll_one: conn must not be NULL");
  }
  if (atomic_load_explicit(&conn->closed, memory_order_acquire)) {
    return ir_fail(IR_ERR_CLOSED, "the connection is closed");
  }
  if (timeout_ms != 0) {
    (void)ir_bell_wait(ir_conn_own_bell(conn), &conn->wait, ir_deadline(timeout_ms), has_work, conn, ir_conn_health,
                       conn);
  }
  pthread_mutex_lock(&conn->serve_lock);
  bool any = serve_round(conn, 1);
  pthread_mutex_unlock(&conn->serve_lock);
  if (any) {
    return IR_OK;
  }
  if (ir_conn_gone(conn)) {
    return ir_conn_fail_broker_gone(conn);
  }
  return ir_fail(IR_ERR_TIMEOUT, "nothing to do within %lld ms", (long long)timeout_ms);
}

ir_error_e ir_poll_one(ir_conn_t *conn, int64_t timeout_ms) {
  ir_error_e code = poll_one(conn, timeout_ms);
  /* Nothing to do is the normal case of a poll: it does not count as the connection's last error. */
  return code == IR_ERR_TIMEOUT ? code : ir_conn_record(conn, code);
}
