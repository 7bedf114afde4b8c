/* The session: mapping the namespace's control segment, claiming an app slot with a CAS, registering
 * with the broker, and the control request/reply exchange over the slot's two rings. There is no
 * background thread: whoever waits (a control request, a call, ir_serve) reads the reply ring and
 * routes what it finds (to a waiter, or to the layers attached above), and checks the broker's
 * liveness while it sleeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"
#include "session.h"

/* ---- Errors ---- */

ir_error_e ir_conn_record(ir_conn_t *conn, ir_error_e code) {
  if (code != IR_OK && conn != NULL) {
    pthread_mutex_lock(&conn->error_lock);
    (void)snprintf(conn->last_error, sizeof conn->last_error, "%s", ir_thread_error());
    pthread_mutex_unlock(&conn->error_lock);
  }
  return code;
}

const char *ir_last_error(const ir_conn_t *conn) {
  static _Thread_local char copy[1024];
  if (conn == NULL) {
    (void)snprintf(copy, sizeof copy, "%s", ir_thread_error());
    return copy;
  }
  ir_conn_t *mutable_conn = (ir_conn_t *)conn;
  pthread_mutex_lock(&mutable_conn->error_lock);
  (void)snprintf(copy, sizeof copy, "%s", conn->last_error);
  pthread_mutex_unlock(&mutable_conn->error_lock);
  return copy;
}

/* ---- Names and slots ---- */

ir_error_e ir_conn_check_segment_name(const ir_conn_t *conn, const char *name) {
  if (!ir_segment_in_namespace(conn->prefix, name)) {
    return ir_fail(IR_ERR_PROTOCOL, "protocol error: the broker named segment %.200s outside namespace `%s`", name,
                   conn->ns);
  }
  return IR_OK;
}

static uint64_t slot_offset(const ir_conn_t *conn, uint32_t slot);

/* Whether the broker has fenced us off our slot: it dropped this app (bootstrap.md §3.2). */
static bool fenced(const ir_conn_t *conn) {
  if (!conn->claimed) {
    return false;
  }
  ir_slot_header_t *header = ir_seg_at(&conn->ctl, slot_offset(conn, conn->app_id));
  /* SYNC: observe fence — pairs with the broker's Release store of IR_SLOT_FENCED. */
  return atomic_load_explicit(&header->state, memory_order_acquire) == IR_SLOT_FENCED ||
         atomic_load_explicit(&header->generation, memory_order_acquire) != conn->generation;
}

ir_error_e ir_conn_fail_broker_gone(const ir_conn_t *conn) {
  if (fenced(conn)) {
    return ir_fail(IR_ERR_BROKER_GONE,
                   "the broker of namespace `%s` dropped this app and fenced its slot %u (it broke the protocol); "
                   "connect again",
                   conn->ns, conn->app_id);
  }
  return ir_fail(IR_ERR_BROKER_GONE, "the broker of namespace `%s` is gone", conn->ns);
}

static ir_error_e fail_no_broker(const char *ns) {
  return ir_fail(IR_ERR_NO_BROKER, "no broker is running in namespace `%s` (start one with `impulsed --ns %s`)", ns,
                 ns);
}

/* Offset of app slot `slot` in the control segment (bootstrap.md §3). */
static uint64_t slot_offset(const ir_conn_t *conn, uint32_t slot) {
  return IR_CTL_SLOTS + (uint64_t)slot * ir_control_slot_size(conn->ring_capacity);
}

ir_slot_header_t *ir_conn_slot(ir_conn_t *conn, uint32_t slot) {
  return slot < conn->max_apps ? ir_seg_at(&conn->ctl, slot_offset(conn, slot)) : NULL;
}

ir_doorbell_t *ir_conn_app_bell(ir_conn_t *conn, uint32_t slot) {
  ir_slot_header_t *header = ir_conn_slot(conn, slot);
  return header != NULL ? &header->doorbell : NULL;
}

ir_doorbell_t *ir_conn_own_bell(ir_conn_t *conn) {
  return ir_conn_app_bell(conn, conn->app_id);
}

/* ---- Layers ---- */

void *ir_conn_layer_if_any(ir_conn_t *conn, const ir_layer_ops_t *ops) {
  for (int i = 0; i < IR_MAX_LAYERS; i++) {
    if (conn->layers[i].ops == ops) {
      return conn->layers[i].state;
    }
  }
  return NULL;
}

void *ir_conn_layer(ir_conn_t *conn, const ir_layer_ops_t *ops) {
  /* Layers fill the slots in order: the first empty slot ends the search. */
  for (int i = 0; i < IR_MAX_LAYERS; i++) {
    if (conn->layers[i].ops == ops) {
      return conn->layers[i].state;
    }
    if (conn->layers[i].ops == NULL) {
      void *state = ops->create();
      if (state != NULL) {
        conn->layers[i].ops = ops;
        conn->layers[i].state = state;
      }
      return state;
    }
  }
  return NULL;
}

/* Hands an event to every layer (conn->lock held). */
static void layers_event(ir_conn_t *conn, const ir_ctl_msg_t *msg) {
  for (int i = 0; i < IR_MAX_LAYERS && conn->layers[i].ops != NULL; i++) {
    conn->layers[i].ops->event(conn, conn->layers[i].state, msg);
  }
}

static void layers_fail_all(ir_conn_t *conn, ir_error_e code, const char *message) {
  for (int i = 0; i < IR_MAX_LAYERS && conn->layers[i].ops != NULL; i++) {
    if (conn->layers[i].ops->fail_all != NULL) {
      conn->layers[i].ops->fail_all(conn, conn->layers[i].state, code, message);
    }
  }
}

static bool layers_progress(ir_conn_t *conn) {
  bool completed = false;
  for (int i = 0; i < IR_MAX_LAYERS && conn->layers[i].ops != NULL; i++) {
    if (conn->layers[i].ops->progress != NULL) {
      completed |= conn->layers[i].ops->progress(conn, conn->layers[i].state);
    }
  }
  return completed;
}

/* ---- Lifetime ---- */

void ir_conn_ref(ir_conn_t *conn) {
  atomic_fetch_add_explicit(&conn->refs, 1, memory_order_relaxed);
}

static void destroy(ir_conn_t *conn) {
  for (int i = 0; i < IR_MAX_LAYERS && conn->layers[i].ops != NULL; i++) {
    conn->layers[i].ops->destroy(conn, conn->layers[i].state);
  }
  ir_seg_close(&conn->ctl);
  ir_wipe(conn->session, sizeof conn->session);
  pthread_mutex_destroy(&conn->lock);
  pthread_mutex_destroy(&conn->post_lock);
  pthread_mutex_destroy(&conn->serve_lock);
  pthread_mutex_destroy(&conn->error_lock);
  free(conn);
}

void ir_conn_unref(ir_conn_t *conn) {
  if (atomic_fetch_sub_explicit(&conn->refs, 1, memory_order_acq_rel) == 1) {
    destroy(conn);
  }
}

/* ---- Liveness ---- */

static void mark_broker_gone(ir_conn_t *conn) {
  /* Called with conn->lock held. */
  if (atomic_exchange_explicit(&conn->broker_gone, true, memory_order_acq_rel)) {
    return;
  }
  (void)ir_conn_fail_broker_gone(conn);
  layers_fail_all(conn, IR_ERR_BROKER_GONE, ir_thread_error());
}

bool ir_conn_shutting_down(ir_conn_t *conn) {
  return atomic_load_explicit(&conn->header->shutting_down, memory_order_acquire) != 0;
}

bool ir_conn_gone(ir_conn_t *conn) {
  return atomic_load_explicit(&conn->broker_gone, memory_order_acquire) || ir_conn_shutting_down(conn) || fenced(conn);
}

void ir_conn_health(void *arg) {
  ir_conn_t *conn = arg;
  if (atomic_load_explicit(&conn->broker_gone, memory_order_acquire)) {
    return;
  }
  int64_t now = ir_now_ns();
  int64_t last = atomic_load_explicit(&conn->last_health_ns, memory_order_relaxed);
  if (now - last < IR_MAX_SLEEP_NS ||
      !atomic_compare_exchange_strong_explicit(&conn->last_health_ns, &last, now, memory_order_relaxed,
                                               memory_order_relaxed)) {
    return;
  }
  if (ir_conn_shutting_down(conn) || fenced(conn) || !ir_process_alive(conn->broker_pid, conn->broker_start)) {
    pthread_mutex_lock(&conn->lock);
    mark_broker_gone(conn);
    pthread_mutex_unlock(&conn->lock);
    /* Other threads of ours may sleep waiting for replies that will never come. */
    ir_bell_ring(ir_conn_own_bell(conn));
  }
}

ir_error_e ir_conn_usable(ir_conn_t *conn) {
  if (atomic_load_explicit(&conn->closed, memory_order_acquire)) {
    return ir_fail(IR_ERR_CLOSED, "the connection is closed");
  }
  if (ir_conn_gone(conn)) {
    return ir_conn_fail_broker_gone(conn);
  }
  return IR_OK;
}

int ir_broker_gone(ir_conn_t *conn) {
  if (conn == NULL) {
    return 1;
  }
  ir_conn_health(conn);
  return ir_conn_gone(conn) ? 1 : 0;
}

/* ---- Control records ---- */

typedef struct post_ctx {
  ir_conn_t *conn;
  const uint8_t *payload;
  size_t len;
  ir_error_e result;
} post_ctx_t;

static bool try_post(void *arg) {
  post_ctx_t *ctx = arg;
  ir_error_e code =
      ir_ring_try_write(&ctx->conn->request_ring, IR_FRAME_KIND_CONTROL, 0, ctx->payload, ctx->len, NULL, 0);
  if (code == IR_ERR_WOULD_BLOCK) {
    /* The broker rings our doorbell when it frees space. */
    ir_ring_set_producer_waiting(&ctx->conn->request_ring, true);
    if (!ir_conn_gone(ctx->conn)) {
      return false;
    }
    code = ir_conn_fail_broker_gone(ctx->conn);
  }
  ctx->result = code;
  return true;
}

ir_error_e ir_conn_post(ir_conn_t *conn, ir_ctl_msg_t *msg) {
  if (ir_conn_gone(conn)) {
    return ir_conn_fail_broker_gone(conn);
  }
  if (ir_ctl_request_id(msg) == 0) {
    ir_ctl_set_request_id(msg, (int64_t)atomic_fetch_add_explicit(&conn->next_request_id, 1, memory_order_relaxed));
  }
  ir_avro_writer_t w;
  ir_avro_writer_init_dynamic(&w);
  if (!ir_ctl_encode_sealed(msg, conn->session, &w)) {
    ir_avro_writer_free(&w);
    return ir_fail(IR_ERR_IO, "out of memory sealing the key of a %s record", ir_ctl_name(msg->opcode));
  }
  if (!ir_avro_writer_ok(&w)) {
    ir_avro_writer_free(&w);
    return ir_fail(IR_ERR_IO, "out of memory encoding a %s record", ir_ctl_name(msg->opcode));
  }
  uint64_t max = ir_max_payload(conn->request_ring.capacity);
  if (w.len > max) {
    /* wire-format.md §10: a control record larger than the control ring takes is TooLarge. */
    size_t len = w.len;
    ir_avro_writer_free(&w);
    return ir_fail(IR_ERR_TOO_LARGE, "the %s request of %zu bytes is larger than the control ring's maximum of %llu",
                   ir_ctl_name(msg->opcode), len, (unsigned long long)max);
  }
  post_ctx_t ctx = {.conn = conn, .payload = w.data, .len = w.len, .result = IR_OK};
  pthread_mutex_lock(&conn->post_lock);
  if (atomic_load_explicit(&conn->unregistered, memory_order_acquire)) {
    /* After Unregister the slot (and its request ring) may already belong to another app. */
    pthread_mutex_unlock(&conn->post_lock);
    ir_avro_writer_free(&w);
    return ir_fail(IR_ERR_CLOSED, "the connection is closed");
  }
  if (msg->opcode == IR_OP_UNREGISTER) {
    atomic_store_explicit(&conn->unregistered, true, memory_order_release);
  }
  bool written = ir_bell_wait(ir_conn_own_bell(conn), &conn->wait, ir_deadline(IR_CONTROL_TIMEOUT_MS), try_post, &ctx,
                              ir_conn_health, conn);
  ir_ring_set_producer_waiting(&conn->request_ring, false);
  pthread_mutex_unlock(&conn->post_lock);
  ir_avro_writer_free(&w);
  if (!written) {
    return ir_fail(IR_ERR_TIMEOUT, "writing a control request timed out after %d ms", IR_CONTROL_TIMEOUT_MS);
  }
  if (ctx.result != IR_OK) {
    return ctx.result;
  }
  ir_bell_ring(&conn->header->broker_doorbell);
  return IR_OK;
}

/* Answers every waiting request with `failed` (its strings copied): the broker sent something that
 * matches none of them in particular (a Failed with request id 0, or a reply that does not decode),
 * and any of them may be the one it is about (bootstrap.md §4.1). Called with conn->lock held. */
static void fail_waiters(ir_conn_t *conn, const ir_ctl_failed_t *failed) {
  for (ir_reply_waiter_t *w = conn->waiters; w != NULL; w = w->next) {
    if (!w->filled) {
      memset(&w->reply, 0, sizeof w->reply);
      w->reply.opcode = IR_OP_FAILED;
      w->reply.u.failed = *failed;
      w->reply.u.failed.message = ir_strdup(failed->message != NULL ? failed->message : "");
      w->filled = true;
    }
  }
}

/* Routes one record from the reply ring. Called with conn->lock held; takes ownership of `msg`. */
static void dispatch(ir_conn_t *conn, ir_ctl_msg_t *msg) {
  int64_t id = ir_ctl_reply_id(msg);
  if (id == 0 && msg->opcode == IR_OP_FAILED) {
    fail_waiters(conn, &msg->u.failed);
    ir_ctl_free(msg);
    return;
  }
  if (id > 0) {
    for (ir_reply_waiter_t *w = conn->waiters; w != NULL; w = w->next) {
      if (w->request_id == id && !w->filled) {
        w->reply = *msg;
        w->filled = true;
        memset(msg, 0, sizeof *msg);
        return;
      }
    }
    /* A reply nobody waits for: the answer to a posted request (Done of CloseChannel, ...). */
    ir_ctl_free(msg);
    return;
  }
  if (msg->opcode == IR_OP_BROKER_SHUTDOWN) {
    mark_broker_gone(conn);
  } else {
    layers_event(conn, msg);
  }
  ir_ctl_free(msg);
}

/* Reads every record waiting on the reply ring; true when it read any. Called with conn->lock held. */
static bool read_replies(ir_conn_t *conn) {
  bool any = false;
  if (atomic_load_explicit(&conn->closed, memory_order_acquire)) {
    /* After Unregister the broker resets our rings: they are no longer ours to read. */
    return false;
  }
  if (fenced(conn)) {
    /* Dropped by the broker: what the ring holds now is not ours. */
    mark_broker_gone(conn);
    return false;
  }
  for (;;) {
    ir_frame_t frame;
    bool found = false;
    ir_error_e code = ir_ring_peek(&conn->reply_ring, IR_KIND_BIT(IR_FRAME_KIND_CONTROL), &frame, &found);
    if (code != IR_OK) {
      /* A corrupt reply ring: the broker can no longer talk to us. */
      mark_broker_gone(conn);
      break;
    }
    if (!found) {
      break;
    }
    any = true;
    ir_ctl_msg_t msg;
    char why[128];
    ir_error_e decoded = ir_ctl_decode(frame.payload, frame.len, &msg, why, sizeof why);
    ir_ring_consume(&conn->reply_ring, &frame);
    if (decoded == IR_OK) {
      dispatch(conn, &msg);
    } else {
      /* Waiting 10 s for a reply that came but cannot be read would only hide the fault. */
      char message[256];
      (void)snprintf(message, sizeof message, "protocol error: a reply from the broker does not decode: %s", why);
      ir_ctl_failed_t failed = {.code = IR_ERR_PROTOCOL, .message = message};
      fail_waiters(conn, &failed);
      ir_ctl_free(&msg);
    }
  }
  if (any && ir_ring_producer_waiting(&conn->reply_ring)) {
    ir_bell_ring(&conn->header->broker_doorbell);
  }
  return any;
}

void ir_conn_progress(ir_conn_t *conn) {
  pthread_mutex_lock(&conn->lock);
  (void)read_replies(conn);
  if (ir_conn_shutting_down(conn)) {
    /* Links closing in a shutdown are the broker leaving: pending calls fail with BrokerGone. */
    mark_broker_gone(conn);
  }
  bool completed = layers_progress(conn);
  pthread_mutex_unlock(&conn->lock);
  if (completed) {
    /* Another thread of ours may sleep waiting for one of these results. */
    ir_bell_ring(ir_conn_own_bell(conn));
  }
}

typedef struct request_ctx {
  ir_conn_t *conn;
  ir_reply_waiter_t *waiter;
} request_ctx_t;

static bool reply_arrived(void *arg) {
  request_ctx_t *ctx = arg;
  ir_conn_progress(ctx->conn);
  pthread_mutex_lock(&ctx->conn->lock);
  bool filled = ctx->waiter->filled;
  pthread_mutex_unlock(&ctx->conn->lock);
  return filled || ir_conn_gone(ctx->conn);
}

/* The error a Failed reply stands for, with the broker's message (and both fingerprints). */
static ir_error_e remote_error(ir_conn_t *conn, const ir_ctl_failed_t *failed) {
  ir_error_e code = ir_error_from_wire(failed->code);
  const char *message = failed->message != NULL ? failed->message : "";
  switch (code) {
    case IR_ERR_NO_BROKER:
      return fail_no_broker(conn->ns);
    case IR_ERR_BROKER_GONE:
      return ir_conn_fail_broker_gone(conn);
    case IR_ERR_SCHEMA_MISMATCH:
      return ir_fail(code, "%s (expected %016llx, presented %016llx)", message,
                     (unsigned long long)failed->expected_fingerprint,
                     (unsigned long long)failed->presented_fingerprint);
    default:
      if (code == IR_ERR_PROTOCOL && failed->code != IR_ERR_PROTOCOL) {
        return ir_fail(code, "protocol error: unknown error code %d: %s", (int)failed->code, message);
      }
      return ir_fail(code, "%s", message);
  }
}

ir_error_e ir_conn_request(ir_conn_t *conn, ir_ctl_msg_t *msg, ir_ctl_msg_t *reply, ir_opcode_e expected) {
  memset(reply, 0, sizeof *reply);
  ir_error_e code = ir_conn_usable(conn);
  if (code != IR_OK) {
    return code;
  }
  int64_t request_id = (int64_t)atomic_fetch_add_explicit(&conn->next_request_id, 1, memory_order_relaxed);
  ir_ctl_set_request_id(msg, request_id);
  ir_reply_waiter_t waiter = {.request_id = request_id};
  pthread_mutex_lock(&conn->lock);
  waiter.next = conn->waiters;
  conn->waiters = &waiter;
  pthread_mutex_unlock(&conn->lock);

  code = ir_conn_post(conn, msg);
  if (code == IR_OK) {
    request_ctx_t ctx = {.conn = conn, .waiter = &waiter};
    (void)ir_bell_wait(ir_conn_own_bell(conn), &conn->wait, ir_deadline(IR_CONTROL_TIMEOUT_MS), reply_arrived, &ctx,
                       ir_conn_health, conn);
  }

  pthread_mutex_lock(&conn->lock);
  for (ir_reply_waiter_t **at = &conn->waiters; *at != NULL; at = &(*at)->next) {
    if (*at == &waiter) {
      *at = waiter.next;
      break;
    }
  }
  pthread_mutex_unlock(&conn->lock);

  if (code != IR_OK) {
    return code;
  }
  if (!waiter.filled) {
    if (ir_conn_gone(conn)) {
      return ir_conn_fail_broker_gone(conn);
    }
    return ir_fail(IR_ERR_TIMEOUT, "waiting for the broker's reply to %s timed out after %d ms",
                   ir_ctl_name(msg->opcode), IR_CONTROL_TIMEOUT_MS);
  }
  if (waiter.reply.opcode == IR_OP_FAILED) {
    code = remote_error(conn, &waiter.reply.u.failed);
    ir_ctl_free(&waiter.reply);
    return code;
  }
  if (waiter.reply.opcode != expected) {
    code = ir_fail(IR_ERR_PROTOCOL, "protocol error: expected %s, got %s", ir_ctl_name(expected),
                   ir_ctl_name(waiter.reply.opcode));
    ir_ctl_free(&waiter.reply);
    return code;
  }
  *reply = waiter.reply;
  return IR_OK;
}

/* ---- Connecting ---- */

/* Maps the control segment of conn->ns and validates its header. */
static ir_error_e open_control(ir_conn_t *conn) {
  char name[IR_SEG_NAME_MAX];
  ir_control_segment_name(conn->ns, name);
  bool missing = false;
  ir_error_e code = ir_seg_open(name, IR_KIND_CONTROL, &conn->ctl, &missing);
  /* A control segment that exists but is not ready belongs to a broker still starting: give it up to
   * a second (bootstrap.md) before concluding there is no broker. */
  for (int tries = 0; code != IR_OK && missing && tries < 200 && ir_shm_exists(name); tries++) {
    ir_sleep_ns(5LL * 1000 * 1000);
    missing = false;
    code = ir_seg_open(name, IR_KIND_CONTROL, &conn->ctl, &missing);
  }
  if (code != IR_OK) {
    return missing ? fail_no_broker(conn->ns) : code;
  }
  conn->header = ir_seg_at(&conn->ctl, 0);
  conn->max_apps = atomic_load_explicit(&conn->header->max_apps, memory_order_relaxed);
  conn->ring_capacity = atomic_load_explicit(&conn->header->ring_capacity, memory_order_relaxed);
  if (conn->max_apps == 0 || conn->max_apps > 4096 || !ir_valid_capacity(conn->ring_capacity) ||
      slot_offset(conn, conn->max_apps) != (uint64_t)conn->ctl.len) {
    return ir_fail(IR_ERR_CORRUPT, "segment %s is corrupt: %u slots of ring capacity %llu do not match %zu bytes", name,
                   conn->max_apps, (unsigned long long)conn->ring_capacity, conn->ctl.len);
  }
  conn->broker_pid = atomic_load_explicit(&conn->header->broker_pid, memory_order_relaxed);
  conn->broker_start = atomic_load_explicit(&conn->header->broker_start, memory_order_relaxed);
  if (!ir_process_alive(conn->broker_pid, conn->broker_start) || ir_conn_shutting_down(conn)) {
    return fail_no_broker(conn->ns);
  }
  return IR_OK;
}

/* Claims a free app slot with a CAS and writes our identity into it. */
static ir_error_e claim_slot(ir_conn_t *conn) {
  uint32_t pid = ir_getpid();
  uint64_t start = ir_process_start_time(pid);
  for (uint32_t slot = 0; slot < conn->max_apps; slot++) {
    ir_slot_header_t *header = ir_conn_slot(conn, slot);
    uint32_t expected = IR_SLOT_FREE;
    /* SYNC: claim slot — the Acquire half pairs with the broker's Release store in free_slot. */
    if (atomic_compare_exchange_strong_explicit(&header->state, &expected, IR_SLOT_CLAIMED, memory_order_acq_rel,
                                                memory_order_relaxed)) {
      atomic_store_explicit(&header->pid, pid, memory_order_relaxed);
      atomic_store_explicit(&header->start, start, memory_order_release);
      conn->app_id = slot;
      /* Stable until the broker fences or frees the slot: the CAS (Acquire) saw its last bump. */
      conn->generation = atomic_load_explicit(&header->generation, memory_order_acquire);
      conn->claimed = true;
      return IR_OK;
    }
  }
  return ir_fail(IR_ERR_LIMIT_REACHED, "all %u app slots of namespace `%s` are taken", conn->max_apps, conn->ns);
}

/* The session secret from our private key and the broker's public key in Registered; Protocol when
 * that key is not 32 bytes or is a point of small order (bootstrap.md §5.2, §5.5). */
static ir_error_e derive_session(ir_conn_t *conn, const uint8_t private_key[IR_X25519_LEN],
                                 const uint8_t public_key[IR_X25519_LEN], const ir_ctl_bytes_t *broker_public) {
  uint8_t shared[IR_X25519_LEN];
  bool ok = ir_seal_shared(shared, private_key, broker_public->data, broker_public->len);
  if (ok) {
    ir_seal_session(conn->session, shared, public_key, broker_public->data);
  }
  ir_wipe(shared, sizeof shared);
  if (!ok) {
    if (broker_public->len != IR_X25519_LEN) {
      return ir_fail(IR_ERR_PROTOCOL,
                     "protocol error: the broker's Registered carries a public key of %zu bytes, not %d: it cannot "
                     "seal access keys (bootstrap.md §5.5)",
                     broker_public->len, IR_X25519_LEN);
    }
    return ir_fail(IR_ERR_PROTOCOL,
                   "protocol error: the broker's Registered carries a public key of small order (the shared secret "
                   "is all zero): it cannot seal access keys (bootstrap.md §5.5)");
  }
  return IR_OK;
}

static ir_error_e connect_to(ir_conn_t *conn, const char *app_name) {
  ir_error_e code = open_control(conn);
  if (code != IR_OK) {
    return code;
  }
  code = claim_slot(conn);
  if (code != IR_OK) {
    return code;
  }
  uint64_t request_base = slot_offset(conn, conn->app_id) + IR_SLOT_REQUEST_RING;
  uint64_t reply_base = request_base + IR_RING_HEADER_SIZE + conn->ring_capacity;
  code = ir_ring_open(&conn->ctl, request_base, conn->ring_capacity, &conn->request_ring);
  if (code == IR_OK) {
    code = ir_ring_open(&conn->ctl, reply_base, conn->ring_capacity, &conn->reply_ring);
  }
  if (code != IR_OK) {
    return code;
  }
  /* A fresh key pair for every registration (bootstrap.md §5.5); the private half lives on this
   * stack only until the session secret is derived. */
  uint8_t private_key[IR_X25519_LEN];
  uint8_t public_key[IR_X25519_LEN];
  code = ir_seal_keypair(private_key, public_key);
  if (code != IR_OK) {
    return code;
  }
  uint32_t pid = ir_getpid();
  ir_ctl_msg_t msg = {.opcode = IR_OP_REGISTER};
  msg.u.register_.app_name = (char *)app_name;
  msg.u.register_.pid = pid;
  msg.u.register_.start_time = (int64_t)ir_process_start_time(pid);
  msg.u.register_.public_key = (ir_ctl_bytes_t){.data = public_key, .len = sizeof public_key};
  ir_ctl_msg_t reply;
  code = ir_conn_request(conn, &msg, &reply, IR_OP_REGISTERED);
  if (code == IR_OK) {
    code = derive_session(conn, private_key, public_key, &reply.u.registered.public_key);
    ir_ctl_free(&reply);
  } else if (code == IR_ERR_TIMEOUT && !ir_process_alive(conn->broker_pid, conn->broker_start)) {
    code = fail_no_broker(conn->ns);
  }
  ir_wipe(private_key, sizeof private_key);
  return code;
}

ir_error_e ir_connect_ns(const char *ns, const char *app_name, ir_conn_t **out) {
  if (out == NULL || app_name == NULL) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_connect: app_name and out must not be NULL");
  }
  *out = NULL;
  if (ns == NULL || ns[0] == '\0') {
    ns = getenv("IMPULSE_RING_NS");
    if (ns == NULL || ns[0] == '\0') {
      ns = "impulse";
    }
  }
  if (!ir_valid_namespace(ns)) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT,
                   "invalid namespace \"%.80s\": use 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'", ns);
  }
  size_t name_len = strlen(app_name);
  if (name_len == 0 || name_len > IR_MAX_APP_NAME_LEN) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "app names are 1 to %d bytes", IR_MAX_APP_NAME_LEN);
  }
  ir_conn_t *conn = calloc(1, sizeof *conn);
  if (conn == NULL) {
    return ir_fail(IR_ERR_IO, "out of memory");
  }
  (void)snprintf(conn->ns, sizeof conn->ns, "%s", ns);
  ir_segment_prefix(ns, conn->prefix);
  ir_wait_default(&conn->wait);
  pthread_mutex_init(&conn->lock, NULL);
  pthread_mutex_init(&conn->post_lock, NULL);
  pthread_mutex_init(&conn->serve_lock, NULL);
  pthread_mutex_init(&conn->error_lock, NULL);
  atomic_init(&conn->next_request_id, 1);
  atomic_init(&conn->broker_gone, false);
  atomic_init(&conn->closed, false);
  atomic_init(&conn->unregistered, false);
  atomic_init(&conn->stop, false);
  atomic_init(&conn->last_health_ns, ir_now_ns());
  atomic_init(&conn->refs, 1);
  ir_error_e code = connect_to(conn, app_name);
  if (code != IR_OK) {
    if (conn->request_ring.header != NULL && !ir_conn_gone(conn)) {
      /* Give the claimed slot back: the broker frees the slot of an app whose Register failed. */
      char why[1024];
      (void)snprintf(why, sizeof why, "%s", ir_thread_error());
      ir_ctl_msg_t msg = {.opcode = IR_OP_UNREGISTER};
      (void)ir_conn_post(conn, &msg);
      (void)ir_fail(code, "%s", why);
    }
    destroy(conn);
    return code;
  }
  *out = conn;
  return IR_OK;
}

ir_error_e ir_connect(const char *app_name, ir_conn_t **out) {
  return ir_connect_ns(NULL, app_name, out);
}

void ir_close(ir_conn_t *conn) {
  if (conn == NULL) {
    return;
  }
  /* Closed first, under the lock reply readers hold: once the broker handles Unregister it resets the
   * slot's rings for the next app, and no thread of ours may read them after that. */
  pthread_mutex_lock(&conn->lock);
  atomic_store_explicit(&conn->closed, true, memory_order_release);
  pthread_mutex_unlock(&conn->lock);
  if (!ir_conn_gone(conn)) {
    /* Posted, not awaited: the broker frees the slot (and resets its rings) as it handles this. */
    ir_ctl_msg_t msg = {.opcode = IR_OP_UNREGISTER};
    (void)ir_conn_post(conn, &msg);
  }
  atomic_store_explicit(&conn->stop, true, memory_order_release);
  ir_bell_ring(ir_conn_own_bell(conn));
  ir_conn_unref(conn);
}

const char *ir_namespace(const ir_conn_t *conn) {
  return conn != NULL ? conn->ns : "";
}

uint32_t ir_app_id(const ir_conn_t *conn) {
  return conn != NULL ? conn->app_id : UINT32_MAX;
}

ir_error_e ir_set_wait(ir_conn_t *conn, ir_wait_e strategy, uint32_t spin_us, uint32_t yield_us) {
  if (conn == NULL) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_set_wait: conn must not be NULL");
  }
  return ir_conn_record(conn, ir_wait_set(&conn->wait, strategy, spin_us, yield_us));
}

void ir_free(void *ptr) {
  free(ptr);
}
