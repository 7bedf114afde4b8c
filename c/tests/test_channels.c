/* Self-test of channels: publishing and receiving, refusals, timeouts, closing, the block and lossy
 * policies, and a corrupted channel segment. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../src/internal.h"
#include "selftest.h"

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
  test_channel_t ch;
  if (!test_channel_open(&ch, ns, "raw", BYTES, 0, IR_CHANNEL_BLOCK, false)) {
    return;
  }
  ir_conn_t *conn = ch.producer;
  ir_publisher_t *pub = ch.pub;
  ir_subscriber_t *sub = ch.sub;
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
  test_channel_close(&ch);
}

static void subscriber_reads_what_is_left_then_sees_closed(const char *ns, test_broker_t *broker) {
  (void)broker;
  test_channel_t ch;
  if (!test_channel_open(&ch, ns, "short", BYTES, 0, IR_CHANNEL_BLOCK, true)) {
    return;
  }
  ir_conn_t *producer = ch.producer;
  ir_conn_t *consumer = ch.consumer;
  ir_publisher_t *pub = ch.pub;
  ir_subscriber_t *sub = ch.sub;
  uint8_t datum[] = {0x02, 'x'};
  for (int i = 0; i < 3; i++) {
    CHECK_CODE(producer, ir_publish(pub, datum, sizeof datum, 1000), IR_OK);
  }
  ir_publisher_close(pub);
  ch.pub = NULL;
  uint8_t buf[8];
  size_t len = 0;
  for (int i = 0; i < 3; i++) {
    CHECK_CODE(consumer, ir_receive(sub, buf, sizeof buf, &len, 1000), IR_OK);
  }
  CHECK_CODE(consumer, ir_receive(sub, buf, sizeof buf, &len, 1000), IR_ERR_CLOSED);
  CHECK(strstr(ir_last_error(consumer), "short") != NULL);
  test_channel_close(&ch);
}

static void full_block_channel_gives_would_block_and_timeout(const char *ns, test_broker_t *broker) {
  (void)broker;
  test_channel_t ch;
  if (!test_channel_open(&ch, ns, "small", BYTES, 4096, IR_CHANNEL_BLOCK, false)) {
    return;
  }
  ir_conn_t *conn = ch.producer;
  ir_publisher_t *pub = ch.pub;
  ir_subscriber_t *sub = ch.sub;
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
  ch.sub = NULL;
  /* Without subscribers nothing holds the publisher back. */
  for (int i = 0; i < 200; i++) {
    CHECK_CODE(conn, ir_try_publish(pub, datum, 130), IR_OK);
  }
  test_channel_close(&ch);
}

static void lossy_subscriber_learns_how_many_it_missed(const char *ns, test_broker_t *broker) {
  (void)broker;
  test_channel_t ch;
  if (!test_channel_open(&ch, ns, "lossy", READING, 4096, IR_CHANNEL_LOSSY, false)) {
    return;
  }
  ir_conn_t *conn = ch.producer;
  ir_publisher_t *pub = ch.pub;
  ir_subscriber_t *sub = ch.sub;
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
  test_channel_close(&ch);
}

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
  test_channel_t ch;
  if (!test_channel_open(&ch, ns, "c", BYTES, 4096, IR_CHANNEL_BLOCK, false)) {
    return;
  }
  ir_conn_t *conn = ch.producer;
  ir_publisher_t *pub = ch.pub;
  ir_subscriber_t *sub = ch.sub;
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
  test_channel_close(&ch);
}

const test_t CHANNEL_TESTS[] = {
    {"publish_and_receive_by_copy_and_by_view", NULL, publish_and_receive_by_copy_and_by_view},
    {"refusals_are_typed_and_explained", NULL, refusals_are_typed_and_explained},
    {"receive_times_out_and_keeps_a_message_too_large_for_the_buffer", NULL,
     receive_times_out_and_keeps_a_message_too_large_for_the_buffer},
    {"subscriber_reads_what_is_left_then_sees_closed", NULL, subscriber_reads_what_is_left_then_sees_closed},
    {"full_block_channel_gives_would_block_and_timeout", NULL, full_block_channel_gives_would_block_and_timeout},
    {"lossy_subscriber_learns_how_many_it_missed", NULL, lossy_subscriber_learns_how_many_it_missed},
    {"corrupt_channel_gives_corrupt_not_a_crash", NULL, corrupt_channel_gives_corrupt_not_a_crash},
};
const size_t CHANNEL_TEST_COUNT = sizeof CHANNEL_TESTS / sizeof CHANNEL_TESTS[0];
