/* Functions and calls. A caller gets one link per function (two SPSC rings the broker creates);
 * requests carry a correlation id that the response echoes. The provider learns of each new link
 * from a LinkOpened event and answers its requests inside ir_serve or ir_poll_one. A dead provider
 * shows up as the link's provider_gone flag and a LinkClosed event: pending calls fail at once with
 * PeerGone, not a timeout. Link and call state lives under conn->lock; nothing waits while holding it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

struct ir_caller_link {
  ir_caller_link_t *next;
  uint32_t refs; /* the connection's list holds one; so does each thread using the link */
  char *name;
  char *request_schema;
  char *response_schema;
  uint64_t link_id;
  ir_seg_t seg;
  ir_link_header_t *header;
  ir_ring_t request;
  ir_ring_t response;
  uint32_t provider;
  uint64_t request_fp;
  uint64_t response_fp;
  uint64_t next_correlation;
  bool gone;
  ir_call_t *pending;
};

struct ir_served_link {
  ir_served_link_t *next;
  uint32_t refs;
  uint64_t link_id;
  uint64_t function_id;
  ir_seg_t seg;
  ir_link_header_t *header;
  ir_ring_t request;
  ir_ring_t response;
  uint32_t caller;
  uint64_t request_fp;
  uint64_t response_fp;
};

struct ir_function {
  ir_conn_t *conn;
  ir_function_t *next;
  uint64_t function_id;
  ir_handler_fn handler;
  void *user;
};

struct ir_call {
  ir_conn_t *conn;
  ir_caller_link_t *link; /* referenced while pending */
  ir_call_t *next;        /* in the link's pending list, then in conn->finished */
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

struct ir_response {
  ir_avro_writer_t datum;
  char message[1024];
  bool failed_alloc;
};

static char *dup_string(const char *s) {
  size_t len = strlen(s);
  char *out = malloc(len + 1);
  if (out != NULL) {
    memcpy(out, s, len + 1);
  }
  return out;
}

/* ---- Link lifetime (conn->lock held) ---- */

static void caller_link_unref(ir_caller_link_t *link) {
  if (--link->refs > 0) {
    return;
  }
  ir_seg_close(&link->seg);
  free(link->name);
  free(link->request_schema);
  free(link->response_schema);
  free(link);
}

static void served_link_unref(ir_served_link_t *link) {
  if (--link->refs > 0) {
    return;
  }
  ir_seg_close(&link->seg);
  free(link);
}

/* Completes a pending call (already unlinked from its link's list). */
static void complete(ir_conn_t *conn, ir_call_t *call, ir_error_e status, const uint8_t *datum, size_t len,
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
    call->message = dup_string(message != NULL ? message : ir_strerror(call->status));
  }
  if (call->link != NULL) {
    caller_link_unref(call->link);
    call->link = NULL;
  }
  if (call->callback != NULL) {
    call->next = conn->finished;
    conn->finished = call;
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

static void fail_pending(ir_conn_t *conn, ir_caller_link_t *link, ir_error_e code, const char *message) {
  while (link->pending != NULL) {
    ir_call_t *call = link->pending;
    link->pending = call->next;
    call->next = NULL;
    complete(conn, call, code, NULL, 0, message);
  }
}

static void unlist_caller(ir_conn_t *conn, ir_caller_link_t *link) {
  for (ir_caller_link_t **at = &conn->callers; *at != NULL; at = &(*at)->next) {
    if (*at == link) {
      *at = link->next;
      caller_link_unref(link);
      return;
    }
  }
}

static void mark_caller_gone(ir_conn_t *conn, ir_caller_link_t *link, const char *message) {
  link->gone = true;
  fail_pending(conn, link, IR_ERR_PEER_GONE, message);
  unlist_caller(conn, link);
}

/* ---- Events (conn->lock held) ---- */

/* Opens the link a LinkOpened event names, if it is really a link to one of our functions. */
static ir_error_e open_link(ir_conn_t *conn, const char *segment, ir_seg_t *seg, ir_ring_t *request,
                            ir_ring_t *response) {
  ir_error_e code = ir_conn_check_segment_name(conn, segment);
  if (code != IR_OK) {
    return code;
  }
  bool missing = false;
  code = ir_seg_open(segment, IR_KIND_LINK, seg, &missing);
  if (code != IR_OK) {
    return code;
  }
  if (seg->len < IR_LINK_REQUEST_RING + IR_RING_HEADER_SIZE) {
    ir_seg_close(seg);
    return ir_fail(IR_ERR_CORRUPT, "segment %s is corrupt: %zu bytes is too small for a link", segment, seg->len);
  }
  ir_ring_header_t *first = ir_seg_at(seg, IR_LINK_REQUEST_RING);
  uint64_t capacity = atomic_load_explicit(&first->capacity, memory_order_relaxed);
  uint64_t size = ir_link_response_ring(capacity) + IR_RING_HEADER_SIZE + capacity;
  if (!ir_valid_capacity(capacity) || size != (uint64_t)seg->len) {
    ir_seg_close(seg);
    return ir_fail(IR_ERR_CORRUPT, "segment %s is corrupt: ring capacity %llu does not match %zu bytes", segment,
                   (unsigned long long)capacity, seg->len);
  }
  code = ir_ring_open(seg, IR_LINK_REQUEST_RING, capacity, request);
  if (code == IR_OK) {
    code = ir_ring_open(seg, ir_link_response_ring(capacity), capacity, response);
  }
  if (code != IR_OK) {
    ir_seg_close(seg);
  }
  return code;
}

void ir_calls_link_opened(ir_conn_t *conn, const ir_ctl_link_opened_t *event) {
  ir_served_link_t *link = calloc(1, sizeof *link);
  if (link == NULL) {
    return;
  }
  if (open_link(conn, event->segment, &link->seg, &link->request, &link->response) != IR_OK) {
    free(link);
    return;
  }
  link->header = ir_seg_at(&link->seg, 0);
  link->link_id = atomic_load_explicit(&link->header->link_id, memory_order_relaxed);
  link->function_id = atomic_load_explicit(&link->header->function_id, memory_order_relaxed);
  link->caller = atomic_load_explicit(&link->header->caller, memory_order_relaxed);
  link->request_fp = atomic_load_explicit(&link->header->request_fp, memory_order_relaxed);
  link->response_fp = atomic_load_explicit(&link->header->response_fp, memory_order_relaxed);
  uint32_t provider = atomic_load_explicit(&link->header->provider, memory_order_relaxed);
  if (provider != conn->app_id || link->caller >= conn->max_apps || link->function_id != (uint64_t)event->function_id ||
      link->link_id != (uint64_t)event->link_id) {
    ir_seg_close(&link->seg);
    free(link);
    return;
  }
  link->refs = 1;
  link->next = conn->served;
  conn->served = link;
}

void ir_calls_link_closed(ir_conn_t *conn, uint64_t link_id, const char *message) {
  for (ir_served_link_t **at = &conn->served; *at != NULL;) {
    ir_served_link_t *link = *at;
    if (link->link_id == link_id) {
      *at = link->next;
      served_link_unref(link);
    } else {
      at = &link->next;
    }
  }
  for (ir_caller_link_t *link = conn->callers; link != NULL; link = link->next) {
    if (link->link_id == link_id) {
      mark_caller_gone(conn, link, message != NULL ? message : "the peer is gone");
      break;
    }
  }
}

void ir_calls_fail_all(ir_conn_t *conn, ir_error_e code, const char *message) {
  for (ir_caller_link_t *link = conn->callers; link != NULL; link = link->next) {
    fail_pending(conn, link, code, message);
  }
}

/* ---- Responses (conn->lock held) ---- */

static void handle_response(ir_conn_t *conn, ir_caller_link_t *link, const ir_frame_t *frame) {
  ir_call_t *call = take_pending(link, frame->seq);
  if (call == NULL) {
    return; /* abandoned or timed out */
  }
  if (frame->kind == IR_FRAME_KIND_CALL_OK) {
    uint64_t fingerprint = 0;
    if (!ir_avro_soe_split(frame->payload, frame->len, &fingerprint)) {
      complete(conn, call, IR_ERR_DECODE, NULL, 0, "the response is not a single object encoding");
    } else if (fingerprint != link->response_fp) {
      char message[128];
      (void)snprintf(message, sizeof message, "the response carries schema %016llx, expected %016llx",
                     (unsigned long long)fingerprint, (unsigned long long)link->response_fp);
      complete(conn, call, IR_ERR_DECODE, NULL, 0, message);
    } else {
      complete(conn, call, IR_OK, frame->payload + IR_AVRO_SOE_HEADER_LEN, frame->len - IR_AVRO_SOE_HEADER_LEN, NULL);
    }
    return;
  }
  ir_ctl_msg_t msg;
  char why[128];
  if (ir_ctl_decode(frame->payload, frame->len, &msg, why, sizeof why) != IR_OK) {
    complete(conn, call, IR_ERR_DECODE, NULL, 0, why);
  } else if (msg.opcode != IR_OP_CALL_ERROR) {
    char message[96];
    (void)snprintf(message, sizeof message, "protocol error: expected CallError, got %s", ir_ctl_name(msg.opcode));
    complete(conn, call, IR_ERR_PROTOCOL, NULL, 0, message);
  } else {
    int code = msg.u.call_error.code;
    const char *text = msg.u.call_error.message != NULL ? msg.u.call_error.message : "";
    char message[1200];
    if (code == IR_ERR_HANDLER) {
      (void)snprintf(message, sizeof message, "the handler failed: %s", text);
    } else {
      (void)snprintf(message, sizeof message, "%s", text);
    }
    if (code < IR_ERR_NO_BROKER || code > IR_ERR_PROTOCOL) {
      (void)snprintf(message, sizeof message, "protocol error: error code %d: %s", code, text);
      code = IR_ERR_PROTOCOL;
    }
    complete(conn, call, (ir_error_e)code, NULL, 0, message);
  }
  ir_ctl_free(&msg);
}

/* Reads every response on one link; true when a call completed. */
static bool drain(ir_conn_t *conn, ir_caller_link_t *link) {
  bool completed = false;
  for (;;) {
    ir_frame_t frame;
    bool found = false;
    ir_error_e code =
        ir_ring_peek(&link->response, (1u << IR_FRAME_KIND_CALL_OK) | (1u << IR_FRAME_KIND_CALL_ERROR), &frame, &found);
    if (code != IR_OK) {
      link->gone = true;
      completed |= link->pending != NULL;
      fail_pending(conn, link, IR_ERR_CORRUPT, ir_thread_error());
      return completed;
    }
    if (!found) {
      break;
    }
    bool pending = link->pending != NULL;
    handle_response(conn, link, &frame);
    completed |= pending;
    ir_ring_consume(&link->response, &frame);
  }
  if (ir_ring_producer_waiting(&link->response)) {
    ir_bell_ring(ir_conn_app_bell(conn, link->provider));
  }
  return completed;
}

bool ir_calls_progress(ir_conn_t *conn) {
  bool completed = false;
  int64_t now = -1;
  for (ir_caller_link_t *link = conn->callers, *next = NULL; link != NULL; link = next) {
    next = link->next;
    if (!link->gone) {
      completed |= drain(conn, link);
    }
    if (!link->gone && atomic_load_explicit(&link->header->provider_gone, memory_order_acquire) != 0) {
      char message[IR_MAX_NAME_LEN + 64];
      (void)snprintf(message, sizeof message, "the provider of function `%s` is gone", link->name);
      completed |= link->pending != NULL;
      mark_caller_gone(conn, link, message);
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
        complete(conn, call, IR_ERR_TIMEOUT, NULL, 0, message);
        completed = true;
      } else {
        at = &call->next;
      }
    }
  }
  return completed;
}

void ir_calls_teardown(ir_conn_t *conn) {
  while (conn->callers != NULL) {
    ir_caller_link_t *link = conn->callers;
    conn->callers = link->next;
    fail_pending(conn, link, IR_ERR_CLOSED, "the connection is closed");
    caller_link_unref(link);
  }
  while (conn->served != NULL) {
    ir_served_link_t *link = conn->served;
    conn->served = link->next;
    served_link_unref(link);
  }
  while (conn->finished != NULL) {
    ir_call_t *call = conn->finished;
    conn->finished = call->next;
    free(call->response);
    free(call->message);
    free(call);
  }
  while (conn->functions != NULL) {
    ir_function_t *fn = conn->functions;
    conn->functions = fn->next;
    fn->conn = NULL; /* the handle stays the user's to withdraw */
  }
  if (conn->response != NULL) {
    ir_avro_writer_free(&conn->response->datum);
    free(conn->response);
    conn->response = NULL;
  }
}

/* ---- Providing ---- */

ir_error_e ir_response_write(ir_response_t *response, const void *data, size_t len) {
  if (response == NULL || (data == NULL && len > 0)) {
    return IR_ERR_INVALID_ARGUMENT;
  }
  ir_avro_write_raw(&response->datum, data, len);
  if (!ir_avro_writer_ok(&response->datum)) {
    response->failed_alloc = true;
    return IR_ERR_TOO_LARGE;
  }
  return IR_OK;
}

void ir_response_fail(ir_response_t *response, const char *message) {
  if (response != NULL && message != NULL) {
    (void)snprintf(response->message, sizeof response->message, "%s", message);
  }
}

static ir_error_e expose_function(ir_conn_t *conn, const char *name, const char *request_schema,
                                  const char *response_schema, const char *key, ir_handler_fn handler, void *user,
                                  ir_function_t **out) {
  if (conn == NULL || name == NULL || request_schema == NULL || response_schema == NULL || handler == NULL ||
      out == NULL) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_expose_function: only key and user may be NULL");
  }
  *out = NULL;
  ir_error_e code = ir_conn_usable(conn);
  if (code != IR_OK) {
    return code;
  }
  int64_t request_id = ir_conn_request_id(conn);
  ir_ctl_msg_t msg = {.opcode = IR_OP_EXPOSE_FUNCTION};
  msg.u.expose_function.request_id = request_id;
  msg.u.expose_function.name = (char *)name;
  msg.u.expose_function.request_schema = (char *)request_schema;
  msg.u.expose_function.response_schema = (char *)response_schema;
  msg.u.expose_function.key = (char *)key;
  ir_ctl_msg_t reply;
  code = ir_conn_request(conn, request_id, &msg, &reply, IR_OP_FUNCTION_EXPOSED);
  if (code != IR_OK) {
    return code;
  }
  ir_function_t *fn = calloc(1, sizeof *fn);
  if (fn == NULL) {
    ir_ctl_free(&reply);
    return ir_fail(IR_ERR_IO, "out of memory");
  }
  fn->conn = conn;
  fn->function_id = (uint64_t)reply.u.function_exposed.function_id;
  fn->handler = handler;
  fn->user = user;
  ir_ctl_free(&reply);
  pthread_mutex_lock(&conn->lock);
  fn->next = conn->functions;
  conn->functions = fn;
  pthread_mutex_unlock(&conn->lock);
  ir_conn_ref(conn);
  /* Callers may have linked before the handler was in place: let a server look again. */
  ir_bell_ring(ir_conn_app_bell(conn, conn->app_id));
  *out = fn;
  return IR_OK;
}

ir_error_e ir_expose_function(ir_conn_t *conn, const char *name, const char *request_schema,
                              const char *response_schema, const char *key, ir_handler_fn handler, void *user,
                              ir_function_t **out) {
  return ir_conn_record(conn, expose_function(conn, name, request_schema, response_schema, key, handler, user, out));
}

uint64_t ir_function_id(const ir_function_t *fn) {
  return fn != NULL ? fn->function_id : 0;
}

void ir_function_withdraw(ir_function_t *fn) {
  if (fn == NULL) {
    return;
  }
  ir_conn_t *conn = fn->conn;
  if (conn == NULL) {
    free(fn);
    return;
  }
  pthread_mutex_lock(&conn->lock);
  for (ir_function_t **at = &conn->functions; *at != NULL; at = &(*at)->next) {
    if (*at == fn) {
      *at = fn->next;
      break;
    }
  }
  pthread_mutex_unlock(&conn->lock);
  if (ir_conn_usable(conn) == IR_OK) {
    ir_ctl_msg_t msg = {.opcode = IR_OP_WITHDRAW_FUNCTION};
    msg.u.withdraw_function.request_id = ir_conn_request_id(conn);
    msg.u.withdraw_function.function_id = (int64_t)fn->function_id;
    (void)ir_conn_post(conn, &msg);
  }
  free(fn);
  ir_conn_unref(conn);
}

/* The handler of `function_id`, if the function is still exposed (conn->lock held). */
static ir_function_t *find_function(ir_conn_t *conn, uint64_t function_id) {
  for (ir_function_t *fn = conn->functions; fn != NULL; fn = fn->next) {
    if (fn->function_id == function_id) {
      return fn;
    }
  }
  return NULL;
}

/* A served link with a request waiting and a handler for it; referenced, and moved to the end of
 * the list so that links take turns. NULL when there is none (conn->lock held). */
static ir_served_link_t *next_request(ir_conn_t *conn, ir_handler_fn *handler, void **user) {
  for (ir_served_link_t **at = &conn->served; *at != NULL; at = &(*at)->next) {
    ir_served_link_t *link = *at;
    ir_function_t *fn = find_function(conn, link->function_id);
    if (fn == NULL || !ir_ring_has_data(&link->request)) {
      continue;
    }
    *handler = fn->handler;
    *user = fn->user;
    if (link->next != NULL) {
      *at = link->next;
      ir_served_link_t **tail = at;
      while (*tail != NULL) {
        tail = &(*tail)->next;
      }
      *tail = link;
      link->next = NULL;
    }
    link->refs++;
    return link;
  }
  return NULL;
}

static bool has_requests(ir_conn_t *conn) {
  for (ir_served_link_t *link = conn->served; link != NULL; link = link->next) {
    if (ir_ring_has_data(&link->request) && find_function(conn, link->function_id) != NULL) {
      return true;
    }
  }
  return false;
}

typedef struct respond_ctx {
  ir_served_link_t *link;
  uint16_t kind;
  uint64_t correlation;
  const uint8_t *a;
  size_t alen;
  const uint8_t *b;
  size_t blen;
} respond_ctx_t;

static bool try_respond(void *arg) {
  respond_ctx_t *ctx = arg;
  ir_error_e code =
      ir_ring_try_write(&ctx->link->response, ctx->kind, ctx->correlation, ctx->a, ctx->alen, ctx->b, ctx->blen);
  if (code == IR_ERR_WOULD_BLOCK && atomic_load_explicit(&ctx->link->header->caller_gone, memory_order_acquire) == 0) {
    ir_ring_set_producer_waiting(&ctx->link->response, true);
    return false;
  }
  return true;
}

/* Runs the handler on one request of `link` and writes the response. Called with serve_lock held. */
static void serve_request(ir_conn_t *conn, ir_served_link_t *link, ir_handler_fn handler, void *user) {
  ir_frame_t frame;
  bool found = false;
  if (ir_ring_peek(&link->request, 1u << IR_FRAME_KIND_CALL_REQUEST, &frame, &found) != IR_OK) {
    /* A corrupt link is useless: stop serving it; the caller will see PeerGone or time out. */
    pthread_mutex_lock(&conn->lock);
    ir_calls_link_closed(conn, link->link_id, NULL);
    pthread_mutex_unlock(&conn->lock);
    return;
  }
  if (!found) {
    return;
  }
  if (conn->response == NULL) {
    conn->response = calloc(1, sizeof *conn->response);
    if (conn->response == NULL) {
      return;
    }
    ir_avro_writer_init_dynamic(&conn->response->datum);
  }
  ir_response_t *response = conn->response;
  ir_avro_writer_reset(&response->datum);
  response->message[0] = '\0';
  response->failed_alloc = false;

  uint64_t fingerprint = 0;
  ir_error_e status = IR_OK;
  char reason[1100] = "";
  if (!ir_avro_soe_split(frame.payload, frame.len, &fingerprint)) {
    status = IR_ERR_DECODE;
    (void)snprintf(reason, sizeof reason, "the request is not a single object encoding");
  } else if (fingerprint != link->request_fp) {
    status = IR_ERR_DECODE;
    (void)snprintf(reason, sizeof reason, "the request carries schema %016llx, expected %016llx",
                   (unsigned long long)fingerprint, (unsigned long long)link->request_fp);
  } else {
    ir_error_e result =
        handler(user, frame.payload + IR_AVRO_SOE_HEADER_LEN, frame.len - IR_AVRO_SOE_HEADER_LEN, response);
    if (result != IR_OK || response->failed_alloc) {
      status = IR_ERR_HANDLER;
      (void)snprintf(reason, sizeof reason, "%s",
                     response->message[0] != '\0' ? response->message
                     : response->failed_alloc     ? "out of memory writing the response"
                                                  : ir_strerror(result));
    }
  }
  uint64_t correlation = frame.seq;
  ir_ring_consume(&link->request, &frame);
  ir_doorbell_t *caller_bell = ir_conn_app_bell(conn, link->caller);
  if (ir_ring_producer_waiting(&link->request)) {
    ir_bell_ring(caller_bell);
  }

  uint64_t max = ir_max_payload(link->response.capacity);
  if (status == IR_OK && response->datum.len > max - IR_AVRO_SOE_HEADER_LEN) {
    status = IR_ERR_TOO_LARGE;
    (void)snprintf(reason, sizeof reason, "response of %zu bytes exceeds the link's %llu", response->datum.len,
                   (unsigned long long)max);
  }
  uint8_t soe[IR_AVRO_SOE_HEADER_LEN];
  ir_avro_writer_t error;
  ir_avro_writer_init_dynamic(&error);
  respond_ctx_t ctx = {.link = link, .correlation = correlation};
  if (status == IR_OK) {
    ir_avro_soe_header(soe, link->response_fp);
    ctx.kind = IR_FRAME_KIND_CALL_OK;
    ctx.a = soe;
    ctx.alen = sizeof soe;
    ctx.b = response->datum.data;
    ctx.blen = response->datum.len;
  } else {
    ir_ctl_msg_t msg = {.opcode = IR_OP_CALL_ERROR};
    msg.u.call_error.code = (int32_t)status;
    msg.u.call_error.message = reason;
    ir_ctl_encode(&msg, &error);
    ctx.kind = IR_FRAME_KIND_CALL_ERROR;
    ctx.a = error.data;
    ctx.alen = error.len;
  }
  /* The caller frees space as it reads; wait a little for it, unless it is gone. */
  (void)ir_bell_wait(ir_conn_app_bell(conn, conn->app_id), &conn->wait, ir_deadline(5000), try_respond, &ctx, NULL,
                     NULL);
  ir_ring_set_producer_waiting(&link->response, false);
  ir_avro_writer_free(&error);
  ir_bell_ring(caller_bell);
}

/* Runs the callbacks of finished asynchronous calls. Called with serve_lock held. */
static bool run_callbacks(ir_conn_t *conn) {
  pthread_mutex_lock(&conn->lock);
  ir_call_t *finished = conn->finished;
  conn->finished = NULL;
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
    free(call->response);
    free(call->message);
    free(call);
  }
  return any;
}

/* One round of serving: events, responses, callbacks and at most `max` requests. Returns whether it
 * did anything. Called with serve_lock held. */
static bool serve_round(ir_conn_t *conn, int max) {
  ir_conn_progress(conn);
  bool any = run_callbacks(conn);
  for (int i = 0; i < max; i++) {
    ir_handler_fn handler = NULL;
    void *user = NULL;
    pthread_mutex_lock(&conn->lock);
    ir_served_link_t *link = next_request(conn, &handler, &user);
    pthread_mutex_unlock(&conn->lock);
    if (link == NULL) {
      break;
    }
    serve_request(conn, link, handler, user);
    pthread_mutex_lock(&conn->lock);
    served_link_unref(link);
    pthread_mutex_unlock(&conn->lock);
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
  bool work = conn->finished != NULL || has_requests(conn);
  for (ir_caller_link_t *link = conn->callers; !work && link != NULL; link = link->next) {
    work = ir_ring_has_data(&link->response) ||
           atomic_load_explicit(&link->header->provider_gone, memory_order_acquire) != 0;
  }
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
      code = ir_fail(IR_ERR_BROKER_GONE, "the broker of namespace `%s` is gone", conn->ns);
      break;
    }
    if (deadline >= 0 && ir_now_ns() >= deadline) {
      break;
    }
    if (worked) {
      continue;
    }
    (void)ir_bell_wait(ir_conn_app_bell(conn, conn->app_id), &conn->wait, deadline, has_work, conn, ir_conn_health,
                       conn);
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
    ir_bell_ring(ir_conn_app_bell(conn, conn->app_id));
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
    (void)ir_bell_wait(ir_conn_app_bell(conn, conn->app_id), &conn->wait, ir_deadline(timeout_ms), has_work, conn,
                       ir_conn_health, conn);
  }
  pthread_mutex_lock(&conn->serve_lock);
  bool any = serve_round(conn, 1);
  pthread_mutex_unlock(&conn->serve_lock);
  if (any) {
    return IR_OK;
  }
  if (ir_conn_gone(conn)) {
    return ir_fail(IR_ERR_BROKER_GONE, "the broker of namespace `%s` is gone", conn->ns);
  }
  return ir_fail(IR_ERR_TIMEOUT, "nothing to do within %lld ms", (long long)timeout_ms);
}

ir_error_e ir_poll_one(ir_conn_t *conn, int64_t timeout_ms) {
  ir_error_e code = poll_one(conn, timeout_ms);
  /* Nothing to do is the normal case of a poll: it does not count as the connection's last error. */
  return code == IR_ERR_TIMEOUT ? code : ir_conn_record(conn, code);
}

/* ---- Calling ---- */

/* The link to `name` for these schemas, resolving it with the broker on first use; referenced. */
static ir_error_e get_link(ir_conn_t *conn, const char *name, const char *key, const char *request_schema,
                           const char *response_schema, ir_caller_link_t **out) {
  pthread_mutex_lock(&conn->lock);
  for (ir_caller_link_t *link = conn->callers; link != NULL; link = link->next) {
    if (!link->gone && strcmp(link->name, name) == 0 && strcmp(link->request_schema, request_schema) == 0 &&
        strcmp(link->response_schema, response_schema) == 0) {
      link->refs++;
      *out = link;
      pthread_mutex_unlock(&conn->lock);
      return IR_OK;
    }
  }
  pthread_mutex_unlock(&conn->lock);

  int64_t request_id = ir_conn_request_id(conn);
  ir_ctl_msg_t msg = {.opcode = IR_OP_RESOLVE_FUNCTION};
  msg.u.resolve_function.request_id = request_id;
  msg.u.resolve_function.name = (char *)name;
  msg.u.resolve_function.request_schema = (char *)request_schema;
  msg.u.resolve_function.response_schema = (char *)response_schema;
  msg.u.resolve_function.key = (char *)key;
  ir_ctl_msg_t reply;
  ir_error_e code = ir_conn_request(conn, request_id, &msg, &reply, IR_OP_FUNCTION_RESOLVED);
  if (code != IR_OK) {
    return code;
  }
  const ir_ctl_function_resolved_t *resolved = &reply.u.function_resolved;
  ir_caller_link_t *link = calloc(1, sizeof *link);
  if (link == NULL) {
    ir_ctl_free(&reply);
    return ir_fail(IR_ERR_IO, "out of memory");
  }
  code = open_link(conn, resolved->segment, &link->seg, &link->request, &link->response);
  if (code != IR_OK) {
    free(link);
    ir_ctl_free(&reply);
    return code;
  }
  link->header = ir_seg_at(&link->seg, 0);
  link->link_id = atomic_load_explicit(&link->header->link_id, memory_order_relaxed);
  link->provider = atomic_load_explicit(&link->header->provider, memory_order_relaxed);
  link->request_fp = atomic_load_explicit(&link->header->request_fp, memory_order_relaxed);
  link->response_fp = atomic_load_explicit(&link->header->response_fp, memory_order_relaxed);
  uint32_t caller = atomic_load_explicit(&link->header->caller, memory_order_relaxed);
  if (caller != conn->app_id || link->provider >= conn->max_apps || link->link_id != (uint64_t)resolved->link_id ||
      link->request_fp != (uint64_t)resolved->request_fingerprint ||
      link->response_fp != (uint64_t)resolved->response_fingerprint) {
    code = ir_fail(IR_ERR_CORRUPT, "link %llu names caller %u and provider %u, or other schemas than the broker said",
                   (unsigned long long)link->link_id, caller, link->provider);
    ir_seg_close(&link->seg);
    free(link);
    ir_ctl_free(&reply);
    return code;
  }
  ir_ctl_free(&reply);
  link->name = dup_string(name);
  link->request_schema = dup_string(request_schema);
  link->response_schema = dup_string(response_schema);
  if (link->name == NULL || link->request_schema == NULL || link->response_schema == NULL) {
    link->refs = 1;
    pthread_mutex_lock(&conn->lock);
    caller_link_unref(link);
    pthread_mutex_unlock(&conn->lock);
    return ir_fail(IR_ERR_IO, "out of memory");
  }
  link->next_correlation = 1;
  link->refs = 2; /* the list's and the caller's */
  pthread_mutex_lock(&conn->lock);
  link->next = conn->callers;
  conn->callers = link;
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
  ir_avro_soe_header(soe, link->request_fp);
  pthread_mutex_lock(&ctx->conn->lock);
  ir_error_e code = IR_OK;
  if (ir_conn_gone(ctx->conn)) {
    /* A broker that shuts down marks every link gone: that is the broker leaving, not the provider. */
    code = ir_fail(IR_ERR_BROKER_GONE, "the broker of namespace `%s` is gone", ctx->conn->ns);
  } else if (link->gone || atomic_load_explicit(&link->header->provider_gone, memory_order_acquire) != 0) {
    code = ir_fail(IR_ERR_PEER_GONE, "the provider of function `%s` is gone", link->name);
  } else {
    code = ir_ring_try_write(&link->request, IR_FRAME_KIND_CALL_REQUEST, ctx->call->correlation, soe, sizeof soe,
                             ctx->datum, ctx->len);
    if (code == IR_OK) {
      /* Pending before the provider can possibly answer. */
      ctx->call->next = link->pending;
      link->pending = ctx->call;
    }
  }
  pthread_mutex_unlock(&ctx->conn->lock);
  if (code == IR_ERR_WOULD_BLOCK) {
    ir_ring_set_producer_waiting(&link->request, true);
    if (!ir_conn_gone(ctx->conn)) {
      return false;
    }
    code = ir_fail(IR_ERR_BROKER_GONE, "the broker of namespace `%s` is gone", ctx->conn->ns);
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
  uint64_t max = ir_max_payload(link->request.capacity);
  if (request_len > max - IR_AVRO_SOE_HEADER_LEN) {
    pthread_mutex_lock(&conn->lock);
    caller_link_unref(link);
    pthread_mutex_unlock(&conn->lock);
    return ir_fail(IR_ERR_TOO_LARGE, "payload of %zu bytes is larger than the maximum of %llu bytes",
                   request_len + IR_AVRO_SOE_HEADER_LEN, (unsigned long long)max);
  }
  ir_call_t *call = calloc(1, sizeof *call);
  if (call == NULL) {
    pthread_mutex_lock(&conn->lock);
    caller_link_unref(link);
    pthread_mutex_unlock(&conn->lock);
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
  bool written =
      ir_bell_wait(ir_conn_app_bell(conn, conn->app_id), &conn->wait, deadline, try_send, &ctx, ir_conn_health, conn);
  ir_ring_set_producer_waiting(&link->request, false);
  if (!written) {
    ctx.result = ir_fail(IR_ERR_TIMEOUT, "call to `%s` timed out after %lld ms (its request ring stayed full)", name,
                         (long long)timeout_ms);
  }
  if (ctx.result != IR_OK) {
    pthread_mutex_lock(&conn->lock);
    caller_link_unref(link);
    pthread_mutex_unlock(&conn->lock);
    free(call);
    return ctx.result;
  }
  ir_bell_ring(ir_conn_app_bell(conn, link->provider));
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
  if (timeout_ms != 0 && ir_bell_wait(ir_conn_app_bell(call->conn, call->conn->app_id), &call->conn->wait,
                                      ir_deadline(timeout_ms), call_done, &ctx, ir_conn_health, call->conn)) {
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
  free(call->response);
  free(call->message);
  free(call);
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
  /* The library owns it from here: completion queues it on conn->finished, where run_callbacks frees
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
