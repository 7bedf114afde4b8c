/* The channel ring (spec/wire-format.md §7.3 publisher, §7.4 min_valid retirement, §7.5 receive, §7.6
 * join) with one publisher and one subscriber that joins while the publisher publishes. The ring holds
 * CAP = 1 record; the publisher publishes N = 3 messages; message k lives at position k - 1 (positions
 * count records, not bytes), so the value found at position p must be p + 1: anything else is a torn or
 * overwritten record. The publisher's and subscriber's doorbell waits are modelled as re-checks
 * (doorbell.pml checks the doorbell itself).
 * Checked, over every interleaving and every PSO store reordering (memory.pml):
 *   block (default): the subscriber receives every message from its join position on, intact: the
 *     publisher's `slowest` scan (SeqCst fence, then the slot) and the join's Dekker pair (JOINING,
 *     SeqCst fence, second tail load) mean it never overwrites a record at or after the cursor;
 *   -DLOSSY: whatever the subscriber accepts is intact (the retirement commit rule of §7.4: min_valid is
 *     stored, then a Release fence, then the overwrite; the subscriber copies, then re-checks
 *     min_valid), and skip-to-oldest never finds min_valid beyond a fresh tail (§7.5, the `Corrupt`
 *     check must not fire on a healthy channel).
 *
 *     With §7.3's gate: a JOINING slot more than a ring behind gates (without it the publisher ignores a
 *     stale JOINING position as corrupt and overwrites a record the subscriber is about to read).
 *
 * Deliberately broken variants (each must fail):
 *   -DBROKEN_STALE_JOINING_IGNORED      block: `slowest` ignores a stale JOINING slot (§7.3 before the
 *                                       gate this model found)
 *   -DBROKEN_JOIN_NO_FENCE              block: the subscriber skips the SeqCst fence of §7.6 step 3
 *   -DLOSSY -DBROKEN_RETIRE_NO_FENCE    lossy: the publisher skips the Release fence after storing
 *                                       min_valid (§7.4 step 3), so the overwrite may be seen first */

#include "memory.pml"

#define CAP 1
#define N 3
#define FREE 0
#define JOINING 3
#define ACTIVE 2

byte tail, min_valid, slot, state = FREE, pos;
WORD(slot, p);
WORD(tail, p);
WORD(min_valid, p);
WORD(pos, s);
WORD(state, s);

#define DRAIN_ALL_p DRAIN(slot, p); DRAIN(tail, p); DRAIN(min_valid, p)
#define DRAIN_ALL_s DRAIN(pos, s); DRAIN(state, s)

active proctype publisher() {
  byte t = 0, mv = 0, cached_min = 0, st, sp, lowest;
  do
  :: t == N -> break
  :: else ->
#ifndef LOSSY
     /* §7.3 step 3: gating (block) */
     do
     :: t + 1 - cached_min <= CAP -> break
     :: else ->
        DRAIN_ALL_p;                       /* slowest(): SeqCst fence */
        lowest = t;
        st = state;
        if
        :: st == JOINING || st == ACTIVE ->
           sp = pos;
           if
           :: sp <= t && t - sp <= CAP && sp < lowest -> lowest = sp
#ifndef BROKEN_STALE_JOINING_IGNORED
           :: sp <= t && t - sp > CAP && st == JOINING -> lowest = 0  /* §7.3: stale, wait for the cursor */
#endif
           :: else -> skip
           fi
        :: else -> skip
        fi;
        cached_min = lowest                /* still full: wait and re-check (space doorbell) */
     od;
#endif
     /* §7.4: retire every record that starts before end - CAP */
     if
     :: t + 1 > CAP && mv < t + 1 - CAP ->
        mv = t + 1 - CAP;
        DRAIN_ALL_p;                       /* Release store of min_valid */
        STORE(min_valid, p, mv);
#ifndef BROKEN_RETIRE_NO_FENCE
        DRAIN(min_valid, p);               /* Release fence: before the overwrite */
#endif
     :: else -> skip
     fi;
     STORE(slot, p, t + 1);                /* §7.3 step 6: the record */
     DRAIN(slot, p); DRAIN(min_valid, p);  /* step 7: Release store of the tail (the commit) */
     STORE(tail, p, t + 1);
     t++
  od
}

active proctype subscriber() {
  byte t1, t2, me, v, m, fresh;
  /* §7.6 join */
  t1 = tail;
  STORE(pos, s, t1);
  DRAIN(pos, s);                           /* Release store of JOINING */
  STORE(state, s, JOINING);
#ifndef BROKEN_JOIN_NO_FENCE
  DRAIN_ALL_s;                             /* SeqCst fence */
#endif
  t2 = tail;
  DRAIN(state, s);
  STORE(pos, s, t2);                       /* Release */
  me = t2;
  DRAIN(pos, s);
  STORE(state, s, ACTIVE);                 /* Release */
  /* §7.5 receive, until every message is read or skipped */
  do
  :: me == N -> break
  :: else ->
     tail != me;                           /* steps 1-2: wait for a record (data doorbell) */
     t1 = tail;
#ifdef LOSSY
     m = min_valid;
     if
     :: t1 - me > CAP || me < m ->         /* step 4: lapped: skip to oldest */
        m = min_valid;
        fresh = tail;
        assert(m <= fresh);                /* never Corrupt on a healthy channel */
        me = m;
        DRAIN_ALL_s;
        STORE(pos, s, me)
     :: else ->
        v = slot;                          /* step 9: copy */
        m = min_valid;                     /* Acquire fence, re-check */
        if
        :: me < m -> skip                  /* torn: restart */
        :: else ->
           assert(v == me + 1);            /* intact */
           me++;
           DRAIN_ALL_s;
           STORE(pos, s, me)
        fi
     fi
#else
     v = slot;                             /* step 9: in place */
     assert(v == me + 1);                  /* not overwritten before the cursor moved */
     me++;
     DRAIN_ALL_s;
     STORE(pos, s, me)                     /* step 11: Release store of the cursor */
#endif
  od
}

active proctype flusher() {
end:
  do
  :: FLUSH(slot, p)
  :: FLUSH(tail, p)
  :: FLUSH(min_valid, p)
  :: FLUSH(pos, s)
  :: FLUSH(state, s)
  od
}
