/* impulse_ring.h: the public API of Ring's C connector, a native C11 + POSIX implementation of the
 * wire protocol in spec/ (not a binding to the Rust core). Apps publish and subscribe to channels and
 * expose and call functions; payloads are Avro datums (impulse_ring_avro.h helps encode them).
 *
 * Conventions, for every function below:
 * - Handles are opaque and passed by pointer; no struct crosses the boundary by value, so the library
 *   can be loaded through FFIs that only speak pointers and integers (Bun FFI).
 * - Functions that can fail return an ir_error_e: IR_OK (0) or one of the shared error codes, the
 *   same numbers as every other connector. After a failure ir_last_error(conn) says what went wrong
 *   in a sentence (a schema mismatch names both fingerprints, NoBroker names the namespace).
 * - Timeouts are in milliseconds: IR_FOREVER (-1) waits without limit, 0 does not wait at all.
 * - Strings are NUL-terminated UTF-8 and only borrowed: the library copies what it keeps.
 * - Threads: a connection may be shared by threads; each publisher, subscriber and call handle must be
 *   used by one thread at a time. Function handlers and call callbacks run only inside ir_serve and
 *   ir_poll_one, on the thread that called them.
 * - The connection is poll-driven: there is no background thread. Blocking calls make progress on
 *   their own; an app that exposes functions must call ir_serve or ir_poll_one so that it notices new
 *   callers (LinkOpened events) and answers them.
 */
#ifndef IMPULSE_RING_H
#define IMPULSE_RING_H

#include <stddef.h>
#include <stdint.h>

#include "impulse_ring_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the public functions: the shared library exports these and nothing else. */
#ifndef IR_API
#define IR_API __attribute__((visibility("default")))
#endif

/* Version of this C library: the release's, the same in every package (`cargo ringctl version X.Y.Z` sets it).
 * The wire version is another thing: IR_SPEC_VERSION in impulse_ring_wire.h. */
#define IR_VERSION_MAJOR 0
#define IR_VERSION_MINOR 1
#define IR_VERSION_PATCH 0

/* Wait without limit. */
#define IR_FOREVER (-1)

/* The error codes shared by every connector (rust/core/src/error_code.rs); IR_OK is success. Codes
 * are stable: never renumbered, only appended. */
typedef enum ir_error_e {
  IR_OK = 0,
  IR_ERR_NO_BROKER = 1,         /* no broker is running in the namespace looked in */
  IR_ERR_BROKER_GONE = 2,       /* the broker crashed or shut down while connected */
  IR_ERR_UNKNOWN_CHANNEL = 3,   /* no channel has that name */
  IR_ERR_UNKNOWN_FUNCTION = 4,  /* no function has that name */
  IR_ERR_WRONG_KEY = 5,         /* the access key does not match the owner's */
  IR_ERR_SCHEMA_MISMATCH = 6,   /* the schema's fingerprint differs from the registered one */
  IR_ERR_INVALID_SCHEMA = 7,    /* the schema is not JSON or not a valid Avro schema */
  IR_ERR_TIMEOUT = 8,           /* nothing happened within the timeout (also: no message yet) */
  IR_ERR_PEER_GONE = 9,         /* the other side of a call died or withdrew the function */
  IR_ERR_TOO_LARGE = 10,        /* the payload (or the caller's buffer) does not fit */
  IR_ERR_CLOSED = 11,           /* the channel, function or connection is closed */
  IR_ERR_WOULD_BLOCK = 12,      /* the ring is full and the call may not wait */
  IR_ERR_NAME_TAKEN = 13,       /* a channel or function of that name exists */
  IR_ERR_LIMIT_REACHED = 14,    /* app slots, subscribers or links are exhausted */
  IR_ERR_CORRUPT = 15,          /* shared memory holds values that break an invariant */
  IR_ERR_VERSION_MISMATCH = 16, /* a segment speaks another version of the wire format */
  IR_ERR_HANDLER = 17,          /* the function's handler reported an error */
  IR_ERR_INVALID_ARGUMENT = 18, /* an argument is NULL, out of range or malformed */
  IR_ERR_DECODE = 19,           /* a payload does not decode with its schema */
  IR_ERR_ALREADY_RUNNING = 20,  /* a broker already runs in this namespace */
  IR_ERR_IO = 21,               /* an operating-system call failed */
  IR_ERR_LAGGED = 22,           /* a lossy subscriber fell behind and missed messages */
  IR_ERR_PROTOCOL = 23          /* the peer broke the control protocol */
} ir_error_e;

/* How an endpoint waits for data, space or a reply. */
typedef enum ir_wait_e {
  IR_WAIT_ADAPTIVE = 0,  /* spin, then yield, then sleep on the futex (the default) */
  IR_WAIT_BUSY_SPIN = 1, /* spin until the deadline: lowest latency, one core busy */
  IR_WAIT_BLOCKING = 2   /* sleep on the futex at once */
} ir_wait_e;

/* Flags of ir_publish_channel. */
typedef enum ir_channel_flags_e {
  IR_CHANNEL_BLOCK = 0, /* default overflow policy: nothing is lost, the publisher waits */
  IR_CHANNEL_LOSSY = 1  /* the publisher overwrites; a lagging subscriber gets IR_ERR_LAGGED */
} ir_channel_flags_e;

typedef struct ir_conn ir_conn_t;
typedef struct ir_publisher ir_publisher_t;
typedef struct ir_subscriber ir_subscriber_t;
typedef struct ir_function ir_function_t;
typedef struct ir_call ir_call_t;
typedef struct ir_response ir_response_t;
typedef struct ir_listing ir_listing_t;

/* ---- Errors ---------------------------------------------------------------------------------- */

/* A short lower-case description of a code ("schema mismatch"), the same text in every connector.
 * Never NULL; unknown codes give "unknown error". The string is static. */
IR_API const char *ir_strerror(ir_error_e code);

/* The code's name as every connector spells it ("SchemaMismatch"); "Ok" for IR_OK. Static string. */
IR_API const char *ir_error_name(ir_error_e code);

/* The message of the last failure on `conn` (by any thread, through any of its handles), or with
 * conn == NULL the calling thread's last failure (the only way to learn why ir_connect failed).
 * Returns "" when nothing failed. The text is copied into thread-local storage: it stays valid until
 * the calling thread's next ir_last_error call. */
IR_API const char *ir_last_error(const ir_conn_t *conn);

/* ---- Connections ----------------------------------------------------------------------------- */

/* Connects as `app_name` (1 to 128 bytes, shown by `ring ls`) to the broker of the namespace in
 * IMPULSE_RING_NS (default "impulse"). On success *out owns the connection: release it with
 * ir_close. Blocks until the broker registers the app (at most 10 s). Each connection makes a fresh
 * key pair that seals the access keys it presents (spec/bootstrap.md §5.5); keys stay C strings here.
 * Errors: NoBroker (no live broker in the namespace; the message names it), LimitReached (all app
 * slots taken), InvalidArgument, VersionMismatch, Corrupt, Timeout, Protocol (the broker's public key
 * cannot make a session: not 32 bytes, or of small order), Io (also: no random bytes from the
 * kernel). */
IR_API ir_error_e ir_connect(const char *app_name, ir_conn_t **out);

/* Like ir_connect, in the namespace `ns` (NULL reads IMPULSE_RING_NS). A namespace is 1 to 64
 * characters of A-Z, a-z, 0-9, '_' and '-'. */
IR_API ir_error_e ir_connect_ns(const char *ns, const char *app_name, ir_conn_t **out);

/* Leaves the bus: the broker closes the app's channels (subscribers see Closed), withdraws its
 * functions (callers see PeerGone) and frees its slot. Does not block on the broker. Handles still
 * open stay valid to close (their operations fail with Closed); the memory goes with the last one.
 * No other thread may be inside a function on `conn` meanwhile: stop ir_serve (ir_serve_stop, then
 * join its thread) first. NULL is ignored. */
IR_API void ir_close(ir_conn_t *conn);

/* The namespace of the connection. Valid as long as the connection. */
IR_API const char *ir_namespace(const ir_conn_t *conn);

/* The app's id on the broker (its slot index). */
IR_API uint32_t ir_app_id(const ir_conn_t *conn);

/* 1 once the connection has noticed that the broker is gone (every request then fails with
 * BrokerGone), else 0. Checks the broker's process (pid and start time) at most every 200 ms. */
IR_API int ir_broker_gone(ir_conn_t *conn);

/* Sets how the connection's blocking calls (control requests, calls, ir_serve) wait. `spin_us` and
 * `yield_us` tune IR_WAIT_ADAPTIVE (defaults 50 and 50 µs; 0 keeps the default). Returns
 * InvalidArgument for an unknown strategy. New publishers and subscribers inherit the setting. */
IR_API ir_error_e ir_set_wait(ir_conn_t *conn, ir_wait_e strategy, uint32_t spin_us, uint32_t yield_us);

/* ---- Listing the bus ------------------------------------------------------------------------- */

/* Asks the broker what is on the bus: every registered app, every channel and every function, as the
 * broker sees them at that moment (access keys are never listed). On success *out owns a snapshot:
 * read it with the accessors below and release it with ir_listing_free; it does not change afterwards
 * and may outlive the connection. Blocks for the broker's reply, at most the control timeout (10 s).
 * Errors: BrokerGone, Closed (the connection is closed), Timeout (no reply in time; the broker of this
 * version also drops a listing too large for the control ring, so a very large bus gives Timeout),
 * Protocol, InvalidArgument (conn or out NULL), Io (out of memory). On failure *out is NULL. */
IR_API ir_error_e ir_list(ir_conn_t *conn, ir_listing_t **out);

/* Frees a listing and every string its accessors returned. NULL is ignored. */
IR_API void ir_listing_free(ir_listing_t *listing);

/* The accessors below take an index `i` from 0 to the matching count - 1 and never fail: a NULL
 * listing or an index out of range gives 0 (strings: NULL). Strings are NUL-terminated UTF-8 owned by
 * the listing, valid until ir_listing_free. Entries come in the broker's order. */

/* How many apps are registered (this one included). */
IR_API size_t ir_listing_app_count(const ir_listing_t *listing);
/* The app's id on the broker (its slot index, as ir_app_id returns it). */
IR_API uint32_t ir_listing_app_id(const ir_listing_t *listing, size_t i);
/* The name the app connected with. */
IR_API const char *ir_listing_app_name(const ir_listing_t *listing, size_t i);
/* The app's process id. */
IR_API int64_t ir_listing_app_pid(const ir_listing_t *listing, size_t i);

/* How many channels are published. */
IR_API size_t ir_listing_channel_count(const ir_listing_t *listing);
/* The broker's id of the channel (as ir_publisher_channel_id returns it). */
IR_API uint64_t ir_listing_channel_id(const ir_listing_t *listing, size_t i);
IR_API const char *ir_listing_channel_name(const ir_listing_t *listing, size_t i);
/* The app id of the channel's publisher. */
IR_API uint32_t ir_listing_channel_owner(const ir_listing_t *listing, size_t i);
/* CRC-64-AVRO fingerprint of the channel's schema (as ir_publisher_fingerprint returns it). */
IR_API uint64_t ir_listing_channel_fingerprint(const ir_listing_t *listing, size_t i);
/* The ring size in bytes. */
IR_API uint64_t ir_listing_channel_capacity(const ir_listing_t *listing, size_t i);
/* 1 for a lossy channel, 0 for one that blocks. */
IR_API int ir_listing_channel_lossy(const ir_listing_t *listing, size_t i);
/* How many subscribers have joined the channel. */
IR_API uint32_t ir_listing_channel_subscribers(const ir_listing_t *listing, size_t i);
/* How many messages have been published on the channel. */
IR_API uint64_t ir_listing_channel_published(const ir_listing_t *listing, size_t i);

/* How many functions are exposed. */
IR_API size_t ir_listing_function_count(const ir_listing_t *listing);
/* The broker's id of the function (as ir_function_id returns it). */
IR_API uint64_t ir_listing_function_id(const ir_listing_t *listing, size_t i);
IR_API const char *ir_listing_function_name(const ir_listing_t *listing, size_t i);
/* The app id of the function's provider. */
IR_API uint32_t ir_listing_function_owner(const ir_listing_t *listing, size_t i);
/* CRC-64-AVRO fingerprints of the function's request and response schemas. */
IR_API uint64_t ir_listing_function_request_fingerprint(const ir_listing_t *listing, size_t i);
IR_API uint64_t ir_listing_function_response_fingerprint(const ir_listing_t *listing, size_t i);

/* ---- Channels: publishing -------------------------------------------------------------------- */

/* Publishes the channel `name` whose messages are Avro datums of `schema_json`. Subscribers must
 * present the same schema (the broker compares fingerprints) and, if `key` is not NULL, that key.
 * `capacity` is the ring size in bytes (a power of two from 4096 to 1 GiB; 0 takes the broker's
 * default, 1 MiB); `flags` is IR_CHANNEL_BLOCK or IR_CHANNEL_LOSSY. On success *out owns the
 * publisher; close it with ir_publisher_close. Blocks for the broker's reply.
 * Errors: NameTaken, InvalidSchema, InvalidArgument, BrokerGone, Closed, Timeout, Corrupt, Io. */
IR_API ir_error_e ir_publish_channel(ir_conn_t *conn, const char *name, const char *schema_json, const char *key,
                                     uint64_t capacity, uint32_t flags, ir_publisher_t **out);

/* Publishes one message: `datum` is an Avro datum of the channel's schema without any header (the
 * connector writes the Single Object Encoding header). The bytes are copied into shared memory.
 * Under the block policy, waits up to `timeout_ms` while a subscriber is a whole ring behind.
 * Errors: TooLarge (datum longer than ir_publisher_max_datum), Timeout, Closed, Corrupt,
 * InvalidArgument. */
IR_API ir_error_e ir_publish(ir_publisher_t *pub, const void *datum, size_t len, int64_t timeout_ms);

/* Like ir_publish but never waits: WouldBlock when the ring is full. */
IR_API ir_error_e ir_try_publish(ir_publisher_t *pub, const void *datum, size_t len);

/* The largest datum the channel accepts (capacity / 2 - 16 - 10). */
IR_API size_t ir_publisher_max_datum(const ir_publisher_t *pub);

/* CRC-64-AVRO fingerprint of the channel's schema, as the broker computed it. */
IR_API uint64_t ir_publisher_fingerprint(const ir_publisher_t *pub);

/* The broker's id of the channel. */
IR_API uint64_t ir_publisher_channel_id(const ir_publisher_t *pub);

/* How many subscribers have joined the channel, read from shared memory without asking the broker:
 * a publisher can wait for its audience before it starts, since a joined subscriber sees every
 * message published after it joined. */
IR_API uint32_t ir_publisher_subscribers(const ir_publisher_t *pub);

/* Sets how ir_publish waits for space (see ir_set_wait). */
IR_API ir_error_e ir_publisher_set_wait(ir_publisher_t *pub, ir_wait_e strategy, uint32_t spin_us, uint32_t yield_us);

/* Closes the channel: subscribers read what is left, then get Closed. Frees the handle. Does not
 * block on the broker. NULL is ignored. */
IR_API void ir_publisher_close(ir_publisher_t *pub);

/* ---- Channels: subscribing ------------------------------------------------------------------- */

/* Subscribes to the channel `name`, presenting `key` (NULL for none) and the schema the app reads
 * with. The subscriber sees every message published after this call. On success *out owns the
 * subscriber; close it with ir_subscriber_close. Blocks for the broker's reply.
 * Errors: UnknownChannel, WrongKey, SchemaMismatch (the message shows both fingerprints),
 * InvalidSchema, LimitReached, BrokerGone, Closed, Timeout, Corrupt, Io. */
IR_API ir_error_e ir_subscribe(ir_conn_t *conn, const char *name, const char *key, const char *schema_json,
                               ir_subscriber_t **out);

/* Waits up to `timeout_ms` for the next message and copies its datum (without the Single Object
 * Encoding header) into `buf` of `cap` bytes; *len receives its length. With timeout_ms == 0 it
 * does not wait. Returns IR_OK with a message, Timeout when none arrived (nothing is consumed), or:
 * TooLarge when the datum is longer than `cap` (nothing consumed; *len says how much room it needs),
 * Closed once the channel is closed and drained, Lagged (lossy channels) when messages were lost
 * before the next one (ir_subscriber_missed says how many; receive again to continue), BrokerGone,
 * Decode (a payload of another schema; it is skipped), Corrupt. */
IR_API ir_error_e ir_receive(ir_subscriber_t *sub, void *buf, size_t cap, size_t *len, int64_t timeout_ms);

/* Like ir_receive without a copy: *datum points at the message in place (in shared memory, or in a
 * private copy on a lossy channel). The view stays valid until the next call on this subscriber
 * (receive, release or close); until then the publisher may not overwrite it, so release it soon. */
IR_API ir_error_e ir_receive_view(ir_subscriber_t *sub, const uint8_t **datum, size_t *len, int64_t timeout_ms);

/* Gives back the message of the last ir_receive_view before the next receive. Optional. */
IR_API void ir_subscriber_release(ir_subscriber_t *sub);

/* How many messages the last Lagged result reported lost. */
IR_API uint64_t ir_subscriber_missed(const ir_subscriber_t *sub);

/* CRC-64-AVRO fingerprint of the channel's schema. */
IR_API uint64_t ir_subscriber_fingerprint(const ir_subscriber_t *sub);

/* Sets how ir_receive waits (see ir_set_wait). */
IR_API ir_error_e ir_subscriber_set_wait(ir_subscriber_t *sub, ir_wait_e strategy, uint32_t spin_us, uint32_t yield_us);

/* Leaves the channel and frees the handle (and any view). NULL is ignored. */
IR_API void ir_subscriber_close(ir_subscriber_t *sub);

/* ---- Functions: providing -------------------------------------------------------------------- */

/* A function body over raw Avro datums. `request` is the request datum (borrowed for the duration of
 * the call). Write the response datum with ir_response_write and return IR_OK; or return any other
 * code, optionally after ir_response_fail, and the caller gets IR_ERR_HANDLER with the message. The
 * handler runs inside ir_serve or ir_poll_one; it may use the library, including calls. */
typedef ir_error_e (*ir_handler_fn)(void *user, const uint8_t *request, size_t request_len, ir_response_t *response);

/* Appends `len` bytes to the response datum (copied). Returns TooLarge when out of memory. */
IR_API ir_error_e ir_response_write(ir_response_t *response, const void *data, size_t len);

/* Sets the error message the caller will see (copied; at most 1024 bytes are kept). */
IR_API void ir_response_fail(ir_response_t *response, const char *message);

/* Exposes the function `name` with its request and response schemas; callers must present both
 * (and `key`, unless NULL). `handler` is called with `user` for each request, from ir_serve or
 * ir_poll_one. On success *out owns the function; withdraw it with ir_function_withdraw.
 * Errors: NameTaken, InvalidSchema, InvalidArgument, BrokerGone, Closed, Timeout. */
IR_API ir_error_e ir_expose_function(ir_conn_t *conn, const char *name, const char *request_schema,
                                     const char *response_schema, const char *key, ir_handler_fn handler, void *user,
                                     ir_function_t **out);

/* The broker's id of the function. */
IR_API uint64_t ir_function_id(const ir_function_t *fn);

/* Withdraws the function (pending callers get PeerGone) and frees the handle. NULL is ignored. */
IR_API void ir_function_withdraw(ir_function_t *fn);

/* Serves the connection until `timeout_ms` passes, ir_serve_stop is called or the broker goes:
 * opens links of new callers, answers requests with their handlers, completes calls and runs call
 * callbacks. Returns IR_OK on timeout or stop, BrokerGone, Closed or InvalidArgument. One thread
 * serves at a time; a second ir_serve waits for the first. */
IR_API ir_error_e ir_serve(ir_conn_t *conn, int64_t timeout_ms);

/* Makes a running ir_serve return soon. Safe from any thread and from signal handlers. */
IR_API void ir_serve_stop(ir_conn_t *conn);

/* One step for an existing event loop: waits up to `timeout_ms` (0: not at all) for work, then
 * handles control events, completes calls (running their callbacks) and answers at most one request.
 * Returns IR_OK when it did something, Timeout when there was nothing to do, or BrokerGone, Closed. */
IR_API ir_error_e ir_poll_one(ir_conn_t *conn, int64_t timeout_ms);

/* ---- Functions: calling ---------------------------------------------------------------------- */

/* Calls `name` with the request datum `request` (no header) and waits up to `timeout_ms` for the
 * response. On IR_OK, *response is a malloc'd copy of the response datum (free it with ir_free) and
 * *response_len its length. The first call to a function asks the broker for a link (presenting the
 * schemas and `key`); later calls reuse it.
 * Errors: UnknownFunction, WrongKey, SchemaMismatch (request or response; both fingerprints in the
 * message), Handler (the provider's handler failed; its message), PeerGone (the provider died or
 * withdrew the function), Timeout, TooLarge, BrokerGone, Decode, Corrupt. */
IR_API ir_error_e ir_call(ir_conn_t *conn, const char *name, const char *key, const char *request_schema,
                          const char *response_schema, const void *request, size_t request_len, uint8_t **response,
                          size_t *response_len, int64_t timeout_ms);

/* Starts a call and returns without waiting for the response: the request is written before this
 * returns (or an error is). *out owns the call: poll it with ir_call_poll, then read it with
 * ir_call_result, and free it with ir_call_free. The call fails with Timeout once `timeout_ms`
 * passes. Errors as for ir_call, for what happens before the request is written. */
IR_API ir_error_e ir_call_start(ir_conn_t *conn, const char *name, const char *key, const char *request_schema,
                                const char *response_schema, const void *request, size_t request_len,
                                int64_t timeout_ms, ir_call_t **out);

/* Completion callback of ir_call_async: `status` is IR_OK with the response datum (borrowed until
 * the callback returns), or the error with its message (else NULL). */
typedef void (*ir_call_cb)(void *user, ir_error_e status, const uint8_t *response, size_t response_len,
                           const char *message);

/* Starts a call whose completion runs `callback` (once, from ir_serve or ir_poll_one on this
 * connection, never from inside this function; a call still pending when the connection is freed is
 * dropped without its callback). The library owns the call. Returns the error without calling
 * `callback` when the request could not be written. */
IR_API ir_error_e ir_call_async(ir_conn_t *conn, const char *name, const char *key, const char *request_schema,
                                const char *response_schema, const void *request, size_t request_len,
                                int64_t timeout_ms, ir_call_cb callback, void *user);

/* Waits up to `timeout_ms` (0: not at all) for the call to complete. IR_OK once it has completed
 * (successfully or not: see ir_call_result), Timeout while it is still pending. */
IR_API ir_error_e ir_call_poll(ir_call_t *call, int64_t timeout_ms);

/* The outcome of a completed call: IR_OK with *response pointing at the response datum (owned by the
 * call, valid until ir_call_free), or the call's error (its message via ir_call_error_message).
 * Timeout while the call is still pending. `response` and `response_len` may be NULL. */
IR_API ir_error_e ir_call_result(const ir_call_t *call, const uint8_t **response, size_t *response_len);

/* The error message of a failed call, "" otherwise. Valid until ir_call_free. */
IR_API const char *ir_call_error_message(const ir_call_t *call);

/* Frees a call; a pending call is abandoned (its response is dropped when it arrives). NULL ignored. */
IR_API void ir_call_free(ir_call_t *call);

/* Frees memory the library returned (ir_call's response). NULL is ignored. */
IR_API void ir_free(void *ptr);

#ifdef __cplusplus
}
#endif

#endif /* IMPULSE_RING_H */
