/* Self-test, without a broker: the shared error codes, the Avro codec, the control vectors of
 * spec/vectors/control.txt byte for byte, and the doorbell's wait. */
#include <stdlib.h>
#include <string.h>

#include "../src/internal.h"
#include "selftest.h"
#include "vectors.h"

/* The C enum, by the names spec/vectors/errors.txt gives: a renumbered constant fails below. */
static const struct {
  const char *name;
  ir_error_e code;
} ENUM_NAMES[] = {
    {"NoBroker", IR_ERR_NO_BROKER},
    {"BrokerGone", IR_ERR_BROKER_GONE},
    {"UnknownChannel", IR_ERR_UNKNOWN_CHANNEL},
    {"UnknownFunction", IR_ERR_UNKNOWN_FUNCTION},
    {"WrongKey", IR_ERR_WRONG_KEY},
    {"SchemaMismatch", IR_ERR_SCHEMA_MISMATCH},
    {"InvalidSchema", IR_ERR_INVALID_SCHEMA},
    {"Timeout", IR_ERR_TIMEOUT},
    {"PeerGone", IR_ERR_PEER_GONE},
    {"TooLarge", IR_ERR_TOO_LARGE},
    {"Closed", IR_ERR_CLOSED},
    {"WouldBlock", IR_ERR_WOULD_BLOCK},
    {"NameTaken", IR_ERR_NAME_TAKEN},
    {"LimitReached", IR_ERR_LIMIT_REACHED},
    {"Corrupt", IR_ERR_CORRUPT},
    {"VersionMismatch", IR_ERR_VERSION_MISMATCH},
    {"HandlerError", IR_ERR_HANDLER},
    {"InvalidArgument", IR_ERR_INVALID_ARGUMENT},
    {"Decode", IR_ERR_DECODE},
    {"AlreadyRunning", IR_ERR_ALREADY_RUNNING},
    {"Io", IR_ERR_IO},
    {"Lagged", IR_ERR_LAGGED},
    {"Protocol", IR_ERR_PROTOCOL},
};

/* Every row of spec/vectors/errors.txt (`<code> <Name> <description>`) is the C enum constant of that
 * name, ir_error_name and ir_strerror; every enum constant has its row. */
static void error_codes_match_every_row_of_the_spec_vectors(void) {
  const char *path = getenv("IMPULSE_RING_ERRORS");
  FILE *file = fopen(path != NULL ? path : "spec/vectors/errors.txt", "r");
  if (file == NULL) {
    fprintf(stderr, "  cannot open %s (set IMPULSE_RING_ERRORS)\n", path != NULL ? path : "spec/vectors/errors.txt");
    test_failures++;
    return;
  }
  bool seen[sizeof ENUM_NAMES / sizeof ENUM_NAMES[0]] = {false};
  char line[512];
  int rows = 0;
  while (fgets(line, sizeof line, file) != NULL) {
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '#' || line[0] == '\0') {
      continue;
    }
    int code = -1;
    char name[64] = "";
    int used = 0;
    if (sscanf(line, "%d %63s %n", &code, name, &used) != 2 || used == 0) {
      fprintf(stderr, "  errors.txt: cannot read `%s`\n", line);
      test_failures++;
      continue;
    }
    const char *description = line + used;
    rows++;
    bool found = false;
    for (size_t i = 0; i < sizeof ENUM_NAMES / sizeof ENUM_NAMES[0]; i++) {
      if (strcmp(ENUM_NAMES[i].name, name) == 0) {
        found = true;
        seen[i] = true;
        if ((int)ENUM_NAMES[i].code != code) {
          fprintf(stderr, "  errors.txt: %s is %d, the C enum says %d\n", name, code, (int)ENUM_NAMES[i].code);
          test_failures++;
        }
      }
    }
    if (!found) {
      fprintf(stderr, "  errors.txt: %s (%d) has no ir_error_e constant\n", name, code);
      test_failures++;
    }
    if (strcmp(ir_error_name((ir_error_e)code), name) != 0 || strcmp(ir_strerror((ir_error_e)code), description) != 0) {
      fprintf(stderr, "  errors.txt: code %d is `%s` `%s`, C says `%s` `%s`\n", code, name, description,
              ir_error_name((ir_error_e)code), ir_strerror((ir_error_e)code));
      test_failures++;
    }
  }
  fclose(file);
  CHECK(rows == IR_ERR_PROTOCOL);
  for (size_t i = 0; i < sizeof ENUM_NAMES / sizeof ENUM_NAMES[0]; i++) {
    if (!seen[i]) {
      fprintf(stderr, "  errors.txt has no row for %s\n", ENUM_NAMES[i].name);
      test_failures++;
    }
  }
  CHECK(strcmp(ir_strerror(IR_OK), "success") == 0);
  CHECK(strcmp(ir_strerror((ir_error_e)(IR_ERR_PROTOCOL + 1)), "unknown error") == 0);
  CHECK(strcmp(ir_strerror((ir_error_e)-1), "unknown error") == 0);
  /* The one mapping from the wire: known codes are themselves, anything else a protocol violation. */
  CHECK(ir_error_from_wire(IR_ERR_SCHEMA_MISMATCH) == IR_ERR_SCHEMA_MISMATCH);
  CHECK(ir_error_from_wire(IR_ERR_PROTOCOL) == IR_ERR_PROTOCOL);
  CHECK(ir_error_from_wire(0) == IR_ERR_PROTOCOL && ir_error_from_wire(-3) == IR_ERR_PROTOCOL);
  CHECK(ir_error_from_wire(IR_ERR_PROTOCOL + 1) == IR_ERR_PROTOCOL);
}

typedef struct bell_waiter {
  ir_doorbell_t *bell;
  atomic_bool flag;
  atomic_int checks;
  bool woke;
  int64_t woke_ns;
} bell_waiter_t;

static bool bell_flag_set(void *arg) {
  bell_waiter_t *waiter = arg;
  atomic_fetch_add(&waiter->checks, 1);
  return atomic_load_explicit(&waiter->flag, memory_order_acquire);
}

static void *bell_wait_thread(void *arg) {
  bell_waiter_t *waiter = arg;
  ir_wait_t wait;
  CHECK(ir_wait_set(&wait, IR_WAIT_BLOCKING, 0, 0) == IR_OK);
  waiter->woke = ir_bell_wait(waiter->bell, &wait, ir_deadline(5000), bell_flag_set, waiter, NULL, NULL);
  waiter->woke_ns = ir_now_ns();
  return NULL;
}

/* A Blocking waiter sleeps at once (a couple of checks, no spinning) and is woken by the ring itself,
 * well before the 200 ms safety timeout would wake it anyway: a ring that does nothing fails this. */
static void blocking_waiter_sleeps_at_once_and_is_woken_by_a_ring(void) {
  ir_doorbell_t bell = {0};
  bell_waiter_t waiter = {.bell = &bell};
  pthread_t thread;
  pthread_create(&thread, NULL, bell_wait_thread, &waiter);
  int64_t give_up = now_ms() + 2000;
  while (atomic_load(&bell.sleepers) == 0 && now_ms() < give_up) {
    sleep_ms(1);
  }
  CHECK(atomic_load(&bell.sleepers) == 1);
  int checks_before_sleep = atomic_load(&waiter.checks);
  CHECK(checks_before_sleep <= 2);
  sleep_ms(20);
  atomic_store_explicit(&waiter.flag, true, memory_order_release);
  int64_t rung = ir_now_ns();
  ir_bell_ring(&bell);
  pthread_join(thread, NULL);
  CHECK(waiter.woke);
  int64_t latency_ms = (waiter.woke_ns - rung) / 1000000;
  if (latency_ms >= IR_MAX_SLEEP_NS / 1000000 / 2) {
    fprintf(stderr, "  the waiter woke %lld ms after the ring: the safety timeout woke it, not the ring\n",
            (long long)latency_ms);
    test_failures++;
  }
  CHECK(atomic_load(&bell.sleepers) == 0);
  CHECK(atomic_load(&waiter.checks) < 10);
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
      test_failures++;
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
  test_failures += test_control_vectors(path != NULL ? path : "spec/vectors/control.txt", &cases);
  CHECK(cases >= 23);
}

const test_t CODEC_TESTS[] = {
    {"error_codes_match_every_row_of_the_spec_vectors", error_codes_match_every_row_of_the_spec_vectors, NULL},
    {"avro_codec_round_trips_and_refuses_malformed_input", avro_codec_round_trips_and_refuses_malformed_input, NULL},
    {"blocking_waiter_sleeps_at_once_and_is_woken_by_a_ring", blocking_waiter_sleeps_at_once_and_is_woken_by_a_ring,
     NULL},
    {"control_vectors_decode_and_encode_byte_exact", control_vectors_decode_and_encode_byte_exact, NULL},
};
const size_t CODEC_TEST_COUNT = sizeof CODEC_TESTS / sizeof CODEC_TESTS[0];
