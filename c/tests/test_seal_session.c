/* Sealed keys as a connection uses them, against a stand-in broker this file plays itself: it makes a
 * control segment of two slots in a namespace of its own, answers Register with the public key the
 * test chooses, and records the key field of every request (answering WrongKey), so the test can check
 * what went through shared memory: one fresh key pair per registration, every key sealed with its
 * record's request id, and a Registered whose public key cannot make a session refused with Protocol. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../src/control.h"
#include "../src/ring.h"
#include "../src/seal.h"
#include "selftest.h"

#define STAND_IN_SLOTS 2
#define STAND_IN_RING 32768
#define STAND_IN_RECORDS 16

/* A key field the stand-in saw in a request. */
typedef struct seen_key {
  uint32_t slot;
  ir_opcode_e opcode;
  int64_t request_id;
  bool null;
  size_t len;
  uint8_t bytes[64];
} seen_key_t;

typedef struct stand_in {
  char ns[64];
  char name[IR_SEG_NAME_MAX];
  ir_seg_t seg;
  ir_ring_t requests[STAND_IN_SLOTS];
  ir_ring_t replies[STAND_IN_SLOTS];
  /* What Registered carries as the broker's public key. */
  uint8_t public_key[IR_X25519_LEN];
  size_t public_len;
  atomic_bool stop;
  pthread_t thread;
  /* Written by the stand-in's thread, read by the test after joining it. */
  int registers;
  uint8_t app_public[STAND_IN_SLOTS * 2][IR_X25519_LEN];
  int keys;
  seen_key_t seen[STAND_IN_RECORDS];
} stand_in_t;

static ir_slot_header_t *stand_in_slot(stand_in_t *s, uint32_t slot) {
  return ir_seg_at(&s->seg, IR_CTL_SLOTS + slot * ir_control_slot_size(STAND_IN_RING));
}

static void stand_in_reply(stand_in_t *s, uint32_t slot, const ir_ctl_msg_t *reply) {
  ir_avro_writer_t w;
  ir_avro_writer_init_dynamic(&w);
  ir_ctl_encode(reply, &w);
  CHECK(ir_ring_try_write(&s->replies[slot], IR_FRAME_KIND_CONTROL, 0, w.data, w.len, NULL, 0) == IR_OK);
  ir_avro_writer_free(&w);
  ir_bell_ring(&stand_in_slot(s, slot)->doorbell);
}

static void stand_in_answer(stand_in_t *s, uint32_t slot, ir_ctl_msg_t *msg) {
  ir_ctl_bytes_t *key = ir_ctl_key(msg);
  if (msg->opcode == IR_OP_REGISTER) {
    const ir_ctl_bytes_t *pk = &msg->u.register_.public_key;
    if (pk->len == IR_X25519_LEN && s->registers < STAND_IN_SLOTS * 2) {
      memcpy(s->app_public[s->registers], pk->data, IR_X25519_LEN);
    }
    s->registers++;
    ir_ctl_msg_t reply = {.opcode = IR_OP_REGISTERED};
    reply.u.registered.request_id = msg->u.register_.request_id;
    reply.u.registered.app_id = (int32_t)slot;
    reply.u.registered.broker_pid = getpid();
    reply.u.registered.public_key = (ir_ctl_bytes_t){.data = s->public_key, .len = s->public_len};
    stand_in_reply(s, slot, &reply);
  } else if (key != NULL) {
    if (s->keys < STAND_IN_RECORDS && key->len <= sizeof s->seen[0].bytes) {
      seen_key_t *seen = &s->seen[s->keys];
      seen->slot = slot;
      seen->opcode = msg->opcode;
      seen->request_id = ir_ctl_request_id(msg);
      seen->null = key->data == NULL;
      seen->len = key->len;
      if (key->data != NULL && key->len > 0) {
        memcpy(seen->bytes, key->data, key->len);
      }
    }
    s->keys++;
    ir_ctl_msg_t reply = {.opcode = IR_OP_FAILED};
    reply.u.failed.request_id = ir_ctl_request_id(msg);
    reply.u.failed.code = IR_ERR_WRONG_KEY;
    reply.u.failed.message = "wrong key (the stand-in broker refuses every key)";
    stand_in_reply(s, slot, &reply);
  } else if (msg->opcode == IR_OP_UNREGISTER) {
    atomic_store_explicit(&stand_in_slot(s, slot)->state, IR_SLOT_FREE, memory_order_release);
  }
}

static void *stand_in_run(void *arg) {
  stand_in_t *s = arg;
  while (!atomic_load_explicit(&s->stop, memory_order_acquire)) {
    bool any = false;
    for (uint32_t slot = 0; slot < STAND_IN_SLOTS; slot++) {
      ir_frame_t frame;
      bool found = false;
      if (ir_ring_peek(&s->requests[slot], IR_KIND_BIT(IR_FRAME_KIND_CONTROL), &frame, &found) != IR_OK || !found) {
        continue;
      }
      any = true;
      ir_ctl_msg_t msg;
      char why[128];
      if (ir_ctl_decode(frame.payload, frame.len, &msg, why, sizeof why) == IR_OK) {
        stand_in_answer(s, slot, &msg);
      } else {
        fprintf(stderr, "  the stand-in broker cannot decode a request: %s\n", why);
        test_failures++;
      }
      ir_ctl_free(&msg);
      ir_ring_consume(&s->requests[slot], &frame);
    }
    if (!any) {
      sleep_ms(1);
    }
  }
  return NULL;
}

/* Makes the control segment of namespace `<prefix>cseal-<pid>-<n>` and starts answering; false (a
 * failure counted) when the segment cannot be made. */
static bool stand_in_start(stand_in_t *s, int n, const uint8_t *public_key, size_t public_len) {
  memset(s, 0, sizeof *s);
  (void)snprintf(s->ns, sizeof s->ns, "%scseal-%d-%d", test_ns_prefix(), (int)getpid(), n);
  (void)snprintf(s->name, sizeof s->name, "/impulse-ring.%s.ctl", s->ns);
  memcpy(s->public_key, public_key, public_len);
  s->public_len = public_len;
  size_t len = IR_CTL_SLOTS + STAND_IN_SLOTS * ir_control_slot_size(STAND_IN_RING);
  int fd = shm_open(s->name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0 || ftruncate(fd, (off_t)len) != 0) {
    fprintf(stderr, "  cannot make %s\n", s->name);
    test_failures++;
    if (fd >= 0) {
      close(fd);
      shm_unlink(s->name);
    }
    return false;
  }
  void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (base == MAP_FAILED) {
    shm_unlink(s->name);
    test_failures++;
    return false;
  }
  s->seg.base = base;
  s->seg.len = len;
  (void)snprintf(s->seg.name, sizeof s->seg.name, "%s", s->name);
  ir_ctl_header_t *ctl = ir_seg_at(&s->seg, 0);
  ir_seg_header_t *header = ir_seg_at(&s->seg, 0);
  uint32_t pid = (uint32_t)getpid();
  atomic_store(&header->magic, IR_MAGIC);
  atomic_store(&header->kind, IR_KIND_CONTROL);
  atomic_store(&header->size, len);
  atomic_store(&header->creator_pid, pid);
  atomic_store(&header->creator_start, ir_process_start_time(pid));
  atomic_store(&ctl->broker_pid, pid);
  atomic_store(&ctl->broker_start, ir_process_start_time(pid));
  atomic_store(&ctl->max_apps, STAND_IN_SLOTS);
  atomic_store(&ctl->ring_capacity, STAND_IN_RING);
  for (uint32_t slot = 0; slot < STAND_IN_SLOTS; slot++) {
    uint64_t base_off = IR_CTL_SLOTS + slot * ir_control_slot_size(STAND_IN_RING) + IR_SLOT_REQUEST_RING;
    ir_ring_header_t *request = ir_seg_at(&s->seg, base_off);
    ir_ring_header_t *reply = ir_seg_at(&s->seg, base_off + IR_RING_HEADER_SIZE + STAND_IN_RING);
    atomic_store(&request->capacity, STAND_IN_RING);
    atomic_store(&reply->capacity, STAND_IN_RING);
    CHECK(ir_ring_open(&s->seg, base_off, STAND_IN_RING, &s->requests[slot]) == IR_OK);
    CHECK(ir_ring_open(&s->seg, base_off + IR_RING_HEADER_SIZE + STAND_IN_RING, STAND_IN_RING, &s->replies[slot]) ==
          IR_OK);
  }
  /* SYNC: publish segment — the version word last, as every creator writes it. */
  atomic_store_explicit(&header->version, IR_SPEC_VERSION, memory_order_release);
  atomic_init(&s->stop, false);
  pthread_create(&s->thread, NULL, stand_in_run, s);
  return true;
}

static void stand_in_stop(stand_in_t *s) {
  atomic_store_explicit(&s->stop, true, memory_order_release);
  pthread_join(s->thread, NULL);
  munmap(s->seg.base, s->seg.len);
  shm_unlink(s->name);
  CHECK(test_shm_count(s->ns) == 0);
}

/* The broker key pair of spec/vectors/sealing.txt (RFC 7748 §6.1, Bob). */
static void vector_broker(uint8_t private_key[32], uint8_t public_key[32]) {
  static const uint8_t BOB[32] = {0x5d, 0xab, 0x08, 0x7e, 0x62, 0x4a, 0x8a, 0x4b, 0x79, 0xe1, 0x7f,
                                  0x8b, 0x83, 0x80, 0x0e, 0xe6, 0x6f, 0x3b, 0xb1, 0x29, 0x26, 0x18,
                                  0xb6, 0xfd, 0x1c, 0x2f, 0x8b, 0x27, 0xff, 0x88, 0xe0, 0xeb};
  memcpy(private_key, BOB, 32);
  ir_x25519_public(public_key, private_key);
}

/* Each registration sends a public key of its own; every key the app presents reaches shared memory
 * sealed with the session of its registration and its record's request id, and unseals to the key;
 * no key means null. */
static void every_key_is_sealed_with_its_request_id_and_a_fresh_key_pair(void) {
  uint8_t broker_private[32], broker_public[32];
  vector_broker(broker_private, broker_public);
  stand_in_t s;
  if (!stand_in_start(&s, 0, broker_public, sizeof broker_public)) {
    return;
  }
  static const char KEY[] = "s3cret, longer than one keystream block of 32 bytes";
  ir_conn_t *conns[2] = {NULL, NULL};
  for (int c = 0; c < 2; c++) {
    ir_error_e code = ir_connect_ns(s.ns, "sealer", &conns[c]);
    CHECK_CODE(NULL, code, IR_OK);
    if (code != IR_OK) {
      continue;
    }
    ir_conn_t *conn = conns[c];
    ir_publisher_t *pub = NULL;
    ir_subscriber_t *sub = NULL;
    ir_function_t *fn = NULL;
    CHECK_CODE(conn, ir_publish_channel(conn, "ch", READING, KEY, 0, IR_CHANNEL_BLOCK, &pub), IR_ERR_WRONG_KEY);
    CHECK_CODE(conn, ir_subscribe(conn, "ch", KEY, READING, &sub), IR_ERR_WRONG_KEY);
    CHECK_CODE(conn, ir_subscribe(conn, "ch", NULL, READING, &sub), IR_ERR_WRONG_KEY);
    CHECK_CODE(conn, ir_expose_function(conn, "fn", ADD_REQUEST, ADD_RESPONSE, KEY, add_handler, NULL, &fn),
               IR_ERR_WRONG_KEY);
    uint8_t request[24];
    size_t request_len = encode_add(request, sizeof request, 1, 2);
    uint8_t *response = NULL;
    size_t response_len = 0;
    CHECK_CODE(
        conn, ir_call(conn, "fn", KEY, ADD_REQUEST, ADD_RESPONSE, request, request_len, &response, &response_len, 5000),
        IR_ERR_WRONG_KEY);
    CHECK(response == NULL);
  }
  /* Two connections at once: one per slot. */
  ir_close(conns[0]);
  ir_close(conns[1]);
  stand_in_stop(&s);

  CHECK(s.registers == 2);
  CHECK(s.keys == 10);
  if (s.registers != 2 || s.keys != 10) {
    return;
  }
  CHECK(memcmp(s.app_public[0], s.app_public[1], 32) != 0);
  for (int i = 0; i < s.keys; i++) {
    const seen_key_t *seen = &s.seen[i];
    /* Records come in the order sent: each connection's five, the third without a key. */
    int registration = i / 5;
    bool keyless = i % 5 == 2;
    CHECK(seen->slot == (uint32_t)registration);
    if (seen->null != keyless) {
      fprintf(stderr, "  record %d (%s): key is %s\n", i, ir_ctl_name(seen->opcode), seen->null ? "null" : "set");
      test_failures++;
      continue;
    }
    if (keyless) {
      continue;
    }
    uint8_t shared[32], session[32], clear[64];
    CHECK(ir_seal_shared(shared, broker_private, s.app_public[registration], 32));
    ir_seal_session(session, shared, s.app_public[registration], broker_public);
    CHECK(seen->len == strlen(KEY));
    CHECK(memmem(seen->bytes, seen->len, "s3cret", 6) == NULL);
    ir_seal(session, seen->request_id, seen->bytes, clear, seen->len);
    if (seen->len != strlen(KEY) || memcmp(clear, KEY, seen->len) != 0) {
      fprintf(stderr, "  record %d (%s, request %lld) does not unseal to the key\n", i, ir_ctl_name(seen->opcode),
              (long long)seen->request_id);
      test_failures++;
    }
    /* Under the other registration's session it is noise. */
    CHECK(ir_seal_shared(shared, broker_private, s.app_public[1 - registration], 32));
    ir_seal_session(session, shared, s.app_public[1 - registration], broker_public);
    ir_seal(session, seen->request_id, seen->bytes, clear, seen->len);
    CHECK(memcmp(clear, KEY, seen->len) != 0);
  }
}

/* A Registered whose public key is not 32 bytes, or is of small order (the shared secret all zero),
 * cannot make a session: the connect fails with Protocol and says why (bootstrap.md §5.2). */
static void connect_refuses_a_broker_public_key_it_cannot_use(void) {
  static const struct {
    size_t len;
    const char *says;
  } CASES[] = {{31, "31 bytes"}, {32, "small order"}, {0, "0 bytes"}};
  for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
    uint8_t zeros[32] = {0};
    stand_in_t s;
    if (!stand_in_start(&s, 1 + (int)i, zeros, CASES[i].len)) {
      return;
    }
    ir_conn_t *conn = NULL;
    int64_t started = now_ms();
    CHECK_CODE(NULL, ir_connect_ns(s.ns, "doubter", &conn), IR_ERR_PROTOCOL);
    CHECK(now_ms() - started < 5000);
    CHECK(conn == NULL);
    if (strstr(ir_last_error(NULL), CASES[i].says) == NULL || strstr(ir_last_error(NULL), "public key") == NULL) {
      fprintf(stderr, "  a broker key of %zu bytes: the error says `%s`\n", CASES[i].len, ir_last_error(NULL));
      test_failures++;
    }
    /* The app gave its slot back (Unregister), as after any failed Register. */
    int64_t give_up = now_ms() + 2000;
    while (atomic_load(&stand_in_slot(&s, 0)->state) != IR_SLOT_FREE && now_ms() < give_up) {
      sleep_ms(1);
    }
    CHECK(atomic_load(&stand_in_slot(&s, 0)->state) == IR_SLOT_FREE);
    stand_in_stop(&s);
    CHECK(s.registers == 1 && s.keys == 0);
  }
}

const test_t SEAL_SESSION_TESTS[] = {
    {"every_key_is_sealed_with_its_request_id_and_a_fresh_key_pair",
     every_key_is_sealed_with_its_request_id_and_a_fresh_key_pair, NULL},
    {"connect_refuses_a_broker_public_key_it_cannot_use", connect_refuses_a_broker_public_key_it_cannot_use, NULL},
};
const size_t SEAL_SESSION_TEST_COUNT = sizeof SEAL_SESSION_TESTS / sizeof SEAL_SESSION_TESTS[0];
