/* The provider side of calls (provider.c): exposed functions, the links callers open to them, and
 * answering one request with the user's handler. It depends on the session only; serve.c drives it. */
#ifndef IR_PROVIDER_H
#define IR_PROVIDER_H

#include "session.h"

/* Whether a request waits on a link to a function still exposed. Called with conn->lock held. */
bool ir_provider_has_work(ir_conn_t *conn);

/* Answers one waiting request (links take turns); false when none waits. Called with serve_lock
 * held, never conn->lock: the handler is user code. */
bool ir_provider_serve_one(ir_conn_t *conn);

#endif /* IR_PROVIDER_H */
