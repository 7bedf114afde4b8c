/* What every file of the C self-test shares: the check macros, the test schemas and datums, the `add`
 * handler, and the fixtures that set up the apps a test needs against the live broker the runner
 * started for it (selftest.c). Each test_*.c file holds one area and exports its table of tests. */
#ifndef IR_SELFTEST_H
#define IR_SELFTEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "broker.h"
#include "impulse_ring.h"
#include "impulse_ring_avro.h"

/* Failed checks so far, over the whole run. */
extern int test_failures;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      test_failures++;                                                           \
    }                                                                            \
  } while (0)

#define CHECK_CODE(conn, expr, want)                                                                             \
  do {                                                                                                           \
    ir_error_e got_ = (expr);                                                                                    \
    if (got_ != (want)) {                                                                                        \
      fprintf(stderr, "  %s:%d: %s gave %s (%s), expected %s\n", __FILE__, __LINE__, #expr, ir_error_name(got_), \
              ir_last_error(conn), ir_error_name(want));                                                         \
      test_failures++;                                                                                           \
    }                                                                                                            \
  } while (0)

#define REQUIRE_OK(conn, expr)                                                                        \
  do {                                                                                                \
    ir_error_e got_ = (expr);                                                                         \
    if (got_ != IR_OK) {                                                                              \
      fprintf(stderr, "  %s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #expr, ir_error_name(got_), \
              ir_last_error(conn));                                                                   \
      test_failures++;                                                                                \
      return;                                                                                         \
    }                                                                                                 \
  } while (0)

/* One test: `plain` runs without a broker; `live` gets a broker of its own in namespace `ns`. */
typedef struct test {
  const char *name;
  void (*plain)(void);
  void (*live)(const char *ns, test_broker_t *broker);
} test_t;

/* The tables of each area (test_codec.c, test_seal.c, test_seal_session.c, test_session.c, test_channels.c,
 * test_calls.c). */
extern const test_t CODEC_TESTS[];
extern const size_t CODEC_TEST_COUNT;
extern const test_t SEAL_TESTS[];
extern const size_t SEAL_TEST_COUNT;
extern const test_t SEAL_SESSION_TESTS[];
extern const size_t SEAL_SESSION_TEST_COUNT;
extern const test_t SESSION_TESTS[];
extern const size_t SESSION_TEST_COUNT;
extern const test_t CHANNEL_TESTS[];
extern const size_t CHANNEL_TEST_COUNT;
extern const test_t CALL_TESTS[];
extern const size_t CALL_TEST_COUNT;

/* ---- Schemas and datums ---- */

/* Reading {seq: long, celsius: double}; OTHER_READING has the same names and another type. */
extern const char *const READING;
extern const char *const OTHER_READING;
extern const char *const BYTES;
extern const char *const MALFORMED;
/* AddRequest {a: long, b: long} and AddResponse {sum: long}. */
extern const char *const ADD_REQUEST;
extern const char *const ADD_RESPONSE;

int64_t now_ms(void);
void sleep_ms(long ms);

size_t encode_reading(uint8_t *buf, size_t cap, int64_t seq, double celsius);
bool decode_reading(const uint8_t *datum, size_t len, int64_t *seq, double *celsius);
size_t encode_add(uint8_t *buf, size_t cap, int64_t a, int64_t b);
bool decode_sum(const uint8_t *datum, size_t len, int64_t *sum);

/* The `add` handler: a + b, except that a == 13 fails with a message. `user`, when not NULL, is an
 * atomic_int counting the requests served. */
ir_error_e add_handler(void *user, const uint8_t *request, size_t len, ir_response_t *response);

/* A blocking call of `add`; the sum, or INT64_MIN when it failed (*code says why). */
int64_t call_add(ir_conn_t *conn, int64_t a, int64_t b, ir_error_e *code);

/* ---- Fixtures ---- */

/* Serves a connection on a thread until ir_serve_stop. */
typedef struct server {
  pthread_t thread;
  ir_conn_t *conn;
  ir_error_e result;
} server_t;

void server_start(server_t *server, ir_conn_t *conn);
ir_error_e server_stop(server_t *server);

/* Two apps of the test's namespace: a provider exposing `add` (counting in `served`) and a caller. */
typedef struct test_call_pair {
  ir_conn_t *provider;
  ir_conn_t *caller;
  ir_function_t *add;
  atomic_int served;
  bool serving;
  server_t server;
} test_call_pair_t;

/* Connects both apps and exposes `add`, served on a thread when `serve`; false (a failure counted and
 * printed, whatever was opened closed again) when any step fails. */
bool test_call_pair_open(test_call_pair_t *pair, const char *ns, bool serve);

/* Stops serving (checking that ir_serve ended cleanly), withdraws `add` if still exposed, closes both. */
void test_call_pair_close(test_call_pair_t *pair);

/* A channel of the test's namespace: a publisher on `producer` and a subscriber on `consumer`, which
 * is the same connection unless the channel was opened with two apps. */
typedef struct test_channel {
  ir_conn_t *producer;
  ir_conn_t *consumer;
  ir_publisher_t *pub;
  ir_subscriber_t *sub;
} test_channel_t;

/* Connects (one app, or two), publishes `name` with `schema`, `capacity` and `flags`, and subscribes;
 * false (a failure counted and printed, whatever was opened closed again) when any step fails. */
bool test_channel_open(test_channel_t *channel, const char *ns, const char *name, const char *schema, uint64_t capacity,
                       uint32_t flags, bool two_apps);

/* Closes whatever of the channel is still open (the subscriber, the publisher, the apps). */
void test_channel_close(test_channel_t *channel);

#endif /* IR_SELFTEST_H */
