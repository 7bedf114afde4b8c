/* The control record codec: one field table per record (name, Avro type, offset in the C struct) in
 * the order of spec/schemas/control.avsc, and one generic encoder, decoder, destructor and JSON
 * printer that walk the tables. Adding a record means appending a struct and a table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "seal.h"

typedef enum field_type_e { F_LONG, F_INT, F_BOOL, F_STRING, F_OPT_STRING, F_BYTES, F_OPT_BYTES, F_ARRAY } field_type_e;

typedef struct record_desc record_desc_t;

typedef struct field_desc {
  const char *name;
  field_type_e type;
  size_t offset;
  const record_desc_t *items; /* F_ARRAY: the item record; the pointer is at `offset` */
  size_t count_offset;        /* F_ARRAY: the size_t count */
} field_desc_t;

struct record_desc {
  const char *name;
  size_t size;
  size_t nfields;
  const field_desc_t *fields;
};

#define FIELD(type_, member, kind) \
  { #member, kind, offsetof(type_, member), NULL, 0 }
#define LONG(t, m) FIELD(t, m, F_LONG)
#define INT(t, m) FIELD(t, m, F_INT)
#define BOOL(t, m) FIELD(t, m, F_BOOL)
#define STRING(t, m) FIELD(t, m, F_STRING)
#define OPT_STRING(t, m) FIELD(t, m, F_OPT_STRING)
#define BYTES(t, m) FIELD(t, m, F_BYTES)
#define OPT_BYTES(t, m) FIELD(t, m, F_OPT_BYTES)
#define ARRAY(t, m, desc) \
  { #m, F_ARRAY, offsetof(t, m), &(desc), offsetof(t, m##_count) }
#define RECORD(name_, type_, fields_) \
  { name_, sizeof(type_), sizeof(fields_) / sizeof((fields_)[0]), fields_ }

static const field_desc_t register_fields[] = {
    LONG(ir_ctl_register_t, request_id), STRING(ir_ctl_register_t, app_name),  LONG(ir_ctl_register_t, pid),
    LONG(ir_ctl_register_t, start_time), BYTES(ir_ctl_register_t, public_key),
};
static const field_desc_t registered_fields[] = {
    LONG(ir_ctl_registered_t, request_id),
    INT(ir_ctl_registered_t, app_id),
    LONG(ir_ctl_registered_t, broker_pid),
    BYTES(ir_ctl_registered_t, public_key),
};
static const field_desc_t publish_channel_fields[] = {
    LONG(ir_ctl_publish_channel_t, request_id), STRING(ir_ctl_publish_channel_t, name),
    STRING(ir_ctl_publish_channel_t, schema),   OPT_BYTES(ir_ctl_publish_channel_t, key),
    LONG(ir_ctl_publish_channel_t, capacity),   BOOL(ir_ctl_publish_channel_t, lossy),
};
static const field_desc_t channel_published_fields[] = {
    LONG(ir_ctl_channel_published_t, request_id), LONG(ir_ctl_channel_published_t, channel_id),
    STRING(ir_ctl_channel_published_t, segment),  LONG(ir_ctl_channel_published_t, fingerprint),
    LONG(ir_ctl_channel_published_t, capacity),   LONG(ir_ctl_channel_published_t, max_payload),
};
static const field_desc_t subscribe_fields[] = {
    LONG(ir_ctl_subscribe_t, request_id),
    STRING(ir_ctl_subscribe_t, name),
    STRING(ir_ctl_subscribe_t, schema),
    OPT_BYTES(ir_ctl_subscribe_t, key),
};
static const field_desc_t subscribed_fields[] = {
    LONG(ir_ctl_subscribed_t, request_id),  LONG(ir_ctl_subscribed_t, channel_id),
    STRING(ir_ctl_subscribed_t, segment),   INT(ir_ctl_subscribed_t, subscriber_index),
    LONG(ir_ctl_subscribed_t, fingerprint), BOOL(ir_ctl_subscribed_t, lossy),
};
static const field_desc_t unsubscribe_fields[] = {
    LONG(ir_ctl_unsubscribe_t, request_id),
    LONG(ir_ctl_unsubscribe_t, channel_id),
    INT(ir_ctl_unsubscribe_t, subscriber_index),
};
static const field_desc_t close_channel_fields[] = {
    LONG(ir_ctl_close_channel_t, request_id),
    LONG(ir_ctl_close_channel_t, channel_id),
};
static const field_desc_t expose_function_fields[] = {
    LONG(ir_ctl_expose_function_t, request_id),       STRING(ir_ctl_expose_function_t, name),
    STRING(ir_ctl_expose_function_t, request_schema), STRING(ir_ctl_expose_function_t, response_schema),
    OPT_BYTES(ir_ctl_expose_function_t, key),
};
static const field_desc_t function_exposed_fields[] = {
    LONG(ir_ctl_function_exposed_t, request_id),
    LONG(ir_ctl_function_exposed_t, function_id),
    LONG(ir_ctl_function_exposed_t, request_fingerprint),
    LONG(ir_ctl_function_exposed_t, response_fingerprint),
};
static const field_desc_t resolve_function_fields[] = {
    LONG(ir_ctl_resolve_function_t, request_id),       STRING(ir_ctl_resolve_function_t, name),
    STRING(ir_ctl_resolve_function_t, request_schema), STRING(ir_ctl_resolve_function_t, response_schema),
    OPT_BYTES(ir_ctl_resolve_function_t, key),
};
static const field_desc_t function_resolved_fields[] = {
    LONG(ir_ctl_function_resolved_t, request_id),
    LONG(ir_ctl_function_resolved_t, function_id),
    LONG(ir_ctl_function_resolved_t, link_id),
    STRING(ir_ctl_function_resolved_t, segment),
    LONG(ir_ctl_function_resolved_t, request_fingerprint),
    LONG(ir_ctl_function_resolved_t, response_fingerprint),
    LONG(ir_ctl_function_resolved_t, max_payload),
};
static const field_desc_t withdraw_function_fields[] = {
    LONG(ir_ctl_withdraw_function_t, request_id),
    LONG(ir_ctl_withdraw_function_t, function_id),
};
static const field_desc_t link_opened_fields[] = {
    LONG(ir_ctl_link_opened_t, function_id),
    LONG(ir_ctl_link_opened_t, link_id),
    STRING(ir_ctl_link_opened_t, segment),
};
static const field_desc_t link_closed_fields[] = {
    LONG(ir_ctl_link_closed_t, link_id),
    INT(ir_ctl_link_closed_t, code),
    STRING(ir_ctl_link_closed_t, message),
};
static const field_desc_t channel_closed_fields[] = {
    LONG(ir_ctl_channel_closed_t, channel_id),
};
static const field_desc_t request_only_fields[] = {
    LONG(ir_ctl_request_only_t, request_id),
};
static const field_desc_t app_info_fields[] = {
    INT(ir_ctl_app_info_t, app_id),
    STRING(ir_ctl_app_info_t, name),
    LONG(ir_ctl_app_info_t, pid),
};
static const field_desc_t channel_info_fields[] = {
    LONG(ir_ctl_channel_info_t, channel_id),  STRING(ir_ctl_channel_info_t, name),
    INT(ir_ctl_channel_info_t, owner_app_id), LONG(ir_ctl_channel_info_t, fingerprint),
    LONG(ir_ctl_channel_info_t, capacity),    BOOL(ir_ctl_channel_info_t, lossy),
    INT(ir_ctl_channel_info_t, subscribers),  LONG(ir_ctl_channel_info_t, published),
};
static const field_desc_t function_info_fields[] = {
    LONG(ir_ctl_function_info_t, function_id),          STRING(ir_ctl_function_info_t, name),
    INT(ir_ctl_function_info_t, owner_app_id),          LONG(ir_ctl_function_info_t, request_fingerprint),
    LONG(ir_ctl_function_info_t, response_fingerprint),
};
static const record_desc_t app_info_desc = RECORD("AppInfo", ir_ctl_app_info_t, app_info_fields);
static const record_desc_t channel_info_desc = RECORD("ChannelInfo", ir_ctl_channel_info_t, channel_info_fields);
static const record_desc_t function_info_desc = RECORD("FunctionInfo", ir_ctl_function_info_t, function_info_fields);
static const field_desc_t listing_fields[] = {
    LONG(ir_ctl_listing_t, request_id),
    ARRAY(ir_ctl_listing_t, apps, app_info_desc),
    ARRAY(ir_ctl_listing_t, channels, channel_info_desc),
    ARRAY(ir_ctl_listing_t, functions, function_info_desc),
};
static const field_desc_t failed_fields[] = {
    LONG(ir_ctl_failed_t, request_id),
    INT(ir_ctl_failed_t, code),
    STRING(ir_ctl_failed_t, message),
    LONG(ir_ctl_failed_t, expected_fingerprint),
    LONG(ir_ctl_failed_t, presented_fingerprint),
};
static const field_desc_t call_error_fields[] = {
    INT(ir_ctl_call_error_t, code),
    STRING(ir_ctl_call_error_t, message),
};
static const field_desc_t broker_shutdown_fields[] = {
    STRING(ir_ctl_broker_shutdown_t, reason),
};
static const field_desc_t describe_fields[] = {
    LONG(ir_ctl_describe_t, request_id),
    STRING(ir_ctl_describe_t, name),
    LONG(ir_ctl_describe_t, id),
};
static const field_desc_t subscriber_description_fields[] = {
    INT(ir_ctl_subscriber_description_t, index),       INT(ir_ctl_subscriber_description_t, app_id),
    STRING(ir_ctl_subscriber_description_t, app_name), LONG(ir_ctl_subscriber_description_t, pid),
    LONG(ir_ctl_subscriber_description_t, position),   LONG(ir_ctl_subscriber_description_t, lag),
    LONG(ir_ctl_subscriber_description_t, missed),
};
static const record_desc_t subscriber_description_desc =
    RECORD("SubscriberDescription", ir_ctl_subscriber_description_t, subscriber_description_fields);
static const field_desc_t channel_description_fields[] = {
    LONG(ir_ctl_channel_description_t, channel_id),
    STRING(ir_ctl_channel_description_t, name),
    STRING(ir_ctl_channel_description_t, schema),
    LONG(ir_ctl_channel_description_t, fingerprint),
    INT(ir_ctl_channel_description_t, owner_app_id),
    STRING(ir_ctl_channel_description_t, owner_app_name),
    LONG(ir_ctl_channel_description_t, owner_pid),
    BOOL(ir_ctl_channel_description_t, key_gated),
    LONG(ir_ctl_channel_description_t, capacity),
    BOOL(ir_ctl_channel_description_t, lossy),
    LONG(ir_ctl_channel_description_t, published),
    LONG(ir_ctl_channel_description_t, published_bytes),
    ARRAY(ir_ctl_channel_description_t, subscribers, subscriber_description_desc),
};
static const field_desc_t function_description_fields[] = {
    LONG(ir_ctl_function_description_t, function_id),
    STRING(ir_ctl_function_description_t, name),
    STRING(ir_ctl_function_description_t, request_schema),
    STRING(ir_ctl_function_description_t, response_schema),
    LONG(ir_ctl_function_description_t, request_fingerprint),
    LONG(ir_ctl_function_description_t, response_fingerprint),
    INT(ir_ctl_function_description_t, owner_app_id),
    STRING(ir_ctl_function_description_t, owner_app_name),
    LONG(ir_ctl_function_description_t, owner_pid),
    BOOL(ir_ctl_function_description_t, key_gated),
    INT(ir_ctl_function_description_t, links),
    LONG(ir_ctl_function_description_t, calls),
    LONG(ir_ctl_function_description_t, errors),
    LONG(ir_ctl_function_description_t, in_flight),
};
static const record_desc_t channel_description_desc =
    RECORD("ChannelDescription", ir_ctl_channel_description_t, channel_description_fields);
static const record_desc_t function_description_desc =
    RECORD("FunctionDescription", ir_ctl_function_description_t, function_description_fields);
static const field_desc_t description_fields[] = {
    LONG(ir_ctl_description_t, request_id),
    ARRAY(ir_ctl_description_t, channels, channel_description_desc),
    ARRAY(ir_ctl_description_t, functions, function_description_desc),
};
static const field_desc_t monitor_event_fields[] = {
    LONG(ir_ctl_monitor_event_t, time_ns),  STRING(ir_ctl_monitor_event_t, kind),
    INT(ir_ctl_monitor_event_t, app_id),    STRING(ir_ctl_monitor_event_t, app_name),
    LONG(ir_ctl_monitor_event_t, pid),      STRING(ir_ctl_monitor_event_t, subject),
    STRING(ir_ctl_monitor_event_t, detail),
};

/* Indexed by opcode: the union's branches in order. */
static const record_desc_t RECORDS[IR_OP_COUNT] = {
    RECORD("Register", ir_ctl_register_t, register_fields),
    RECORD("Registered", ir_ctl_registered_t, registered_fields),
    RECORD("PublishChannel", ir_ctl_publish_channel_t, publish_channel_fields),
    RECORD("ChannelPublished", ir_ctl_channel_published_t, channel_published_fields),
    RECORD("Subscribe", ir_ctl_subscribe_t, subscribe_fields),
    RECORD("Subscribed", ir_ctl_subscribed_t, subscribed_fields),
    RECORD("Unsubscribe", ir_ctl_unsubscribe_t, unsubscribe_fields),
    RECORD("CloseChannel", ir_ctl_close_channel_t, close_channel_fields),
    RECORD("ExposeFunction", ir_ctl_expose_function_t, expose_function_fields),
    RECORD("FunctionExposed", ir_ctl_function_exposed_t, function_exposed_fields),
    RECORD("ResolveFunction", ir_ctl_resolve_function_t, resolve_function_fields),
    RECORD("FunctionResolved", ir_ctl_function_resolved_t, function_resolved_fields),
    RECORD("WithdrawFunction", ir_ctl_withdraw_function_t, withdraw_function_fields),
    RECORD("LinkOpened", ir_ctl_link_opened_t, link_opened_fields),
    RECORD("LinkClosed", ir_ctl_link_closed_t, link_closed_fields),
    RECORD("ChannelClosed", ir_ctl_channel_closed_t, channel_closed_fields),
    RECORD("List", ir_ctl_request_only_t, request_only_fields),
    RECORD("Listing", ir_ctl_listing_t, listing_fields),
    RECORD("Unregister", ir_ctl_request_only_t, request_only_fields),
    RECORD("Done", ir_ctl_request_only_t, request_only_fields),
    RECORD("Failed", ir_ctl_failed_t, failed_fields),
    RECORD("CallError", ir_ctl_call_error_t, call_error_fields),
    RECORD("BrokerShutdown", ir_ctl_broker_shutdown_t, broker_shutdown_fields),
    RECORD("Describe", ir_ctl_describe_t, describe_fields),
    RECORD("Description", ir_ctl_description_t, description_fields),
    RECORD("Monitor", ir_ctl_request_only_t, request_only_fields),
    RECORD("MonitorEvent", ir_ctl_monitor_event_t, monitor_event_fields),
};

const char *ir_ctl_name(ir_opcode_e opcode) {
  return (unsigned)opcode < IR_OP_COUNT ? RECORDS[opcode].name : "?";
}

/* Typed access to a field at `offset` of a record at `base`. */
#define AT(type, base, offset) ((type *)((char *)(base) + (offset)))

static void encode_record(const record_desc_t *desc, const void *record, ir_avro_writer_t *w) {
  for (size_t i = 0; i < desc->nfields; i++) {
    const field_desc_t *f = &desc->fields[i];
    switch (f->type) {
      case F_LONG:
        ir_avro_write_long(w, *AT(const int64_t, record, f->offset));
        break;
      case F_INT:
        ir_avro_write_int(w, *AT(const int32_t, record, f->offset));
        break;
      case F_BOOL:
        ir_avro_write_boolean(w, *AT(const bool, record, f->offset));
        break;
      case F_STRING:
        ir_avro_write_string(w, *AT(char *const, record, f->offset));
        break;
      case F_OPT_STRING: {
        const char *value = *AT(char *const, record, f->offset);
        ir_avro_write_union_branch(w, value != NULL ? 1 : 0);
        if (value != NULL) {
          ir_avro_write_string(w, value);
        }
        break;
      }
      case F_BYTES:
      case F_OPT_BYTES: {
        const ir_ctl_bytes_t *value = AT(const ir_ctl_bytes_t, record, f->offset);
        if (f->type == F_OPT_BYTES) {
          ir_avro_write_union_branch(w, value->data != NULL ? 1 : 0);
          if (value->data == NULL) {
            break;
          }
        }
        /* A required field without data is empty bytes. */
        size_t len = value->data != NULL ? value->len : 0;
        ir_avro_write_long(w, (int64_t)len);
        if (len > 0) {
          ir_avro_write_raw(w, value->data, len);
        }
        break;
      }
      case F_ARRAY: {
        const char *items = *AT(char *const, record, f->offset);
        size_t count = *AT(const size_t, record, f->count_offset);
        /* One block, then the end marker, like the Rust core writes it. */
        if (count > 0) {
          ir_avro_write_block_count(w, (int64_t)count);
          for (size_t k = 0; k < count; k++) {
            encode_record(f->items, items + k * f->items->size, w);
          }
        }
        ir_avro_write_block_end(w);
        break;
      }
    }
  }
}

void ir_ctl_encode(const ir_ctl_msg_t *msg, ir_avro_writer_t *w) {
  uint8_t header[IR_AVRO_SOE_HEADER_LEN];
  ir_avro_soe_header(header, IR_CONTROL_FINGERPRINT);
  ir_avro_write_raw(w, header, sizeof header);
  ir_avro_write_union_branch(w, msg->opcode);
  encode_record(&RECORDS[msg->opcode], &msg->u, w);
}

bool ir_ctl_encode_sealed(ir_ctl_msg_t *msg, const uint8_t session[32], ir_avro_writer_t *w) {
  ir_ctl_bytes_t *key = ir_ctl_key(msg);
  if (key == NULL || key->data == NULL) {
    ir_ctl_encode(msg, w);
    return true;
  }
  ir_ctl_bytes_t clear = *key;
  uint8_t *sealed = malloc(clear.len + 1);
  if (sealed == NULL) {
    return false;
  }
  ir_seal(session, ir_ctl_request_id(msg), clear.data, sealed, clear.len);
  key->data = sealed;
  ir_ctl_encode(msg, w);
  *key = clear;
  free(sealed);
  return true;
}

static char *dup_n(const char *s, size_t len) {
  char *out = malloc(len + 1);
  if (out != NULL) {
    if (len > 0) {
      memcpy(out, s, len);
    }
    out[len] = '\0';
  }
  return out;
}

static void free_record(const record_desc_t *desc, void *record) {
  for (size_t i = 0; i < desc->nfields; i++) {
    const field_desc_t *f = &desc->fields[i];
    if (f->type == F_STRING || f->type == F_OPT_STRING) {
      char **s = AT(char *, record, f->offset);
      free(*s);
      *s = NULL;
    } else if (f->type == F_BYTES || f->type == F_OPT_BYTES) {
      ir_ctl_bytes_t *b = AT(ir_ctl_bytes_t, record, f->offset);
      free(b->data);
      b->data = NULL;
      b->len = 0;
    } else if (f->type == F_ARRAY) {
      char **items = AT(char *, record, f->offset);
      size_t *count = AT(size_t, record, f->count_offset);
      for (size_t k = 0; *items != NULL && k < *count; k++) {
        free_record(f->items, *items + k * f->items->size);
      }
      free(*items);
      *items = NULL;
      *count = 0;
    }
  }
}

static void read_string_field(ir_avro_reader_t *r, char **field) {
  size_t len = 0;
  const char *s = ir_avro_read_string(r, &len);
  if (s != NULL) {
    *field = dup_n(s, len);
    if (*field == NULL) {
      r->failed = true;
      (void)snprintf(r->error, sizeof r->error, "out of memory");
    }
  }
}

/* A copy of the bytes that come next, with a non-NULL `data` even when empty (NULL means null). */
static void read_bytes_field(ir_avro_reader_t *r, ir_ctl_bytes_t *field) {
  size_t len = 0;
  const uint8_t *b = ir_avro_read_bytes(r, &len);
  if (b != NULL) {
    field->data = malloc(len + 1);
    if (field->data == NULL) {
      r->failed = true;
      (void)snprintf(r->error, sizeof r->error, "out of memory");
      return;
    }
    if (len > 0) {
      memcpy(field->data, b, len);
    }
    field->len = len;
  }
}

/* Decodes one record field by field; on failure the reader holds the reason. Strings and arrays are
 * allocated as they are read, so a failed record is freed with free_record like a complete one. */
static void decode_record(const record_desc_t *desc, void *record, ir_avro_reader_t *r) {
  for (size_t i = 0; i < desc->nfields && ir_avro_reader_ok(r); i++) {
    const field_desc_t *f = &desc->fields[i];
    switch (f->type) {
      case F_LONG:
        *AT(int64_t, record, f->offset) = ir_avro_read_long(r);
        break;
      case F_INT:
        *AT(int32_t, record, f->offset) = ir_avro_read_int(r);
        break;
      case F_BOOL:
        *AT(bool, record, f->offset) = ir_avro_read_boolean(r);
        break;
      case F_OPT_STRING:
        /* ["null", "string"]: branch 0 is null, branch 1 holds a string. */
        if (ir_avro_read_union_branch(r, 2) == 1) {
          read_string_field(r, AT(char *, record, f->offset));
        }
        break;
      case F_STRING:
        read_string_field(r, AT(char *, record, f->offset));
        break;
      case F_OPT_BYTES:
        /* ["null", "bytes"]: branch 0 is null, branch 1 holds bytes. */
        if (ir_avro_read_union_branch(r, 2) == 1) {
          read_bytes_field(r, AT(ir_ctl_bytes_t, record, f->offset));
        }
        break;
      case F_BYTES:
        read_bytes_field(r, AT(ir_ctl_bytes_t, record, f->offset));
        break;
      case F_ARRAY: {
        char **items = AT(char *, record, f->offset);
        size_t *count = AT(size_t, record, f->count_offset);
        for (;;) {
          int64_t block = ir_avro_read_block_count(r);
          if (block == 0 || !ir_avro_reader_ok(r)) {
            break;
          }
          /* The count was checked against the remaining input: the allocation is bounded by it. */
          char *grown = realloc(*items, (*count + (size_t)block) * f->items->size);
          if (grown == NULL) {
            r->failed = true;
            (void)snprintf(r->error, sizeof r->error, "out of memory");
            break;
          }
          memset(grown + *count * f->items->size, 0, (size_t)block * f->items->size);
          *items = grown;
          for (int64_t k = 0; k < block && ir_avro_reader_ok(r); k++) {
            decode_record(f->items, *items + *count * f->items->size, r);
            (*count)++;
          }
        }
        break;
      }
    }
  }
}

ir_error_e ir_ctl_decode(const uint8_t *payload, size_t len, ir_ctl_msg_t *msg, char *why, size_t why_cap) {
  memset(msg, 0, sizeof *msg);
  uint64_t fingerprint = 0;
  if (!ir_avro_soe_split(payload, len, &fingerprint)) {
    (void)snprintf(why, why_cap, "not a single object encoding (%zu bytes)", len);
    return IR_ERR_DECODE;
  }
  if (fingerprint != IR_CONTROL_FINGERPRINT) {
    (void)snprintf(why, why_cap, "schema fingerprint mismatch: expected %016llx, found %016llx",
                   (unsigned long long)IR_CONTROL_FINGERPRINT, (unsigned long long)fingerprint);
    return IR_ERR_DECODE;
  }
  ir_avro_reader_t r;
  ir_avro_reader_init(&r, payload + IR_AVRO_SOE_HEADER_LEN, len - IR_AVRO_SOE_HEADER_LEN);
  int64_t opcode = ir_avro_read_union_branch(&r, IR_OP_COUNT);
  if (ir_avro_reader_ok(&r)) {
    msg->opcode = (ir_opcode_e)opcode;
    decode_record(&RECORDS[opcode], &msg->u, &r);
  }
  if (!ir_avro_reader_finish(&r)) {
    (void)snprintf(why, why_cap, "%s", ir_avro_reader_error(&r));
    return IR_ERR_DECODE;
  }
  return IR_OK;
}

void ir_ctl_free(ir_ctl_msg_t *msg) {
  if ((unsigned)msg->opcode < IR_OP_COUNT) {
    free_record(&RECORDS[msg->opcode], &msg->u);
  }
  memset(msg, 0, sizeof *msg);
}

int64_t ir_ctl_reply_id(const ir_ctl_msg_t *msg) {
  switch (msg->opcode) {
    case IR_OP_REGISTERED:
      return msg->u.registered.request_id;
    case IR_OP_CHANNEL_PUBLISHED:
      return msg->u.channel_published.request_id;
    case IR_OP_SUBSCRIBED:
      return msg->u.subscribed.request_id;
    case IR_OP_FUNCTION_EXPOSED:
      return msg->u.function_exposed.request_id;
    case IR_OP_FUNCTION_RESOLVED:
      return msg->u.function_resolved.request_id;
    case IR_OP_LISTING:
      return msg->u.listing.request_id;
    case IR_OP_DONE:
      return msg->u.done.request_id;
    case IR_OP_FAILED:
      return msg->u.failed.request_id;
    case IR_OP_DESCRIPTION:
      return msg->u.description.request_id;
    default:
      return -1;
  }
}

/* Where a request keeps its request id; NULL for replies and events. */
static int64_t *request_id_field(ir_ctl_msg_t *msg) {
  switch (msg->opcode) {
    case IR_OP_REGISTER:
      return &msg->u.register_.request_id;
    case IR_OP_PUBLISH_CHANNEL:
      return &msg->u.publish_channel.request_id;
    case IR_OP_SUBSCRIBE:
      return &msg->u.subscribe.request_id;
    case IR_OP_UNSUBSCRIBE:
      return &msg->u.unsubscribe.request_id;
    case IR_OP_CLOSE_CHANNEL:
      return &msg->u.close_channel.request_id;
    case IR_OP_EXPOSE_FUNCTION:
      return &msg->u.expose_function.request_id;
    case IR_OP_RESOLVE_FUNCTION:
      return &msg->u.resolve_function.request_id;
    case IR_OP_WITHDRAW_FUNCTION:
      return &msg->u.withdraw_function.request_id;
    case IR_OP_LIST:
      return &msg->u.list.request_id;
    case IR_OP_UNREGISTER:
      return &msg->u.unregister.request_id;
    case IR_OP_DESCRIBE:
      return &msg->u.describe.request_id;
    case IR_OP_MONITOR:
      return &msg->u.monitor.request_id;
    default:
      return NULL;
  }
}

int64_t ir_ctl_request_id(const ir_ctl_msg_t *msg) {
  int64_t *field = request_id_field((ir_ctl_msg_t *)msg);
  return field != NULL ? *field : -1;
}

void ir_ctl_set_request_id(ir_ctl_msg_t *msg, int64_t request_id) {
  int64_t *field = request_id_field(msg);
  if (field != NULL) {
    *field = request_id;
  }
}

ir_ctl_bytes_t *ir_ctl_key(ir_ctl_msg_t *msg) {
  switch (msg->opcode) {
    case IR_OP_PUBLISH_CHANNEL:
      return &msg->u.publish_channel.key;
    case IR_OP_SUBSCRIBE:
      return &msg->u.subscribe.key;
    case IR_OP_EXPOSE_FUNCTION:
      return &msg->u.expose_function.key;
    case IR_OP_RESOLVE_FUNCTION:
      return &msg->u.resolve_function.key;
    default:
      return NULL;
  }
}

/* ---- JSON, for the spec vectors ---- */

static void json_raw(ir_avro_writer_t *out, const char *s) {
  ir_avro_write_raw(out, s, strlen(s));
}

/* A JSON string as serde_json writes it: `"` and `\` escaped, control characters as short escapes or
 * \u00XX, everything else (UTF-8 included) as is. */
static void json_string(ir_avro_writer_t *out, const char *s) {
  json_raw(out, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
    char esc[8];
    switch (*p) {
      case '"':
        json_raw(out, "\\\"");
        break;
      case '\\':
        json_raw(out, "\\\\");
        break;
      case '\n':
        json_raw(out, "\\n");
        break;
      case '\r':
        json_raw(out, "\\r");
        break;
      case '\t':
        json_raw(out, "\\t");
        break;
      case '\b':
        json_raw(out, "\\b");
        break;
      case '\f':
        json_raw(out, "\\f");
        break;
      default:
        if (*p < 0x20) {
          (void)snprintf(esc, sizeof esc, "\\u%04x", *p);
          json_raw(out, esc);
        } else {
          ir_avro_write_raw(out, p, 1);
        }
    }
  }
  json_raw(out, "\"");
}

static int compare_names(const void *a, const void *b) {
  const field_desc_t *const *fa = a;
  const field_desc_t *const *fb = b;
  return strcmp((*fa)->name, (*fb)->name);
}

static void json_record(const record_desc_t *desc, const void *record, ir_avro_writer_t *out) {
  const field_desc_t *sorted[16];
  size_t n = desc->nfields < 16 ? desc->nfields : 16;
  for (size_t i = 0; i < n; i++) {
    sorted[i] = &desc->fields[i];
  }
  qsort((void *)sorted, n, sizeof(const field_desc_t *), compare_names);
  json_raw(out, "{");
  for (size_t i = 0; i < n; i++) {
    const field_desc_t *f = sorted[i];
    char num[32];
    if (i > 0) {
      json_raw(out, ",");
    }
    json_string(out, f->name);
    json_raw(out, ":");
    switch (f->type) {
      case F_LONG:
        (void)snprintf(num, sizeof num, "%lld", (long long)*AT(const int64_t, record, f->offset));
        json_raw(out, num);
        break;
      case F_INT:
        (void)snprintf(num, sizeof num, "%d", (int)*AT(const int32_t, record, f->offset));
        json_raw(out, num);
        break;
      case F_BOOL:
        json_raw(out, *AT(const bool, record, f->offset) ? "true" : "false");
        break;
      case F_STRING:
      case F_OPT_STRING: {
        const char *s = *AT(char *const, record, f->offset);
        if (s == NULL) {
          json_raw(out, f->type == F_STRING ? "\"\"" : "null");
        } else {
          json_string(out, s);
        }
        break;
      }
      case F_BYTES:
      case F_OPT_BYTES: {
        /* As serde_json writes a Vec<u8>: an array of numbers. */
        const ir_ctl_bytes_t *b = AT(const ir_ctl_bytes_t, record, f->offset);
        if (b->data == NULL && f->type == F_OPT_BYTES) {
          json_raw(out, "null");
          break;
        }
        json_raw(out, "[");
        for (size_t k = 0; b->data != NULL && k < b->len; k++) {
          (void)snprintf(num, sizeof num, k > 0 ? ",%u" : "%u", (unsigned)b->data[k]);
          json_raw(out, num);
        }
        json_raw(out, "]");
        break;
      }
      case F_ARRAY: {
        const char *items = *AT(char *const, record, f->offset);
        size_t count = *AT(const size_t, record, f->count_offset);
        json_raw(out, "[");
        for (size_t k = 0; k < count; k++) {
          if (k > 0) {
            json_raw(out, ",");
          }
          json_record(f->items, items + k * f->items->size, out);
        }
        json_raw(out, "]");
        break;
      }
    }
  }
  json_raw(out, "}");
}

void ir_ctl_to_json(const ir_ctl_msg_t *msg, ir_avro_writer_t *out) {
  json_raw(out, ir_ctl_name(msg->opcode));
  json_raw(out, " ");
  json_record(&RECORDS[msg->opcode], &msg->u, out);
}
