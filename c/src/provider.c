/* The provider side of calls: exposing functions, learning of each new caller from a LinkOpened
 * event, and answering requests with the user's handler inside ir_serve or ir_poll_one (serve.c).
 * Served links and function records live under conn->lock, attached to the session as a layer; the
 * handler runs without it. */
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "link.h"

typedef struct ir_served_link ir_served_link_t;

struct ir_served_link {
  ir_served_link_t *next;
  uint32_t refs;
  uint64_t function_id;
  ir_link_t link;
};

struct ir_function {
  ir_conn_t *conn;
  ir_function_t *next;
  uint64_t function_id;
  ir_handler_fn handler;
  void *user;
};

struct ir_response {
  ir_avro_writer_t datum;
  char message[1024];
  bool failed_alloc;
};

/* The provider side's state of one connection. */
typedef struct providers {
  ir_served_link_t *served;
  ir_function_t *functions;
  ir_response_t *response; /* reused by every request served (serve_lock held) */
} providers_t;

static const ir_layer_ops_t PROVIDER_LAYER;

/* ---- Links (conn->lock held) ---- */

static void served_link_unref(ir_served_link_t *link) {
  if (--link->refs > 0) {
    return;
  }
  ir_link_close(&link->link);
  free(link);
}

/* Opens the link a LinkOpened event names, if it is really a link to one of our functions. */
static void link_opened(ir_conn_t *conn, providers_t *side, const ir_ctl_link_opened_t *event) {
  ir_served_link_t *link = calloc(1, sizeof *link);
  if (link == NULL) {
    return;
  }
  if (ir_link_open(conn, event->segment, &link->link) != IR_OK) {
    free(link);
    return;
  }
  const ir_link_t *l = &link->link;
  link->function_id = atomic_load_explicit(&l->header->function_id, memory_order_relaxed);
  if (l->provider != conn->app_id || l->caller >= conn->max_apps || link->function_id != (uint64_t)event->function_id ||
      l->link_id != (uint64_t)event->link_id) {
    ir_link_close(&link->link);
    free(link);
    return;
  }
  link->refs = 1;
  link->next = side->served;
  side->served = link;
}

static void link_closed(providers_t *side, uint64_t link_id) {
  for (ir_served_link_t **at = &side->served; *at != NULL;) {
    ir_served_link_t *link = *at;
    if (link->link.link_id == link_id) {
      *at = link->next;
      served_link_unref(link);
    } else {
      at = &link->next;
    }
  }
}

/* ---- Layer hooks (conn->lock held) ---- */

static void *providers_create(void) {
  return calloc(1, sizeof(providers_t));
}

static void providers_event(ir_conn_t *conn, void *state, const ir_ctl_msg_t *msg) {
  providers_t *side = state;
  if (msg->opcode == IR_OP_LINK_OPENED) {
    link_opened(conn, side, &msg->u.link_opened);
  } else if (msg->opcode == IR_OP_LINK_CLOSED) {
    link_closed(side, (uint64_t)msg->u.link_closed.link_id);
  }
}

static void providers_destroy(ir_conn_t *conn, void *state) {
  (void)conn;
  providers_t *side = state;
  while (side->served != NULL) {
    ir_served_link_t *link = side->served;
    side->served = link->next;
    served_link_unref(link);
  }
  while (side->functions != NULL) {
    ir_function_t *fn = side->functions;
    side->functions = fn->next;
    fn->conn = NULL; /* the handle stays the user's to withdraw */
  }
  if (side->response != NULL) {
    ir_avro_writer_free(&side->response->datum);
    free(side->response);
  }
  free(side);
}

static const ir_layer_ops_t PROVIDER_LAYER = {
    .create = providers_create,
    .event = providers_event,
    /* Requests are answered in serve.c, never from another thread's wait; nothing is pending here. */
    .progress = NULL,
    .fail_all = NULL,
    .destroy = providers_destroy,
};

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
  ir_ctl_msg_t msg = {.opcode = IR_OP_EXPOSE_FUNCTION};
  msg.u.expose_function.name = (char *)name;
  msg.u.expose_function.request_schema = (char *)request_schema;
  msg.u.expose_function.response_schema = (char *)response_schema;
  msg.u.expose_function.key = ir_ctl_key_text(key);
  ir_ctl_msg_t reply;
  ir_error_e code = ir_conn_request(conn, &msg, &reply, IR_OP_FUNCTION_EXPOSED);
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
  providers_t *side = ir_conn_layer(conn, &PROVIDER_LAYER);
  if (side != NULL) {
    fn->next = side->functions;
    side->functions = fn;
  }
  pthread_mutex_unlock(&conn->lock);
  if (side == NULL) {
    /* The broker keeps the function until the connection closes; nothing would ever serve it. */
    free(fn);
    return ir_fail(IR_ERR_IO, "out of memory");
  }
  ir_conn_ref(conn);
  /* Callers may have linked before the handler was in place: let a server look again. */
  ir_bell_ring(ir_conn_own_bell(conn));
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
  providers_t *side = ir_conn_layer_if_any(conn, &PROVIDER_LAYER);
  for (ir_function_t **at = side != NULL ? &side->functions : NULL; at != NULL && *at != NULL; at = &(*at)->next) {
    if (*at == fn) {
      *at = fn->next;
      break;
    }
  }
  pthread_mutex_unlock(&conn->lock);
  if (ir_conn_usable(conn) == IR_OK) {
    ir_ctl_msg_t msg = {.opcode = IR_OP_WITHDRAW_FUNCTION};
    msg.u.withdraw_function.function_id = (int64_t)fn->function_id;
    (void)ir_conn_post(conn, &msg);
  }
  free(fn);
  ir_conn_unref(conn);
}

/* The handler of `function_id`, if the function is still exposed (conn->lock held). */
static ir_function_t *find_function(providers_t *side, uint64_t function_id) {
  for (ir_function_t *fn = side->functions; fn != NULL; fn = fn->next) {
    if (fn->function_id == function_id) {
      return fn;
    }
  }
  return NULL;
}

/* A served link with a request waiting and a handler for it; referenced, and moved to the end of
 * the list so that links take turns. NULL when there is none (conn->lock held). */
static ir_served_link_t *next_request(providers_t *side, ir_handler_fn *handler, void **user) {
  for (ir_served_link_t **at = &side->served; *at != NULL; at = &(*at)->next) {
    ir_served_link_t *link = *at;
    ir_function_t *fn = find_function(side, link->function_id);
    if (fn == NULL || !ir_ring_has_data(&link->link.request)) {
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

bool ir_provider_has_work(ir_conn_t *conn) {
  providers_t *side = ir_conn_layer_if_any(conn, &PROVIDER_LAYER);
  for (ir_served_link_t *link = side != NULL ? side->served : NULL; link != NULL; link = link->next) {
    if (ir_ring_has_data(&link->link.request) && find_function(side, link->function_id) != NULL) {
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
      ir_ring_try_write(&ctx->link->link.response, ctx->kind, ctx->correlation, ctx->a, ctx->alen, ctx->b, ctx->blen);
  if (code == IR_ERR_WOULD_BLOCK &&
      atomic_load_explicit(&ctx->link->link.header->caller_gone, memory_order_acquire) == 0) {
    ir_ring_set_producer_waiting(&ctx->link->link.response, true);
    return false;
  }
  return true;
}

/* Runs the handler on one request of `link` and writes the response; false when the link is corrupt.
 * Called with serve_lock held. */
static bool serve_request(ir_conn_t *conn, providers_t *side, ir_served_link_t *link, ir_handler_fn handler,
                          void *user) {
  ir_frame_t frame;
  bool found = false;
  if (ir_ring_peek(&link->link.request, 1u << IR_FRAME_KIND_CALL_REQUEST, &frame, &found) != IR_OK) {
    return false;
  }
  if (!found) {
    return true;
  }
  if (side->response == NULL) {
    side->response = calloc(1, sizeof *side->response);
    if (side->response == NULL) {
      return true;
    }
    ir_avro_writer_init_dynamic(&side->response->datum);
  }
  ir_response_t *response = side->response;
  ir_avro_writer_reset(&response->datum);
  response->message[0] = '\0';
  response->failed_alloc = false;

  uint64_t fingerprint = 0;
  ir_error_e status = IR_OK;
  char reason[1100] = "";
  if (!ir_avro_soe_split(frame.payload, frame.len, &fingerprint)) {
    status = IR_ERR_DECODE;
    (void)snprintf(reason, sizeof reason, "the request is not a single object encoding");
  } else if (fingerprint != link->link.request_fp) {
    status = IR_ERR_DECODE;
    (void)snprintf(reason, sizeof reason, "the request carries schema %016llx, expected %016llx",
                   (unsigned long long)fingerprint, (unsigned long long)link->link.request_fp);
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
  ir_ring_consume(&link->link.request, &frame);
  ir_doorbell_t *caller_bell = ir_conn_app_bell(conn, link->link.caller);
  if (ir_ring_producer_waiting(&link->link.request)) {
    ir_bell_ring(caller_bell);
    return true;
  }

  uint64_t max = ir_max_payload(link->link.response.capacity);
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
    ir_avro_soe_header(soe, link->link.response_fp);
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
  (void)ir_bell_wait(ir_conn_own_bell(conn), &conn->wait, ir_deadline(5000), try_respond, &ctx, NULL, NULL);
  ir_ring_set_producer_waiting(&link->link.response, false);
  ir_avro_writer_free(&error);
  ir_bell_ring(caller_bell);
  return true;
}

bool ir_provider_serve_one(ir_conn_t *conn) {
  ir_handler_fn handler = NULL;
  void *user = NULL;
  pthread_mutex_lock(&conn->lock);
  providers_t *side = ir_conn_layer_if_any(conn, &PROVIDER_LAYER);
  ir_served_link_t *link = side != NULL ? next_request(side, &handler, &user) : NULL;
  pthread_mutex_unlock(&conn->lock);
  if (link == NULL) {
    return false;
  }
  bool intact = serve_request(conn, side, link, handler, user);
  pthread_mutex_lock(&conn->lock);
  if (!intact) {
    /* A corrupt link is useless: stop serving it; the caller will see PeerGone or time out. The list's
     * reference goes with it; ours goes below. */
    for (ir_served_link_t **at = &side->served; *at != NULL; at = &(*at)->next) {
      if (*at == link) {
        *at = link->next;
        link->refs--;
        break;
      }
    }
  }
  served_link_unref(link);
  pthread_mutex_unlock(&conn->lock);
  return true;
}
