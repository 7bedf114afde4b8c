/* The demo: two apps on one bus, like rust/connector/examples/demo.rs. `sensor` publishes readings
 * on a keyed channel and exposes an `add` function, served on a thread of its own; `dashboard`
 * subscribes to the readings and calls `add`. Run a broker first (`cargo run -p impulsed`), then
 * `target/c/demo` (IMPULSE_RING_NS selects the namespace). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "impulse_ring.h"
#include "impulse_ring_avro.h"

static const char *const READING =
    "{\"type\":\"record\",\"name\":\"Reading\",\"namespace\":\"demo\",\"fields\":[{\"name\":\"seq\",\"type\":\"long\"},"
    "{\"name\":\"celsius\",\"type\":\"double\"},{\"name\":\"sensor\",\"type\":\"string\"}]}";
static const char *const ADD_REQUEST =
    "{\"type\":\"record\",\"name\":\"AddRequest\",\"namespace\":\"demo\",\"fields\":[{\"name\":\"a\",\"type\":\"long\"}"
    ","
    "{\"name\":\"b\",\"type\":\"long\"}]}";
static const char *const ADD_RESPONSE =
    "{\"type\":\"record\",\"name\":\"AddResponse\",\"namespace\":\"demo\",\"fields\":[{\"name\":\"sum\",\"type\":"
    "\"long\"}]}";

/* Prints the failure and exits: the demo has nothing sensible to do after an unexpected error. */
static void check(ir_conn_t *conn, ir_error_e code, const char *what) {
  if (code != IR_OK) {
    fprintf(stderr, "demo: %s failed: %s: %s\n", what, ir_error_name(code), ir_last_error(conn));
    exit(1);
  }
}

/* add(a, b) = a + b, refusing to overflow. */
static ir_error_e add(void *user, const uint8_t *request, size_t len, ir_response_t *response) {
  (void)user;
  ir_avro_reader_t r;
  ir_avro_reader_init(&r, request, len);
  int64_t a = ir_avro_read_long(&r);
  int64_t b = ir_avro_read_long(&r);
  if (!ir_avro_reader_finish(&r)) {
    ir_response_fail(response, ir_avro_reader_error(&r));
    return IR_ERR_DECODE;
  }
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    ir_response_fail(response, "overflow");
    return IR_ERR_HANDLER;
  }
  uint8_t out[10];
  ir_avro_writer_t w;
  ir_avro_writer_init(&w, out, sizeof out);
  ir_avro_write_long(&w, sum);
  return ir_response_write(response, w.data, w.len);
}

static void *serve(void *conn) {
  ir_error_e code = ir_serve(conn, IR_FOREVER);
  if (code != IR_OK) {
    fprintf(stderr, "demo: the sensor stopped serving: %s\n", ir_last_error(conn));
  }
  return NULL;
}

/* Calls add(a, b) from the dashboard and prints the outcome. */
static void call_add(ir_conn_t *dashboard, const char *function, int64_t a, int64_t b, int64_t timeout_ms) {
  uint8_t request[20];
  ir_avro_writer_t w;
  ir_avro_writer_init(&w, request, sizeof request);
  ir_avro_write_long(&w, a);
  ir_avro_write_long(&w, b);
  uint8_t *response = NULL;
  size_t len = 0;
  ir_error_e code =
      ir_call(dashboard, function, NULL, ADD_REQUEST, ADD_RESPONSE, w.data, w.len, &response, &len, timeout_ms);
  if (code != IR_OK) {
    printf("dashboard called %s(%lld, %lld): %s: %s\n", function, (long long)a, (long long)b, ir_error_name(code),
           ir_last_error(dashboard));
    return;
  }
  ir_avro_reader_t r;
  ir_avro_reader_init(&r, response, len);
  int64_t sum = ir_avro_read_long(&r);
  printf("dashboard called %s(%lld, %lld) = %lld\n", function, (long long)a, (long long)b, (long long)sum);
  ir_free(response);
}

int main(void) {
  ir_conn_t *sensor = NULL;
  ir_conn_t *dashboard = NULL;
  check(NULL, ir_connect("sensor", &sensor), "connecting the sensor");
  printf("sensor connected as app %u in namespace `%s`\n", ir_app_id(sensor), ir_namespace(sensor));
  check(NULL, ir_connect("dashboard", &dashboard), "connecting the dashboard");
  printf("dashboard connected as app %u\n", ir_app_id(dashboard));

  ir_publisher_t *publisher = NULL;
  check(sensor, ir_publish_channel(sensor, "readings", READING, "demo-key", 0, IR_CHANNEL_BLOCK, &publisher),
        "publishing `readings`");
  printf("sensor publishes `readings` (schema %016llx)\n", (unsigned long long)ir_publisher_fingerprint(publisher));
  ir_function_t *fn = NULL;
  check(sensor, ir_expose_function(sensor, "add", ADD_REQUEST, ADD_RESPONSE, NULL, add, NULL, &fn), "exposing `add`");
  printf("sensor exposes `add`\n");
  pthread_t server;
  pthread_create(&server, NULL, serve, sensor);

  ir_subscriber_t *subscriber = NULL;
  ir_error_e code = ir_subscribe(dashboard, "readings", "wrong-key", READING, &subscriber);
  printf("dashboard with a wrong key: %s: %s\n", ir_error_name(code), ir_last_error(dashboard));
  check(dashboard, ir_subscribe(dashboard, "readings", "demo-key", READING, &subscriber), "subscribing");

  for (int64_t seq = 0; seq < 5; seq++) {
    uint8_t datum[64];
    ir_avro_writer_t w;
    ir_avro_writer_init(&w, datum, sizeof datum);
    ir_avro_write_long(&w, seq);
    ir_avro_write_double(&w, 20.0 + (double)seq / 2);
    ir_avro_write_string(&w, "greenhouse");
    check(sensor, ir_publish(publisher, w.data, w.len, 10000), "publishing a reading");
  }
  for (int i = 0; i < 5; i++) {
    const uint8_t *datum = NULL;
    size_t len = 0;
    code = ir_receive_view(subscriber, &datum, &len, 2000);
    if (code == IR_ERR_TIMEOUT) {
      printf("dashboard: no reading within 2 s\n");
      continue;
    }
    check(dashboard, code, "receiving a reading");
    ir_avro_reader_t r;
    ir_avro_reader_init(&r, datum, len);
    int64_t seq = ir_avro_read_long(&r);
    double celsius = ir_avro_read_double(&r);
    size_t name_len = 0;
    const char *name = ir_avro_read_string(&r, &name_len);
    if (!ir_avro_reader_finish(&r)) {
      printf("dashboard received an undecodable reading: %s\n", ir_avro_reader_error(&r));
      continue;
    }
    printf("dashboard received Reading { seq: %lld, celsius: %.1f, sensor: \"%.*s\" }\n", (long long)seq, celsius,
           (int)name_len, name);
  }

  call_add(dashboard, "add", 40, 2, 5000);
  call_add(dashboard, "add", INT64_MAX, 1, 5000);
  call_add(dashboard, "nope", 1, 2, 1000);

  ir_publisher_close(publisher);
  uint8_t buf[64];
  size_t len = 0;
  code = ir_receive(subscriber, buf, sizeof buf, &len, 2000);
  printf("dashboard after the sensor closed the channel: %s: %s\n", ir_error_name(code), ir_last_error(dashboard));

  ir_serve_stop(sensor);
  pthread_join(server, NULL);
  ir_subscriber_close(subscriber);
  ir_function_withdraw(fn);
  ir_close(dashboard);
  ir_close(sensor);
  printf("demo done\n");
  return 0;
}
