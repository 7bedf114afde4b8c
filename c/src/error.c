/* Error plumbing: the description and name of every shared error code (the same text as
 * rust/core/src/error_code.rs), and the thread-local message that internal layers fail with. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static const char *const DESCRIPTIONS[] = {
    "success",
    "no broker is running",
    "the broker is gone",
    "unknown channel",
    "unknown function",
    "wrong access key",
    "schema mismatch",
    "invalid schema",
    "timed out",
    "the peer is gone",
    "payload too large",
    "closed",
    "the ring is full",
    "name already taken",
    "limit reached",
    "shared memory is corrupt",
    "version mismatch",
    "the handler failed",
    "invalid argument",
    "payload does not decode with its schema",
    "a broker is already running in this namespace",
    "i/o error",
    "the subscriber lagged and missed messages",
    "control protocol violation",
};

static const char *const NAMES[] = {
    "Ok",
    "NoBroker",
    "BrokerGone",
    "UnknownChannel",
    "UnknownFunction",
    "WrongKey",
    "SchemaMismatch",
    "InvalidSchema",
    "Timeout",
    "PeerGone",
    "TooLarge",
    "Closed",
    "WouldBlock",
    "NameTaken",
    "LimitReached",
    "Corrupt",
    "VersionMismatch",
    "HandlerError",
    "InvalidArgument",
    "Decode",
    "AlreadyRunning",
    "Io",
    "Lagged",
    "Protocol",
};

_Static_assert(sizeof(DESCRIPTIONS) / sizeof(DESCRIPTIONS[0]) == IR_ERR_PROTOCOL + 1, "a description per code");
_Static_assert(sizeof(NAMES) / sizeof(NAMES[0]) == IR_ERR_PROTOCOL + 1, "a name per code");

const char *ir_strerror(ir_error_e code) {
  if ((int)code < 0 || (int)code > IR_ERR_PROTOCOL) {
    return "unknown error";
  }
  return DESCRIPTIONS[code];
}

const char *ir_error_name(ir_error_e code) {
  if ((int)code < 0 || (int)code > IR_ERR_PROTOCOL) {
    return "Unknown";
  }
  return NAMES[code];
}

ir_error_e ir_error_from_wire(int32_t code) {
  return code > IR_OK && code <= IR_ERR_PROTOCOL ? (ir_error_e)code : IR_ERR_PROTOCOL;
}

static _Thread_local char thread_error[1024];

void ir_set_error(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  (void)vsnprintf(thread_error, sizeof thread_error, fmt, args);
  va_end(args);
}

const char *ir_thread_error(void) {
  return thread_error;
}
