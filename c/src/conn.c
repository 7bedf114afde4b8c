/* Connections: mapping the namespace's control segment, claiming an app slot with a CAS, registering
 * with the broker, and the control request/reply exchange over the slot's two rings. There is no
 * background thread: whoever waits (a control request, a call, ir_serve) reads the reply ring and
 * routes what it finds, and checks the broker's liveness while it sleeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "ring.h"

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

/* ---- Names ---- */

static bool valid_namespace(const char *ns) {
  size_t len = strlen(ns);
  if (len == 0 || len > IR_MAX_NS_LEN) {
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    char c = ns[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

ir_error_e ir_conn_check_segment_name(ir_conn_t *conn, const char *name) {
  size_t prefix = strlen(conn->prefix);
  if (strncmp(name, conn->prefix, prefix) != 0 || strlen(name) >= IR_SEG_NAME_MAX) {
    return ir_fail(IR_ERR_PROTOCOL, "protocol error: the broker named segment %.200s outside namespace `%s`", name,
                   conn->ns);
  }
  return IR_OK;
}

/* ---- Lifetime ---- */

void ir_conn_ref(ir_conn_t *conn) {
  atomic_fetch_add_explicit(&conn->refs, 1, memory_order_relaxed);
}

static void destroy(ir_conn_t *conn) {
  ir_calls_teardown(conn);
  ir_seg_close(&conn->ctl);
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

ir_doorbell_t *ir_conn_app_bell(ir_conn_t *conn, uint32_t slot) {
  if (slot >= conn->max_apps) {
    return NULL;
  }
  uint64_t base = IR_CTL_SLOTS + (uint64_t)slot * ir_control_slot_size(conn->ring_capacity);
  ir_slot_header_t *header = ir_seg_at(&conn->ctl, base);
  return &header->doorbell;
}

/* ---- Liveness ---- */

static void mark_broker_gone(ir_conn_t *conn) {
  /* Called with conn->lock held. */
  if (atomic_exchange_explicit(&conn->broker_gone, true, memory_order_acq_rel)) {
    return;
  }
  char message[160];
  (void)snprintf(message, sizeof message, "the broker of namespace `%s` is gone", conn->ns);
  ir_calls_fail_all(conn, IR_ERR_BROKER_GONE, message);
}

bool ir_conn_gone(ir_conn_t *conn) {
  return atomic_load_explicit(&conn->broker_gone, memory_order_acquire) ||
         atomic_load_explicit(&conn->header->shutting_down, memory_order_acquire) != 0;
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
  bool shutting_down = atomic_load_explicit(&conn->header->shutting_down, memory_order_acquire) != 0;
  if (shutting_down || !ir_process_alive(conn->broker_pid, conn->broker_start)) {
    pthread_mutex_lock(&conn->lock);
    mark_broker_gone(conn);
    pthread_mutex_unlock(&conn->lock);
    /* Other threads of ours may sleep waiting for replies that will never come. */
    ir_bell_ring(ir_conn_app_bell(conn, conn->app_id));
  }
}

ir_error_e ir_conn_usable(ir_conn_t *conn) {
  if (atomic_load_explicit(&conn->closed, memory_order_acquire)) {
    return ir_fail(IR_ERR_CLOSED, "the connection is closed");
  }
  if (ir_conn_gone(conn)) {
    return ir_fail(IR_ERR_BROKER_GONE, "the broker of namespace `%s` is gone", conn->ns);
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

int64_t ir_conn_request_id(ir_conn_t *conn) {
  return (int64_t)atomic_fetch_add_explicit(&conn->next_request_id, 1, memory_order_relaxed);
}

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
    code = ir_fail(IR_ERR_BROKER_GONE, "the broker of namespace `%s` is gone", ctx->conn->ns);
  }
  ctx->result = code;
  return true;
}

ir_error_e ir_conn_post(ir_conn_t *conn, const ir_ctl_msg_t *msg) {
  if (ir_conn_gone(conn)) {
    return ir_fail(IR_ERR_BROKER_GONE, "the broker of namespace `%s` is gone", conn->ns);
  }
  ir_avro_writer_t w;
  ir_avro_writer_init_dynamic(&w);
  ir_ctl_encode(msg, &w);
  if (!ir_avro_writer_ok(&w)) {
    ir_avro_writer_free(&w);
    return ir_fail(IR_ERR_IO, "out of memory encoding a %s record", ir_ctl_name(msg->opcode));
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
  bool written = ir_bell_wait(ir_conn_app_bell(conn, conn->app_id), &conn->wait, ir_deadline(IR_CONTROL_TIMEOUT_MS),
                              try_post, &ctx, ir_conn_health, conn);
  ir_ring_set_producer_waiting(&conn->request_ring, false);
  pthread_mutex_unlock(&conn->post_lock);
  ir_avro_writer_free(&w);
  if (!written) {
    return ir_fail(IR_ERR_TIMEOUT, "writing a control request timed out after %d ms", IR_CONTROL_TIMEOUT_MS);
  }
  if (ctx.result == IR_ERR_TOO_LARGE) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "the %s request is too large for the control ring: %s",
                   ir_ctl_name(msg->opcode), ir_thread_error());
  }
  if (ctx.result != IR_OK) {
    return ctx.result;
  }
  ir_bell_ring(&conn->header->broker_doorbell);
  return IR_OK;
}

/* Routes one record from the reply ring. Called with conn->lock held; takes ownership of `msg`. */
static void dispatch(ir_conn_t *conn, ir_ctl_msg_t *msg) {
  int64_t id = ir_ctl_reply_id(msg);
  if (id >= 0) {
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
  switch (msg->opcode) {
    case IR_OP_LINK_OPENED:
      ir_calls_link_opened(conn, &msg->u.link_opened);
      break;
    case IR_OP_LINK_CLOSED:
      ir_calls_link_closed(conn, (uint64_t)msg->u.link_closed.link_id, msg->u.link_closed.message);
      break;
    case IR_OP_BROKER_SHUTDOWN:
      mark_broker_gone(conn);
      break;
    default:
      break;
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
  if (atomic_load_explicit(&conn->header->shutting_down, memory_order_acquire) != 0) {
    /* Links closing in a shutdown are the broker leaving: pending calls fail with BrokerGone. */
    mark_broker_gone(conn);
  }
  bool completed = ir_calls_progress(conn);
  pthread_mutex_unlock(&conn->lock);
  if (completed) {
    /* Another thread of ours may sleep waiting for one of these results. */
    ir_bell_ring(ir_conn_app_bell(conn, conn->app_id));
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
  int code = failed->code;
  const char *message = failed->message != NULL ? failed->message : "";
  switch (code) {
    case IR_ERR_NO_BROKER:
      return ir_fail(IR_ERR_NO_BROKER, "no broker is running in namespace `%s` (start one with `impulsed --ns %s`)",
                     conn->ns, conn->ns);
    case IR_ERR_BROKER_GONE:
      return ir_fail(IR_ERR_BROKER_GONE, "the broker of namespace `%s` is gone", conn->ns);
    case IR_ERR_SCHEMA_MISMATCH:
      return ir_fail(IR_ERR_SCHEMA_MISMATCH, "%s (expected %016llx, presented %016llx)", message,
                     (unsigned long long)failed->expected_fingerprint,
                     (unsigned long long)failed->presented_fingerprint);
    default:
      if (code >= IR_ERR_NO_BROKER && code <= IR_ERR_PROTOCOL) {
        return ir_fail((ir_error_e)code, "%s", message);
      }
      return ir_fail(IR_ERR_PROTOCOL, "protocol error: error code %d: %s", code, message);
  }
}

ir_error_e ir_conn_request(ir_conn_t *conn, int64_t request_id, const ir_ctl_msg_t *msg, ir_ctl_msg_t *reply,
                           ir_opcode_e expected) {
  memset(reply, 0, sizeof *reply);
  ir_reply_waiter_t waiter = {.request_id = request_id};
  pthread_mutex_lock(&conn->lock);
  waiter.next = conn->waiters;
  conn->waiters = &waiter;
  pthread_mutex_unlock(&conn->lock);

  ir_error_e code = ir_conn_post(conn, msg);
  if (code == IR_OK) {
    request_ctx_t ctx = {.conn = conn, .waiter = &waiter};
    (void)ir_bell_wait(ir_conn_app_bell(conn, conn->app_id), &conn->wait, ir_deadline(IR_CONTROL_TIMEOUT_MS),
                       reply_arrived, &ctx, ir_conn_health, conn);
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
      return ir_fail(IR_ERR_BROKER_GONE, "the broker of namespace `%s` is gone", conn->ns);
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

static ir_error_e no_broker(const char *ns) {
  return ir_fail(IR_ERR_NO_BROKER, "no broker is running in namespace `%s` (start one with `impulsed --ns %s`)", ns,
                 ns);
}

/* Maps the control segment of conn->ns and validates its header. */
static ir_error_e open_control(ir_conn_t *conn) {
  char name[IR_SEG_NAME_MAX];
  (void)snprintf(name, sizeof name, "/impulse-ring.%s.ctl", conn->ns);
  bool missing = false;
  ir_error_e code = ir_seg_open(name, IR_KIND_CONTROL, &conn->ctl, &missing);
  /* A control segment that exists but is not ready belongs to a broker still starting: give it up to
   * a second (bootstrap.md) before concluding there is no broker. */
  char path[IR_SEG_NAME_MAX + 16];
  (void)snprintf(path, sizeof path, "/dev/shm%s", name);
  for (int tries = 0; code != IR_OK && missing && tries < 200 && access(path, F_OK) == 0; tries++) {
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 5000000L};
    (void)nanosleep(&pause, NULL);
    missing = false;
    code = ir_seg_open(name, IR_KIND_CONTROL, &conn->ctl, &missing);
  }
  if (code != IR_OK) {
    return missing ? no_broker(conn->ns) : code;
  }
  conn->header = ir_seg_at(&conn->ctl, 0);
  conn->max_apps = atomic_load_explicit(&conn->header->max_apps, memory_order_relaxed);
  conn->ring_capacity = atomic_load_explicit(&conn->header->ring_capacity, memory_order_relaxed);
  uint64_t expected = IR_CTL_SLOTS + (uint64_t)conn->max_apps * ir_control_slot_size(conn->ring_capacity);
  if (conn->max_apps == 0 || conn->max_apps > 4096 || !ir_valid_capacity(conn->ring_capacity) ||
      expected != (uint64_t)conn->ctl.len) {
    return ir_fail(IR_ERR_CORRUPT, "segment %s is corrupt: %u slots of ring capacity %llu do not match %zu bytes", name,
                   conn->max_apps, (unsigned long long)conn->ring_capacity, conn->ctl.len);
  }
  conn->broker_pid = atomic_load_explicit(&conn->header->broker_pid, memory_order_relaxed);
  conn->broker_start = atomic_load_explicit(&conn->header->broker_start, memory_order_relaxed);
  if (!ir_process_alive(conn->broker_pid, conn->broker_start) ||
      atomic_load_explicit(&conn->header->shutting_down, memory_order_acquire) != 0) {
    return no_broker(conn->ns);
  }
  return IR_OK;
}

/* Claims a free app slot with a CAS and writes our identity into it. */
static ir_error_e claim_slot(ir_conn_t *conn) {
  uint32_t pid = (uint32_t)getpid();
  uint64_t start = ir_process_start_time(pid);
  uint64_t slot_size = ir_control_slot_size(conn->ring_capacity);
  for (uint32_t slot = 0; slot < conn->max_apps; slot++) {
    ir_slot_header_t *header = ir_seg_at(&conn->ctl, IR_CTL_SLOTS + (uint64_t)slot * slot_size);
    uint32_t expected = IR_SLOT_FREE;
    /* SYNC: claim slot — the Acquire half pairs with the broker's Release store in free_slot. */
    if (atomic_compare_exchange_strong_explicit(&header->state, &expected, IR_SLOT_CLAIMED, memory_order_acq_rel,
                                                memory_order_relaxed)) {
      atomic_store_explicit(&header->pid, pid, memory_order_relaxed);
      atomic_store_explicit(&header->start, start, memory_order_release);
      conn->app_id = slot;
      return IR_OK;
    }
  }
  return ir_fail(IR_ERR_LIMIT_REACHED, "all %u app slots of namespace `%s` are taken", conn->max_apps, conn->ns);
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
  uint64_t slot_base = IR_CTL_SLOTS + (uint64_t)conn->app_id * ir_control_slot_size(conn->ring_capacity);
  uint64_t request_base = slot_base + IR_SLOT_REQUEST_RING;
  uint64_t reply_base = request_base + IR_RING_HEADER_SIZE + conn->ring_capacity;
  code = ir_ring_open(&conn->ctl, request_base, conn->ring_capacity, &conn->request_ring);
  if (code == IR_OK) {
    code = ir_ring_open(&conn->ctl, reply_base, conn->ring_capacity, &conn->reply_ring);
  }
  if (code != IR_OK) {
    return code;
  }
  uint32_t pid = (uint32_t)getpid();
  int64_t request_id = ir_conn_request_id(conn);
  ir_ctl_msg_t msg = {.opcode = IR_OP_REGISTER};
  msg.u.register_.request_id = request_id;
  msg.u.register_.app_name = (char *)app_name;
  msg.u.register_.pid = pid;
  msg.u.register_.start_time = (int64_t)ir_process_start_time(pid);
  ir_ctl_msg_t reply;
  code = ir_conn_request(conn, request_id, &msg, &reply, IR_OP_REGISTERED);
  if (code == IR_OK) {
    ir_ctl_free(&reply);
  } else if (code == IR_ERR_TIMEOUT && !ir_process_alive(conn->broker_pid, conn->broker_start)) {
    code = no_broker(conn->ns);
  }
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
  if (!valid_namespace(ns)) {
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
  (void)snprintf(conn->prefix, sizeof conn->prefix, "/impulse-ring.%s.", ns);
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
      msg.u.unregister.request_id = ir_conn_request_id(conn);
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
    msg.u.unregister.request_id = ir_conn_request_id(conn);
    (void)ir_conn_post(conn, &msg);
  }
  atomic_store_explicit(&conn->stop, true, memory_order_release);
  ir_bell_ring(ir_conn_app_bell(conn, conn->app_id));
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
