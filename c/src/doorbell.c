/* Doorbells and wait strategies: how a consumer sleeps until a producer has news, without any
 * system call while both are active. A waker pays for FUTEX_WAKE only when the sleeper count says
 * someone sleeps; the SeqCst fence and increment below form the Dekker pair that makes this safe
 * (the same protocol as rust/core/src/doorbell.rs). */
#include "internal.h"

void ir_wait_default(ir_wait_t *wait) {
  wait->strategy = IR_WAIT_ADAPTIVE;
  wait->spin_ns = 50LL * 1000;
  wait->yield_ns = 50LL * 1000;
}

ir_error_e ir_wait_set(ir_wait_t *wait, ir_wait_e strategy, uint32_t spin_us, uint32_t yield_us) {
  if (strategy != IR_WAIT_ADAPTIVE && strategy != IR_WAIT_BUSY_SPIN && strategy != IR_WAIT_BLOCKING) {
    return ir_fail(IR_ERR_INVALID_ARGUMENT, "unknown wait strategy %d", (int)strategy);
  }
  ir_wait_t next;
  ir_wait_default(&next);
  next.strategy = strategy;
  if (spin_us != 0) {
    next.spin_ns = (int64_t)spin_us * 1000;
  }
  if (yield_us != 0) {
    next.yield_ns = (int64_t)yield_us * 1000;
  }
  *wait = next;
  return IR_OK;
}

void ir_bell_ring(ir_doorbell_t *bell) {
  if (bell == NULL) {
    return;
  }
  /* SYNC: doorbell sleep check — orders the caller's publishing store before the sleeper count load;
   * pairs with the SeqCst increment and fence in ir_bell_wait (a Dekker pair: either the sleeper sees
   * the news or we see the sleeper). */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&bell->sleepers, memory_order_relaxed) != 0) {
    atomic_fetch_add_explicit(&bell->seq, 1, memory_order_release);
    ir_futex_wake_all(&bell->seq);
  }
}

/* A wait that ran out still gives `idle` its turn: a caller that polls with waits shorter than the
 * idle period (say 10 ms at a time) would otherwise never check that the broker lives (bootstrap.md
 * §8.2). `idle` limits itself to one real check per IR_MAX_SLEEP_NS. */
static bool timed_out(ir_check_fn check, void *ctx, ir_idle_fn idle, void *idle_ctx) {
  if (idle == NULL) {
    return false;
  }
  idle(idle_ctx);
  return check(ctx);
}

bool ir_bell_wait(ir_doorbell_t *bell, const ir_wait_t *wait, int64_t deadline_ns, ir_check_fn check, void *ctx,
                  ir_idle_fn idle, void *idle_ctx) {
  if (check(ctx)) {
    return true;
  }
  int64_t start = ir_now_ns();
  int64_t last_idle = start;
  int64_t spin = 0;
  int64_t yield_for = 0;
  switch (wait->strategy) {
    case IR_WAIT_BUSY_SPIN:
      spin = INT64_MAX / 4;
      break;
    case IR_WAIT_ADAPTIVE:
      spin = wait->spin_ns;
      yield_for = wait->yield_ns;
      break;
    case IR_WAIT_BLOCKING:
      break;
  }
  uint32_t rounds = 0;
  /* Blocking goes to sleep at once; the others spin (and yield) first. */
  bool polling = wait->strategy != IR_WAIT_BLOCKING;
  while (polling) {
    rounds++;
    if (check(ctx)) {
      return true;
    }
    /* Reading the clock costs more than a check: do it every 64 rounds. */
    if (rounds % 64 != 0) {
      ir_cpu_relax();
      continue;
    }
    int64_t now = ir_now_ns();
    if (deadline_ns >= 0 && now >= deadline_ns) {
      return timed_out(check, ctx, idle, idle_ctx);
    }
    if (idle != NULL && now - last_idle >= IR_MAX_SLEEP_NS) {
      last_idle = now;
      idle(idle_ctx);
    }
    int64_t waited = now - start;
    if (waited < spin) {
      ir_cpu_relax();
    } else if (waited < spin + yield_for) {
      ir_yield();
    } else {
      polling = false;
    }
  }
  for (;;) {
    uint32_t seq = atomic_load_explicit(&bell->seq, memory_order_acquire);
    /* SYNC: doorbell sleep check — pairs with the fence in ir_bell_ring. */
    atomic_fetch_add_explicit(&bell->sleepers, 1, memory_order_seq_cst);
    /* The RMW alone does not keep the check's Acquire loads after it on every architecture (arm64
     * LDAPR may pass it): the fence does. */
    atomic_thread_fence(memory_order_seq_cst);
    bool found = check(ctx);
    if (!found) {
      int64_t timeout = IR_MAX_SLEEP_NS;
      if (deadline_ns >= 0) {
        int64_t left = deadline_ns - ir_now_ns();
        timeout = left < timeout ? left : timeout;
      }
      if (timeout > 0) {
        ir_futex_wait(&bell->seq, seq, timeout);
      }
    }
    atomic_fetch_sub_explicit(&bell->sleepers, 1, memory_order_seq_cst);
    if (found || check(ctx)) {
      return true;
    }
    int64_t now = ir_now_ns();
    if (idle != NULL && now - last_idle >= IR_MAX_SLEEP_NS / 2) {
      last_idle = now;
      idle(idle_ctx);
      if (check(ctx)) {
        return true;
      }
    }
    if (deadline_ns >= 0 && now >= deadline_ns) {
      return timed_out(check, ctx, idle, idle_ctx);
    }
  }
}
