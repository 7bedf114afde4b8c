/* Self-test of the session: connecting, the broker leaving (shut down or killed), what the broker
 * computes (fingerprints), closing, and listing the bus. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/internal.h"
#include "../src/session.h"
#include "selftest.h"

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

/* ---- Against a live broker ---- */

/* The broker cannot decode a Register whose app name is not UTF-8 and answers Failed with request id
 * 0: the pending Register fails with that error (Decode) at once, not after the 10 s control timeout
 * (bootstrap.md §4.1). */
static void unattributed_failure_fails_the_pending_request_at_once(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *conn = NULL;
  int64_t started = now_ms();
  CHECK_CODE(NULL, ir_connect_ns(ns, "caf\xc3\x28", &conn), IR_ERR_DECODE);
  CHECK(now_ms() - started < 2000);
  CHECK(strstr(ir_last_error(NULL), "utf-8") != NULL);
  CHECK(conn == NULL);
  /* The namespace still works for the next app. */
  REQUIRE_OK(NULL, ir_connect_ns(ns, "after", &conn));
  ir_close(conn);
}

/* A record on the reply ring that does not decode answers no request the app can name: the pending
 * request fails with Protocol at once (bootstrap.md §4.1), and the connection goes on. The test plays
 * a broken broker by writing the record into the app's reply ring itself, while the broker is idle. */
static void undecodable_reply_fails_the_pending_request_at_once(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *conn = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "misled", &conn));
  char name[IR_SEG_NAME_MAX];
  (void)snprintf(name, sizeof name, "/impulse-ring.%s.ctl", ns);
  ir_seg_t seg;
  bool missing = false;
  REQUIRE_OK(NULL, ir_seg_open(name, IR_KIND_CONTROL, &seg, &missing));
  ir_ctl_header_t *header = ir_seg_at(&seg, 0);
  uint64_t capacity = atomic_load(&header->ring_capacity);
  uint64_t slot = IR_CTL_SLOTS + (uint64_t)ir_app_id(conn) * ir_control_slot_size(capacity);
  ir_ring_t reply_ring;
  CHECK_CODE(NULL,
             ir_ring_open(&seg, slot + IR_SLOT_REQUEST_RING + IR_RING_HEADER_SIZE + capacity, capacity, &reply_ring),
             IR_OK);
  /* A single object encoding of another schema: the control codec refuses its fingerprint. */
  const uint8_t garbage[] = {0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0x00};
  CHECK_CODE(NULL, ir_ring_try_write(&reply_ring, IR_FRAME_KIND_CONTROL, 0, garbage, sizeof garbage, NULL, 0), IR_OK);
  ir_listing_t *listing = NULL;
  int64_t started = now_ms();
  CHECK_CODE(conn, ir_list(conn, &listing), IR_ERR_PROTOCOL);
  CHECK(now_ms() - started < 2000);
  CHECK(strstr(ir_last_error(conn), "does not decode") != NULL);
  CHECK(listing == NULL);
  /* The broker's real answer comes after it and finds no waiter; the next request is answered. */
  CHECK_CODE(conn, ir_list(conn, &listing), IR_OK);
  ir_listing_free(listing);
  ir_seg_close(&seg);
  ir_close(conn);
}

/* A control record larger than the control ring takes is TooLarge (wire-format.md §10), like Rust. */
static void oversized_control_record_is_too_large(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *conn = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "verbose", &conn));
  size_t len = 40000; /* the control ring's max payload is 32 752 bytes */
  char *schema = malloc(len + 1);
  CHECK(schema != NULL);
  if (schema != NULL) {
    memset(schema, ' ', len);
    memcpy(schema, "\"bytes\"", 7);
    schema[len] = '\0';
    ir_publisher_t *pub = NULL;
    CHECK_CODE(conn, ir_publish_channel(conn, "big", schema, NULL, 0, IR_CHANNEL_BLOCK, &pub), IR_ERR_TOO_LARGE);
    CHECK(strstr(ir_last_error(conn), "PublishChannel") != NULL);
    CHECK(pub == NULL);
    free(schema);
  }
  /* Nothing was written: the connection goes on. */
  ir_publisher_t *pub = NULL;
  CHECK_CODE(conn, ir_publish_channel(conn, "small", BYTES, NULL, 0, IR_CHANNEL_BLOCK, &pub), IR_OK);
  ir_publisher_close(pub);
  ir_close(conn);
}

static void broker_shutdown_is_broker_gone_everywhere(const char *ns, test_broker_t *broker) {
  test_channel_t ch;
  if (!test_channel_open(&ch, ns, "c", BYTES, 0, IR_CHANNEL_BLOCK, false)) {
    return;
  }
  ir_conn_t *conn = ch.producer;
  ir_subscriber_t *sub = ch.sub;
  ir_function_t *fn = NULL;
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
  test_channel_close(&ch);
}

static void killed_broker_is_noticed_by_its_pid(const char *ns, test_broker_t *broker) {
  test_channel_t ch;
  if (!test_channel_open(&ch, ns, "c", BYTES, 0, IR_CHANNEL_BLOCK, false)) {
    return;
  }
  ir_conn_t *conn = ch.producer;
  ir_subscriber_t *sub = ch.sub;
  CHECK(test_broker_stop(broker, SIGKILL));
  uint8_t buf[8];
  size_t len = 0;
  int64_t started = now_ms();
  CHECK_CODE(conn, ir_receive(sub, buf, sizeof buf, &len, 5000), IR_ERR_BROKER_GONE);
  CHECK(now_ms() - started < 1000);
  CHECK(ir_broker_gone(conn) == 1);
  test_channel_close(&ch);
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
    test_failures++;
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
        test_failures++;
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

/* A dropped app that lives on is fenced (bootstrap.md §3.2): the test breaks its own request ring with a
 * record that is not a control record; the request behind it fails with BrokerGone naming the fence at
 * once (not after the 10 s control timeout), so does the next one, and while this process lives the
 * slot stays FENCED and is not handed out: a newcomer gets another slot. */
static void dropped_app_is_fenced_and_fails_at_once(const char *ns, test_broker_t *broker) {
  (void)broker;
  ir_conn_t *conn = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "stale", &conn));
  char name[IR_SEG_NAME_MAX];
  (void)snprintf(name, sizeof name, "/impulse-ring.%s.ctl", ns);
  ir_seg_t seg;
  bool missing = false;
  REQUIRE_OK(NULL, ir_seg_open(name, IR_KIND_CONTROL, &seg, &missing));
  ir_ctl_header_t *header = ir_seg_at(&seg, 0);
  uint64_t capacity = atomic_load(&header->ring_capacity);
  ir_slot_header_t *slot = ir_seg_at(&seg, IR_CTL_SLOTS + (uint64_t)ir_app_id(conn) * ir_control_slot_size(capacity));
  uint32_t generation = atomic_load(&slot->generation);
  const uint8_t junk[] = "not a control record";
  pthread_mutex_lock(&conn->post_lock);
  CHECK_CODE(NULL, ir_ring_try_write(&conn->request_ring, IR_FRAME_KIND_DATA, 0, junk, sizeof junk, NULL, 0), IR_OK);
  pthread_mutex_unlock(&conn->post_lock);
  ir_listing_t *listing = NULL;
  int64_t started = now_ms();
  CHECK_CODE(conn, ir_list(conn, &listing), IR_ERR_BROKER_GONE);
  CHECK(now_ms() - started < 5000);
  CHECK(strstr(ir_last_error(conn), "fenced") != NULL);
  CHECK_CODE(conn, ir_list(conn, &listing), IR_ERR_BROKER_GONE);
  CHECK(atomic_load(&slot->state) == IR_SLOT_FENCED);
  CHECK(atomic_load(&slot->generation) == generation + 1);
  ir_conn_t *newcomer = NULL;
  REQUIRE_OK(NULL, ir_connect_ns(ns, "newcomer", &newcomer));
  CHECK(ir_app_id(newcomer) != ir_app_id(conn));
  CHECK_CODE(newcomer, ir_list(newcomer, &listing), IR_OK);
  ir_listing_free(listing);
  ir_close(newcomer);
  ir_seg_close(&seg);
  ir_close(conn);
}

const test_t SESSION_TESTS[] = {
    {"connect_refuses_bad_arguments", connect_refuses_bad_arguments, NULL},
    {"connect_without_broker_reports_no_broker_and_the_namespace",
     connect_without_broker_reports_no_broker_and_the_namespace, NULL},
    {"unattributed_failure_fails_the_pending_request_at_once", NULL,
     unattributed_failure_fails_the_pending_request_at_once},
    {"undecodable_reply_fails_the_pending_request_at_once", NULL, undecodable_reply_fails_the_pending_request_at_once},
    {"oversized_control_record_is_too_large", NULL, oversized_control_record_is_too_large},
    {"broker_shutdown_is_broker_gone_everywhere", NULL, broker_shutdown_is_broker_gone_everywhere},
    {"killed_broker_is_noticed_by_its_pid", NULL, killed_broker_is_noticed_by_its_pid},
    {"broker_fingerprints_match_the_spec_vectors", NULL, broker_fingerprints_match_the_spec_vectors},
    {"closed_connection_refuses_and_its_handles_still_close", NULL,
     closed_connection_refuses_and_its_handles_still_close},
    {"listing_shows_apps_channels_and_functions", NULL, listing_shows_apps_channels_and_functions},
    {"dropped_app_is_fenced_and_fails_at_once", NULL, dropped_app_is_fenced_and_fails_at_once},
};
const size_t SESSION_TEST_COUNT = sizeof SESSION_TESTS / sizeof SESSION_TESTS[0];
