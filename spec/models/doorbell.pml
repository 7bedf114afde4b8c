/* The doorbell's sleep and wake (spec/wire-format.md §3.1 ringing, §3.2 waiting): no lost wake-up.
 * A waker publishes news (a store of `news`, e.g. a tail) and rings; a sleeper waits for the news.
 * The futex is modelled exactly: FUTEX_WAIT(seq, s) returns at once when seq != s, else sleeps until
 * a FUTEX_WAKE; no timeout is modelled (the 200 ms bound of §3.2 must never be what delivers news).
 * Checked: the sleeper always returns having seen the news, i.e. no execution ends with it asleep
 * (spin reports that as an invalid end state) and the final assertion holds.
 *
 * Deliberately broken variants (each must fail; `cargo ringctl test-matrix` checks that they do):
 *   -DBROKEN_WAKER_NO_FENCE     the waker skips the SeqCst fence of §3.1 step 1
 *   -DBROKEN_SLEEPER_RELAXED    the sleeper's `sleepers` increment (§3.2 step 2) is a plain store
 * Both break the Dekker pair: the sleeper misses the news and the waker misses the sleeper. */

#include "memory.pml"

byte news, sleepers, seq;
bool asleep;
WORD(news, w);
WORD(sleepers, s);

#define DRAIN_ALL_w DRAIN(news, w)
#define DRAIN_ALL_s DRAIN(sleepers, s)

active proctype waker() {
  byte n;
  STORE(news, w, 1);  /* the Release store that publishes the news */
#ifndef BROKEN_WAKER_NO_FENCE
  DRAIN_ALL_w;        /* §3.1 step 1: SeqCst fence */
#endif
  n = sleepers;       /* step 2: load sleepers (Relaxed) */
  if
  :: n > 0 ->
     DRAIN_ALL_w;
     atomic { seq++; asleep = false }  /* step 3: fetch_add(seq), FUTEX_WAKE */
  :: else -> skip     /* no system call */
  fi
}

active proctype sleeper() {
  byte s, cond, left;
  do
  :: s = seq;                          /* §3.2 step 1 */
#ifdef BROKEN_SLEEPER_RELAXED
     LOAD(sleepers, s, left);
     STORE(sleepers, s, left + 1);     /* step 2 as a plain store */
#else
     DRAIN_ALL_s;
     atomic { sleepers++ }             /* step 2: fetch_add, SeqCst */
#endif
     cond = news;                      /* step 3: the condition */
     if
     :: cond == 0 ->
        atomic { if :: seq == s -> asleep = true :: else -> skip fi };  /* step 4: FUTEX_WAIT */
        !asleep
     :: else -> skip
     fi;
     DRAIN_ALL_s;
     atomic { sleepers-- };            /* step 5 */
     cond = news;                      /* step 6 */
     if
     :: cond != 0 -> break
     :: else -> skip
     fi
  od;
  assert(news == 1)
}

active proctype flusher() {
end:
  do
  :: FLUSH(news, w)
  :: FLUSH(sleepers, s)
  od
}
