/* The control records an app and the broker exchange (spec/schemas/control.avsc), as C structs with a
 * table-driven codec: the frame payload is Single Object Encoding of the control union, whose branch
 * index is the opcode. Decoded strings and bytes are malloc'd (strings NUL-terminated); free with
 * ir_ctl_free. */
#ifndef IR_CONTROL_H
#define IR_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "impulse_ring.h"
#include "impulse_ring_avro.h"

/* IR_CONTROL_FINGERPRINT, the CRC-64-AVRO fingerprint of the control union carried by every control
 * frame, comes from the generated wire header (the C side never computes fingerprints; the self-test
 * also checks it against spec/vectors/control.txt). */
#include "impulse_ring_wire.h"

/* Opcodes: the union's branch indices. */
typedef enum ir_opcode_e {
  IR_OP_REGISTER = 0,
  IR_OP_REGISTERED,
  IR_OP_PUBLISH_CHANNEL,
  IR_OP_CHANNEL_PUBLISHED,
  IR_OP_SUBSCRIBE,
  IR_OP_SUBSCRIBED,
  IR_OP_UNSUBSCRIBE,
  IR_OP_CLOSE_CHANNEL,
  IR_OP_EXPOSE_FUNCTION,
  IR_OP_FUNCTION_EXPOSED,
  IR_OP_RESOLVE_FUNCTION,
  IR_OP_FUNCTION_RESOLVED,
  IR_OP_WITHDRAW_FUNCTION,
  IR_OP_LINK_OPENED,
  IR_OP_LINK_CLOSED,
  IR_OP_CHANNEL_CLOSED,
  IR_OP_LIST,
  IR_OP_LISTING,
  IR_OP_UNREGISTER,
  IR_OP_DONE,
  IR_OP_FAILED,
  IR_OP_CALL_ERROR,
  IR_OP_BROKER_SHUTDOWN,
  IR_OP_DESCRIBE,
  IR_OP_DESCRIPTION,
  IR_OP_MONITOR,
  IR_OP_MONITOR_EVENT,
  IR_OP_COUNT
} ir_opcode_e;

/* Avro `bytes`, and `["null","bytes"]` where `data` NULL is null (a decoded empty value has a
 * non-NULL `data`). */
typedef struct ir_ctl_bytes {
  uint8_t *data;
  size_t len;
} ir_ctl_bytes_t;

typedef struct ir_ctl_register {
  int64_t request_id;
  char *app_name;
  int64_t pid;
  int64_t start_time;
  ir_ctl_bytes_t public_key; /* the app's X25519 public key for this registration (bootstrap.md §5.5) */
} ir_ctl_register_t;

typedef struct ir_ctl_registered {
  int64_t request_id;
  int32_t app_id;
  int64_t broker_pid;
  ir_ctl_bytes_t public_key; /* the broker's */
} ir_ctl_registered_t;

typedef struct ir_ctl_publish_channel {
  int64_t request_id;
  char *name;
  char *schema;
  ir_ctl_bytes_t key; /* sealed on the wire; see ir_ctl_key */
  int64_t capacity;
  bool lossy;
} ir_ctl_publish_channel_t;

typedef struct ir_ctl_channel_published {
  int64_t request_id;
  int64_t channel_id;
  char *segment;
  int64_t fingerprint;
  int64_t capacity;
  int64_t max_payload;
} ir_ctl_channel_published_t;

typedef struct ir_ctl_subscribe {
  int64_t request_id;
  char *name;
  char *schema;
  ir_ctl_bytes_t key;
} ir_ctl_subscribe_t;

typedef struct ir_ctl_subscribed {
  int64_t request_id;
  int64_t channel_id;
  char *segment;
  int32_t subscriber_index;
  int64_t fingerprint;
  bool lossy;
} ir_ctl_subscribed_t;

typedef struct ir_ctl_unsubscribe {
  int64_t request_id;
  int64_t channel_id;
  int32_t subscriber_index;
} ir_ctl_unsubscribe_t;

typedef struct ir_ctl_close_channel {
  int64_t request_id;
  int64_t channel_id;
} ir_ctl_close_channel_t;

typedef struct ir_ctl_expose_function {
  int64_t request_id;
  char *name;
  char *request_schema;
  char *response_schema;
  ir_ctl_bytes_t key;
} ir_ctl_expose_function_t;

typedef struct ir_ctl_function_exposed {
  int64_t request_id;
  int64_t function_id;
  int64_t request_fingerprint;
  int64_t response_fingerprint;
} ir_ctl_function_exposed_t;

typedef struct ir_ctl_resolve_function {
  int64_t request_id;
  char *name;
  char *request_schema;
  char *response_schema;
  ir_ctl_bytes_t key;
} ir_ctl_resolve_function_t;

typedef struct ir_ctl_function_resolved {
  int64_t request_id;
  int64_t function_id;
  int64_t link_id;
  char *segment;
  int64_t request_fingerprint;
  int64_t response_fingerprint;
  int64_t max_payload;
} ir_ctl_function_resolved_t;

typedef struct ir_ctl_withdraw_function {
  int64_t request_id;
  int64_t function_id;
} ir_ctl_withdraw_function_t;

typedef struct ir_ctl_link_opened {
  int64_t function_id;
  int64_t link_id;
  char *segment;
} ir_ctl_link_opened_t;

typedef struct ir_ctl_link_closed {
  int64_t link_id;
  int32_t code;
  char *message;
} ir_ctl_link_closed_t;

typedef struct ir_ctl_channel_closed {
  int64_t channel_id;
} ir_ctl_channel_closed_t;

typedef struct ir_ctl_request_only {
  int64_t request_id;
} ir_ctl_request_only_t; /* List, Unregister, Done */

typedef struct ir_ctl_app_info {
  int32_t app_id;
  char *name;
  int64_t pid;
} ir_ctl_app_info_t;

typedef struct ir_ctl_channel_info {
  int64_t channel_id;
  char *name;
  int32_t owner_app_id;
  int64_t fingerprint;
  int64_t capacity;
  bool lossy;
  int32_t subscribers;
  int64_t published;
} ir_ctl_channel_info_t;

typedef struct ir_ctl_function_info {
  int64_t function_id;
  char *name;
  int32_t owner_app_id;
  int64_t request_fingerprint;
  int64_t response_fingerprint;
} ir_ctl_function_info_t;

typedef struct ir_ctl_listing {
  int64_t request_id;
  ir_ctl_app_info_t *apps;
  size_t apps_count;
  ir_ctl_channel_info_t *channels;
  size_t channels_count;
  ir_ctl_function_info_t *functions;
  size_t functions_count;
} ir_ctl_listing_t;

typedef struct ir_ctl_failed {
  int64_t request_id;
  int32_t code;
  char *message;
  int64_t expected_fingerprint;
  int64_t presented_fingerprint;
} ir_ctl_failed_t;

typedef struct ir_ctl_call_error {
  int32_t code;
  char *message;
} ir_ctl_call_error_t;

typedef struct ir_ctl_broker_shutdown {
  char *reason;
} ir_ctl_broker_shutdown_t;

typedef struct ir_ctl_describe {
  int64_t request_id;
  char *name;
  int64_t id;
} ir_ctl_describe_t;

typedef struct ir_ctl_subscriber_description {
  int32_t index;
  int32_t app_id;
  char *app_name;
  int64_t pid;
  int64_t position;
  int64_t lag;
  int64_t missed;
} ir_ctl_subscriber_description_t;

typedef struct ir_ctl_channel_description {
  int64_t channel_id;
  char *name;
  char *schema;
  int64_t fingerprint;
  int32_t owner_app_id;
  char *owner_app_name;
  int64_t owner_pid;
  bool key_gated;
  int64_t capacity;
  bool lossy;
  int64_t published;
  int64_t published_bytes;
  ir_ctl_subscriber_description_t *subscribers;
  size_t subscribers_count;
} ir_ctl_channel_description_t;

typedef struct ir_ctl_function_description {
  int64_t function_id;
  char *name;
  char *request_schema;
  char *response_schema;
  int64_t request_fingerprint;
  int64_t response_fingerprint;
  int32_t owner_app_id;
  char *owner_app_name;
  int64_t owner_pid;
  bool key_gated;
  int32_t links;
  int64_t calls;
  int64_t errors;
  int64_t in_flight;
} ir_ctl_function_description_t;

typedef struct ir_ctl_description {
  int64_t request_id;
  ir_ctl_channel_description_t *channels;
  size_t channels_count;
  ir_ctl_function_description_t *functions;
  size_t functions_count;
} ir_ctl_description_t;

typedef struct ir_ctl_monitor_event {
  int64_t time_ns;
  char *kind;
  int32_t app_id;
  char *app_name;
  int64_t pid;
  char *subject;
  char *detail;
} ir_ctl_monitor_event_t;

/* Any control record: `opcode` selects the union member. */
typedef struct ir_ctl_msg {
  ir_opcode_e opcode;
  union {
    ir_ctl_register_t register_;
    ir_ctl_registered_t registered;
    ir_ctl_publish_channel_t publish_channel;
    ir_ctl_channel_published_t channel_published;
    ir_ctl_subscribe_t subscribe;
    ir_ctl_subscribed_t subscribed;
    ir_ctl_unsubscribe_t unsubscribe;
    ir_ctl_close_channel_t close_channel;
    ir_ctl_expose_function_t expose_function;
    ir_ctl_function_exposed_t function_exposed;
    ir_ctl_resolve_function_t resolve_function;
    ir_ctl_function_resolved_t function_resolved;
    ir_ctl_withdraw_function_t withdraw_function;
    ir_ctl_link_opened_t link_opened;
    ir_ctl_link_closed_t link_closed;
    ir_ctl_channel_closed_t channel_closed;
    ir_ctl_request_only_t list;
    ir_ctl_listing_t listing;
    ir_ctl_request_only_t unregister;
    ir_ctl_request_only_t done;
    ir_ctl_failed_t failed;
    ir_ctl_call_error_t call_error;
    ir_ctl_broker_shutdown_t broker_shutdown;
    ir_ctl_describe_t describe;
    ir_ctl_description_t description;
    ir_ctl_request_only_t monitor;
    ir_ctl_monitor_event_t monitor_event;
  } u;
} ir_ctl_msg_t;

/* The record's name ("Register"), or "?" for an unknown opcode. */
const char *ir_ctl_name(ir_opcode_e opcode);

/* Appends the frame payload of `msg` (SOE header, opcode, record) to `w`. */
void ir_ctl_encode(const ir_ctl_msg_t *msg, ir_avro_writer_t *w);

/* Like ir_ctl_encode, but a `key` the record holds in clear goes out sealed with `session` and the
 * record's request id (bootstrap.md §5.5); the record itself keeps the clear key. False when out of
 * memory. */
bool ir_ctl_encode_sealed(ir_ctl_msg_t *msg, const uint8_t session[32], ir_avro_writer_t *w);

/* Decodes a frame payload into `msg` (which the caller frees with ir_ctl_free, also on failure).
 * Checks the magic, the control fingerprint, the branch, and that no byte is left over. Returns
 * IR_ERR_DECODE with the reason in `why`. */
ir_error_e ir_ctl_decode(const uint8_t *payload, size_t len, ir_ctl_msg_t *msg, char *why, size_t why_cap);

/* Frees the strings and arrays a decode allocated, and zeroes the message. */
void ir_ctl_free(ir_ctl_msg_t *msg);

/* The request id a reply echoes, or -1 for events (records that answer no request). */
int64_t ir_ctl_reply_id(const ir_ctl_msg_t *msg);

/* The request id a request carries (0 until one is given), or -1 for replies and events. */
int64_t ir_ctl_request_id(const ir_ctl_msg_t *msg);

/* Gives a request its id; does nothing to replies and events. */
void ir_ctl_set_request_id(ir_ctl_msg_t *msg, int64_t request_id);

/* The `key` field of PublishChannel, Subscribe, ExposeFunction and ResolveFunction; NULL for every
 * other record. The codec writes what the field holds: a request the app builds holds the key in
 * clear until the session seals it with the request's id as it encodes (session.c, bootstrap.md
 * §5.5), a decoded one holds the bytes the wire carried. */
ir_ctl_bytes_t *ir_ctl_key(ir_ctl_msg_t *msg);

/* The UTF-8 bytes of an access key the app gave as a C string (NULL: no key), for a `key` field. */
static inline ir_ctl_bytes_t ir_ctl_key_text(const char *key) {
  ir_ctl_bytes_t bytes = {.data = (uint8_t *)key, .len = key != NULL ? strlen(key) : 0};
  return bytes;
}

/* Appends `msg` as compact JSON with keys in alphabetical order (the `message:` form of
 * spec/vectors/control.txt): `Name {"field":value,...}`. Used by the self-test. */
void ir_ctl_to_json(const ir_ctl_msg_t *msg, ir_avro_writer_t *out);

#endif /* IR_CONTROL_H */
