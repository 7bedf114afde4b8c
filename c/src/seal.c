/* SHA-256 (FIPS 180-4 §6.2), HMAC-SHA256 (RFC 2104), X25519 (RFC 7748 §5) and the sealing of access
 * keys built from them (bootstrap.md §5.5). Field elements of GF(2^255 - 19) are 16 limbs of 16 bits
 * held in 64-bit words, so every product fits a uint64_t without compiler extensions, on amd64 and
 * arm64 alike; the ladder swaps with masks, never with branches. */
#include "seal.h"

#include <string.h>

void ir_wipe(void *ptr, size_t len) {
  volatile uint8_t *p = ptr;
  for (size_t i = 0; i < len; i++) {
    p[i] = 0;
  }
}

/* ---- SHA-256 ---- */

/* FIPS 180-4 §4.2.2: the first 32 bits of the fractional parts of the cube roots of the first 64
 * primes. */
static const uint32_t K[64] = {
    0x428a2f98U, 0x71374491U, 0xb5c0fbcfU, 0xe9b5dba5U, 0x3956c25bU, 0x59f111f1U, 0x923f82a4U, 0xab1c5ed5U,
    0xd807aa98U, 0x12835b01U, 0x243185beU, 0x550c7dc3U, 0x72be5d74U, 0x80deb1feU, 0x9bdc06a7U, 0xc19bf174U,
    0xe49b69c1U, 0xefbe4786U, 0x0fc19dc6U, 0x240ca1ccU, 0x2de92c6fU, 0x4a7484aaU, 0x5cb0a9dcU, 0x76f988daU,
    0x983e5152U, 0xa831c66dU, 0xb00327c8U, 0xbf597fc7U, 0xc6e00bf3U, 0xd5a79147U, 0x06ca6351U, 0x14292967U,
    0x27b70a85U, 0x2e1b2138U, 0x4d2c6dfcU, 0x53380d13U, 0x650a7354U, 0x766a0abbU, 0x81c2c92eU, 0x92722c85U,
    0xa2bfe8a1U, 0xa81a664bU, 0xc24b8b70U, 0xc76c51a3U, 0xd192e819U, 0xd6990624U, 0xf40e3585U, 0x106aa070U,
    0x19a4c116U, 0x1e376c08U, 0x2748774cU, 0x34b0bcb5U, 0x391c0cb3U, 0x4ed8aa4aU, 0x5b9cca4fU, 0x682e6ff3U,
    0x748f82eeU, 0x78a5636fU, 0x84c87814U, 0x8cc70208U, 0x90befffaU, 0xa4506cebU, 0xbef9a3f7U, 0xc67178f2U,
};

static uint32_t rotr(uint32_t x, unsigned n) {
  return (x >> n) | (x << (32U - n));
}

static uint32_t load_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void store_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* FIPS 180-4 §6.2.2: one 512-bit block into the hash value. */
static void sha256_block(uint32_t h[8], const uint8_t block[64]) {
  uint32_t w[64];
  for (size_t t = 0; t < 16; t++) {
    w[t] = load_be32(block + 4 * t);
  }
  for (int t = 16; t < 64; t++) {
    uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int t = 0; t < 64; t++) {
    uint32_t big_s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    uint32_t ch = (e & f) ^ (~e & g);
    uint32_t t1 = hh + big_s1 + ch + K[t] + w[t];
    uint32_t big_s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    uint32_t t2 = big_s0 + maj;
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
  ir_wipe(w, sizeof w);
}

void ir_sha256_init(ir_sha256_t *ctx) {
  /* FIPS 180-4 §5.3.3: the first 32 bits of the fractional parts of the square roots of the first 8
   * primes. */
  static const uint32_t H0[8] = {0x6a09e667U, 0xbb67ae85U, 0x3c6ef372U, 0xa54ff53aU,
                                 0x510e527fU, 0x9b05688cU, 0x1f83d9abU, 0x5be0cd19U};
  memcpy(ctx->h, H0, sizeof H0);
  ctx->total = 0;
  ctx->used = 0;
}

void ir_sha256_update(ir_sha256_t *ctx, const void *data, size_t len) {
  const uint8_t *p = data;
  ctx->total += len;
  while (len > 0) {
    size_t take = sizeof ctx->block - ctx->used;
    if (take > len) {
      take = len;
    }
    memcpy(ctx->block + ctx->used, p, take);
    ctx->used += take;
    p += take;
    len -= take;
    if (ctx->used == sizeof ctx->block) {
      sha256_block(ctx->h, ctx->block);
      ctx->used = 0;
    }
  }
}

void ir_sha256_final(ir_sha256_t *ctx, uint8_t out[IR_SHA256_LEN]) {
  /* §5.1.1: a 1 bit, zeros up to 56 bytes mod 64, then the length in bits, big-endian. */
  uint64_t bits = ctx->total * 8;
  ctx->block[ctx->used++] = 0x80;
  if (ctx->used > 56) {
    memset(ctx->block + ctx->used, 0, sizeof ctx->block - ctx->used);
    sha256_block(ctx->h, ctx->block);
    ctx->used = 0;
  }
  memset(ctx->block + ctx->used, 0, 56 - ctx->used);
  store_be32(ctx->block + 56, (uint32_t)(bits >> 32));
  store_be32(ctx->block + 60, (uint32_t)bits);
  sha256_block(ctx->h, ctx->block);
  for (size_t i = 0; i < 8; i++) {
    store_be32(out + 4 * i, ctx->h[i]);
  }
  ir_wipe(ctx, sizeof *ctx);
}

void ir_sha256(const void *data, size_t len, uint8_t out[IR_SHA256_LEN]) {
  ir_sha256_t ctx;
  ir_sha256_init(&ctx);
  ir_sha256_update(&ctx, data, len);
  ir_sha256_final(&ctx, out);
}

/* ---- HMAC-SHA256 (RFC 2104, B = 64, L = 32) ---- */

void ir_hmac_init(ir_hmac_t *ctx, const uint8_t *key, size_t key_len) {
  uint8_t k[64] = {0};
  if (key_len > sizeof k) {
    ir_sha256(key, key_len, k);
  } else if (key_len > 0) {
    memcpy(k, key, key_len);
  }
  uint8_t inner_key[64];
  for (size_t i = 0; i < sizeof k; i++) {
    inner_key[i] = (uint8_t)(k[i] ^ 0x36U);
    ctx->outer_key[i] = (uint8_t)(k[i] ^ 0x5cU);
  }
  ir_sha256_init(&ctx->inner);
  ir_sha256_update(&ctx->inner, inner_key, sizeof inner_key);
  ir_wipe(k, sizeof k);
  ir_wipe(inner_key, sizeof inner_key);
}

void ir_hmac_update(ir_hmac_t *ctx, const void *data, size_t len) {
  ir_sha256_update(&ctx->inner, data, len);
}

void ir_hmac_final(ir_hmac_t *ctx, uint8_t out[IR_SHA256_LEN]) {
  uint8_t inner[IR_SHA256_LEN];
  ir_sha256_final(&ctx->inner, inner);
  ir_sha256_t outer;
  ir_sha256_init(&outer);
  ir_sha256_update(&outer, ctx->outer_key, sizeof ctx->outer_key);
  ir_sha256_update(&outer, inner, sizeof inner);
  ir_sha256_final(&outer, out);
  ir_wipe(inner, sizeof inner);
  ir_wipe(ctx, sizeof *ctx);
}

void ir_hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len, uint8_t out[IR_SHA256_LEN]) {
  ir_hmac_t ctx;
  ir_hmac_init(&ctx, key, key_len);
  ir_hmac_update(&ctx, msg, msg_len);
  ir_hmac_final(&ctx, out);
}

/* ---- GF(2^255 - 19) ---- */

#define LIMBS 16

/* The value sum(l[i] * 2^(16 i)), not necessarily reduced below p. After fe_carry every limb is below
 * 2^16 except l[0], below 2^16 + 38; fe_add and fe_sub of carried inputs stay below 2^19 a limb, and
 * fe_mul takes such inputs (16 products of 2^38 each, folded by 38, fit 64 bits). */
typedef struct fe {
  uint64_t l[LIMBS];
} fe_t;

/* 4p limb by limb (p = 2^255 - 19: limbs 0xffed, 0xffff x 14, 0x7fff), so that a + 4p - b needs no
 * borrow for any carried b. */
static const uint64_t FOUR_P[LIMBS] = {0x3ffb4, 0x3fffc, 0x3fffc, 0x3fffc, 0x3fffc, 0x3fffc, 0x3fffc, 0x3fffc,
                                       0x3fffc, 0x3fffc, 0x3fffc, 0x3fffc, 0x3fffc, 0x3fffc, 0x3fffc, 0x1fffc};
static const uint64_t P[LIMBS] = {0xffed, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
                                  0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0x7fff};

/* Two passes of carrying; the carry out of limb 15 (2^256 = 38 mod p) folds into limb 0. */
static void fe_carry(fe_t *r) {
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < LIMBS; i++) {
      uint64_t c = r->l[i] >> 16;
      r->l[i] &= 0xffff;
      if (i + 1 < LIMBS) {
        r->l[i + 1] += c;
      } else {
        r->l[0] += 38 * c;
      }
    }
  }
}

static void fe_add(fe_t *r, const fe_t *a, const fe_t *b) {
  for (int i = 0; i < LIMBS; i++) {
    r->l[i] = a->l[i] + b->l[i];
  }
}

static void fe_sub(fe_t *r, const fe_t *a, const fe_t *b) {
  for (int i = 0; i < LIMBS; i++) {
    r->l[i] = a->l[i] + FOUR_P[i] - b->l[i];
  }
}

static void fe_mul(fe_t *r, const fe_t *a, const fe_t *b) {
  uint64_t t[2 * LIMBS - 1] = {0};
  for (int i = 0; i < LIMBS; i++) {
    for (int j = 0; j < LIMBS; j++) {
      t[i + j] += a->l[i] * b->l[j];
    }
  }
  for (int i = LIMBS; i < 2 * LIMBS - 1; i++) {
    t[i - LIMBS] += 38 * t[i];
  }
  memcpy(r->l, t, sizeof r->l);
  fe_carry(r);
  /* `t` is not wiped here: this runs some 2,500 times per X25519, and the next call overwrites it. */
}

/* r = z^(p - 2) = 1/z (Fermat). p - 2 = 2^255 - 21 has every bit 0..254 set except bits 2 and 4; the
 * exponent is public, so the branches on it are too. */
static void fe_invert(fe_t *r, const fe_t *z) {
  fe_t acc = *z;
  for (int bit = 253; bit >= 0; bit--) {
    fe_mul(&acc, &acc, &acc);
    if (bit != 2 && bit != 4) {
      fe_mul(&acc, &acc, z);
    }
  }
  *r = acc;
  ir_wipe(&acc, sizeof acc);
}

/* Swaps a and b when swap is 1, leaves them when it is 0, without a branch. */
static void fe_cswap(uint64_t swap, fe_t *a, fe_t *b) {
  uint64_t mask = 0 - swap;
  for (int i = 0; i < LIMBS; i++) {
    uint64_t x = mask & (a->l[i] ^ b->l[i]);
    a->l[i] ^= x;
    b->l[i] ^= x;
  }
}

/* RFC 7748 §5: little-endian, the top bit masked off. */
static void fe_from_bytes(fe_t *r, const uint8_t in[32]) {
  for (size_t i = 0; i < LIMBS; i++) {
    r->l[i] = (uint64_t)in[2 * i] | (uint64_t)in[2 * i + 1] << 8;
  }
  r->l[15] &= 0x7fff;
}

/* The canonical encoding: fully reduced below p, little-endian. */
static void fe_to_bytes(uint8_t out[32], const fe_t *a) {
  fe_t t = *a;
  fe_carry(&t);
  /* Fold bit 255 and up (2^255 = 19 mod p) twice: the value ends below 2^255, with limbs below 2^16. */
  for (int pass = 0; pass < 2; pass++) {
    uint64_t c = t.l[15] >> 15;
    t.l[15] &= 0x7fff;
    t.l[0] += 19 * c;
    for (int i = 0; i < LIMBS - 1; i++) {
      c = t.l[i] >> 16;
      t.l[i] &= 0xffff;
      t.l[i + 1] += c;
    }
  }
  /* Below 2^255 < 2p: subtract p once unless that borrows. */
  uint64_t m[LIMBS];
  uint64_t borrow = 0;
  for (int i = 0; i < LIMBS; i++) {
    uint64_t d = t.l[i] - P[i] - borrow;
    borrow = d >> 63;
    m[i] = d & 0xffff;
  }
  uint64_t keep_m = borrow - 1; /* all ones when t >= p */
  for (size_t i = 0; i < LIMBS; i++) {
    uint64_t v = (m[i] & keep_m) | (t.l[i] & ~keep_m);
    out[2 * i] = (uint8_t)v;
    out[2 * i + 1] = (uint8_t)(v >> 8);
  }
  ir_wipe(&t, sizeof t);
  ir_wipe(m, sizeof m);
}

/* ---- X25519 (RFC 7748 §5) ---- */

void ir_x25519(uint8_t out[IR_X25519_LEN], const uint8_t scalar[IR_X25519_LEN], const uint8_t u[IR_X25519_LEN]) {
  /* (486662 - 2) / 4 = 121665 = 0x1db41. */
  static const fe_t A24 = {{0xdb41, 1}};
  uint8_t k[32];
  memcpy(k, scalar, sizeof k);
  k[0] &= 248;
  k[31] &= 127;
  k[31] |= 64;

  fe_t x1, x2 = {{1}}, z2 = {{0}}, x3, z3 = {{1}};
  fe_from_bytes(&x1, u);
  x3 = x1;
  fe_t a, aa, b, bb, e, c, d, da, cb, t;
  uint64_t swap = 0;
  for (int bit = 254; bit >= 0; bit--) {
    uint64_t k_t = (uint64_t)(k[bit >> 3] >> (bit & 7)) & 1;
    swap ^= k_t;
    fe_cswap(swap, &x2, &x3);
    fe_cswap(swap, &z2, &z3);
    swap = k_t;

    fe_add(&a, &x2, &z2);
    fe_mul(&aa, &a, &a);
    fe_sub(&b, &x2, &z2);
    fe_mul(&bb, &b, &b);
    fe_sub(&e, &aa, &bb);
    fe_add(&c, &x3, &z3);
    fe_sub(&d, &x3, &z3);
    fe_mul(&da, &d, &a);
    fe_mul(&cb, &c, &b);
    fe_add(&t, &da, &cb);
    fe_mul(&x3, &t, &t);
    fe_sub(&t, &da, &cb);
    fe_mul(&t, &t, &t);
    fe_mul(&z3, &x1, &t);
    fe_mul(&x2, &aa, &bb);
    fe_mul(&t, &A24, &e);
    fe_add(&t, &aa, &t);
    fe_mul(&z2, &e, &t);
  }
  fe_cswap(swap, &x2, &x3);
  fe_cswap(swap, &z2, &z3);

  fe_invert(&z2, &z2);
  fe_mul(&x2, &x2, &z2);
  fe_to_bytes(out, &x2);

  ir_wipe(k, sizeof k);
  fe_t *secrets[] = {&x1, &x2, &z2, &x3, &z3, &a, &aa, &b, &bb, &e, &c, &d, &da, &cb, &t};
  for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
    ir_wipe(secrets[i], sizeof(fe_t));
  }
}

void ir_x25519_public(uint8_t public_key[IR_X25519_LEN], const uint8_t private_key[IR_X25519_LEN]) {
  static const uint8_t NINE[IR_X25519_LEN] = {9};
  ir_x25519(public_key, private_key, NINE);
}

/* ---- Sealing (bootstrap.md §5.5) ---- */

static const char SESSION_LABEL[] = "impulse-ring session v1";
static const char KEY_LABEL[] = "impulse-ring key v1";

ir_error_e ir_seal_keypair(uint8_t private_key[IR_X25519_LEN], uint8_t public_key[IR_X25519_LEN]) {
  int err = ir_random_bytes(private_key, IR_X25519_LEN);
  if (err != 0) {
    ir_wipe(private_key, IR_X25519_LEN);
    return ir_fail(IR_ERR_IO, "cannot make a key pair to seal access keys: getrandom failed: %s", strerror(err));
  }
  ir_x25519_public(public_key, private_key);
  return IR_OK;
}

bool ir_seal_shared(uint8_t shared[IR_X25519_LEN], const uint8_t own_private[IR_X25519_LEN], const uint8_t *peer_public,
                    size_t peer_len) {
  if (peer_public == NULL || peer_len != IR_X25519_LEN) {
    memset(shared, 0, IR_X25519_LEN);
    return false;
  }
  ir_x25519(shared, own_private, peer_public);
  uint8_t any = 0;
  for (size_t i = 0; i < IR_X25519_LEN; i++) {
    any |= shared[i];
  }
  return any != 0;
}

void ir_seal_session(uint8_t session[IR_X25519_LEN], const uint8_t shared[IR_X25519_LEN],
                     const uint8_t app_public[IR_X25519_LEN], const uint8_t broker_public[IR_X25519_LEN]) {
  ir_hmac_t ctx;
  ir_hmac_init(&ctx, shared, IR_X25519_LEN);
  ir_hmac_update(&ctx, SESSION_LABEL, sizeof SESSION_LABEL - 1);
  ir_hmac_update(&ctx, app_public, IR_X25519_LEN);
  ir_hmac_update(&ctx, broker_public, IR_X25519_LEN);
  ir_hmac_final(&ctx, session);
}

void ir_seal(const uint8_t session[IR_X25519_LEN], int64_t request_id, const uint8_t *in, uint8_t *out, size_t len) {
  /* "impulse-ring key v1" || request_id (8 bytes LE, two's complement) || j (4 bytes LE). */
  uint8_t msg[sizeof KEY_LABEL - 1 + 8 + 4];
  memcpy(msg, KEY_LABEL, sizeof KEY_LABEL - 1);
  uint64_t id = (uint64_t)request_id;
  for (int i = 0; i < 8; i++) {
    msg[sizeof KEY_LABEL - 1 + i] = (uint8_t)(id >> (8 * i));
  }
  uint8_t block[IR_SHA256_LEN];
  for (size_t done = 0, j = 0; done < len; j++) {
    uint32_t counter = (uint32_t)j;
    for (int i = 0; i < 4; i++) {
      msg[sizeof KEY_LABEL - 1 + 8 + i] = (uint8_t)(counter >> (8 * i));
    }
    ir_hmac_sha256(session, IR_X25519_LEN, msg, sizeof msg, block);
    for (size_t i = 0; i < sizeof block && done < len; i++, done++) {
      out[done] = (uint8_t)(in[done] ^ block[i]);
    }
  }
  ir_wipe(block, sizeof block);
}
