/* Self-test of sealed access keys, without a broker: SHA-256 against FIPS 180-4's examples, HMAC-SHA256
 * against RFC 4231, X25519 against RFC 7748 §5.2 and §6.1, and every line of spec/vectors/sealing.txt
 * through the codec path a request takes (ir_ctl_encode_sealed). */
#include <stdlib.h>
#include <string.h>

#include "../src/control.h"
#include "../src/seal.h"
#include "selftest.h"
#include "vectors.h"

/* Whether `got` is the `len` bytes spelled by `hex`; prints both when not. */
static bool same(const char *what, const uint8_t *got, size_t len, const char *hex) {
  size_t want_len = 0;
  uint8_t *want = parse_hex(hex, &want_len);
  bool ok = want != NULL && want_len == len && memcmp(got, want, len) == 0;
  if (!ok) {
    fprintf(stderr, "  %s: got ", what);
    for (size_t i = 0; i < len; i++) {
      fprintf(stderr, "%02x", got[i]);
    }
    fprintf(stderr, ", expected %s\n", hex);
  }
  free(want);
  return ok;
}

/* A 32-byte value from hex; false (and a failure counted) when the text is not 32 bytes of hex. */
static bool hex32(const char *hex, uint8_t out[32]) {
  size_t len = 0;
  uint8_t *bytes = parse_hex(hex, &len);
  bool ok = bytes != NULL && len == 32;
  if (ok) {
    memcpy(out, bytes, 32);
  } else {
    fprintf(stderr, "  not 32 bytes of hex: %s\n", hex);
    test_failures++;
  }
  free(bytes);
  return ok;
}

static void sha256_matches_the_fips_180_4_examples(void) {
  uint8_t out[IR_SHA256_LEN];
  ir_sha256("abc", 3, out);
  CHECK(same("sha256(abc)", out, sizeof out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  ir_sha256("", 0, out);
  CHECK(same("sha256()", out, sizeof out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  /* 56 bytes: the padding takes a second block. */
  const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  ir_sha256(two_blocks, strlen(two_blocks), out);
  CHECK(same("sha256(448 bits)", out, sizeof out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
  /* A million 'a', fed in pieces that straddle block boundaries. */
  char chunk[1000];
  memset(chunk, 'a', sizeof chunk);
  ir_sha256_t ctx;
  ir_sha256_init(&ctx);
  for (size_t done = 0, step = 1; done < 1000000; step = step % 997 + 1) {
    size_t n = step < 1000000 - done ? step : 1000000 - done;
    ir_sha256_update(&ctx, chunk, n);
    done += n;
  }
  ir_sha256_final(&ctx, out);
  CHECK(same("sha256(a x 10^6)", out, sizeof out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
}

static void hmac_sha256_matches_rfc_4231(void) {
  uint8_t out[IR_SHA256_LEN];
  uint8_t key[131];
  /* Test case 1: a 20-byte key. */
  memset(key, 0x0b, 20);
  ir_hmac_sha256(key, 20, "Hi There", 8, out);
  CHECK(same("rfc4231 case 1", out, sizeof out, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
  /* Test case 2: a key shorter than the output. */
  const char *jefe = "what do ya want for nothing?";
  ir_hmac_sha256((const uint8_t *)"Jefe", 4, jefe, strlen(jefe), out);
  CHECK(same("rfc4231 case 2", out, sizeof out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
  /* Test case 3: data of 50 bytes 0xdd. */
  uint8_t data[50];
  memset(key, 0xaa, 20);
  memset(data, 0xdd, sizeof data);
  ir_hmac_sha256(key, 20, data, sizeof data, out);
  CHECK(same("rfc4231 case 3", out, sizeof out, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"));
  /* Test case 6: a key longer than the block, hashed first. */
  const char *large = "Test Using Larger Than Block-Size Key - Hash Key First";
  memset(key, 0xaa, sizeof key);
  ir_hmac_sha256(key, sizeof key, large, strlen(large), out);
  CHECK(same("rfc4231 case 6", out, sizeof out, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"));
}

static void x25519_matches_rfc_7748(void) {
  uint8_t scalar[32], u[32], out[32];
  /* §5.2, the two single computations (the second u has its top bit set: it must be masked). */
  if (hex32("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", scalar) &&
      hex32("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c", u)) {
    ir_x25519(out, scalar, u);
    CHECK(same("rfc7748 5.2 #1", out, 32, "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"));
  }
  if (hex32("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d", scalar) &&
      hex32("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493", u)) {
    ir_x25519(out, scalar, u);
    CHECK(same("rfc7748 5.2 #2", out, 32, "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"));
  }
  /* §5.2, iterated: k = u = 9, then k, u = X25519(k, u), k. After 1 and after 1,000 iterations. */
  uint8_t k[32] = {9}, prev[32] = {9};
  for (int i = 1; i <= 1000; i++) {
    ir_x25519(out, k, prev);
    memcpy(prev, k, 32);
    memcpy(k, out, 32);
    if (i == 1) {
      CHECK(same("rfc7748 5.2 x1", k, 32, "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"));
    }
  }
  CHECK(same("rfc7748 5.2 x1000", k, 32, "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"));

  /* §6.1: Alice and Bob. */
  uint8_t alice[32], bob[32], alice_public[32], bob_public[32], shared_a[32], shared_b[32];
  if (hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", alice) &&
      hex32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", bob)) {
    ir_x25519_public(alice_public, alice);
    ir_x25519_public(bob_public, bob);
    CHECK(same("alice public", alice_public, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"));
    CHECK(same("bob public", bob_public, 32, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"));
    CHECK(ir_seal_shared(shared_a, alice, bob_public, 32));
    CHECK(ir_seal_shared(shared_b, bob, alice_public, 32));
    CHECK(same("shared (alice)", shared_a, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"));
    CHECK(same("shared (bob)", shared_b, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"));
  }
}

/* Two key pairs from getrandom differ, and each public key is X25519(private, 9). */
static void key_pairs_are_fresh_and_consistent(void) {
  uint8_t priv1[32], pub1[32], priv2[32], pub2[32], check[32];
  CHECK(ir_seal_keypair(priv1, pub1) == IR_OK);
  CHECK(ir_seal_keypair(priv2, pub2) == IR_OK);
  CHECK(memcmp(priv1, priv2, 32) != 0 && memcmp(pub1, pub2, 32) != 0);
  ir_x25519_public(check, priv1);
  CHECK(memcmp(check, pub1, 32) == 0);
}

/* One `seal` line: the key goes out in each record that carries a key, through the encoder the
 * session uses, and the record decodes to the sealed bytes (or null) with the request id. */
static int check_seal_line(const uint8_t session[32], const char *line) {
  char id_text[32], key_hex[512], sealed_hex[512];
  if (sscanf(line, "seal %31s %511s %511s", id_text, key_hex, sealed_hex) != 3) {
    fprintf(stderr, "  sealing.txt: cannot read `%s`\n", line);
    return 1;
  }
  int64_t request_id = strtoll(id_text, NULL, 10);
  bool none = strcmp(key_hex, "-") == 0;
  if (none != (strcmp(sealed_hex, "-") == 0)) {
    fprintf(stderr, "  sealing.txt: `%s` seals a key into none, or none into a key\n", line);
    return 1;
  }
  size_t key_len = 0, sealed_len = 0;
  uint8_t *key = none ? NULL : parse_hex(key_hex, &key_len);
  uint8_t *sealed = none ? NULL : parse_hex(sealed_hex, &sealed_len);
  int failures = 0;
  if (!none && (key == NULL || sealed == NULL || key_len != sealed_len)) {
    fprintf(stderr, "  sealing.txt: malformed `%s`\n", line);
    failures++;
  }
  static const ir_opcode_e KEYED[] = {IR_OP_PUBLISH_CHANNEL, IR_OP_SUBSCRIBE, IR_OP_EXPOSE_FUNCTION,
                                      IR_OP_RESOLVE_FUNCTION};
  for (size_t i = 0; failures == 0 && i < sizeof KEYED / sizeof KEYED[0]; i++) {
    ir_ctl_msg_t msg = {.opcode = KEYED[i]};
    ir_ctl_set_request_id(&msg, request_id);
    ir_ctl_key(&msg)->data = key;
    ir_ctl_key(&msg)->len = key_len;
    ir_avro_writer_t w;
    ir_avro_writer_init_dynamic(&w);
    CHECK(ir_ctl_encode_sealed(&msg, session, &w) && ir_avro_writer_ok(&w));
    /* The caller's record keeps its clear key. */
    CHECK(ir_ctl_key(&msg)->data == key && ir_ctl_key(&msg)->len == key_len);
    ir_ctl_msg_t decoded;
    char why[128];
    if (ir_ctl_decode(w.data, w.len, &decoded, why, sizeof why) != IR_OK) {
      fprintf(stderr, "  %s: a sealed %s does not decode: %s\n", line, ir_ctl_name(KEYED[i]), why);
      failures++;
    } else {
      const ir_ctl_bytes_t *got = ir_ctl_key(&decoded);
      if (ir_ctl_request_id(&decoded) != request_id || (got->data == NULL) != none ||
          (!none && (got->len != sealed_len || memcmp(got->data, sealed, sealed_len) != 0))) {
        fprintf(stderr, "  %s: %s carries another key than the vector's\n", line, ir_ctl_name(KEYED[i]));
        failures++;
      }
    }
    ir_ctl_free(&decoded);
    ir_avro_writer_free(&w);
  }
  if (!none && failures == 0) {
    /* Unsealing is the same XOR, in place. */
    ir_seal(session, request_id, sealed, sealed, sealed_len);
    if (memcmp(sealed, key, key_len) != 0) {
      fprintf(stderr, "  %s: unsealing does not give the key back\n", line);
      failures++;
    }
  }
  free(key);
  free(sealed);
  return failures;
}

static void sealing_vectors_derive_seal_and_refuse(void) {
  const char *path = getenv("IMPULSE_RING_SEALING");
  path = path != NULL ? path : "spec/vectors/sealing.txt";
  FILE *file = fopen(path, "r");
  if (file == NULL) {
    fprintf(stderr, "  cannot open %s (set IMPULSE_RING_SEALING)\n", path);
    test_failures++;
    return;
  }
  uint8_t app_private[32], app_public[32], broker_private[32], broker_public[32], session[32];
  unsigned have = 0; /* a bit per value read */
  int seals = 0, refusals = 0;
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, file) >= 0) {
    line[strcspn(line, "\r\n")] = '\0';
    const struct {
      const char *name;
      uint8_t *into;
    } values[] = {{"app_private: ", app_private},
                  {"app_public: ", app_public},
                  {"broker_private: ", broker_private},
                  {"broker_public: ", broker_public},
                  {"session: ", session}};
    for (unsigned v = 0; v < sizeof values / sizeof values[0]; v++) {
      size_t n = strlen(values[v].name);
      if (strncmp(line, values[v].name, n) == 0 && hex32(line + n, values[v].into)) {
        have |= 1U << v;
      }
    }
    if (strncmp(line, "seal ", 5) == 0 || strncmp(line, "refuse ", 7) == 0) {
      if (have != 0x1fU) {
        fprintf(stderr, "  sealing.txt: `%s` comes before the keys and the session\n", line);
        test_failures++;
        break;
      }
    }
    if (strncmp(line, "seal ", 5) == 0) {
      test_failures += check_seal_line(session, line);
      seals++;
    } else if (strncmp(line, "refuse ", 7) == 0) {
      size_t len = 0;
      uint8_t *bad = parse_hex(line + 7, &len);
      uint8_t shared[32];
      /* Refused by the app, from the broker, and by the broker, from the app. */
      if (bad == NULL || ir_seal_shared(shared, app_private, bad, len) ||
          ir_seal_shared(shared, broker_private, bad, len)) {
        fprintf(stderr, "  sealing.txt: `%s` was not refused\n", line);
        test_failures++;
      }
      free(bad);
      refusals++;
    }
  }
  free(line);
  fclose(file);
  CHECK(have == 0x1fU);
  CHECK(seals >= 6 && refusals >= 2);
  if (have != 0x1fU) {
    return;
  }
  /* Both sides derive the public keys, and the same session, from the private keys alone. */
  uint8_t derived[32], shared[32], from_app[32], from_broker[32];
  ir_x25519_public(derived, app_private);
  CHECK(memcmp(derived, app_public, 32) == 0);
  ir_x25519_public(derived, broker_private);
  CHECK(memcmp(derived, broker_public, 32) == 0);
  CHECK(ir_seal_shared(shared, app_private, broker_public, 32));
  ir_seal_session(from_app, shared, app_public, broker_public);
  CHECK(ir_seal_shared(shared, broker_private, app_public, 32));
  ir_seal_session(from_broker, shared, app_public, broker_public);
  CHECK(memcmp(from_app, session, 32) == 0 && memcmp(from_broker, session, 32) == 0);
  /* Any length but 32 is refused, whatever the bytes. */
  CHECK(!ir_seal_shared(shared, app_private, broker_public, 31));
  CHECK(!ir_seal_shared(shared, app_private, broker_public, 0));
  CHECK(!ir_seal_shared(shared, app_private, NULL, 32));
}

const test_t SEAL_TESTS[] = {
    {"sha256_matches_the_fips_180_4_examples", sha256_matches_the_fips_180_4_examples, NULL},
    {"hmac_sha256_matches_rfc_4231", hmac_sha256_matches_rfc_4231, NULL},
    {"x25519_matches_rfc_7748", x25519_matches_rfc_7748, NULL},
    {"key_pairs_are_fresh_and_consistent", key_pairs_are_fresh_and_consistent, NULL},
    {"sealing_vectors_derive_seal_and_refuse", sealing_vectors_derive_seal_and_refuse, NULL},
};
const size_t SEAL_TEST_COUNT = sizeof SEAL_TESTS / sizeof SEAL_TESTS[0];
