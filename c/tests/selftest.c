/* The C connector's self-test: the API and its error paths against a live broker. Each test that
 * needs a broker starts `impulsed` in a namespace of its own and stops it afterwards, and the run
 * fails if anything of that namespace is left in /dev/shm. Run by ctest (plain and sanitized).
 *
 *   IMPULSE_RING_BROKER   path of impulsed (default target/debug/impulsed)
 *   IMPULSE_RING_VECTORS  path of spec/vectors/control.txt
 *   IMPULSE_RING_FINGERPRINTS  path of spec/vectors/fingerprints.txt
 *   selftest [name-substring]   runs only the tests whose name contains the substring
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "impulse_ring.h"
#include "impulse_ring_avro.h"
#include "../src/layout.h"
#include "vectors.h"

static const char *const READING =
    "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"test\",\"fields\":["
    "{\"name\":\"seq\",\"type\":\"long\"},{\"name\":\"celsius\",\"type\":\"double\"}]}";
/* Same names, another type: another fingerprint. */
static const char *const OTHER_READING =
    "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"test\",\"fields\":["
    "{\"name\":\"seq\",\"type\":\"long\"},{\"name\":\"celsius\",\"type\":\"float\"}]}";
static const char *const BYTES = "\"bytes\"";
static const char *const MALFORMED = "{\"type\":\"record\",\"name\":\"Broken\",\"fields\":[{\"name\":\"x\",\"type\":";
static const char *const ADD_REQUEST =
    "{\"type\":\"record\",\"name\":\"AddRequest\",\"namespace\":\"test\",\"fields\":["
    "{\"name\":\"a\",\"type\":\"long\"},{\"name\":\"b\",\"type\":\"long\"}]}";
static const char *const ADD_RESPONSE =
    "{\"type\":\"record\",\"name\":\"AddResponse\",\"namespace\":\"test\",\"fields\":[{\"name\":\"sum\",\"type\":"
    "\"long\"}]}";

static int failures;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                                \
    }                                                                            \
  } while (0)

#define CHECK_CODE(conn, expr, want)                                                                             \
  do {                                                                                                           \
    ir_error_e got_ = (expr);                                                                                    \
    if (got_ != (want)) {                                                                                        \
      fprintf(stderr, "  %s:%d: %s gave %s (%s), expected %s\n", __FILE__, __LINE__, #expr, ir_error_name(got_), \
              ir_last_error(conn), ir_error_name(want));                                                         \
      failures++;                                                                                                \
    }                                                                                                            \
  } while (0)

#define REQUIRE_OK(conn, expr)                                                                        \
  do {                                                                                                \
    ir_error_e got_ = (expr);                                                                         \
    if (got_ != IR_OK) {                                                                              \
      fprintf(stderr, "  %s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #expr, ir_error_name(got_), \
              ir_last_error(conn));                                                                   \
      failures++;                                                                                     \
      return;                                                                                         \
    }                                                                                                 \
  } while (0)

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- Datums ---- */

static size_t encode_reading(uint8_t *buf, size_t cap, int64_t seq, double celsius) {
  ir_avro_writer_t w;
  ir_avro_writer_init(&w, buf, cap);
  ir_avro_write_long(&w, seq);
  ir_avro_write_double(&w, celsius);
  return ir_avro_writer_ok(&w) ? w.len : 0;
}

static bool decode_reading(const uint8_t *datum, size_t len, int64_t *seq, double *celsius) {
  ir_avro_reader_t r;
  ir_avro_reader_init(&r, datum, len);
  *seq = ir_avro_read_long(&r);
  *celsius = ir_avro_read_double(&r);
  return ir_avro_reader_finish(&r);
}

static size_t encode_add(uint8_t *buf, size_t cap, int64_t a, int64_t b) {
  ir_avro_writer_t w;
  ir_avro_writer_init(&w, buf, cap);
  ir_avro_write_long(&w, a);
  ir_avro_write_long(&w, b);
  return ir_avro_writer_ok(&w) ? w.len : 0;
}

static bool decode_sum(const uint8_t *datum, size_t len, int64_t *sum) {
  ir_avro_reader_t r;
  ir_avro_reader_init(&r, datum, len);
  *sum = ir_avro_read_long(&r);
  return ir_avro_reader_finish(&r);
}

/* The `add` handler: a + b, except that a == 13 fails with a message. */
static ir_error_e add_handler(void *user, const uint8_t *request, size_t len, ir_response_t *response) {
  atomic_int *served = user;
  if (served != NULL) {
    atomic_fetch_add(served, 1);
  }
  ir_avro_reader_t r;
  ir_avro_reader_init(&r, request, len);
  int64_t a = ir_avro_read_long(&r);
  int64_t b = ir_avro_read_long(&r);
  if (!ir_avro_reader_finish(&r)) {
    ir_response_fail(response, ir_avro_reader_error(&r));
    return IR_ERR_DECODE;
  }
  if (a == 13) {
    ir_response_fail(response, "unlucky number 13");
    return IR_ERR_HANDLER;
  }
  uint8_t out[16];
  ir_avro_writer_t w;
  ir_avro_writer_init(&w, out, sizeof out);
  ir_avro_write_long(&w, a + b);
  return ir_response_write(response, w.data, w.len);
}

/* Serves a connection on a thread until ir_serve_stop. */
typedef struct server {
  pthread_t thread;
  ir_conn_t *conn;
  ir_error_e result;
} server_t;

static void *serve_thread(void *arg) {
  server_t *server = arg;
  server->result = ir_serve(server->conn, IR_FOREVER);
  return NULL;
}

static void server_start(server_t *server, ir_conn_t *conn) {
  server->conn = conn;
  server->result = IR_OK;
  pthread_create(&server->thread, NULL, serve_thread, server);
}

static ir_error_e server_stop(server_t *server) {
  ir_serve_stop(server->conn);
  pthread_join(server->thread, NULL);
  return server->result;
}

/* ---- Tests without a broker ---- */

static void error_codes_match_the_shared_table(void) {
  CHECK(IR_OK == 0 && IR_ERR_NO_BROKER == 1 && IR_ERR_SCHEMA_MISMATCH == 6 && IR_ERR_PROTOCOL == 23);
  CHECK(strcmp(ir_error_name(IR_ERR_SCHEMA_MISMATCH), "SchemaMismatch") == 0);
  CHECK(strcmp(ir_error_name(IR_ERR_HANDLER), "HandlerError") == 0);
  CHECK(strcmp(ir_strerror(IR_ERR_SCHEMA_MISMATCH), "schema mismatch") == 0);
  CHECK(strcmp(ir_strerror(IR_ERR_WOULD_BLOCK), "the ring is full") == 0);
  CHECK(strcmp(ir_strerror((ir_error_e)24), "unknown error") == 0);
  CHECK(strcmp(ir_strerror((ir_error_e)-1), "unknown error") == 0);
  for (int code = 1; code <= IR_ERR_PROTOCOL; code++) {
    CHECK(strlen(ir_error_name((ir_error_e)code)) > 0 && strcmp(ir_strerror((ir_error_e)code), "unknown error") != 0);
  }
}

static bool bytes_are(const ir_avro_writer_t *w, const char *hex) {
  size_t n = strlen(hex) / 2;
  if (w->len != n) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned byte = 0;
    if (sscanf(hex + 2 * i, "%2x", &byte) != 1 || w->data[i] != byte) {
      return false;
    }
  }
  return true;
}

static bool long_encodes_as(int64_t value, const char *hex) {
  uint8_t buf[16];
  ir_avro_writer_t w;
  ir_avro_writer_init(&w, buf, sizeof buf);
  ir_avro_write_long(&w, value);
  ir_avro_reader_t r;
  ir_avro_reader_init(&r, w.data, w.len);
  return bytes_are(&w, hex) && ir_avro_read_long(&r) == value && ir_avro_reader_finish(&r);
}

static void avro_codec_round_trips_and_refuses_malformed_input(void) {
  CHECK(long_encodes_as(0, "00"));
  CHECK(long_encodes_as(-1, "01"));
  CHECK(long_encodes_as(1, "02"));
  CHECK(long_encodes_as(63, "7e"));
  CHECK(long_encodes_as(64, "8001"));
  CHECK(long_encodes_as(-65, "8101"));
  CHECK(long_encodes_as(INT64_MAX, "feffffffffffffffff01"));
  CHECK(long_encodes_as(INT64_MIN, "ffffffffffffffffff01"));

  /* A record with one field of every kind, written and read back field by field. */
  ir_avro_writer_t w;
  ir_avro_writer_init_dynamic(&w);
  ir_avro_write_boolean(&w, true);
  ir_avro_write_int(&w, -123456);
  ir_avro_write_long(&w, 1LL << 40);
  ir_avro_write_float(&w, 1.5f);
  ir_avro_write_double(&w, -2.25);
  ir_avro_write_bytes(&w, "\x00\x01\x02", 3);
  ir_avro_write_string(&w, "température");
  ir_avro_write_union_branch(&w, 0); /* ["null","string"]: null */
  ir_avro_write_union_branch(&w, 1);
  ir_avro_write_string(&w, "set");
  ir_avro_write_enum(&w, 2);
  ir_avro_write_fixed(&w, "abcd", 4);
  ir_avro_write_block_count(&w, 2); /* array<long> [5, 6] */
  ir_avro_write_long(&w, 5);
  ir_avro_write_long(&w, 6);
  ir_avro_write_block_end(&w);
  ir_avro_write_block_count(&w, 1); /* map<int> {"k": 7} */
  ir_avro_write_string(&w, "k");
  ir_avro_write_int(&w, 7);
  ir_avro_write_block_end(&w);
  CHECK(ir_avro_writer_ok(&w));

  ir_avro_reader_t r;
  ir_avro_reader_init(&r, w.data, w.len);
  size_t len = 0;
  CHECK(ir_avro_read_boolean(&r) == true);
  CHECK(ir_avro_read_int(&r) == -123456);
  CHECK(ir_avro_read_long(&r) == 1LL << 40);
  CHECK(ir_avro_read_float(&r) == 1.5f);
  CHECK(ir_avro_read_double(&r) == -2.25);
  const uint8_t *bytes = ir_avro_read_bytes(&r, &len);
  CHECK(bytes != NULL && len == 3 && bytes[2] == 2);
  const char *s = ir_avro_read_string(&r, &len);
  CHECK(s != NULL && len == strlen("température") && memcmp(s, "température", len) == 0);
  CHECK(ir_avro_read_union_branch(&r, 2) == 0);
  CHECK(ir_avro_read_union_branch(&r, 2) == 1);
  s = ir_avro_read_string(&r, &len);
  CHECK(s != NULL && len == 3);
  CHECK(ir_avro_read_enum(&r) == 2);
  CHECK(memcmp(ir_avro_read_fixed(&r, 4), "abcd", 4) == 0);
  int64_t sum = 0;
  for (int64_t n; (n = ir_avro_read_block_count(&r)) > 0;) {
    for (int64_t i = 0; i < n; i++) {
      sum += ir_avro_read_long(&r);
    }
  }
  CHECK(sum == 11);
  CHECK(ir_avro_read_block_count(&r) == 1);
  s = ir_avro_read_string(&r, &len);
  CHECK(s != NULL && len == 1 && s[0] == 'k' && ir_avro_read_int(&r) == 7);
  CHECK(ir_avro_read_block_count(&r) == 0);
  CHECK(ir_avro_reader_finish(&r));
  ir_avro_writer_free(&w);

  /* A negative block count carries the block's byte size: [-2, 2 bytes, 1, 2, 0]. */
  const uint8_t negative[] = {0x03, 0x04, 0x02, 0x04, 0x00};
  ir_avro_reader_init(&r, negative, sizeof negative);
  CHECK(ir_avro_read_block_count(&r) == 2 && ir_avro_read_long(&r) == 1 && ir_avro_read_long(&r) == 2);
  CHECK(ir_avro_read_block_count(&r) == 0 && ir_avro_reader_finish(&r));

  struct {
    const char *what;
    const char *error;
    size_t len;
    int kind; /* 0 long, 1 int, 2 boolean, 3 string, 4 union of 2, 5 trailing after a long */
    uint8_t bytes[12];
  } bad[] = {
      {"truncated", "truncated", 1, 0, {0x80}},
      {"varint overflow", "varint", 10, 0, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
      {"int out of range", "int out of range", 5, 1, {0x80, 0x80, 0x80, 0x80, 0x10}},
      {"bad boolean", "boolean", 1, 2, {0x02}},
      {"bad utf-8", "utf-8", 3, 3, {0x04, 0xc3, 0x28}},
      {"length beyond input", "length", 2, 3, {0x0a, 0x41}},
      {"negative length", "length", 1, 3, {0x01}},
      {"union branch", "union branch", 1, 4, {0x04}},
      {"trailing bytes", "trailing", 2, 5, {0x02, 0x00}},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ir_avro_reader_init(&r, bad[i].bytes, bad[i].len);
    switch (bad[i].kind) {
      case 0:
      case 5:
        (void)ir_avro_read_long(&r);
        break;
      case 1:
        (void)ir_avro_read_int(&r);
        break;
      case 2:
        (void)ir_avro_read_boolean(&r);
        break;
      case 3:
        CHECK(ir_avro_read_string(&r, &len) == NULL);
        break;
      default:
        (void)ir_avro_read_union_branch(&r, 2);
        break;
    }
    bool ok = ir_avro_reader_finish(&r);
    if (ok || strstr(ir_avro_reader_error(&r), bad[i].error) == NULL) {
      fprintf(stderr, "  avro %s: ok=%d error=\"%s\"\n", bad[i].what, ok, ir_avro_reader_error(&r));
      failures++;
    }
  }

  /* A fixed buffer that is too small fails, and stays failed. */
  uint8_t small[3];
  ir_avro_writer_init(&w, small, sizeof small);
  ir_avro_write_string(&w, "too long");
  ir_avro_write_long(&w, 1);
  CHECK(!ir_avro_writer_ok(&w));

  uint8_t header[IR_AVRO_SOE_HEADER_LEN];
  uint64_t fingerprint = 0;
  ir_avro_soe_header(header, 0x0102030405060708ULL);
  CHECK(header[0] == 0xC3 && header[1] == 0x01 && header[2] == 0x08 && header[9] == 0x01);
  CHECK(ir_avro_soe_split(header, sizeof header, &fingerprint) && fingerprint == 0x0102030405060708ULL);
  header[0] = 0;
  CHECK(!ir_avro_soe_split(header, sizeof header, &fingerprint));
  CHECK(!ir_avro_soe_split(header, 9, &fingerprint));
}

static void control_vectors_decode_and_encode_byte_exact(void) {
  const char *path = getenv("IMPULSE_RING_VECTORS");
  int cases = 0;
  failures += test_control_vectors(path != NULL ? path : "spec/vectors/control.txt", &cases);
  CHECK(cases >= 23);
}

static void connect_refuses_bad_arguments(void) {
  ir_conn_t *conn = NULL;
  CHECK_CODE(NULL, ir_connect_ns("a.b", "app", &conn), IR_ERR_INVALID_ARGUMENT);
  CHECK(strstr(ir_last_error(NULL), "invalid namespace") != NULL);
  CHECK_CODE(NULL, ir_connect_ns("x", "", &conn), IR_ERR_INVALID_ARGUMENT);
  CHECK_CODE(NULL, ir_connect_ns("x", NULL, &conn), IR_ERR_INVALID_ARGUMENT);
  CHECK(conn == NULL);
  CHECK(strcmp(ir_last_error(NULL), "") != 0);
}

static void connect_without_broker_reports_no_broker_and_the_namespace(void) {
  char ns[64];
  (void)snprintf(ns, sizeof ns, "%scself-%d-nobroker", test_ns_prefix(), (int)getpid());
  ir_conn_t *conn = NULL;
  CHECK_CODE(NULL, ir_connect_ns(ns, "app", &conn), IR_ERR_NO_BROKER);
  CHECK(strstr(ir_last_error(NULL), ns) != NULL);
  CHECK(conn == NULL);
}

/* ---- Tests against a live broker ---- */

static void publish_and_receive_by_copy_and_by_view(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *producer = NULL;
  ir_conn_t *consumer = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "producer", &producer));
  REQUIRE_OK(NULL, ir_connect_ns(ns, "consumer", &consumer));
  CHECK(strcmp(ir_namespace(producer), ns) == 0);
  CHECK(ir_app_id(producer) != ir_app_id(consumer));
  CHECK(ir_broker_gone(producer) == 0);

  ir_publisher_t *pub = NULL;
  ir_subscriber_t *sub = NULL;
  REQUIRE_OK(producer, ir_publish_channel(producer, "readings", READING, "secret", 0, IR_CHANNEL_BLOCK, &pub));
  CHECK(ir_publisher_subscribers(pub) == 0);
  REQUIRE_OK(consumer, ir_subscribe(consumer, "readings", "secret", READING, &sub));
  CHECK(ir_publisher_subscribers(pub) == 1);
  CHECK(ir_publisher_fingerprint(pub) != 0 && ir_publisher_fingerprint(pub) == ir_subscriber_fingerprint(sub));
  CHECK(ir_publisher_max_datum(pub) == (1u << 20) / 2 - 16 - 10);

  for (int64_t seq = 0; seq < 200; seq++) {
    uint8_t datum[32];
    size_t len = encode_reading(datum, sizeof datum, seq, 20.0 + (double)seq / 2);
    CHECK_CODE(producer, ir_publish(pub, datum, len, 1000), IR_OK);
  }
  for (int64_t seq = 0; seq < 200; seq++) {
    int64_t got_seq = -1;
    double celsius = 0;
    if (seq % 2 == 0) {
      uint8_t buf[64];
      size_t len = 0;
      CHECK_CODE(consumer, ir_receive(sub, buf, sizeof buf, &len, 1000), IR_OK);
      CHECK(decode_reading(buf, len, &got_seq, &celsius));
    } else {
      const uint8_t *datum = NULL;
      size_t len = 0;
      CHECK_CODE(consumer, ir_receive_view(sub, &datum, &len, 1000), IR_OK);
      CHECK(datum != NULL && decode_reading(datum, len, &got_seq, &celsius));
    }
    CHECK(got_seq == seq && celsius == 20.0 + (double)seq / 2);
  }
  ir_subscriber_release(sub);
  ir_subscriber_close(sub);
  ir_publisher_close(pub);
  ir_close(consumer);
  ir_close(producer);
}

static void refusals_are_typed_and_explained(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *conn = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "refusals", &conn));
  ir_publisher_t *pub = NULL;
  ir_subscriber_t *sub = NULL;
  REQUIRE_OK(conn, ir_publish_channel(conn, "keyed", READING, "right", 0, IR_CHANNEL_BLOCK, &pub));

  CHECK_CODE(conn, ir_subscribe(conn, "keyed", "wrong", READING, &sub), IR_ERR_WRONG_KEY);
  CHECK_CODE(conn, ir_subscribe(conn, "keyed", NULL, READING, &sub), IR_ERR_WRONG_KEY);
  CHECK_CODE(conn, ir_subscribe(conn, "keyed", "right", OTHER_READING, &sub), IR_ERR_SCHEMA_MISMATCH);
  char expected[17];
  (void)snprintf(expected, sizeof expected, "%016llx", (unsigned long long)ir_publisher_fingerprint(pub));
  const char *message = ir_last_error(conn);
  CHECK(strstr(message, "expected") != NULL && strstr(message, expected) != NULL && strstr(message, "presented"));
  CHECK_CODE(conn, ir_subscribe(conn, "nope", NULL, READING, &sub), IR_ERR_UNKNOWN_CHANNEL);
  CHECK(strstr(ir_last_error(conn), "nope") != NULL);
  CHECK_CODE(conn, ir_subscribe(conn, "keyed", "right", MALFORMED, &sub), IR_ERR_INVALID_SCHEMA);
  CHECK(sub == NULL);

  ir_publisher_t *other = NULL;
  CHECK_CODE(conn, ir_publish_channel(conn, "keyed", READING, NULL, 0, IR_CHANNEL_BLOCK, &other), IR_ERR_NAME_TAKEN);
  CHECK_CODE(conn, ir_publish_channel(conn, "odd", READING, NULL, 5000, IR_CHANNEL_BLOCK, &other),
             IR_ERR_INVALID_ARGUMENT);
  CHECK_CODE(conn, ir_publish_channel(conn, "odd", READING, NULL, 0, 7, &other), IR_ERR_INVALID_ARGUMENT);
  CHECK_CODE(conn, ir_publish_channel(conn, "odd", MALFORMED, NULL, 0, IR_CHANNEL_BLOCK, &other),
             IR_ERR_INVALID_SCHEMA);
  CHECK_CODE(conn, ir_publish_channel(conn, "", READING, NULL, 0, IR_CHANNEL_BLOCK, &other), IR_ERR_INVALID_ARGUMENT);
  CHECK_CODE(conn, ir_publish_channel(conn, NULL, READING, NULL, 0, IR_CHANNEL_BLOCK, &other), IR_ERR_INVALID_ARGUMENT);
  CHECK(other == NULL);
  CHECK_CODE(conn, ir_set_wait(conn, (ir_wait_e)9, 0, 0), IR_ERR_INVALID_ARGUMENT);
  CHECK_CODE(conn, ir_set_wait(conn, IR_WAIT_BLOCKING, 0, 0), IR_OK);

  uint8_t *huge = calloc(1, ir_publisher_max_datum(pub) + 1);
  CHECK_CODE(conn, ir_publish(pub, huge, ir_publisher_max_datum(pub) + 1, 0), IR_ERR_TOO_LARGE);
  CHECK(strstr(ir_last_error(conn), "larger than the maximum") != NULL);
  free(huge);
  ir_publisher_close(pub);
  ir_close(conn);
}

static void receive_times_out_and_keeps_a_message_too_large_for_the_buffer(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *conn = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "timeouts", &conn));
  ir_publisher_t *pub = NULL;
  ir_subscriber_t *sub = NULL;
  REQUIRE_OK(conn, ir_publish_channel(conn, "raw", BYTES, NULL, 0, IR_CHANNEL_BLOCK, &pub));
  REQUIRE_OK(conn, ir_subscribe(conn, "raw", NULL, BYTES, &sub));
  uint8_t buf[64];
  size_t len = 99;
  int64_t started = now_ms();
  CHECK_CODE(conn, ir_receive(sub, buf, sizeof buf, &len, 80), IR_ERR_TIMEOUT);
  CHECK(now_ms() - started >= 80 && len == 0);
  CHECK_CODE(conn, ir_receive(sub, buf, sizeof buf, &len, 0), IR_ERR_TIMEOUT);

  uint8_t datum[] = {0x0a, 'h', 'e', 'l', 'l', 'o'};
  CHECK_CODE(conn, ir_try_publish(pub, datum, sizeof datum), IR_OK);
  CHECK_CODE(conn, ir_receive(sub, buf, 2, &len, 1000), IR_ERR_TOO_LARGE);
  CHECK(len == sizeof datum);
  CHECK_CODE(conn, ir_receive(sub, buf, sizeof buf, &len, 1000), IR_OK);
  CHECK(len == sizeof datum && memcmp(buf, datum, len) == 0);
  CHECK_CODE(conn, ir_receive(sub, NULL, 0, &len, 0), IR_ERR_TIMEOUT);
  ir_subscriber_close(sub);
  ir_publisher_close(pub);
  ir_close(conn);
}

static void subscriber_reads_what_is_left_then_sees_closed(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *producer = NULL;
  ir_conn_t *consumer = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "producer", &producer));
  REQUIRE_OK(NULL, ir_connect_ns(ns, "consumer", &consumer));
  ir_publisher_t *pub = NULL;
  ir_subscriber_t *sub = NULL;
  REQUIRE_OK(producer, ir_publish_channel(producer, "short", BYTES, NULL, 0, IR_CHANNEL_BLOCK, &pub));
  REQUIRE_OK(consumer, ir_subscribe(consumer, "short", NULL, BYTES, &sub));
  uint8_t datum[] = {0x02, 'x'};
  for (int i = 0; i < 3; i++) {
    CHECK_CODE(producer, ir_publish(pub, datum, sizeof datum, 1000), IR_OK);
  }
  ir_publisher_close(pub);
  uint8_t buf[8];
  size_t len = 0;
  for (int i = 0; i < 3; i++) {
    CHECK_CODE(consumer, ir_receive(sub, buf, sizeof buf, &len, 1000), IR_OK);
  }
  CHECK_CODE(consumer, ir_receive(sub, buf, sizeof buf, &len, 1000), IR_ERR_CLOSED);
  CHECK(strstr(ir_last_error(consumer), "short") != NULL);
  ir_subscriber_close(sub);
  ir_close(consumer);
  ir_close(producer);
}

static void full_block_channel_gives_would_block_and_timeout(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *conn = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "full", &conn));
  ir_publisher_t *pub = NULL;
  ir_subscriber_t *sub = NULL;
  REQUIRE_OK(conn, ir_publish_channel(conn, "small", BYTES, NULL, 4096, IR_CHANNEL_BLOCK, &pub));
  REQUIRE_OK(conn, ir_subscribe(conn, "small", NULL, BYTES, &sub));
  uint8_t datum[200] = {0};
  datum[0] = 0xfe; /* bytes of length 127 */
  datum[1] = 0x01;
  int published = 0;
  ir_error_e code = IR_OK;
  while ((code = ir_try_publish(pub, datum, 130)) == IR_OK && published < 1000) {
    published++;
  }
  CHECK_CODE(conn, code, IR_ERR_WOULD_BLOCK);
  CHECK(published > 10 && published < 40);
  int64_t started = now_ms();
  CHECK_CODE(conn, ir_publish(pub, datum, 130, 60), IR_ERR_TIMEOUT);
  CHECK(now_ms() - started >= 60);

  /* A publisher waiting for space is woken as soon as the subscriber reads. */
  uint8_t buf[256];
  size_t len = 0;
  CHECK_CODE(conn, ir_receive(sub, buf, sizeof buf, &len, 1000), IR_OK);
  CHECK_CODE(conn, ir_publish(pub, datum, 130, 1000), IR_OK);
  for (int i = 0; i < published; i++) {
    CHECK_CODE(conn, ir_receive(sub, buf, sizeof buf, &len, 1000), IR_OK);
  }
  CHECK_CODE(conn, ir_receive(sub, buf, sizeof buf, &len, 0), IR_ERR_TIMEOUT);
  ir_subscriber_close(sub);
  /* Without subscribers nothing holds the publisher back. */
  for (int i = 0; i < 200; i++) {
    CHECK_CODE(conn, ir_try_publish(pub, datum, 130), IR_OK);
  }
  ir_publisher_close(pub);
  ir_close(conn);
}

static void lossy_subscriber_learns_how_many_it_missed(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *conn = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "lossy", &conn));
  ir_publisher_t *pub = NULL;
  ir_subscriber_t *sub = NULL;
  REQUIRE_OK(conn, ir_publish_channel(conn, "lossy", READING, NULL, 4096, IR_CHANNEL_LOSSY, &pub));
  REQUIRE_OK(conn, ir_subscribe(conn, "lossy", NULL, READING, &sub));
  const int64_t total = 500;
  for (int64_t seq = 0; seq < total; seq++) {
    uint8_t datum[32];
    size_t len = encode_reading(datum, sizeof datum, seq, 1.0);
    CHECK_CODE(conn, ir_try_publish(pub, datum, len), IR_OK);
  }
  int64_t received = 0;
  int64_t missed = 0;
  int64_t next = 0;
  for (;;) {
    uint8_t buf[64];
    size_t len = 0;
    ir_error_e code = ir_receive(sub, buf, sizeof buf, &len, 0);
    if (code == IR_ERR_LAGGED) {
      missed += (int64_t)ir_subscriber_missed(sub);
      next += (int64_t)ir_subscriber_missed(sub);
      continue;
    }
    if (code != IR_OK) {
      CHECK_CODE(conn, code, IR_ERR_TIMEOUT);
      break;
    }
    int64_t seq = -1;
    double celsius = 0;
    CHECK(decode_reading(buf, len, &seq, &celsius) && seq == next);
    next = seq + 1;
    received++;
  }
  CHECK(missed > 0 && received > 0 && received + missed == total);
  ir_subscriber_close(sub);
  ir_publisher_close(pub);
  ir_close(conn);
}

static int64_t call_add(ir_conn_t *conn, int64_t a, int64_t b, ir_error_e *code) {
  uint8_t request[24];
  size_t len = encode_add(request, sizeof request, a, b);
  uint8_t *response = NULL;
  size_t response_len = 0;
  *code = ir_call(conn, "add", NULL, ADD_REQUEST, ADD_RESPONSE, request, len, &response, &response_len, 5000);
  int64_t sum = INT64_MIN;
  if (*code == IR_OK && !decode_sum(response, response_len, &sum)) {
    sum = INT64_MIN;
  }
  ir_free(response);
  return sum;
}

typedef struct callback_result {
  int calls;
  ir_error_e status;
  int64_t sum;
} callback_result_t;

static void on_sum(void *user, ir_error_e status, const uint8_t *response, size_t len, const char *message) {
  (void)message;
  callback_result_t *result = user;
  result->calls++;
  result->status = status;
  if (status == IR_OK) {
    (void)decode_sum(response, len, &result->sum);
  }
}

static void calls_return_results_and_typed_errors(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *provider = NULL;
  ir_conn_t *caller = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "provider", &provider));
  REQUIRE_OK(NULL, ir_connect_ns(ns, "caller", &caller));
  atomic_int served = 0;
  ir_function_t *fn = NULL;
  ir_function_t *keyed = NULL;
  REQUIRE_OK(provider, ir_expose_function(provider, "add", ADD_REQUEST, ADD_RESPONSE, NULL, add_handler, &served, &fn));
  REQUIRE_OK(provider,
             ir_expose_function(provider, "secret-add", ADD_REQUEST, ADD_RESPONSE, "k", add_handler, NULL, &keyed));
  CHECK(ir_function_id(fn) != 0);
  ir_function_t *dup = NULL;
  CHECK_CODE(provider, ir_expose_function(provider, "add", ADD_REQUEST, ADD_RESPONSE, NULL, add_handler, NULL, &dup),
             IR_ERR_NAME_TAKEN);
  server_t server;
  server_start(&server, provider);

  ir_error_e code = IR_OK;
  CHECK(call_add(caller, 40, 2, &code) == 42 && code == IR_OK);
  CHECK(call_add(caller, -5, 5, &code) == 0 && code == IR_OK);
  (void)call_add(caller, 13, 1, &code);
  CHECK_CODE(caller, code, IR_ERR_HANDLER);
  CHECK(strstr(ir_last_error(caller), "unlucky number 13") != NULL);
  CHECK(atomic_load(&served) == 3);

  uint8_t request[24];
  size_t len = encode_add(request, sizeof request, 1, 2);
  uint8_t *response = NULL;
  size_t response_len = 0;
  CHECK_CODE(caller,
             ir_call(caller, "nope", NULL, ADD_REQUEST, ADD_RESPONSE, request, len, &response, &response_len, 1000),
             IR_ERR_UNKNOWN_FUNCTION);
  CHECK_CODE(caller,
             ir_call(caller, "add", NULL, ADD_RESPONSE, ADD_RESPONSE, request, len, &response, &response_len, 1000),
             IR_ERR_SCHEMA_MISMATCH);
  CHECK(strstr(ir_last_error(caller), "expected") != NULL && strstr(ir_last_error(caller), "presented") != NULL);
  CHECK_CODE(
      caller,
      ir_call(caller, "secret-add", "bad", ADD_REQUEST, ADD_RESPONSE, request, len, &response, &response_len, 1000),
      IR_ERR_WRONG_KEY);
  CHECK_CODE(
      caller,
      ir_call(caller, "secret-add", "k", ADD_REQUEST, ADD_RESPONSE, request, len, &response, &response_len, 1000),
      IR_OK);
  ir_free(response);

  /* Several calls in flight, completed by polling. */
  ir_call_t *calls[16];
  for (int i = 0; i < 16; i++) {
    len = encode_add(request, sizeof request, i + 20, 100); /* a != 13, which the handler refuses */
    CHECK_CODE(caller, ir_call_start(caller, "add", NULL, ADD_REQUEST, ADD_RESPONSE, request, len, 5000, &calls[i]),
               IR_OK);
  }
  for (int i = 0; i < 16; i++) {
    if (calls[i] == NULL) {
      continue;
    }
    CHECK_CODE(caller, ir_call_poll(calls[i], 5000), IR_OK);
    const uint8_t *datum = NULL;
    size_t datum_len = 0;
    int64_t sum = 0;
    CHECK_CODE(caller, ir_call_result(calls[i], &datum, &datum_len), IR_OK);
    CHECK(decode_sum(datum, datum_len, &sum) && sum == i + 120);
    CHECK(strcmp(ir_call_error_message(calls[i]), "") == 0);
    ir_call_free(calls[i]);
  }

  /* A call completed by callback, driven by the caller's poll. */
  callback_result_t result = {0};
  len = encode_add(request, sizeof request, 20, 22);
  CHECK_CODE(caller, ir_call_async(caller, "add", NULL, ADD_REQUEST, ADD_RESPONSE, request, len, 5000, on_sum, &result),
             IR_OK);
  int64_t deadline = now_ms() + 5000;
  while (result.calls == 0 && now_ms() < deadline) {
    (void)ir_poll_one(caller, 100);
  }
  CHECK(result.calls == 1 && result.status == IR_OK && result.sum == 42);
  callback_result_t failed = {0};
  len = encode_add(request, sizeof request, 13, 0);
  CHECK_CODE(caller, ir_call_async(caller, "add", NULL, ADD_REQUEST, ADD_RESPONSE, request, len, 5000, on_sum, &failed),
             IR_OK);
  deadline = now_ms() + 5000;
  while (failed.calls == 0 && now_ms() < deadline) {
    (void)ir_poll_one(caller, 100);
  }
  CHECK(failed.calls == 1 && failed.status == IR_ERR_HANDLER);

  CHECK_CODE(provider, server_stop(&server), IR_OK);
  ir_function_withdraw(keyed);
  ir_function_withdraw(fn);
  ir_close(caller);
  ir_close(provider);
}

typedef struct hammer {
  pthread_t thread;
  ir_conn_t *conn;
  int base;
  int wrong;
} hammer_t;

static void *hammer_thread(void *arg) {
  hammer_t *h = arg;
  for (int i = 0; i < 200; i++) {
    ir_error_e code = IR_OK;
    if (call_add(h->conn, h->base + i, i, &code) != h->base + 2 * i || code != IR_OK) {
      h->wrong++;
    }
  }
  return NULL;
}

static void calls_from_many_threads_share_one_connection(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *provider = NULL;
  ir_conn_t *caller = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "provider", &provider));
  REQUIRE_OK(NULL, ir_connect_ns(ns, "caller", &caller));
  ir_function_t *fn = NULL;
  REQUIRE_OK(provider, ir_expose_function(provider, "add", ADD_REQUEST, ADD_RESPONSE, NULL, add_handler, NULL, &fn));
  server_t server;
  server_start(&server, provider);
  hammer_t hammers[4];
  for (int t = 0; t < 4; t++) {
    hammers[t] = (hammer_t){.conn = caller, .base = 1000 + t * 100000}; /* a != 13 */
    pthread_create(&hammers[t].thread, NULL, hammer_thread, &hammers[t]);
  }
  for (int t = 0; t < 4; t++) {
    pthread_join(hammers[t].thread, NULL);
    CHECK(hammers[t].wrong == 0);
  }
  CHECK_CODE(provider, server_stop(&server), IR_OK);
  ir_function_withdraw(fn);
  ir_close(caller);
  ir_close(provider);
}

static void poll_one_serves_one_request_in_an_event_loop(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *provider = NULL;
  ir_conn_t *caller = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "provider", &provider));
  REQUIRE_OK(NULL, ir_connect_ns(ns, "caller", &caller));
  ir_function_t *fn = NULL;
  REQUIRE_OK(provider, ir_expose_function(provider, "add", ADD_REQUEST, ADD_RESPONSE, NULL, add_handler, NULL, &fn));
  CHECK_CODE(provider, ir_poll_one(provider, 0), IR_ERR_TIMEOUT);

  /* One thread drives both apps: start the call, let the provider's loop answer, collect. */
  uint8_t request[24];
  size_t len = encode_add(request, sizeof request, 7, 8);
  ir_call_t *call = NULL;
  REQUIRE_OK(caller, ir_call_start(caller, "add", NULL, ADD_REQUEST, ADD_RESPONSE, request, len, 5000, &call));
  CHECK_CODE(caller, ir_call_poll(call, 0), IR_ERR_TIMEOUT);
  CHECK_CODE(caller, ir_call_result(call, NULL, NULL), IR_ERR_TIMEOUT);
  int rounds = 0;
  while (rounds < 100 && ir_call_poll(call, 0) != IR_OK) {
    (void)ir_poll_one(provider, 10);
    rounds++;
  }
  const uint8_t *datum = NULL;
  size_t datum_len = 0;
  int64_t sum = 0;
  CHECK_CODE(caller, ir_call_result(call, &datum, &datum_len), IR_OK);
  CHECK(decode_sum(datum, datum_len, &sum) && sum == 15);
  ir_call_free(call);
  ir_function_withdraw(fn);
  ir_close(caller);
  ir_close(provider);
}

static void pending_call_fails_with_peer_gone_when_the_function_is_withdrawn(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *provider = NULL;
  ir_conn_t *caller = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "provider", &provider));
  REQUIRE_OK(NULL, ir_connect_ns(ns, "caller", &caller));
  ir_function_t *fn = NULL;
  REQUIRE_OK(provider, ir_expose_function(provider, "add", ADD_REQUEST, ADD_RESPONSE, NULL, add_handler, NULL, &fn));
  uint8_t request[24];
  size_t len = encode_add(request, sizeof request, 1, 1);
  ir_call_t *call = NULL;
  REQUIRE_OK(caller, ir_call_start(caller, "add", NULL, ADD_REQUEST, ADD_RESPONSE, request, len, 30000, &call));
  ir_function_withdraw(fn);
  int64_t started = now_ms();
  CHECK_CODE(caller, ir_call_poll(call, 5000), IR_OK);
  CHECK(now_ms() - started < 1000);
  CHECK_CODE(caller, ir_call_result(call, NULL, NULL), IR_ERR_PEER_GONE);
  CHECK(strstr(ir_call_error_message(call), "add") != NULL);
  ir_call_free(call);
  ir_close(caller);
  ir_close(provider);
}

static void caller_sees_peer_gone_when_the_provider_process_dies(const char *ns, test_broker_t *broker) {
  (void)broker;
  int ready[2];
  if (pipe(ready) != 0) {
    failures++;
    return;
  }
  pid_t child = fork();
  if (child == 0) {
    close(ready[0]);
    ir_conn_t *provider = NULL;
    ir_function_t *fn = NULL;
    if (ir_connect_ns(ns, "doomed-provider", &provider) != IR_OK ||
        ir_expose_function(provider, "add", ADD_REQUEST, ADD_RESPONSE, NULL, add_handler, NULL, &fn) != IR_OK) {
      _exit(1);
    }
    (void)write(ready[1], "r", 1);
    for (;;) {
      pause(); /* never serves: the caller's request stays pending until we die */
    }
  }
  close(ready[1]);
  char byte = 0;
  bool child_ready = read(ready[0], &byte, 1) == 1;
  close(ready[0]);
  CHECK(child_ready);
  ir_conn_t *caller = NULL;
  ir_call_t *call = NULL;
  ir_error_e connected = ir_connect_ns(ns, "caller", &caller);
  if (child_ready && connected == IR_OK) {
    uint8_t request[24];
    size_t len = encode_add(request, sizeof request, 1, 1);
    CHECK_CODE(caller, ir_call_start(caller, "add", NULL, ADD_REQUEST, ADD_RESPONSE, request, len, 30000, &call),
               IR_OK);
  }
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  if (call != NULL) {
    int64_t started = now_ms();
    CHECK_CODE(caller, ir_call_poll(call, 5000), IR_OK);
    CHECK(now_ms() - started < 2000);
    CHECK_CODE(caller, ir_call_result(call, NULL, NULL), IR_ERR_PEER_GONE);
    ir_call_free(call);
    /* A new call finds no function any more. */
    ir_error_e code = IR_OK;
    (void)call_add(caller, 1, 1, &code);
    CHECK_CODE(caller, code, IR_ERR_UNKNOWN_FUNCTION);
  }
  ir_close(caller);
}

static void broker_shutdown_is_broker_gone_everywhere(const char *ns, test_broker_t *broker) {
  ir_conn_t *conn = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "survivor", &conn));
  ir_publisher_t *pub = NULL;
  ir_subscriber_t *sub = NULL;
  ir_function_t *fn = NULL;
  REQUIRE_OK(conn, ir_publish_channel(conn, "c", BYTES, NULL, 0, IR_CHANNEL_BLOCK, &pub));
  REQUIRE_OK(conn, ir_subscribe(conn, "c", NULL, BYTES, &sub));
  REQUIRE_OK(conn, ir_expose_function(conn, "add", ADD_REQUEST, ADD_RESPONSE, NULL, add_handler, NULL, &fn));
  /* A call in flight (nobody serves it) when the broker stops: BrokerGone, not PeerGone. */
  uint8_t request[24];
  size_t request_len = encode_add(request, sizeof request, 1, 2);
  ir_call_t *pending = NULL;
  REQUIRE_OK(conn, ir_call_start(conn, "add", NULL, ADD_REQUEST, ADD_RESPONSE, request, request_len, 30000, &pending));
  CHECK(test_broker_stop(broker, SIGTERM));
  CHECK_CODE(conn, ir_call_poll(pending, 5000), IR_OK);
  CHECK_CODE(conn, ir_call_result(pending, NULL, NULL), IR_ERR_BROKER_GONE);
  ir_call_free(pending);
  uint8_t buf[8];
  size_t len = 0;
  CHECK_CODE(conn, ir_receive(sub, buf, sizeof buf, &len, 2000), IR_ERR_BROKER_GONE);
  CHECK(ir_broker_gone(conn) == 1);
  ir_publisher_t *other = NULL;
  CHECK_CODE(conn, ir_publish_channel(conn, "d", BYTES, NULL, 0, IR_CHANNEL_BLOCK, &other), IR_ERR_BROKER_GONE);
  CHECK(strstr(ir_last_error(conn), ns) != NULL);
  ir_error_e code = IR_OK;
  (void)call_add(conn, 1, 2, &code);
  CHECK_CODE(conn, code, IR_ERR_BROKER_GONE);
  CHECK_CODE(conn, ir_serve(conn, 1000), IR_ERR_BROKER_GONE);
  ir_function_withdraw(fn);
  ir_subscriber_close(sub);
  ir_publisher_close(pub);
  ir_close(conn);
}

static void killed_broker_is_noticed_by_its_pid(const char *ns, test_broker_t *broker) {
  ir_conn_t *conn = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "orphan", &conn));
  ir_publisher_t *pub = NULL;
  ir_subscriber_t *sub = NULL;
  REQUIRE_OK(conn, ir_publish_channel(conn, "c", BYTES, NULL, 0, IR_CHANNEL_BLOCK, &pub));
  REQUIRE_OK(conn, ir_subscribe(conn, "c", NULL, BYTES, &sub));
  CHECK(test_broker_stop(broker, SIGKILL));
  uint8_t buf[8];
  size_t len = 0;
  int64_t started = now_ms();
  CHECK_CODE(conn, ir_receive(sub, buf, sizeof buf, &len, 5000), IR_ERR_BROKER_GONE);
  CHECK(now_ms() - started < 1000);
  CHECK(ir_broker_gone(conn) == 1);
  ir_subscriber_close(sub);
  ir_publisher_close(pub);
  ir_close(conn);
  /* A new broker in the namespace removes what the killed one left behind. */
  test_broker_t next;
  if (test_broker_start(&next, ns)) {
    CHECK(test_broker_stop(&next, SIGTERM));
  }
}

/* The broker computes fingerprints; the C side passes schema JSON through untouched (UTF-8, escapes)
 * and uses what comes back. Every case of spec/vectors/fingerprints.txt must come back as stated. */
static void broker_fingerprints_match_the_spec_vectors(const char *ns, test_broker_t *broker) {
  (void)broker;
  const char *path = getenv("IMPULSE_RING_FINGERPRINTS");
  FILE *file = fopen(path != NULL ? path : "spec/vectors/fingerprints.txt", "r");
  CHECK(file != NULL);
  if (file == NULL) {
    return;
  }
  ir_conn_t *conn = NULL;
  if (ir_connect_ns(ns, "fingerprints", &conn) != IR_OK) {
    failures++;
    fclose(file);
    return;
  }
  char *line = NULL;
  size_t cap = 0;
  char *schema = NULL;
  int cases = 0;
  while (getline(&line, &cap, file) >= 0) {
    line[strcspn(line, "\r\n")] = '\0';
    if (strncmp(line, "schema: ", 8) == 0) {
      free(schema);
      schema = strdup(line + 8);
    } else if (strncmp(line, "fingerprint: ", 13) == 0 && schema != NULL) {
      unsigned long long expected = strtoull(line + 13, NULL, 16);
      char name[32];
      (void)snprintf(name, sizeof name, "fp-%d", cases++);
      ir_publisher_t *pub = NULL;
      ir_error_e code = ir_publish_channel(conn, name, schema, NULL, 4096, IR_CHANNEL_BLOCK, &pub);
      if (code != IR_OK || ir_publisher_fingerprint(pub) != expected) {
        fprintf(stderr, "  %s: %s gave %s %016llx, expected %016llx (%s)\n", name, schema, ir_error_name(code),
                (unsigned long long)ir_publisher_fingerprint(pub), expected, ir_last_error(conn));
        failures++;
      }
      ir_publisher_close(pub);
      free(schema);
      schema = NULL;
    }
  }
  free(schema);
  free(line);
  fclose(file);
  CHECK(cases >= 30);
  ir_close(conn);
}

/* Maps a segment of the namespace for the corruption test. */
static uint8_t *map_segment(const char *name, size_t *len) {
  int fd = shm_open(name, O_RDWR, 0);
  if (fd < 0) {
    return NULL;
  }
  off_t size = lseek(fd, 0, SEEK_END);
  void *base = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  *len = (size_t)size;
  return base == MAP_FAILED ? NULL : base;
}

static void corrupt_channel_gives_corrupt_not_a_crash(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *conn = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "victim", &conn));
  ir_publisher_t *pub = NULL;
  ir_subscriber_t *sub = NULL;
  REQUIRE_OK(conn, ir_publish_channel(conn, "c", BYTES, NULL, 4096, IR_CHANNEL_BLOCK, &pub));
  REQUIRE_OK(conn, ir_subscribe(conn, "c", NULL, BYTES, &sub));
  char name[128];
  (void)snprintf(name, sizeof name, "/impulse-ring.%s.ch.%llu", ns, (unsigned long long)ir_publisher_channel_id(pub));
  size_t seg_len = 0;
  uint8_t *seg = map_segment(name, &seg_len);
  CHECK(seg != NULL);
  if (seg != NULL) {
    ir_channel_header_t *header = (ir_channel_header_t *)seg;
    uint8_t buf[64];
    size_t len = 0;
    /* A tail that is not a multiple of 16. */
    atomic_store(&header->tail, 3);
    CHECK_CODE(conn, ir_receive(sub, buf, sizeof buf, &len, 0), IR_ERR_CORRUPT);
    /* A tail a whole ring ahead. */
    atomic_store(&header->tail, 4096 + 16);
    CHECK_CODE(conn, ir_receive(sub, buf, sizeof buf, &len, 0), IR_ERR_CORRUPT);
    /* A record whose length runs past the published data and the ring. */
    ir_frame_header_t *frame = (ir_frame_header_t *)(seg + seg_len - 4096);
    atomic_store(&frame->len_kind_flags, (uint64_t)100000 | ((uint64_t)IR_FRAME_KIND_DATA << 32));
    atomic_store(&header->tail, 32);
    CHECK_CODE(conn, ir_receive(sub, buf, sizeof buf, &len, 0), IR_ERR_CORRUPT);
    /* A record of an unknown kind. */
    atomic_store(&frame->len_kind_flags, (uint64_t)4 | ((uint64_t)77 << 32));
    CHECK_CODE(conn, ir_receive(sub, buf, sizeof buf, &len, 0), IR_ERR_CORRUPT);
    CHECK(strstr(ir_last_error(conn), "corrupt") != NULL);
    munmap(seg, seg_len);
  }
  ir_subscriber_close(sub);
  ir_publisher_close(pub);
  ir_close(conn);
}

static void closed_connection_refuses_and_its_handles_still_close(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *conn = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "closer", &conn));
  ir_publisher_t *pub = NULL;
  ir_subscriber_t *sub = NULL;
  ir_function_t *fn = NULL;
  REQUIRE_OK(conn, ir_publish_channel(conn, "c", BYTES, NULL, 0, IR_CHANNEL_BLOCK, &pub));
  REQUIRE_OK(conn, ir_subscribe(conn, "c", NULL, BYTES, &sub));
  REQUIRE_OK(conn, ir_expose_function(conn, "add", ADD_REQUEST, ADD_RESPONSE, NULL, add_handler, NULL, &fn));
  ir_close(conn);
  uint8_t datum[] = {0x00};
  CHECK_CODE(NULL, ir_publish(pub, datum, 1, 0), IR_ERR_CLOSED);
  /* The broker closed the channel when it collected the app. */
  uint8_t buf[8];
  size_t len = 0;
  ir_error_e code = ir_receive(sub, buf, sizeof buf, &len, 2000);
  CHECK(code == IR_ERR_CLOSED);
  ir_function_withdraw(fn);
  ir_subscriber_close(sub);
  ir_publisher_close(pub);
  /* The slot is free again: a new app connects and works. */
  REQUIRE_OK(NULL, ir_connect_ns(ns, "after", &conn));
  REQUIRE_OK(conn, ir_publish_channel(conn, "c", BYTES, NULL, 0, IR_CHANNEL_BLOCK, &pub));
  ir_publisher_close(pub);
  ir_close(conn);
}

/* The index of the entry named `name` among `count` (via `name_at`), or `count` when there is none. */
static size_t find_named(const ir_listing_t *listing, size_t count,
                         const char *(*name_at)(const ir_listing_t *, size_t), const char *name) {
  for (size_t i = 0; i < count; i++) {
    const char *got = name_at(listing, i);
    if (got != NULL && strcmp(got, name) == 0) {
      return i;
    }
  }
  return count;
}

static void listing_shows_apps_channels_and_functions(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *provider = NULL;
  ir_conn_t *viewer = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "provider", &provider));
  REQUIRE_OK(NULL, ir_connect_ns(ns, "viewer", &viewer));
  ir_publisher_t *pub = NULL;
  ir_publisher_t *ticks = NULL;
  ir_subscriber_t *sub = NULL;
  ir_function_t *fn = NULL;
  REQUIRE_OK(provider, ir_publish_channel(provider, "readings", READING, NULL, 1u << 16, IR_CHANNEL_BLOCK, &pub));
  REQUIRE_OK(provider, ir_publish_channel(provider, "ticks", BYTES, NULL, 4096, IR_CHANNEL_LOSSY, &ticks));
  REQUIRE_OK(viewer, ir_subscribe(viewer, "readings", NULL, READING, &sub));
  REQUIRE_OK(provider, ir_expose_function(provider, "add", ADD_REQUEST, ADD_RESPONSE, "k", add_handler, NULL, &fn));
  for (int64_t seq = 0; seq < 3; seq++) {
    uint8_t datum[32];
    size_t len = encode_reading(datum, sizeof datum, seq, 21.5);
    CHECK_CODE(provider, ir_publish(pub, datum, len, 1000), IR_OK);
  }

  ir_listing_t *listing = NULL;
  REQUIRE_OK(viewer, ir_list(viewer, &listing));
  size_t apps = ir_listing_app_count(listing);
  CHECK(apps == 2);
  size_t at = find_named(listing, apps, ir_listing_app_name, "provider");
  CHECK(at < apps && ir_listing_app_id(listing, at) == ir_app_id(provider));
  CHECK(at < apps && ir_listing_app_pid(listing, at) == (int64_t)getpid());
  at = find_named(listing, apps, ir_listing_app_name, "viewer");
  CHECK(at < apps && ir_listing_app_id(listing, at) == ir_app_id(viewer));

  size_t channels = ir_listing_channel_count(listing);
  CHECK(channels == 2);
  at = find_named(listing, channels, ir_listing_channel_name, "readings");
  CHECK(at < channels);
  CHECK(ir_listing_channel_id(listing, at) == ir_publisher_channel_id(pub));
  CHECK(ir_listing_channel_owner(listing, at) == ir_app_id(provider));
  CHECK(ir_listing_channel_fingerprint(listing, at) != 0 &&
        ir_listing_channel_fingerprint(listing, at) == ir_publisher_fingerprint(pub));
  CHECK(ir_listing_channel_capacity(listing, at) == 1u << 16);
  CHECK(ir_listing_channel_lossy(listing, at) == 0);
  CHECK(ir_listing_channel_subscribers(listing, at) == 1);
  CHECK(ir_listing_channel_published(listing, at) == 3);
  at = find_named(listing, channels, ir_listing_channel_name, "ticks");
  CHECK(at < channels && ir_listing_channel_fingerprint(listing, at) == ir_publisher_fingerprint(ticks));
  CHECK(at < channels && ir_listing_channel_lossy(listing, at) == 1 &&
        ir_listing_channel_capacity(listing, at) == 4096);
  CHECK(at < channels && ir_listing_channel_subscribers(listing, at) == 0);

  CHECK(ir_listing_function_count(listing) == 1);
  CHECK(ir_listing_function_name(listing, 0) != NULL && strcmp(ir_listing_function_name(listing, 0), "add") == 0);
  CHECK(ir_listing_function_id(listing, 0) == ir_function_id(fn));
  CHECK(ir_listing_function_owner(listing, 0) == ir_app_id(provider));
  CHECK(ir_listing_function_request_fingerprint(listing, 0) != 0);
  CHECK(ir_listing_function_response_fingerprint(listing, 0) != 0);
  CHECK(ir_listing_function_request_fingerprint(listing, 0) != ir_listing_function_response_fingerprint(listing, 0));

  /* Out of range and NULL give zeros, never a crash. */
  CHECK(ir_listing_app_name(listing, apps) == NULL && ir_listing_channel_id(listing, channels) == 0);
  CHECK(ir_listing_function_name(listing, 1) == NULL && ir_listing_function_owner(listing, 1) == 0);
  CHECK(ir_listing_channel_count(NULL) == 0 && ir_listing_channel_name(NULL, 0) == NULL);
  ir_listing_free(listing);
  ir_listing_free(NULL);
  CHECK_CODE(NULL, ir_list(NULL, &listing), IR_ERR_INVALID_ARGUMENT);
  CHECK_CODE(viewer, ir_list(viewer, NULL), IR_ERR_INVALID_ARGUMENT);

  /* Withdrawing and closing are posted before the next request on the same slot: a fresh listing from
   * the provider no longer shows them. */
  ir_function_withdraw(fn);
  ir_publisher_close(ticks);
  listing = NULL;
  REQUIRE_OK(provider, ir_list(provider, &listing));
  CHECK(ir_listing_function_count(listing) == 0);
  CHECK(ir_listing_channel_count(listing) == 1);
  CHECK(ir_listing_channel_name(listing, 0) != NULL && strcmp(ir_listing_channel_name(listing, 0), "readings") == 0);
  ir_listing_free(listing);

  ir_subscriber_close(sub);
  ir_publisher_close(pub);
  ir_close(viewer);
  ir_close(provider);
}

/* ---- Runner ---- */

typedef struct test {
  const char *name;
  void (*plain)(void);
  void (*live)(const char *ns, test_broker_t *broker);
} test_t;

static const test_t TESTS[] = {
    {"error_codes_match_the_shared_table", error_codes_match_the_shared_table, NULL},
    {"avro_codec_round_trips_and_refuses_malformed_input", avro_codec_round_trips_and_refuses_malformed_input, NULL},
    {"control_vectors_decode_and_encode_byte_exact", control_vectors_decode_and_encode_byte_exact, NULL},
    {"connect_refuses_bad_arguments", connect_refuses_bad_arguments, NULL},
    {"connect_without_broker_reports_no_broker_and_the_namespace",
     connect_without_broker_reports_no_broker_and_the_namespace, NULL},
    {"publish_and_receive_by_copy_and_by_view", NULL, publish_and_receive_by_copy_and_by_view},
    {"refusals_are_typed_and_explained", NULL, refusals_are_typed_and_explained},
    {"receive_times_out_and_keeps_a_message_too_large_for_the_buffer", NULL,
     receive_times_out_and_keeps_a_message_too_large_for_the_buffer},
    {"subscriber_reads_what_is_left_then_sees_closed", NULL, subscriber_reads_what_is_left_then_sees_closed},
    {"full_block_channel_gives_would_block_and_timeout", NULL, full_block_channel_gives_would_block_and_timeout},
    {"lossy_subscriber_learns_how_many_it_missed", NULL, lossy_subscriber_learns_how_many_it_missed},
    {"calls_return_results_and_typed_errors", NULL, calls_return_results_and_typed_errors},
    {"calls_from_many_threads_share_one_connection", NULL, calls_from_many_threads_share_one_connection},
    {"poll_one_serves_one_request_in_an_event_loop", NULL, poll_one_serves_one_request_in_an_event_loop},
    {"pending_call_fails_with_peer_gone_when_the_function_is_withdrawn", NULL,
     pending_call_fails_with_peer_gone_when_the_function_is_withdrawn},
    {"caller_sees_peer_gone_when_the_provider_process_dies", NULL,
     caller_sees_peer_gone_when_the_provider_process_dies},
    {"broker_shutdown_is_broker_gone_everywhere", NULL, broker_shutdown_is_broker_gone_everywhere},
    {"killed_broker_is_noticed_by_its_pid", NULL, killed_broker_is_noticed_by_its_pid},
    {"broker_fingerprints_match_the_spec_vectors", NULL, broker_fingerprints_match_the_spec_vectors},
    {"corrupt_channel_gives_corrupt_not_a_crash", NULL, corrupt_channel_gives_corrupt_not_a_crash},
    {"closed_connection_refuses_and_its_handles_still_close", NULL,
     closed_connection_refuses_and_its_handles_still_close},
    {"listing_shows_apps_channels_and_functions", NULL, listing_shows_apps_channels_and_functions},
};

int main(int argc, char **argv) {
  const char *filter = argc > 1 ? argv[1] : NULL;
  int failed_tests = 0;
  int ran = 0;
  for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++) {
    const test_t *test = &TESTS[i];
    if (filter != NULL && strstr(test->name, filter) == NULL) {
      continue;
    }
    ran++;
    int before = failures;
    int64_t started = now_ms();
    if (test->plain != NULL) {
      test->plain();
    } else {
      char ns[64];
      (void)snprintf(ns, sizeof ns, "%scself-%d-%zu", test_ns_prefix(), (int)getpid(), i);
      test_broker_t broker = {0};
      if (!test_broker_start(&broker, ns)) {
        failures++;
      } else {
        test->live(ns, &broker);
        if (broker.pid > 0 && !test_broker_stop(&broker, SIGTERM)) {
          fprintf(stderr, "  the broker did not exit cleanly on SIGTERM\n");
          failures++;
        }
        sleep_ms(20);
        int left = test_shm_count(ns);
        if (left != 0) {
          fprintf(stderr, "  %d segment(s) of namespace %s left in /dev/shm\n", left, ns);
          (void)test_shm_remove(ns);
          failures++;
        }
      }
    }
    bool ok = failures == before;
    failed_tests += ok ? 0 : 1;
    printf("%s %s (%lld ms)\n", ok ? "ok  " : "FAIL", test->name, (long long)(now_ms() - started));
    fflush(stdout);
  }
  printf("%d of %d tests passed\n", ran - failed_tests, ran);
  return failed_tests == 0 && ran > 0 ? 0 : 1;
}
