/* Self-test of calls: results and typed errors, many threads on one connection, an event loop driving
 * ir_poll_one, and a provider that withdraws or dies while a call is pending. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "selftest.h"

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
  test_call_pair_t pair;
  if (!test_call_pair_open(&pair, ns, false)) {
    return;
  }
  ir_conn_t *provider = pair.provider;
  ir_conn_t *caller = pair.caller;
  ir_function_t *keyed = NULL;
  REQUIRE_OK(provider,
             ir_expose_function(provider, "secret-add", ADD_REQUEST, ADD_RESPONSE, "k", add_handler, NULL, &keyed));
  CHECK(ir_function_id(pair.add) != 0);
  ir_function_t *dup = NULL;
  CHECK_CODE(provider, ir_expose_function(provider, "add", ADD_REQUEST, ADD_RESPONSE, NULL, add_handler, NULL, &dup),
             IR_ERR_NAME_TAKEN);
  server_start(&pair.server, provider);
  pair.serving = true;

  ir_error_e code = IR_OK;
  CHECK(call_add(caller, 40, 2, &code) == 42 && code == IR_OK);
  CHECK(call_add(caller, -5, 5, &code) == 0 && code == IR_OK);
  (void)call_add(caller, 13, 1, &code);
  CHECK_CODE(caller, code, IR_ERR_HANDLER);
  CHECK(strstr(ir_last_error(caller), "unlucky number 13") != NULL);
  CHECK(atomic_load(&pair.served) == 3);

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

  ir_function_withdraw(keyed);
  test_call_pair_close(&pair);
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
  test_call_pair_t pair;
  if (!test_call_pair_open(&pair, ns, true)) {
    return;
  }
  hammer_t hammers[4];
  for (int t = 0; t < 4; t++) {
    hammers[t] = (hammer_t){.conn = pair.caller, .base = 1000 + t * 100000}; /* a != 13 */
    pthread_create(&hammers[t].thread, NULL, hammer_thread, &hammers[t]);
  }
  for (int t = 0; t < 4; t++) {
    pthread_join(hammers[t].thread, NULL);
    CHECK(hammers[t].wrong == 0);
  }
  CHECK(atomic_load(&pair.served) == 800);
  test_call_pair_close(&pair);
}

static void poll_one_serves_one_request_in_an_event_loop(const char *ns, test_broker_t *broker) {
  (void)broker;
  test_call_pair_t pair;
  if (!test_call_pair_open(&pair, ns, false)) {
    return;
  }
  ir_conn_t *provider = pair.provider;
  ir_conn_t *caller = pair.caller;
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
  test_call_pair_close(&pair);
}

static void pending_call_fails_with_peer_gone_when_the_function_is_withdrawn(const char *ns, test_broker_t *broker) {
  (void)broker;
  test_call_pair_t pair;
  if (!test_call_pair_open(&pair, ns, false)) {
    return;
  }
  ir_conn_t *caller = pair.caller;
  uint8_t request[24];
  size_t len = encode_add(request, sizeof request, 1, 1);
  ir_call_t *call = NULL;
  REQUIRE_OK(caller, ir_call_start(caller, "add", NULL, ADD_REQUEST, ADD_RESPONSE, request, len, 30000, &call));
  ir_function_withdraw(pair.add);
  pair.add = NULL;
  int64_t started = now_ms();
  CHECK_CODE(caller, ir_call_poll(call, 5000), IR_OK);
  CHECK(now_ms() - started < 1000);
  CHECK_CODE(caller, ir_call_result(call, NULL, NULL), IR_ERR_PEER_GONE);
  CHECK(strstr(ir_call_error_message(call), "add") != NULL);
  ir_call_free(call);
  test_call_pair_close(&pair);
}

static void caller_sees_peer_gone_when_the_provider_process_dies(const char *ns, test_broker_t *broker) {
  (void)broker;
  int ready[2];
  if (pipe(ready) != 0) {
    test_failures++;
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

const test_t CALL_TESTS[] = {
    {"calls_return_results_and_typed_errors", NULL, calls_return_results_and_typed_errors},
    {"calls_from_many_threads_share_one_connection", NULL, calls_from_many_threads_share_one_connection},
    {"poll_one_serves_one_request_in_an_event_loop", NULL, poll_one_serves_one_request_in_an_event_loop},
    {"pending_call_fails_with_peer_gone_when_the_function_is_withdrawn", NULL,
     pending_call_fails_with_peer_gone_when_the_function_is_withdrawn},
    {"caller_sees_peer_gone_when_the_provider_process_dies", NULL,
     caller_sees_peer_gone_when_the_provider_process_dies},
};
const size_t CALL_TEST_COUNT = sizeof CALL_TESTS / sizeof CALL_TESTS[0];
