/* The caller side of calls (caller.c): links to functions, pending calls and their completion. It
 * depends on the session only; serve.c runs the callbacks of ir_call_async calls. */
#ifndef IR_CALLER_H
#define IR_CALLER_H

#include "session.h"

/* Whether a response, a dead provider or a finished asynchronous call waits to be handled. Called
 * with conn->lock held. */
bool ir_caller_has_work(ir_conn_t *conn);

/* Runs the callbacks of finished ir_call_async calls, in completion order, and frees them; true when
 * it ran any. Called with serve_lock held (never conn->lock: callbacks are user code). */
bool ir_caller_run_callbacks(ir_conn_t *conn);

#endif /* IR_CALLER_H */
