/* The C connector's testee: one role per run (publisher, subscriber, provider, caller), parameters on
 * the command line, results on stdout. spec/testee.md is its contract (and what `--help` prints):
 * the roles, options, schemas, message contents, output lines and exit statuses every connector's
 * testee shares, so one harness pairs any two languages. In short: a connector error prints
 * `error <Name>: <message>` and exits with 10 + the error's code; a verification failure prints
 * `mismatch ...` and exits with 2; a usage error (an option the role does not take included) exits
 * with 64.
 *
 *   testee publisher  [--channel C] [--key K] [--count N] [--lossy] [--capacity B] [--wait-subscribers K]
 *                     [--wait-go] [--raw] [--hold-ms T] [--probe-too-large] [--probe-invalid-schema]
 *   testee subscriber [--channel C] [--key K] [--count N] [--expect-closed] [--stall-ms T] [--schema other]
 *                     [--probe-invalid-schema]
 *   testee provider   [--function F] [--key K] [--fail-on X] [--sleep-ms T]
 *   testee caller     [--function F] [--key K] [--count N] [--in-flight C] [--threads T] [--timeout-ms T]
 *                     [--base A] [--keep-going]
 *
 * The C connector has no typed encoder: every message is encoded by hand with impulse_ring_avro.h, so
 * --raw changes nothing here. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "impulse_ring.h"
#include "impulse_ring_avro.h"

static const char *const MESSAGE =
    "{\"type\":\"record\",\"name\":\"Message\",\"namespace\":\"e2e\",\"fields\":[\n"
    "  {\"name\":\"seq\",\"type\":\"long\"},{\"name\":\"body\",\"type\":\"bytes\"},{\"name\":\"checksum\",\"type\":"
    "\"long\"}]}";
/* Same field names, another type for `body`: another fingerprint. */
static const char *const OTHER_MESSAGE =
    "{\"type\":\"record\",\"name\":\"Message\",\"namespace\":\"e2e\",\"fields\":[\n"
    "  {\"name\":\"seq\",\"type\":\"long\"},{\"name\":\"body\",\"type\":\"string\"},{\"name\":\"checksum\",\"type\":"
    "\"long\"}]}";
static const char *const MALFORMED = "{\"type\":\"record\",\"name\":\"Broken\",\"fields\":[{\"name\":\"x\",\"type\":";
static const char *const ADD_REQUEST =
    "{\"type\":\"record\",\"name\":\"AddRequest\",\"namespace\":\"e2e\",\"fields\":[{\"name\":\"a\",\"type\":\"long\"},"
    "{\"name\":\"b\",\"type\":\"long\"}]}";
static const char *const ADD_RESPONSE =
    "{\"type\":\"record\",\"name\":\"AddResponse\",\"namespace\":\"e2e\",\"fields\":[{\"name\":\"sum\",\"type\":"
    "\"long\"}]}";

/* ---- Outcomes ---- */

static void usage(const char *message) __attribute__((noreturn));
static void fail_ring(ir_conn_t *conn, ir_error_e code) __attribute__((noreturn));

static void usage(const char *message) {
  fprintf(stderr, "testee: %s\nusage: testee publisher|subscriber|provider|caller [--option value]...\n", message);
  exit(64);
}

/* Reports a connector error and exits with 10 + its code. */
static void fail_ring(ir_conn_t *conn, ir_error_e code) {
  printf("error %s: %s\n", ir_error_name(code), ir_last_error(conn));
  fflush(stdout);
  exit(10 + (int)code);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail_mismatch(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Prints one output line and flushes it: the harness reads lines as they come. */
static void say(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vprintf(fmt, args);
  va_end(args);
  printf("\n");
  fflush(stdout);
}

/* Reports a verification failure and exits with 2. */
static void fail_mismatch(const char *fmt, ...) {
  printf("mismatch ");
  va_list args;
  va_start(args, fmt);
  vprintf(fmt, args);
  va_end(args);
  printf("\n");
  fflush(stdout);
  exit(2);
}

/* ---- Arguments: `--name value` pairs and bare flags, per role (spec/testee.md §5) ---- */

typedef struct option {
  const char *name;
  bool takes_value;
} option_t;

/* The options of each role; NULL-terminated. */
static const option_t PUBLISHER_OPTIONS[] = {{"--channel", true},
                                             {"--key", true},
                                             {"--count", true},
                                             {"--lossy", false},
                                             {"--capacity", true},
                                             {"--wait-subscribers", true},
                                             {"--wait-go", false},
                                             {"--raw", false},
                                             {"--hold-ms", true},
                                             {"--probe-too-large", false},
                                             {"--probe-invalid-schema", false},
                                             {NULL, false}};
static const option_t SUBSCRIBER_OPTIONS[] = {{"--channel", true},
                                              {"--key", true},
                                              {"--count", true},
                                              {"--expect-closed", false},
                                              {"--stall-ms", true},
                                              {"--schema", true},
                                              {"--probe-invalid-schema", false},
                                              {NULL, false}};
static const option_t PROVIDER_OPTIONS[] = {
    {"--function", true}, {"--key", true}, {"--fail-on", true}, {"--sleep-ms", true}, {NULL, false}};
static const option_t CALLER_OPTIONS[] = {{"--function", true},   {"--key", true},         {"--count", true},
                                          {"--base", true},       {"--in-flight", true},   {"--threads", true},
                                          {"--timeout-ms", true}, {"--keep-going", false}, {NULL, false}};

typedef struct args {
  int argc;
  char **argv;
  const option_t *options;
} args_t;

static const option_t *find_option(const args_t *args, const char *name) {
  for (const option_t *o = args->options; o->name != NULL; o++) {
    if (strcmp(o->name, name) == 0) {
      return o;
    }
  }
  return NULL;
}

/* Every argument must be an option of the role, with its value when it takes one. */
static void check_args(const args_t *args) {
  char message[256];
  for (int i = 0; i < args->argc; i++) {
    const char *arg = args->argv[i];
    if (strncmp(arg, "--", 2) != 0) {
      (void)snprintf(message, sizeof message, "unexpected argument `%.200s`", arg);
      usage(message);
    }
    const option_t *option = find_option(args, arg);
    if (option == NULL) {
      (void)snprintf(message, sizeof message, "unknown option `%.200s` for this role", arg);
      usage(message);
    }
    if (option->takes_value) {
      if (i + 1 >= args->argc) {
        (void)snprintf(message, sizeof message, "`%.200s` needs a value", arg);
        usage(message);
      }
      i++;
    }
  }
}

static bool flag(const args_t *args, const char *name) {
  for (int i = 0; i < args->argc; i++) {
    const option_t *option = find_option(args, args->argv[i]);
    if (strcmp(args->argv[i], name) == 0) {
      return true;
    }
    if (option != NULL && option->takes_value) {
      i++;
    }
  }
  return false;
}

/* The last value given for `name`, or NULL. */
static const char *text(const args_t *args, const char *name) {
  const char *found = NULL;
  for (int i = 0; i < args->argc; i++) {
    const option_t *option = find_option(args, args->argv[i]);
    if (option == NULL || !option->takes_value) {
      continue;
    }
    if (strcmp(args->argv[i], name) == 0 && i + 1 < args->argc) {
      found = args->argv[i + 1];
    }
    i++;
  }
  return found;
}

static long long number(const args_t *args, const char *name, long long fallback) {
  const char *value = text(args, name);
  if (value == NULL) {
    return fallback;
  }
  char *end = NULL;
  errno = 0;
  long long n = strtoll(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0') {
    char message[256];
    (void)snprintf(message, sizeof message, "`%s` takes a number, not `%.200s`", name, value);
    usage(message);
  }
  return n;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms) {
  if (ms <= 0) {
    return;
  }
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ---- Messages: the same bodies and checksums as the Rust testee ---- */

static uint8_t PATTERN[4096];

static void init_pattern(void) {
  for (uint32_t i = 0; i < 4096; i++) {
    PATTERN[i] = (uint8_t)((i * 31u) ^ (i >> 7));
  }
}

/* The body of message `seq`: 0 to 2000 bytes, cut from the pattern at an offset that depends on `seq`. */
static const uint8_t *body(int64_t seq, size_t *len) {
  *len = (size_t)(((uint64_t)seq * 2654435761ULL) % 2001);
  return PATTERN + (size_t)((uint64_t)seq % 1999);
}

/* FNV-1a over `seq` and the body, 8 bytes at a time (the tail zero-padded). */
static int64_t checksum(int64_t seq, const uint8_t *data, size_t len) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  uint64_t word = (uint64_t)seq;
  hash = (hash ^ word) * 0x100000001b3ULL;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    word = 0;
    for (int k = 0; k < 8; k++) {
      word |= (uint64_t)data[i + k] << (8 * k);
    }
    hash = (hash ^ word) * 0x100000001b3ULL;
  }
  word = 0;
  for (int k = 0; i + (size_t)k < len; k++) {
    word |= (uint64_t)data[i + k] << (8 * k);
  }
  hash = (hash ^ word) * 0x100000001b3ULL;
  return (int64_t)hash;
}

static void encode_message(ir_avro_writer_t *w, int64_t seq) {
  size_t len = 0;
  const uint8_t *data = body(seq, &len);
  ir_avro_writer_reset(w);
  ir_avro_write_long(w, seq);
  ir_avro_write_bytes(w, data, len);
  ir_avro_write_long(w, checksum(seq, data, len));
}

/* ---- Roles ---- */

static void probe(ir_conn_t *conn, ir_error_e code, const char *accepted) {
  if (code == IR_OK) {
    printf("probe %s\n", accepted);
  } else {
    printf("probe %s: %s\n", ir_error_name(code), ir_last_error(conn));
  }
  fflush(stdout);
}

/* The subscribers of `channel` as the broker's listing shows them (spec/testee.md §5.1). */
static long long subscribers_listed(ir_conn_t *conn, const char *channel) {
  ir_listing_t *listing = NULL;
  ir_error_e code = ir_list(conn, &listing);
  if (code != IR_OK) {
    fail_ring(conn, code);
  }
  long long count = 0;
  for (size_t i = 0; i < ir_listing_channel_count(listing); i++) {
    if (strcmp(ir_listing_channel_name(listing, i), channel) == 0) {
      count = ir_listing_channel_subscribers(listing, i);
    }
  }
  ir_listing_free(listing);
  return count;
}

static void publisher(const args_t *args) {
  const char *channel = text(args, "--channel") != NULL ? text(args, "--channel") : "data";
  long long count = number(args, "--count", 1000);
  ir_conn_t *conn = NULL;
  ir_error_e code = ir_connect("testee-publisher", &conn);
  if (code != IR_OK) {
    fail_ring(NULL, code);
  }
  if (flag(args, "--probe-invalid-schema")) {
    char name[300];
    (void)snprintf(name, sizeof name, "%s-malformed", channel);
    ir_publisher_t *bad = NULL;
    code = ir_publish_channel(conn, name, MALFORMED, NULL, 0, IR_CHANNEL_BLOCK, &bad);
    probe(conn, code, "accepted a malformed schema");
    ir_publisher_close(bad);
  }
  ir_publisher_t *pub = NULL;
  uint32_t flags = flag(args, "--lossy") ? IR_CHANNEL_LOSSY : IR_CHANNEL_BLOCK;
  code = ir_publish_channel(conn, channel, MESSAGE, text(args, "--key"), (uint64_t)number(args, "--capacity", 0), flags,
                            &pub);
  if (code != IR_OK) {
    fail_ring(conn, code);
  }
  say("ready");
  long long wanted = number(args, "--wait-subscribers", 0);
  int64_t deadline = now_ms() + 30000;
  long long joined = 0;
  while ((joined = subscribers_listed(conn, channel)) < wanted) {
    if (now_ms() > deadline) {
      fail_mismatch("only %lld of %lld subscribers came", joined, wanted);
    }
    sleep_ms(5);
  }
  if (flag(args, "--wait-go")) {
    char line[64];
    if (fgets(line, sizeof line, stdin) == NULL) {
      usage("cannot read the go line from stdin");
    }
  }
  if (flag(args, "--probe-too-large")) {
    size_t len = ir_publisher_max_datum(pub) + 1;
    uint8_t *huge = calloc(1, len);
    code = ir_publish(pub, huge, len, 10000);
    probe(conn, code, "published an oversized payload");
    free(huge);
  }
  ir_avro_writer_t w;
  ir_avro_writer_init_dynamic(&w);
  for (long long seq = 0; seq < count; seq++) {
    encode_message(&w, seq);
    /* Like the Rust publisher's default: wait up to 10 s for a slow subscriber. */
    code = ir_publish(pub, w.data, w.len, 10000);
    if (code != IR_OK) {
      fail_ring(conn, code);
    }
  }
  ir_avro_writer_free(&w);
  say("published %lld", count);
  /* Holding keeps the channel open even when the broker goes: the error is printed at once, but the
   * publisher (which would close the channel) lives on until the hold ends or a kill. */
  int64_t until = now_ms() + number(args, "--hold-ms", 0);
  bool broker_gone = false;
  while (now_ms() < until) {
    if (!broker_gone && ir_broker_gone(conn)) {
      broker_gone = true;
      say("error BrokerGone: the broker of namespace `%s` is gone", ir_namespace(conn));
    }
    sleep_ms(10);
  }
  if (broker_gone) {
    exit(10 + IR_ERR_BROKER_GONE);
  }
  ir_publisher_close(pub);
  ir_close(conn);
}

static bool message_intact(const uint8_t *datum, size_t len, int64_t *seq) {
  ir_avro_reader_t r;
  ir_avro_reader_init(&r, datum, len);
  *seq = ir_avro_read_long(&r);
  size_t body_len = 0;
  const uint8_t *data = ir_avro_read_bytes(&r, &body_len);
  int64_t sum = ir_avro_read_long(&r);
  if (!ir_avro_reader_finish(&r) || *seq < 0) {
    return false;
  }
  size_t want_len = 0;
  const uint8_t *want = body(*seq, &want_len);
  return body_len == want_len && (body_len == 0 || memcmp(data, want, body_len) == 0) &&
         sum == checksum(*seq, data, body_len);
}

static void subscriber(const args_t *args) {
  const char *channel = text(args, "--channel") != NULL ? text(args, "--channel") : "data";
  long long count = number(args, "--count", 1000);
  bool expect_closed = flag(args, "--expect-closed");
  long long stall = number(args, "--stall-ms", 0);
  const char *schema = MESSAGE;
  const char *which = text(args, "--schema");
  if (which != NULL) {
    if (strcmp(which, "other") != 0) {
      char message[256];
      (void)snprintf(message, sizeof message, "unknown schema `%s`; use `other`", which);
      usage(message);
    }
    schema = OTHER_MESSAGE;
  }
  ir_conn_t *conn = NULL;
  ir_error_e code = ir_connect("testee-subscriber", &conn);
  if (code != IR_OK) {
    fail_ring(NULL, code);
  }
  ir_subscriber_t *sub = NULL;
  if (flag(args, "--probe-invalid-schema")) {
    code = ir_subscribe(conn, channel, text(args, "--key"), MALFORMED, &sub);
    probe(conn, code, "subscribed with a malformed schema");
    ir_subscriber_close(sub);
    sub = NULL;
  }
  /* The channel may not be published yet: retry for a while. */
  int64_t deadline = now_ms() + 30000;
  while ((code = ir_subscribe(conn, channel, text(args, "--key"), schema, &sub)) == IR_ERR_UNKNOWN_CHANNEL &&
         now_ms() < deadline) {
    sleep_ms(5);
  }
  if (code != IR_OK) {
    fail_ring(conn, code);
  }
  say("subscribed");
  sleep_ms(stall);
  long long next = 0;
  long long received = 0;
  long long missed = 0;
  int64_t idle_since = now_ms();
  /* How the loop ended, reported after the counts like the Rust testee does. */
  char mismatch[256] = "";
  ir_error_e error = IR_OK;
  for (;;) {
    if (!expect_closed && received + missed >= count) {
      break;
    }
    const uint8_t *datum = NULL;
    size_t len = 0;
    code = ir_receive_view(sub, &datum, &len, 100);
    if (code == IR_OK) {
      idle_since = now_ms();
      int64_t seq = -1;
      bool intact = message_intact(datum, len, &seq);
      if (seq != next) {
        (void)snprintf(mismatch, sizeof mismatch, "expected message %lld, got %lld", next, (long long)seq);
        break;
      }
      if (!intact) {
        (void)snprintf(mismatch, sizeof mismatch, "message %lld is damaged", next);
        break;
      }
      next++;
      received++;
    } else if (code == IR_ERR_TIMEOUT) {
      if (now_ms() - idle_since > 60000) {
        (void)snprintf(mismatch, sizeof mismatch, "nothing received for 60 s after %lld messages", received);
        break;
      }
    } else if (code == IR_ERR_LAGGED) {
      missed += (long long)ir_subscriber_missed(sub);
      next += (long long)ir_subscriber_missed(sub);
    } else if (code == IR_ERR_CLOSED && expect_closed) {
      say("closed");
      break;
    } else {
      error = code;
      break;
    }
  }
  say("received %lld", received);
  if (text(args, "--stall-ms") != NULL || missed > 0) {
    say("missed %lld received %lld", missed, received);
  }
  if (mismatch[0] != '\0') {
    fail_mismatch("%s", mismatch);
  }
  if (error != IR_OK) {
    fail_ring(conn, error);
  }
  ir_subscriber_close(sub);
  ir_close(conn);
}

typedef struct provider_options {
  bool has_fail_on;
  int64_t fail_on;
  int64_t sleep_ms;
} provider_options_t;

static ir_error_e add(void *user, const uint8_t *request, size_t len, ir_response_t *response) {
  const provider_options_t *options = user;
  sleep_ms(options->sleep_ms);
  ir_avro_reader_t r;
  ir_avro_reader_init(&r, request, len);
  int64_t a = ir_avro_read_long(&r);
  int64_t b = ir_avro_read_long(&r);
  if (!ir_avro_reader_finish(&r)) {
    ir_response_fail(response, ir_avro_reader_error(&r));
    return IR_ERR_DECODE;
  }
  if (options->has_fail_on && a == options->fail_on) {
    char message[64];
    (void)snprintf(message, sizeof message, "refusing a = %lld", (long long)a);
    ir_response_fail(response, message);
    return IR_ERR_HANDLER;
  }
  uint8_t out[10];
  ir_avro_writer_t w;
  ir_avro_writer_init(&w, out, sizeof out);
  ir_avro_write_long(&w, (int64_t)((uint64_t)a + (uint64_t)b));
  return ir_response_write(response, w.data, w.len);
}

static atomic_bool stdin_closed;

static void *watch_stdin(void *conn) {
  char buf[256];
  while (read(STDIN_FILENO, buf, sizeof buf) > 0 || errno == EINTR) {
    errno = 0;
  }
  atomic_store(&stdin_closed, true);
  ir_serve_stop(conn);
  return NULL;
}

static void provider(const args_t *args) {
  provider_options_t options = {
      .has_fail_on = text(args, "--fail-on") != NULL,
      .fail_on = number(args, "--fail-on", 0),
      .sleep_ms = number(args, "--sleep-ms", 0),
  };
  ir_conn_t *conn = NULL;
  ir_error_e code = ir_connect("testee-provider", &conn);
  if (code != IR_OK) {
    fail_ring(NULL, code);
  }
  const char *name = text(args, "--function") != NULL ? text(args, "--function") : "add";
  ir_function_t *fn = NULL;
  code = ir_expose_function(conn, name, ADD_REQUEST, ADD_RESPONSE, text(args, "--key"), add, &options, &fn);
  if (code != IR_OK) {
    fail_ring(conn, code);
  }
  say("ready");
  /* Serve until stdin closes (the harness's way to stop us), or the broker goes. */
  pthread_t watcher;
  pthread_create(&watcher, NULL, watch_stdin, conn);
  while (!atomic_load(&stdin_closed)) {
    code = ir_serve(conn, 100);
    if (code != IR_OK) {
      fail_ring(conn, code);
    }
  }
  pthread_join(watcher, NULL);
  ir_function_withdraw(fn);
  ir_close(conn);
}

typedef struct plan {
  ir_conn_t *conn;
  const char *function;
  const char *key;
  int64_t base;
  int64_t timeout_ms;
  bool keep_going;
} plan_t;

static size_t encode_request(const plan_t *plan, int64_t i, uint8_t *buf, size_t cap) {
  ir_avro_writer_t w;
  ir_avro_writer_init(&w, buf, cap);
  ir_avro_write_long(&w, plan->base + i);
  ir_avro_write_long(&w, i * 3);
  return w.len;
}

static pthread_mutex_t output_lock = PTHREAD_MUTEX_INITIALIZER;

/* Checks call `i`'s outcome; returns 1 when it failed and --keep-going lets the run go on. */
static int check_result(const plan_t *plan, int64_t i, ir_error_e code, const uint8_t *datum, size_t len,
                        const char *message) {
  if (code == IR_OK) {
    ir_avro_reader_t r;
    ir_avro_reader_init(&r, datum, len);
    int64_t sum = ir_avro_read_long(&r);
    if (!ir_avro_reader_finish(&r) || sum != plan->base + i + i * 3) {
      fail_mismatch("call %lld returned %lld", (long long)i, (long long)sum);
    }
    return 0;
  }
  pthread_mutex_lock(&output_lock);
  printf("error %s: %s\n", ir_error_name(code), message);
  fflush(stdout);
  pthread_mutex_unlock(&output_lock);
  if (!plan->keep_going) {
    exit(10 + (int)code);
  }
  return 1;
}

typedef struct slot {
  int64_t i;
  ir_call_t *call;
} slot_t;

/* `count` calls with up to `in_flight` pending at once, on this thread. */
static long long call_async(const plan_t *plan, long long count, long long in_flight) {
  slot_t *slots = calloc((size_t)in_flight, sizeof *slots);
  long long started = 0;
  long long done = 0;
  long long failed = 0;
  while (done < count) {
    for (long long s = 0; s < in_flight && started < count; s++) {
      if (slots[s].call != NULL) {
        continue;
      }
      uint8_t request[24];
      size_t len = encode_request(plan, started, request, sizeof request);
      ir_error_e code = ir_call_start(plan->conn, plan->function, plan->key, ADD_REQUEST, ADD_RESPONSE, request, len,
                                      plan->timeout_ms, &slots[s].call);
      if (started == 0) {
        say("calling");
      }
      if (code != IR_OK) {
        failed += check_result(plan, started, code, NULL, 0, ir_last_error(plan->conn));
        done++;
      } else {
        slots[s].i = started;
      }
      started++;
    }
    bool progressed = false;
    for (long long s = 0; s < in_flight; s++) {
      if (slots[s].call == NULL || ir_call_poll(slots[s].call, 0) != IR_OK) {
        continue;
      }
      const uint8_t *datum = NULL;
      size_t len = 0;
      ir_error_e code = ir_call_result(slots[s].call, &datum, &len);
      failed += check_result(plan, slots[s].i, code, datum, len, ir_call_error_message(slots[s].call));
      ir_call_free(slots[s].call);
      slots[s].call = NULL;
      done++;
      progressed = true;
    }
    if (!progressed) {
      /* Sleep on the oldest pending call until something completes. */
      for (long long s = 0; s < in_flight; s++) {
        if (slots[s].call != NULL) {
          (void)ir_call_poll(slots[s].call, 10);
          break;
        }
      }
    }
  }
  free(slots);
  return failed;
}

typedef struct worker {
  pthread_t thread;
  const plan_t *plan;
  long long first;
  long long step;
  long long count;
  long long failed;
} worker_t;

static void *call_blocking(void *arg) {
  worker_t *worker = arg;
  for (long long i = worker->first; i < worker->count; i += worker->step) {
    uint8_t request[24];
    size_t len = encode_request(worker->plan, i, request, sizeof request);
    uint8_t *response = NULL;
    size_t response_len = 0;
    ir_error_e code = ir_call(worker->plan->conn, worker->plan->function, worker->plan->key, ADD_REQUEST, ADD_RESPONSE,
                              request, len, &response, &response_len, worker->plan->timeout_ms);
    worker->failed += check_result(worker->plan, i, code, response, response_len,
                                   code == IR_OK ? "" : ir_last_error(worker->plan->conn));
    ir_free(response);
  }
  return NULL;
}

static void caller(const args_t *args) {
  long long count = number(args, "--count", 1000);
  plan_t plan = {
      .function = text(args, "--function") != NULL ? text(args, "--function") : "add",
      .key = text(args, "--key"),
      .base = number(args, "--base", 0),
      .timeout_ms = number(args, "--timeout-ms", 30000),
      .keep_going = flag(args, "--keep-going"),
  };
  ir_error_e code = ir_connect("testee-caller", &plan.conn);
  if (code != IR_OK) {
    fail_ring(NULL, code);
  }
  long long threads = number(args, "--threads", 0);
  long long failed = 0;
  if (threads <= 0) {
    long long in_flight = number(args, "--in-flight", 1);
    failed = call_async(&plan, count, in_flight < 1 ? 1 : in_flight);
  } else {
    worker_t *workers = calloc((size_t)threads, sizeof *workers);
    for (long long t = 0; t < threads; t++) {
      workers[t] = (worker_t){.plan = &plan, .first = t, .step = threads, .count = count};
      pthread_create(&workers[t].thread, NULL, call_blocking, &workers[t]);
    }
    for (long long t = 0; t < threads; t++) {
      pthread_join(workers[t].thread, NULL);
      failed += workers[t].failed;
    }
    free(workers);
  }
  if (plan.keep_going) {
    say("ok %lld failed %lld", count - failed, failed);
  } else {
    say("ok %lld", count);
  }
  ir_close(plan.conn);
}

/* `--help` prints the contract: spec/testee.md itself, which CMake embeds as TESTEE_CONTRACT. */
#if __has_include("testee_contract.h")
#include "testee_contract.h"
#else
static const char TESTEE_CONTRACT[] =
    "The testee contract is spec/testee.md (this build could not embed it).\n"
    "usage: testee publisher|subscriber|provider|caller [--option value | --flag]...\n";
#endif

int main(int argc, char **argv) {
  init_pattern();
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0) {
      fputs((const char *)TESTEE_CONTRACT, stdout);
      return 0;
    }
  }
  if (argc < 2) {
    usage("no role given");
  }
  const char *role = argv[1];
  args_t args = {.argc = argc - 2, .argv = argv + 2};
  void (*run)(const args_t *) = NULL;
  if (strcmp(role, "publisher") == 0) {
    args.options = PUBLISHER_OPTIONS;
    run = publisher;
  } else if (strcmp(role, "subscriber") == 0) {
    args.options = SUBSCRIBER_OPTIONS;
    run = subscriber;
  } else if (strcmp(role, "provider") == 0) {
    args.options = PROVIDER_OPTIONS;
    run = provider;
  } else if (strcmp(role, "caller") == 0) {
    args.options = CALLER_OPTIONS;
    run = caller;
  } else {
    char message[256];
    (void)snprintf(message, sizeof message, "unknown role `%.200s`", role);
    usage(message);
  }
  check_args(&args);
  run(&args);
  return 0;
}
