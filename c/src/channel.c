/* Data channels: a publisher writes Single Object Encoded messages straight into the channel's
 * shared ring; each subscriber reads them in place with its own cursor. The broker only sets a
 * channel up and tears it down; publishing and receiving make no system call while the peer is
 * active (a doorbell costs a fence and a load unless someone sleeps). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

struct ir_publisher {
  ir_conn_t *conn;
  char *name;
  ir_seg_t seg;
  ir_pub_cursor_t cursor;
  uint64_t fingerprint;
  uint8_t soe[IR_AVRO_SOE_HEADER_LEN];
  ir_wait_t wait;
};

struct ir_subscriber {
  ir_conn_t *conn;
  char *name;
  ir_seg_t seg;
  ir_sub_cursor_t cursor;
  uint64_t channel_id;
  uint64_t fingerprint;
  ir_wait_t wait;
  uint64_t missed;
  /* A message handed out by ir_receive_view and not yet released. */
  bool holding;
  ir_frame_t held;
};

/* The segment the broker named must be the channel the broker described. */
static ir_error_e open_channel(ir_conn_t *conn, const char *name, const char *segment, int64_t channel_id,
                               int64_t fingerprint, ir_seg_t *seg, ir_chcfg_t *config) {
  ir_error_e code = ir_conn_check_segment_name(conn, segment);
  if (code != IR_OK) {
    return code;
  }
  bool missing = false;
  code = ir_seg_open(segment, IR_KIND_CHANNEL, seg, &missing);
  if (code != IR_OK && missing) {
    /* The publisher closed the channel (and the broker unlinked it) after the broker answered. */
    return ir_fail(IR_ERR_CLOSED, "channel `%s` is closed", name);
  }
  if (code != IR_OK) {
    return code;
  }
  code = ir_chcfg_read(seg, config);
  if (code == IR_OK && (config->channel_id != (uint64_t)channel_id || config->fingerprint != (uint64_t)fingerprint)) {
    code = ir_fail(IR_ERR_CORRUPT, "channel segment %s holds channel %llu of schema %016llx", segment,
                   (unsigned long long)config->channel_id, (unsigned long long)config->fingerprint);
  }
  if (code != IR_OK) {
    ir_seg_close(seg);
  }
  return code;
}

/* ---- Publishing ---- */

static ir_error_e publish_channel(ir_conn_t *conn, const char *name, const char *schema_json, const char *key,
                                  uint64_t capacity, uint32_t flags, ir_publisher_t **out) {
  if (conn == NULL || name == NULL || schema_json == NULL || out == NULL) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_publish_channel: conn, name, schema_json and out must not be NULL");
  }
  *out = NULL;
  if (flags > IR_CHANNEL_LOSSY) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "unknown channel flags %u", flags);
  }
  if (capacity > INT64_MAX) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "capacity %llu is out of range", (unsigned long long)capacity);
  }
  ir_ctl_msg_t msg = {.opcode = IR_OP_PUBLISH_CHANNEL};
  msg.u.publish_channel.name = (char *)name;
  msg.u.publish_channel.schema = (char *)schema_json;
  msg.u.publish_channel.key = ir_ctl_key_text(key);
  msg.u.publish_channel.capacity = (int64_t)capacity;
  msg.u.publish_channel.lossy = flags == IR_CHANNEL_LOSSY;
  ir_ctl_msg_t reply;
  ir_error_e code = ir_conn_request(conn, &msg, &reply, IR_OP_CHANNEL_PUBLISHED);
  if (code != IR_OK) {
    return code;
  }
  const ir_ctl_channel_published_t *published = &reply.u.channel_published;
  ir_publisher_t *pub = calloc(1, sizeof *pub);
  if (pub == NULL || (pub->name = ir_strdup(name)) == NULL) {
    free(pub);
    ir_ctl_free(&reply);
    return ir_fail(IR_ERR_IO, "out of memory");
  }
  ir_chcfg_t config;
  code =
      open_channel(conn, name, published->segment, published->channel_id, published->fingerprint, &pub->seg, &config);
  if (code != IR_OK) {
    free(pub->name);
    free(pub);
    ir_ctl_free(&reply);
    return code;
  }
  pub->conn = conn;
  pub->fingerprint = config.fingerprint;
  pub->wait = conn->wait;
  ir_avro_soe_header(pub->soe, config.fingerprint);
  ir_pub_cursor_init(&pub->cursor, &pub->seg, &config);
  ir_conn_ref(conn);
  ir_ctl_free(&reply);
  *out = pub;
  return IR_OK;
}

ir_error_e ir_publish_channel(ir_conn_t *conn, const char *name, const char *schema_json, const char *key,
                              uint64_t capacity, uint32_t flags, ir_publisher_t **out) {
  return ir_conn_record(conn, publish_channel(conn, name, schema_json, key, capacity, flags, out));
}

typedef struct publish_ctx {
  ir_publisher_t *pub;
  const void *datum;
  size_t len;
  ir_error_e result;
} publish_ctx_t;

static bool try_publish_once(void *arg) {
  publish_ctx_t *ctx = arg;
  ctx->result = ir_pub_try_publish(&ctx->pub->cursor, ctx->pub->soe, IR_AVRO_SOE_HEADER_LEN, ctx->datum, ctx->len);
  if (ctx->result != IR_ERR_WOULD_BLOCK) {
    return true;
  }
  if (ir_conn_gone(ctx->pub->conn)) {
    ctx->result = ir_conn_fail_broker_gone(ctx->pub->conn);
    return true;
  }
  return false;
}

static ir_error_e publish(ir_publisher_t *pub, const void *datum, size_t len, int64_t timeout_ms) {
  if (pub == NULL || (datum == NULL && len > 0)) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_publish: pub must not be NULL, nor datum when len > 0");
  }
  if (atomic_load_explicit(&pub->conn->closed, memory_order_relaxed)) {
    return ir_fail(IR_ERR_CLOSED, "channel `%s` is closed: its connection was closed", pub->name);
  }
  publish_ctx_t ctx = {.pub = pub, .datum = datum, .len = len, .result = IR_OK};
  ir_channel_header_t *header = pub->cursor.header;
  if (!try_publish_once(&ctx) && timeout_ms != 0) {
    if (!ir_bell_wait(&header->space_doorbell, &pub->wait, ir_deadline(timeout_ms), try_publish_once, &ctx,
                      ir_conn_health, pub->conn)) {
      return ir_fail(IR_ERR_TIMEOUT, "publishing on `%s` timed out after %lld ms (a subscriber is a whole ring behind)",
                     pub->name, (long long)timeout_ms);
    }
  }
  if (ctx.result == IR_ERR_WOULD_BLOCK) {
    return ir_fail(IR_ERR_WOULD_BLOCK, "channel `%s` is full: a subscriber is a whole ring behind", pub->name);
  }
  if (ctx.result != IR_OK) {
    return ctx.result;
  }
  ir_bell_ring(&header->data_doorbell);
  return IR_OK;
}

ir_error_e ir_publish(ir_publisher_t *pub, const void *datum, size_t len, int64_t timeout_ms) {
  ir_error_e code = publish(pub, datum, len, timeout_ms);
  return code == IR_OK || pub == NULL ? code : ir_conn_record(pub->conn, code);
}

ir_error_e ir_try_publish(ir_publisher_t *pub, const void *datum, size_t len) {
  return ir_publish(pub, datum, len, 0);
}

size_t ir_publisher_max_datum(const ir_publisher_t *pub) {
  return pub != NULL ? (size_t)(ir_max_payload(pub->cursor.config.capacity) - IR_AVRO_SOE_HEADER_LEN) : 0;
}

uint64_t ir_publisher_fingerprint(const ir_publisher_t *pub) {
  return pub != NULL ? pub->fingerprint : 0;
}

uint64_t ir_publisher_channel_id(const ir_publisher_t *pub) {
  return pub != NULL ? pub->cursor.config.channel_id : 0;
}

uint32_t ir_publisher_subscribers(const ir_publisher_t *pub) {
  if (pub == NULL) {
    return 0;
  }
  uint32_t count = 0;
  for (uint32_t i = 0; i < pub->cursor.config.max_subscribers; i++) {
    /* Joined subscribers only: a slot the broker reserved for a subscriber that has not joined yet
     * would let the publisher start before that subscriber sees anything. */
    if (atomic_load_explicit(&pub->cursor.subs[i].state, memory_order_acquire) == IR_SUB_ACTIVE) {
      count++;
    }
  }
  return count;
}

ir_error_e ir_publisher_set_wait(ir_publisher_t *pub, ir_wait_e strategy, uint32_t spin_us, uint32_t yield_us) {
  if (pub == NULL) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_publisher_set_wait: pub must not be NULL");
  }
  return ir_conn_record(pub->conn, ir_wait_set(&pub->wait, strategy, spin_us, yield_us));
}

void ir_publisher_close(ir_publisher_t *pub) {
  if (pub == NULL) {
    return;
  }
  ir_channel_header_t *header = pub->cursor.header;
  /* Close at once (subscribers need not wait for the broker), then let the broker unlink. */
  atomic_store_explicit(&header->closed, 1, memory_order_release);
  ir_bell_ring(&header->data_doorbell);
  ir_conn_t *conn = pub->conn;
  if (ir_conn_usable(conn) == IR_OK) {
    ir_ctl_msg_t msg = {.opcode = IR_OP_CLOSE_CHANNEL};
    msg.u.close_channel.channel_id = (int64_t)pub->cursor.config.channel_id;
    (void)ir_conn_post(conn, &msg);
  }
  ir_seg_close(&pub->seg);
  free(pub->name);
  free(pub);
  ir_conn_unref(conn);
}

/* ---- Subscribing ---- */

static ir_error_e subscribe(ir_conn_t *conn, const char *name, const char *key, const char *schema_json,
                            ir_subscriber_t **out) {
  if (conn == NULL || name == NULL || schema_json == NULL || out == NULL) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_subscribe: conn, name, schema_json and out must not be NULL");
  }
  *out = NULL;
  ir_ctl_msg_t msg = {.opcode = IR_OP_SUBSCRIBE};
  msg.u.subscribe.name = (char *)name;
  msg.u.subscribe.schema = (char *)schema_json;
  msg.u.subscribe.key = ir_ctl_key_text(key);
  ir_ctl_msg_t reply;
  ir_error_e code = ir_conn_request(conn, &msg, &reply, IR_OP_SUBSCRIBED);
  if (code != IR_OK) {
    return code;
  }
  const ir_ctl_subscribed_t *subscribed = &reply.u.subscribed;
  ir_subscriber_t *sub = calloc(1, sizeof *sub);
  if (sub == NULL || (sub->name = ir_strdup(name)) == NULL) {
    free(sub);
    ir_ctl_free(&reply);
    return ir_fail(IR_ERR_IO, "out of memory");
  }
  ir_chcfg_t config;
  code = open_channel(conn, name, subscribed->segment, subscribed->channel_id, subscribed->fingerprint, &sub->seg,
                      &config);
  if (code == IR_OK) {
    if (subscribed->subscriber_index < 0) {
      code = ir_fail(IR_ERR_PROTOCOL, "protocol error: subscriber index %d", subscribed->subscriber_index);
    } else {
      code = ir_sub_cursor_join(&sub->cursor, &sub->seg, &config, (uint32_t)subscribed->subscriber_index);
    }
    if (code != IR_OK) {
      ir_seg_close(&sub->seg);
    }
  }
  if (code != IR_OK) {
    free(sub->name);
    free(sub);
    ir_ctl_free(&reply);
    return code;
  }
  sub->conn = conn;
  sub->channel_id = config.channel_id;
  sub->fingerprint = config.fingerprint;
  sub->wait = conn->wait;
  ir_conn_ref(conn);
  ir_ctl_free(&reply);
  *out = sub;
  return IR_OK;
}

ir_error_e ir_subscribe(ir_conn_t *conn, const char *name, const char *key, const char *schema_json,
                        ir_subscriber_t **out) {
  return ir_conn_record(conn, subscribe(conn, name, key, schema_json, out));
}

/* Gives back a held message: advances the cursor and wakes a publisher waiting for space. */
static void release(ir_subscriber_t *sub) {
  if (sub->holding) {
    sub->holding = false;
    ir_sub_advance(&sub->cursor, &sub->held);
    ir_bell_ring(&sub->cursor.header->space_doorbell);
  }
}

void ir_subscriber_release(ir_subscriber_t *sub) {
  if (sub != NULL) {
    release(sub);
  }
}

typedef struct receive_ctx {
  ir_subscriber_t *sub;
  ir_frame_t frame;
  ir_error_e result;
} receive_ctx_t;

static bool try_receive_once(void *arg) {
  receive_ctx_t *ctx = arg;
  ir_subscriber_t *sub = ctx->sub;
  ir_recv_e outcome = IR_RECV_EMPTY;
  uint64_t missed = 0;
  ir_error_e code = ir_sub_try_recv(&sub->cursor, &ctx->frame, &outcome, &missed);
  if (code != IR_OK) {
    ctx->result = code;
    return true;
  }
  switch (outcome) {
    case IR_RECV_FRAME: {
      uint64_t fingerprint = 0;
      if (!ir_avro_soe_split(ctx->frame.payload, ctx->frame.len, &fingerprint)) {
        ctx->result = ir_fail(IR_ERR_DECODE, "a message on `%s` is not a single object encoding", sub->name);
      } else if (fingerprint != sub->fingerprint) {
        ctx->result = ir_fail(IR_ERR_DECODE, "a message on `%s` carries schema %016llx, expected %016llx", sub->name,
                              (unsigned long long)fingerprint, (unsigned long long)sub->fingerprint);
      } else {
        ctx->result = IR_OK;
      }
      if (ctx->result != IR_OK) {
        /* Skip the foreign message so the next receive moves on. */
        ir_sub_advance(&sub->cursor, &ctx->frame);
        ir_bell_ring(&sub->cursor.header->space_doorbell);
      }
      return true;
    }
    case IR_RECV_LAGGED:
      sub->missed = missed;
      ctx->result =
          ir_fail(IR_ERR_LAGGED, "the subscriber fell behind and missed %llu messages", (unsigned long long)missed);
      return true;
    case IR_RECV_CLOSED:
      /* A broker that shuts down closes every channel: that is the broker leaving, not the publisher. */
      if (ir_conn_shutting_down(sub->conn)) {
        ctx->result = ir_conn_fail_broker_gone(sub->conn);
        return true;
      }
      ctx->result = ir_fail(IR_ERR_CLOSED, "channel `%s` is closed", sub->name);
      return true;
    case IR_RECV_EMPTY:
      if (ir_conn_gone(sub->conn)) {
        ctx->result = ir_conn_fail_broker_gone(sub->conn);
        return true;
      }
      return false;
  }
  return false;
}

/* Waits for the next message of the channel's schema; on IR_OK ctx->frame holds it, not yet released. */
static ir_error_e next_message(ir_subscriber_t *sub, receive_ctx_t *ctx, int64_t timeout_ms) {
  release(sub);
  ctx->sub = sub;
  ctx->result = IR_OK;
  bool done = try_receive_once(ctx);
  if (!done && timeout_ms != 0) {
    done = ir_bell_wait(&sub->cursor.header->data_doorbell, &sub->wait, ir_deadline(timeout_ms), try_receive_once, ctx,
                        ir_conn_health, sub->conn);
  }
  if (!done) {
    return ir_fail(IR_ERR_TIMEOUT, "no message on `%s` within %lld ms", sub->name, (long long)timeout_ms);
  }
  return ctx->result;
}

static ir_error_e receive(ir_subscriber_t *sub, void *buf, size_t cap, size_t *len, int64_t timeout_ms) {
  if (sub == NULL || len == NULL || (buf == NULL && cap > 0)) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_receive: sub and len must not be NULL, nor buf when cap > 0");
  }
  *len = 0;
  receive_ctx_t ctx;
  ir_error_e code = next_message(sub, &ctx, timeout_ms);
  if (code != IR_OK) {
    return code;
  }
  size_t datum_len = ctx.frame.len - IR_AVRO_SOE_HEADER_LEN;
  *len = datum_len;
  if (datum_len > cap) {
    /* Left in place: the caller may receive it again with a larger buffer. */
    return ir_fail(IR_ERR_TOO_LARGE, "a message of %zu bytes does not fit the buffer of %zu bytes", datum_len, cap);
  }
  if (datum_len > 0) {
    memcpy(buf, ctx.frame.payload + IR_AVRO_SOE_HEADER_LEN, datum_len);
  }
  ir_sub_advance(&sub->cursor, &ctx.frame);
  ir_bell_ring(&sub->cursor.header->space_doorbell);
  return IR_OK;
}

ir_error_e ir_receive(ir_subscriber_t *sub, void *buf, size_t cap, size_t *len, int64_t timeout_ms) {
  ir_error_e code = receive(sub, buf, cap, len, timeout_ms);
  return code == IR_OK || sub == NULL ? code : ir_conn_record(sub->conn, code);
}

static ir_error_e receive_view(ir_subscriber_t *sub, const uint8_t **datum, size_t *len, int64_t timeout_ms) {
  if (sub == NULL || datum == NULL || len == NULL) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_receive_view: sub, datum and len must not be NULL");
  }
  *datum = NULL;
  *len = 0;
  receive_ctx_t ctx;
  ir_error_e code = next_message(sub, &ctx, timeout_ms);
  if (code != IR_OK) {
    return code;
  }
  sub->held = ctx.frame;
  sub->holding = true;
  *datum = ctx.frame.payload + IR_AVRO_SOE_HEADER_LEN;
  *len = ctx.frame.len - IR_AVRO_SOE_HEADER_LEN;
  return IR_OK;
}

ir_error_e ir_receive_view(ir_subscriber_t *sub, const uint8_t **datum, size_t *len, int64_t timeout_ms) {
  ir_error_e code = receive_view(sub, datum, len, timeout_ms);
  return code == IR_OK || sub == NULL ? code : ir_conn_record(sub->conn, code);
}

uint64_t ir_subscriber_missed(const ir_subscriber_t *sub) {
  return sub != NULL ? sub->missed : 0;
}

uint64_t ir_subscriber_fingerprint(const ir_subscriber_t *sub) {
  return sub != NULL ? sub->fingerprint : 0;
}

ir_error_e ir_subscriber_set_wait(ir_subscriber_t *sub, ir_wait_e strategy, uint32_t spin_us, uint32_t yield_us) {
  if (sub == NULL) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "ir_subscriber_set_wait: sub must not be NULL");
  }
  return ir_conn_record(sub->conn, ir_wait_set(&sub->wait, strategy, spin_us, yield_us));
}

void ir_subscriber_close(ir_subscriber_t *sub) {
  if (sub == NULL) {
    return;
  }
  ir_conn_t *conn = sub->conn;
  release(sub);
  uint32_t index = sub->cursor.index;
  if (atomic_load_explicit(&conn->closed, memory_order_acquire)) {
    /* The broker freed our slot when it collected the app; it may belong to someone else by now. */
    sub->cursor.slot = NULL;
  }
  ir_sub_cursor_leave(&sub->cursor);
  ir_bell_ring(&sub->cursor.header->space_doorbell);
  if (ir_conn_usable(conn) == IR_OK) {
    ir_ctl_msg_t msg = {.opcode = IR_OP_UNSUBSCRIBE};
    msg.u.unsubscribe.channel_id = (int64_t)sub->channel_id;
    msg.u.unsubscribe.subscriber_index = (int32_t)index;
    (void)ir_conn_post(conn, &msg);
  }
  ir_seg_close(&sub->seg);
  free(sub->name);
  free(sub);
  ir_conn_unref(conn);
}
