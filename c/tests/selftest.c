/* The C connector's self-test: the API and its error paths against a live broker. Each test that
 * needs a broker starts `impulsed` in a namespace of its own and stops it afterwards, and the run
 * fails if anything of that namespace is left in /dev/shm. Run by ctest (plain and sanitized). This
 * file is the runner and the shared fixtures; the tests live by area in test_codec.c, test_seal.c,
 * test_seal_session.c, test_session.c, test_channels.c and test_calls.c.
 *
 *   IMPULSE_RING_BROKER   path of impulsed (default target/debug/impulsed)
 *   IMPULSE_RING_VECTORS  path of spec/vectors/control.txt
 *   IMPULSE_RING_FINGERPRINTS  path of spec/vectors/fingerprints.txt
 *   IMPULSE_RING_ERRORS   path of spec/vectors/errors.txt
 *   IMPULSE_RING_SEALING  path of spec/vectors/sealing.txt
 *   selftest [name-substring]   runs only the tests whose name contains the substring
 */
#include "selftest.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int test_failures;

const char *const READING =
    "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"test\",\"fields\":["
    "{\"name\":\"seq\",\"type\":\"long\"},{\"name\":\"celsius\",\"type\":\"double\"}]}";
const char *const OTHER_READING =
    "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"test\",\"fields\":["
    "{\"name\":\"seq\",\"type\":\"long\"},{\"name\":\"celsius\",\"type\":\"float\"}]}";
const char *const BYTES = "\"bytes\"";
const char *const MALFORMED = "{\"type\":\"record\",\"name\":\"Broken\",\"fields\":[{\"name\":\"x\",\"type\":";
const char *const ADD_REQUEST =
    "{\"type\":\"record\",\"name\":\"AddRequest\",\"namespace\":\"test\",\"fields\":["
    "{\"name\":\"a\",\"type\":\"long\"},{\"name\":\"b\",\"type\":\"long\"}]}";
const char *const ADD_RESPONSE =
    "{\"type\":\"record\",\"name\":\"AddResponse\",\"namespace\":\"test\",\"fields\":[{\"name\":\"sum\",\"type\":"
    "\"long\"}]}";

int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(long ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- Datums ---- */

size_t encode_reading(uint8_t *buf, size_t cap, int64_t seq, double celsius) {
  ir_avro_writer_t w;
  ir_avro_writer_init(&w, buf, cap);
  ir_avro_write_long(&w, seq);
  ir_avro_write_double(&w, celsius);
  return ir_avro_writer_ok(&w) ? w.len : 0;
}

bool decode_reading(const uint8_t *datum, size_t len, int64_t *seq, double *celsius) {
  ir_avro_reader_t r;
  ir_avro_reader_init(&r, datum, len);
  *seq = ir_avro_read_long(&r);
  *celsius = ir_avro_read_double(&r);
  return ir_avro_reader_finish(&r);
}

size_t encode_add(uint8_t *buf, size_t cap, int64_t a, int64_t b) {
  ir_avro_writer_t w;
  ir_avro_writer_init(&w, buf, cap);
  ir_avro_write_long(&w, a);
  ir_avro_write_long(&w, b);
  return ir_avro_writer_ok(&w) ? w.len : 0;
}

bool decode_sum(const uint8_t *datum, size_t len, int64_t *sum) {
  ir_avro_reader_t r;
  ir_avro_reader_init(&r, datum, len);
  *sum = ir_avro_read_long(&r);
  return ir_avro_reader_finish(&r);
}

ir_error_e add_handler(void *user, const uint8_t *request, size_t len, ir_response_t *response) {
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

static void *serve_thread(void *arg) {
  server_t *server = arg;
  server->result = ir_serve(server->conn, IR_FOREVER);
  return NULL;
}

void server_start(server_t *server, ir_conn_t *conn) {
  server->conn = conn;
  server->result = IR_OK;
  pthread_create(&server->thread, NULL, serve_thread, server);
}

ir_error_e server_stop(server_t *server) {
  ir_serve_stop(server->conn);
  pthread_join(server->thread, NULL);
  return server->result;
}

int64_t call_add(ir_conn_t *conn, int64_t a, int64_t b, ir_error_e *code) {
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

/* ---- Fixtures ---- */

/* Prints why a fixture step failed and counts it. */
static bool setup_failed(ir_conn_t *conn, const char *what, ir_error_e code) {
  fprintf(stderr, "  setup: %s failed: %s: %s\n", what, ir_error_name(code), ir_last_error(conn));
  test_failures++;
  return false;
}

bool test_call_pair_open(test_call_pair_t *pair, const char *ns, bool serve) {
  memset(pair, 0, sizeof *pair);
  atomic_init(&pair->served, 0);
  ir_error_e code = ir_connect_ns(ns, "provider", &pair->provider);
  if (code != IR_OK) {
    return setup_failed(NULL, "connecting the provider", code);
  }
  code = ir_connect_ns(ns, "caller", &pair->caller);
  if (code == IR_OK) {
    code = ir_expose_function(pair->provider, "add", ADD_REQUEST, ADD_RESPONSE, NULL, add_handler, &pair->served,
                              &pair->add);
    if (code != IR_OK) {
      (void)setup_failed(pair->provider, "exposing add", code);
    }
  } else {
    (void)setup_failed(NULL, "connecting the caller", code);
  }
  if (code != IR_OK) {
    test_call_pair_close(pair);
    return false;
  }
  if (serve) {
    server_start(&pair->server, pair->provider);
    pair->serving = true;
  }
  return true;
}

void test_call_pair_close(test_call_pair_t *pair) {
  if (pair->serving) {
    CHECK_CODE(pair->provider, server_stop(&pair->server), IR_OK);
    pair->serving = false;
  }
  ir_function_withdraw(pair->add);
  pair->add = NULL;
  ir_close(pair->caller);
  ir_close(pair->provider);
  pair->caller = NULL;
  pair->provider = NULL;
}

bool test_channel_open(test_channel_t *channel, const char *ns, const char *name, const char *schema, uint64_t capacity,
                       uint32_t flags, bool two_apps) {
  memset(channel, 0, sizeof *channel);
  ir_error_e code = ir_connect_ns(ns, "producer", &channel->producer);
  if (code != IR_OK) {
    return setup_failed(NULL, "connecting the producer", code);
  }
  channel->consumer = channel->producer;
  if (two_apps && (code = ir_connect_ns(ns, "consumer", &channel->consumer)) != IR_OK) {
    channel->consumer = NULL;
    (void)setup_failed(NULL, "connecting the consumer", code);
  } else if ((code = ir_publish_channel(channel->producer, name, schema, NULL, capacity, flags, &channel->pub)) !=
             IR_OK) {
    (void)setup_failed(channel->producer, "publishing the channel", code);
  } else if ((code = ir_subscribe(channel->consumer, name, NULL, schema, &channel->sub)) != IR_OK) {
    (void)setup_failed(channel->consumer, "subscribing", code);
  }
  if (code != IR_OK) {
    test_channel_close(channel);
    return false;
  }
  return true;
}

void test_channel_close(test_channel_t *channel) {
  ir_subscriber_close(channel->sub);
  ir_publisher_close(channel->pub);
  if (channel->consumer != channel->producer) {
    ir_close(channel->consumer);
  }
  ir_close(channel->producer);
  memset(channel, 0, sizeof *channel);
}

/* ---- Runner ---- */

static int run(const test_t *test, size_t index) {
  int before = test_failures;
  int64_t started = now_ms();
  if (test->plain != NULL) {
    test->plain();
  } else {
    char ns[64];
    (void)snprintf(ns, sizeof ns, "%scself-%d-%zu", test_ns_prefix(), (int)getpid(), index);
    test_broker_t broker = {0};
    if (!test_broker_start(&broker, ns)) {
      test_failures++;
    } else {
      test->live(ns, &broker);
      if (broker.pid > 0 && !test_broker_stop(&broker, SIGTERM)) {
        fprintf(stderr, "  the broker did not exit cleanly on SIGTERM\n");
        test_failures++;
      }
      sleep_ms(20);
      int left = test_shm_count(ns);
      if (left != 0) {
        fprintf(stderr, "  %d segment(s) of namespace %s left in /dev/shm\n", left, ns);
        (void)test_shm_remove(ns);
        test_failures++;
      }
    }
  }
  bool ok = test_failures == before;
  printf("%s %s (%lld ms)\n", ok ? "ok  " : "FAIL", test->name, (long long)(now_ms() - started));
  fflush(stdout);
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  const char *filter = argc > 1 ? argv[1] : NULL;
  const struct {
    const test_t *tests;
    size_t count;
  } areas[] = {
      {CODEC_TESTS, CODEC_TEST_COUNT},
      {SEAL_TESTS, SEAL_TEST_COUNT},
      {SEAL_SESSION_TESTS, SEAL_SESSION_TEST_COUNT},
      {SESSION_TESTS, SESSION_TEST_COUNT},
      {CHANNEL_TESTS, CHANNEL_TEST_COUNT},
      {CALL_TESTS, CALL_TEST_COUNT},
  };
  int failed_tests = 0;
  int ran = 0;
  size_t index = 0;
  for (size_t a = 0; a < sizeof areas / sizeof areas[0]; a++) {
    for (size_t i = 0; i < areas[a].count; i++, index++) {
      const test_t *test = &areas[a].tests[i];
      if (filter != NULL && strstr(test->name, filter) == NULL) {
        continue;
      }
      ran++;
      failed_tests += run(test, index);
    }
  }
  printf("%d of %d tests passed\n", ran - failed_tests, ran);
  return failed_tests == 0 && ran > 0 ? 0 : 1;
}
