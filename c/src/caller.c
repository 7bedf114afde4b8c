/* The caller side of calls. A caller gets one link per function (two SPSC rings the broker creates);
 * requests carry a correlation id that the response echoes. A dead provider shows up as the link's
 * provider_gone flag and a LinkClosed event: pending calls fail at once with PeerGone, not a timeout.
 * Link and call state lives under conn->lock, attached to the session as a layer; nothing waits while
 * holding it. Completed ir_call_async calls wait in `finished` until serve.c runs their callbacks. */
#include "caller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link.h"

typedef struct ir_caller_link ir_caller_link_t;

struct ir_caller_link {
  ir_caller_link_t *next;
  uint32_t refs; /* the caller side's list holds one; so does each thread using the link */
  char *name;
  char *request_schema;
  char *response_schema;
  ir_link_t link;
  uint64_t next_correlation;
  bool gone;
  ir_call_t *pending;
};

struct ir_call {
  ir_conn_t *conn;
  ir_caller_link_t *link; /* referenced while pending */
  ir_call_t *next;        /* in the link's pending list, then in the finished list */
  uint64_t correlation;
  int64_t deadline_ns;
  _Atomic bool done;
  ir_error_e status;
  uint8_t *response;
  size_t response_len;
  char *message;
  ir_call_cb callback;
  void *user;
};

/* The caller side's state of one connection. */
typedef struct callers {
  ir_caller_link_t *links;
  ir_call_t *finished; /* completed ir_call_async calls whose callbacks have not run yet */
} callers_t;

static const ir_layer_ops_t CALLER_LAYER;

/* ---- Link lifetime (conn->lock held) ---- */

static void caller_link_unref(ir_caller_link_t *link) {
  if (--link->refs > 0) {
    return;
  }
  ir_link_close(&link->link);
  free(link->name);
  free(link->request_schema);
  free(link->response_schema);
  free(link);
}

static void unref_locked(ir_conn_t *conn, ir_caller_link_t *link) {
  pthread_mutex_lock(&conn->lock);
  caller_link_unref(link);
  pthread_mutex_unlock(&conn->lock);
}

static void free_call(ir_call_t *call) {
  free(call->response);
  free(call->message);
  free(call);
}

/* Completes a pending call (already unlinked from its link's list). */
static void complete(callers_t *side, ir_call_t *call, ir_error_e status, const uint8_t *datum, size_t len,
                     const char *message) {
  call->status = status;
  if (status == IR_OK) {
    call->response = malloc(len > 0 ? len : 1);
    if (call->response == NULL) {
      call->status = IR_ERR_IO;
      message = "out of memory copying the response";
    } else {
      if (len > 0) {
        memcpy(call->response, datum, len);
      }
      call->response_len = len;
    }
  }
  if (call->status != IR_OK) {
    call->message = ir_strdup(message != NULL ? message : ir_strerror(call->status));
  }
  if (call->link != NULL) {
    caller_link_unref(call->link);
    call->link = NULL;
  }
  if (call->callback != NULL) {
    call->next = side->finished;
    side->finished = call;
  }
  atomic_store_explicit(&call->done, true, memory_order_release);
}

/* Unlinks the pending call with `correlation` from the link; NULL when none. */
static ir_call_t *take_pending(ir_caller_link_t *link, uint64_t correlation) {
  for (ir_call_t **at = &link->pending; *at != NULL; at = &(*at)->next) {
    if ((*at)->correlation == correlation) {
      ir_call_t *call = *at;
      *at = call->next;
      call->next = NULL;
      return call;
    }
  }
  return NULL;
}

static void fail_pending(callers_t *side, ir_caller_link_t *link, ir_error_e code, const char *message) {
  while (link->pending != NULL) {
    ir_call_t *call = link->pending;
    link->pending = call->next;
    call->next = NULL;
    complete(side, call, code, NULL, 0, message);
  }
}

static void unlist_caller(callers_t *side, ir_caller_link_t *link) {
  for (ir_caller_link_t **at = &side->links; *at != NULL; at = &(*at)->next) {
    if (*at == link) {
      *at = link->next;
      caller_link_unref(link);
      return;
    }
  }
}

static void mark_caller_gone(callers_t *side, ir_caller_link_t *link, const char *message) {
  link->gone = true;
  fail_pending(side, link, IR_ERR_PEER_GONE, message);
  unlist_caller(side, link);
}

/* ---- Layer hooks (conn->lock held) ---- */

static void *callers_create(void) {
  return calloc(1, sizeof(callers_t));
}

static void callers_event(ir_conn_t *conn, void *state, const ir_ctl_msg_t *msg) {
  (void)conn;
  callers_t *side = state;
  if (msg->opcode != IR_OP_LINK_CLOSED) {
    return;
  }
  uint64_t link_id = (uint64_t)msg->u.link_closed.link_id;
  for (ir_caller_link_t *link = side->links; link != NULL; link = link->next) {
    if (link->link.link_id == link_id) {
      mark_caller_gone(side, link,
                       msg->u.link_closed.message != NULL ? msg->u.link_closed.message : "the peer is gone");
      break;
    }
  }
}

static void callers_fail_all(ir_conn_t *conn, void *state, ir_error_e code, const char *message) {
  (void)conn;
  callers_t *side = state;
  for (ir_caller_link_t *link = side->links; link != NULL; link = link->next) {
    fail_pending(side, link, code, message);
  }
}

static void handle_response(callers_t *side, ir_caller_link_t *link, const ir_frame_t *frame) {
  ir_call_t *call = take_pending(link, frame->seq);
  if (call == NULL) {
    return; /* abandoned or timed out */
  }
  if (frame->kind == IR_FRAME_KIND_CALL_OK) {
    uint64_t fingerprint = 0;
    if (!ir_avro_soe_split(frame->payload, frame->len, &fingerprint)) {
      complete(side, call, IR_ERR_DECODE, NULL, 0, "the response is not a single object encoding");
    } else if (fingerprint != link->link.response_fp) {
      char message[128];
      (void)snprintf(message, sizeof message, "the response carries schema %016llx, expected %016llx",
                     (unsigned long long)fingerprint, (unsigned long long)link->link.response_fp);
      complete(side, call, IR_ERR_DECODE, NULL, 0, message);
    } else {
      complete(side, call, IR_OK, frame->payload + IR_AVRO_SOE_HEADER_LEN, frame->len - IR_AVRO_SOE_HEADER_LEN, NULL);
    }
    return;
  }
  ir_ctl_msg_t msg;
  char why[128];
  if (ir_ctl_decode(frame->payload, frame->len, &msg, why, sizeof why) != IR_OK) {
    complete(side, call, IR_ERR_DECODE, NULL, 0, why);
  } else if (msg.opcode != IR_OP_CALL_ERROR) {
    char message[96];
    (void)snprintf(message, sizeof message, "protocol error: expected CallError, got %s", ir_ctl_name(msg.opcode));
    complete(side, call, IR_ERR_PROTOCOL, NULL, 0, message);
  } else {
    ir_error_e code = ir_error_from_wire(msg.u.call_error.code);
    const char *text = msg.u.call_error.message != NULL ? msg.u.call_error.message : "";
    char message[1200];
    if (code == IR_ERR_PROTOCOL && msg.u.call_error.code != IR_ERR_PROTOCOL) {
      (void)snprintf(message, sizeof message, "protocol error: unknown error code %d: %s", (int)msg.u.call_error.code,
                     text);
    } else if (code == IR_ERR_HANDLER) {
      (void)snprintf(message, sizeof message, "the handler failed: %s", text);
    } else {
      (void)snprintf(message, sizeof message, "%s", text);
    }
    complete(side, call, code, NULL, 0, message);
  }
  ir_ctl_free(&msg);
}

/* Reads every response on one link; true when a call completed. */
static bool drain(ir_conn_t *conn, callers_t *side, ir_caller_link_t *link) {
  bool completed = false;
  for (;;) {
    ir_frame_t frame;
    bool found = false;
    ir_error_e code = ir_ring_peek(&link->link.response,
                                   (1u << IR_FRAME_KIND_CALL_OK) | (1u << IR_FRAME_KIND_CALL_ERROR), &frame, &found);
    if (code != IR_OK) {
      link->gone = true;
      completed |= link->pending != NULL;
      fail_pending(side, link, IR_ERR_CORRUPT, ir_thread_error());
      return completed;
    }
    if (!found) {
      break;
    }
    bool pending = link->pending != NULL;
    handle_response(side, link, &frame);
    completed |= pending;
    ir_ring_consume(&link->link.response, &frame);
  }
  if (ir_ring_producer_waiting(&link->link.response)) {
    ir_bell_ring(ir_conn_app_bell(conn, link->link.provider));
  }
  return completed;
}

static bool callers_progress(ir_conn_t *conn, void *state) {
  callers_t *side = state;
  bool completed = false;
  int64_t now = -1;
  for (ir_caller_link_t *link = side->links, *next = NULL; link != NULL; link = next) {
    next = link->next;
    if (!link->gone) {
      completed |= drain(conn, side, link);
    }
    if (!link->gone && atomic_load_explicit(&link->link.header->provider_gone, memory_order_acquire) != 0) {
      char message[IR_MAX_NAME_LEN + 64];
      (void)snprintf(message, sizeof message, "the provider of function `%s` is gone", link->name);
      completed |= link->pending != NULL;
      mark_caller_gone(side, link, message);
      continue;
    }
    for (ir_call_t **at = &link->pending; *at != NULL;) {
      ir_call_t *call = *at;
      if (call->deadline_ns >= 0 && now < 0) {
        now = ir_now_ns();
      }
      if (call->deadline_ns >= 0 && now >= call->deadline_ns) {
        *at = call->next;
        call->next = NULL;
        char message[IR_MAX_NAME_LEN + 64];
        (void)snprintf(message, sizeof message, "call to `%s` timed out", link->name);
        complete(side, call, IR_ERR_TIMEOUT, NULL, 0, message);
        completed = true;
      } else {
        at = &call->next;
      }
    }
  }
  return completed;
}

static void callers_destroy(ir_conn_t *conn, void *state) {
  (void)conn;
  callers_t *side = state;
  while (side->links != NULL) {
    ir_caller_link_t *link = side->links;
    side->links = link->next;
    fail_pending(side, link, IR_ERR_CLOSED, "the connection is closed");
    caller_link_unref(link);
  }
  while (side->finished != NULL) {
    ir_call_t *call = side->finished;
    side->finished = call->next;
    free_call(call);
  }
  free(side);
}

static const ir_layer_ops_t CALLER_LAYER = {
    .create = callers_create,
    .event = callers_event,
    .progress = callers_progress,
    .fail_all = callers_fail_all,
    .destroy = callers_destroy,
};

/* ---- Serving: callbacks and work (serve.c) ---- */

bool ir_caller_has_work(ir_conn_t *conn) {
  callers_t *side = ir_conn_layer_if_any(conn, &CALLER_LAYER);
  if (side == NULL) {
    return false;
  }
  bool work = side->finished != NULL;
  for (ir_caller_link_t *link = side->links; !work && link != NULL; link = link->next) {
    work = ir_ring_has_data(&link->link.response) ||
           atomic_load_explicit(&link->link.header->provider_gone, memory_order_acquire) != 0;
  }
  return work;
}

bool ir_caller_run_callbacks(ir_conn_t *conn) {
  pthread_mutex_lock(&conn->lock);
  callers_t *side = ir_conn_layer_if_any(conn, &CALLER_LAYER);
  ir_call_t *finished = side != NULL ? side->finished : NULL;
  if (side != NULL) {
    side->finished = NULL;
  }
  pthread_mutex_unlock(&conn->lock);
  bool any = finished != NULL;
  /* The list is newest first: reverse it so callbacks run in completion order. */
  ir_call_t *ordered = NULL;
  while (finished != NULL) {
    ir_call_t *next = finished->next;
    finished->next = ordered;
    ordered = finished;
    finished = next;
  }
  while (ordered != NULL) {
    ir_call_t *call = ordered;
    ordered = call->next;
    call->callback(call->user, call->status, call->response, call->response_len, call->message);
    free_call(call);
  }
  return any;
}

/* ---- Calling ---- */

/* The link to `name` for these schemas, resolving it with the broker on first use; referenced. */
static ir_error_e get_link(ir_conn_t *conn, const char *name, const char *key, const char *request_schema,
                           const char *response_schema, ir_caller_link_t **out) {
  pthread_mutex_lock(&conn->lock);
  callers_t *side = ir_conn_layer(conn, &CALLER_LAYER);
  for (ir_caller_link_t *link = side != NULL ? side->links : NULL; link != NULL; link = link->next) {
    if (!link->gone && strcmp(link->name, name) == 0 && strcmp(link->request_schema, request_schema) == 0 &&
        strcmp(link->response_schema, response_schema) == 0) {
      link->refs++;
      *out = link;
      pthread_mutex_unlock(&conn->lock);
      return IR_OK;
    }
  }
  pthread_mutex_unlock(&conn->lock);
  if (side == NULL) {
    return ir_fail(IR_ERR_IO, "out of memory");
  }

  ir_ctl_msg_t msg = {.opcode = IR_OP_RESOLVE_FUNCTION};
  msg.u.resolve_function.name = (char *)name;
  msg.u.resolve_function.request_schema = (char *)request_schema;
  msg.u.resolve_function.response_schema = (char *)response_schema;
  msg.u.resolve_function.key = ir_ctl_key_text(key);
  ir_ctl_msg_t reply;
  ir_error_e code = ir_conn_request(conn, &msg, &reply, IR_OP_FUNCTION_RESOLVED);
  if (code != IR_OK) {
    return code;
  }
  const ir_ctl_function_resolved_t *resolved = &reply.u.function_resolved;
  ir_caller_link_t *link = calloc(1, sizeof *link);
  if (link == NULL) {
    ir_ctl_free(&reply);
    return ir_fail(IR_ERR_IO, "out of memory");
  }
  code = ir_link_open(conn, resolved->segment, &link->link);
  const ir_link_t *l = &link->link;
  if (code == IR_OK &&
      (l->caller != conn->app_id || l->provider >= conn->max_apps || l->link_id != (uint64_t)resolved->link_id ||
       l->request_fp != (uint64_t)resolved->request_fingerprint ||
       l->response_fp != (uint64_t)resolved->response_fingerprint)) {
    code = ir_fail(IR_ERR_CORRUPT, "link %llu names caller %u and provider %u, or other schemas than the broker said",
                   (unsigned long long)l->link_id, l->caller, l->provider);
    ir_link_close(&link->link);
  }
  ir_ctl_free(&reply);
  if (code != IR_OK) {
    free(link);
    return code;
  }
  link->name = ir_strdup(name);
  link->request_schema = ir_strdup(request_schema);
  link->response_schema = ir_strdup(response_schema);
  link->refs = 1;
  if (link->name == NULL || link->request_schema == NULL || link->response_schema == NULL) {
    unref_locked(conn, link);
    return ir_fail(IR_ERR_IO, "out of memory");
  }
  link->next_correlation = 1;
  link->refs = 2; /* the list's and the caller's */
  pthread_mutex_lock(&conn->lock);
  link->next = side->links;
  side->links = link;
  pthread_mutex_unlock(&conn->lock);
  *out = link;
  return IR_OK;
}

typedef struct send_ctx {
  ir_conn_t *conn;
  ir_caller_link_t *link;
  ir_call_t *call;
  const void *datum;
  size_t len;
  ir_error_e result;
} send_ctx_t;

static bool try_send(void *arg) {
  send_ctx_t *ctx = arg;
  ir_caller_link_t *link = ctx->link;
  uint8_t soe[IR_AVRO_SOE_HEADER_LEN];
  ir_avro_soe_header(soe, link->link.request_fp);
  pthread_mutex_lock(&ctx->conn->lock);
  ir_error_e code = IR_OK;
  if (ir_conn_gone(ctx->conn)) {
    /* A broker that shuts down marks every link gone: that is the broker leaving, not the provider. */
    code = ir_conn_fail_broker_gone(ctx->conn);
  } else if (link->gone || atomic_load_explicit(&link->link.header->provider_gone, memory_order_acquire) != 0) {
    code = ir_fail(IR_ERR_PEER_GONE, "the provider of function `%s` is gone", link->name);
  } else {
    code = ir_ring_try_write(&link->link.request, IR_FRAME_KIND_CALL_REQUEST, ctx->call->correlation, soe, sizeof soe,
                             ctx->datum, ctx->len);
    if (code == IR_OK) {
      /* Pending before the provider can possibly answer. */
      ctx->call->next = link->pending;
      link->pending = ctx->call;
    }
  }
  pthread_mutex_unlock(&ctx->conn->lock);
  if (code == IR_ERR_WOULD_BLOCK) {
    ir_ring_set_producer_waiting(&link->link.request, true);
    if (!ir_conn_gone(ctx->conn)) {
      return false;
    }
    code = ir_conn_fail_broker_gone(ctx->conn);
  }
  ctx->result = code;
  return true;
}

static ir_error_e start_call(ir_conn_t *conn, const char *name, const char *key, const char *request_schema,
                             const char *response_schema, const void *request, size_t request_len, int64_t timeout_ms,
                             ir_call_cb callback, void *user, ir_call_t **out) {
  if (conn == NULL || name == NULL || request_schema == NULL || response_schema == NULL ||
      (request == NULL && request_len > 0)) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT,
                   "call: conn, name and the schemas must not be NULL, nor request when len > 0");
  }
  ir_error_e code = ir_conn_usable(conn);
  if (code != IR_OK) {
    return code;
  }
  ir_caller_link_t *link = NULL;
  code = get_link(conn, name, key, request_schema, response_schema, &link);
  if (code != IR_OK) {
    return code;
  }
  uint64_t max = ir_max_payload(link->link.request.capacity);
  if (request_len > max - IR_AVRO_SOE_HEADER_LEN) {
    unref_locked(conn, link);
    return ir_fail(IR_ERR_TOO_LARGE, "payload of %zu bytes is larger than the maximum of %llu bytes",
                   request_len + IR_AVRO_SOE_HEADER_LEN, (unsigned long long)max);
  }
  ir_call_t *call = calloc(1, sizeof *call);
  if (call == NULL) {
    unref_locked(conn, link);
    return ir_fail(IR_ERR_IO, "out of memory");
  }
  int64_t deadline = ir_deadline(timeout_ms);
  call->conn = conn;
  call->link = link; /* takes over the reference get_link returned */
  call->deadline_ns = deadline;
  call->callback = callback;
  call->user = user;
  atomic_init(&call->done, false);
  pthread_mutex_lock(&conn->lock);
  call->correlation = link->next_correlation++;
  pthread_mutex_unlock(&conn->lock);

  send_ctx_t ctx = {.conn = conn, .link = link, .call = call, .datum = request, .len = request_len};
  bool written = ir_bell_wait(ir_conn_own_bell(conn), &conn->wait, deadline, try_send, &ctx, ir_conn_health, conn);
  ir_ring_set_producer_waiting(&link->link.request, false);
  if (!written) {
    ctx.result = ir_fail(IR_ERR_TIMEOUT, "call to `%s` timed out after %lld ms (its request ring stayed full)", name,
                         (long long)timeout_ms);
  }
  if (ctx.result != IR_OK) {
    unref_locked(conn, link);
    free(call);
    return ctx.result;
  }
  ir_bell_ring(ir_conn_app_bell(conn, link->link.provider));
  ir_conn_ref(conn);
  *out = call;
  return IR_OK;
}

typedef struct wait_call_ctx {
  ir_conn_t *conn;
  ir_call_t *call;
} wait_call_ctx_t;

static bool call_done(void *arg) {
  wait_call_ctx_t *ctx = arg;
  if (atomic_load_explicit(&ctx->call->done, memory_order_acquire)) {
    return true;
  }
  ir_conn_progress(ctx->conn);
  return atomic_load_explicit(&ctx->call->done, memory_order_acquire);
}

static ir_error_e call_poll(ir_call_t *call, int64_t timeout_ms) {
  if (call == NULL) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_call_poll: call must not be NULL");
  }
  wait_call_ctx_t ctx = {.conn = call->conn, .call = call};
  if (call_done(&ctx)) {
    return IR_OK;
  }
  if (timeout_ms == 0) {
    /* A caller that only ever polls (the TypeScript connector's pump) must still see a dead broker
     * fail its pending calls (bootstrap.md §8.2); the check limits itself to once per 200 ms. */
    ir_conn_health(call->conn);
    if (call_done(&ctx)) {
      return IR_OK;
    }
  }
  if (timeout_ms != 0 && ir_bell_wait(ir_conn_own_bell(call->conn), &call->conn->wait, ir_deadline(timeout_ms),
                                      call_done, &ctx, ir_conn_health, call->conn)) {
    return IR_OK;
  }
  return ir_fail(IR_ERR_TIMEOUT, "the call is still pending");
}

ir_error_e ir_call_poll(ir_call_t *call, int64_t timeout_ms) {
  /* Still pending is what a poll expects to hear: it is not recorded as the connection's error. */
  return call_poll(call, timeout_ms);
}

ir_error_e ir_call_result(const ir_call_t *call, const uint8_t **response, size_t *response_len) {
  if (response != NULL) {
    *response = NULL;
  }
  if (response_len != NULL) {
    *response_len = 0;
  }
  if (call == NULL) {
    return IR_ERR_INVALID_ARGUMENT;
  }
  if (!atomic_load_explicit(&call->done, memory_order_acquire)) {
    return IR_ERR_TIMEOUT;
  }
  if (call->status == IR_OK) {
    if (response != NULL) {
      *response = call->response;
    }
    if (response_len != NULL) {
      *response_len = call->response_len;
    }
  }
  return call->status;
}

const char *ir_call_error_message(const ir_call_t *call) {
  if (call == NULL || !atomic_load_explicit(&call->done, memory_order_acquire) || call->message == NULL) {
    return "";
  }
  return call->message;
}

void ir_call_free(ir_call_t *call) {
  if (call == NULL) {
    return;
  }
  ir_conn_t *conn = call->conn;
  pthread_mutex_lock(&conn->lock);
  if (!atomic_load_explicit(&call->done, memory_order_acquire) && call->link != NULL) {
    /* Abandoned: its response, if it comes, finds no pending call and is dropped. */
    (void)take_pending(call->link, call->correlation);
    caller_link_unref(call->link);
    call->link = NULL;
  }
  pthread_mutex_unlock(&conn->lock);
  free_call(call);
  ir_conn_unref(conn);
}

ir_error_e ir_call_start(ir_conn_t *conn, const char *name, const char *key, const char *request_schema,
                         const char *response_schema, const void *request, size_t request_len, int64_t timeout_ms,
                         ir_call_t **out) {
  if (out == NULL) {
    return ir_conn_record(conn, ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_call_start: out must not be NULL"));
  }
  *out = NULL;
  return ir_conn_record(conn, start_call(conn, name, key, request_schema, response_schema, request, request_len,
                                         timeout_ms, NULL, NULL, out));
}

ir_error_e ir_call_async(ir_conn_t *conn, const char *name, const char *key, const char *request_schema,
                         const char *response_schema, const void *request, size_t request_len, int64_t timeout_ms,
                         ir_call_cb callback, void *user) {
  if (callback == NULL) {
    return ir_conn_record(conn, ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_call_async: callback must not be NULL"));
  }
  ir_call_t *call = NULL;
  ir_error_e code = start_call(conn, name, key, request_schema, response_schema, request, request_len, timeout_ms,
                               callback, user, &call);
  if (code != IR_OK) {
    return ir_conn_record(conn, code);
  }
  /* The library owns it from here: completion queues it on the finished list, where ir_caller_run_callbacks frees
   * it after its callback. Its connection reference is the one start_call took. */
  ir_conn_unref(conn);
  return IR_OK;
}

ir_error_e ir_call(ir_conn_t *conn, const char *name, const char *key, const char *request_schema,
                   const char *response_schema, const void *request, size_t request_len, uint8_t **response,
                   size_t *response_len, int64_t timeout_ms) {
  if (response == NULL || response_len == NULL) {
    return ir_conn_record(conn,
                          ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_call: response and response_len must not be NULL"));
  }
  *response = NULL;
  *response_len = 0;
  ir_call_t *call = NULL;
  ir_error_e code =
      start_call(conn, name, key, request_schema, response_schema, request, request_len, timeout_ms, NULL, NULL, &call);
  if (code != IR_OK) {
    return ir_conn_record(conn, code);
  }
  code = call_poll(call, timeout_ms);
  if (code == IR_OK) {
    code = call->status;
    if (code == IR_OK) {
      *response = call->response;
      *response_len = call->response_len;
      call->response = NULL;
    } else {
      (void)ir_fail(code, "%s", call->message != NULL ? call->message : ir_strerror(code));
    }
  } else {
    code = ir_fail(IR_ERR_TIMEOUT, "call to `%s` timed out after %lld ms", name, (long long)timeout_ms);
  }
  ir_call_free(call);
  return ir_conn_record(conn, code);
}
