/* Error plumbing: the thread-local message that internal layers fail with, and the one mapping from a
 * wire code to ir_error_e. The description and name of every shared error code are generated into
 * error_codes.c from rust/core/src/error_code.rs. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

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
