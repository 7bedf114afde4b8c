/* Sealed access keys (spec/bootstrap.md §5.5) and the primitives they rest on: SHA-256 (FIPS 180-4),
 * HMAC-SHA256 (RFC 2104) and X25519 (RFC 7748 §5), written from those documents. Internal to the
 * library; nothing here takes a lock or allocates, and X25519 has no branch or memory index that
 * depends on a secret. */
#ifndef IR_SEAL_H
#define IR_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define IR_SHA256_LEN 32
/* Private keys, public keys, shared and session secrets are all 32 bytes. */
#define IR_X25519_LEN 32

/* ---- SHA-256 and HMAC-SHA256 ---- */

typedef struct ir_sha256 {
  uint32_t h[8];
  /* Bytes hashed so far (the message length the padding ends with). */
  uint64_t total;
  uint8_t block[64];
  /* Bytes waiting in `block`, always < 64 between calls. */
  size_t used;
} ir_sha256_t;

void ir_sha256_init(ir_sha256_t *ctx);
void ir_sha256_update(ir_sha256_t *ctx, const void *data, size_t len);
/* Writes the digest and wipes the context. */
void ir_sha256_final(ir_sha256_t *ctx, uint8_t out[IR_SHA256_LEN]);
/* SHA-256 of one buffer. */
void ir_sha256(const void *data, size_t len, uint8_t out[IR_SHA256_LEN]);

typedef struct ir_hmac {
  ir_sha256_t inner;
  /* The key XOR opad, hashed after the inner digest. */
  uint8_t outer_key[64];
} ir_hmac_t;

void ir_hmac_init(ir_hmac_t *ctx, const uint8_t *key, size_t key_len);
void ir_hmac_update(ir_hmac_t *ctx, const void *data, size_t len);
/* Writes the tag and wipes the context. */
void ir_hmac_final(ir_hmac_t *ctx, uint8_t out[IR_SHA256_LEN]);
/* HMAC-SHA256 of one message. */
void ir_hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len, uint8_t out[IR_SHA256_LEN]);

/* ---- X25519 ---- */

/* out = X25519(scalar, u): the scalar clamped, the top bit of u masked (RFC 7748 §5). `out` may be
 * all zero (u of small order); callers check. */
void ir_x25519(uint8_t out[IR_X25519_LEN], const uint8_t scalar[IR_X25519_LEN], const uint8_t u[IR_X25519_LEN]);

/* The public key of a private key: X25519(private_key, 9). */
void ir_x25519_public(uint8_t public_key[IR_X25519_LEN], const uint8_t private_key[IR_X25519_LEN]);

/* ---- Sealing (bootstrap.md §5.5) ---- */

/* A fresh key pair: 32 bytes from getrandom(2) and their public key. Io when the kernel gives no
 * random bytes. */
ir_error_e ir_seal_keypair(uint8_t private_key[IR_X25519_LEN], uint8_t public_key[IR_X25519_LEN]);

/* shared = X25519(own_private, peer_public). False, with `shared` zeroed, when `peer_public` is not
 * 32 bytes or the result is all zero (the peer sent a point of small order); the check is made
 * without a branch on the secret's bytes. */
bool ir_seal_shared(uint8_t shared[IR_X25519_LEN], const uint8_t own_private[IR_X25519_LEN], const uint8_t *peer_public,
                    size_t peer_len);

/* session = HMAC-SHA256(shared, "impulse-ring session v1" || app_public || broker_public). */
void ir_seal_session(uint8_t session[IR_X25519_LEN], const uint8_t shared[IR_X25519_LEN],
                     const uint8_t app_public[IR_X25519_LEN], const uint8_t broker_public[IR_X25519_LEN]);

/* out = in XOR the keystream of (session, request_id), `len` bytes; `out` may be `in`. Sealing and
 * unsealing are the same operation. */
void ir_seal(const uint8_t session[IR_X25519_LEN], int64_t request_id, const uint8_t *in, uint8_t *out, size_t len);

/* Overwrites `len` bytes with zeros in a way the compiler may not drop as a dead store. */
void ir_wipe(void *ptr, size_t len);

#endif /* IR_SEAL_H */
