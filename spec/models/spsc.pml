/* The SPSC ring (spec/wire-format.md §4.2 producer, §4.3 consumer, §4.4 producer_waiting), with the
 * producer's doorbell of §3.2 for waiting on space. A ring of CAP records (1 by default, 2 with
 * -DCAP=2) carries N = 3 messages, so the producer fills it and has to wait. A record is one word (its
 * message number) in slot `tail % CAP`; positions count records instead of bytes (frames, padding and
 * their checks are the fuzz targets' subject, not this model's). CAP = 1 is the ring in which the
 * consumer empties the ring while the producer goes to sleep, where a lost wake-up shows; with CAP = 2
 * the consumer's next read rescues the producer (the one-entry store buffers of memory.pml force the
 * head store out first), so the broken fence variant passes there.
 * Checked, over every interleaving and every PSO store reordering (memory.pml):
 *   - the consumer receives messages 1, 2, 3 in order, each intact (commit rule of §4.2: a record is
 *     read only after an Acquire load of a tail beyond it, which the Release store of step 8 orders
 *     after the record's bytes);
 *   - the producer never overwrites a record the consumer has not released (§4.3 step 6);
 *   - no lost wake-up: no execution ends with the producer asleep while the ring has space (the
 *     Dekker pair of §4.4: SeqCst store of producer_waiting, retry; Release store of head, SeqCst
 *     fence, load of producer_waiting). spin reports a lost wake-up as an invalid end state.
 *
 * Deliberately broken variants (each must fail):
 *   -DBROKEN_RELAXED_TAIL         the producer's tail store (§4.2 step 8) is Relaxed, not Release
 *   -DBROKEN_NO_CONSUMER_FENCE    the consumer skips the SeqCst fence of §4.3 step 7 */

#include "memory.pml"

#ifndef CAP
#define CAP 1
#endif
#define N 3

byte tail, head, slot0, slot1, waiting;
byte pseq, psleepers;
bool pasleep;
WORD(slot0, p);
WORD(slot1, p);
WORD(tail, p);
WORD(head, c);

#define DRAIN_ALL_p DRAIN(slot0, p); DRAIN(slot1, p); DRAIN(tail, p)
#define DRAIN_ALL_c DRAIN(head, c)

active proctype producer() {
  byte i = 1, t = 0, h, s;
  do
  :: i > N -> break
  :: else ->
     h = head;                                   /* §4.2 step 2: Acquire load of head */
     if
     :: t - h < CAP ->
        assert(t - h >= 0);
        if
        :: t % CAP == 0 -> STORE(slot0, p, i)    /* step 7: the record */
        :: else -> STORE(slot1, p, i)
        fi;
#ifndef BROKEN_RELAXED_TAIL
        DRAIN(slot0, p); DRAIN(slot1, p);        /* step 8: Release */
#endif
        STORE(tail, p, t + 1);
        t++;
        i++
     :: else ->                                  /* full: §4.4 */
        DRAIN_ALL_p;
        waiting = 1;                             /* step 1: SeqCst store */
        do
        :: h = head;                             /* step 2: retry */
           if
           :: t - h < CAP -> break
           :: else -> skip
           fi;
           s = pseq;                             /* step 3: sleep on own doorbell (§3.2) */
           atomic { psleepers++ };
           h = head;
           if
           :: t - h >= CAP ->
              atomic { if :: pseq == s -> pasleep = true :: else -> skip fi };
              !pasleep
           :: else -> skip
           fi;
           atomic { psleepers-- }
        od;
        waiting = 0                              /* step 4 */
     fi
  od
}

active proctype consumer() {
  byte j = 1, hd = 0, v, w, n;
  do
  :: j > N -> break
  :: else ->
     tail != hd;                                 /* §4.3 steps 1-2: wait for a record */
     if
     :: hd % CAP == 0 -> v = slot0               /* step 5: the payload, in place */
     :: else -> v = slot1
     fi;
     assert(v == j);                             /* in order, intact, not overwritten */
     STORE(head, c, hd + 1);                     /* step 6: Release store of head */
     hd++;
     j++;
#ifndef BROKEN_NO_CONSUMER_FENCE
     DRAIN_ALL_c;                                /* step 7: SeqCst fence */
#endif
     w = waiting;
     if
     :: w != 0 ->                                /* ring the producer's doorbell (§3.1) */
        DRAIN_ALL_c;
        n = psleepers;
        if
        :: n > 0 -> atomic { pseq++; pasleep = false }
        :: else -> skip
        fi
     :: else -> skip
     fi
  od
}

active proctype flusher() {
end:
  do
  :: FLUSH(slot0, p)
  :: FLUSH(slot1, p)
  :: FLUSH(tail, p)
  :: FLUSH(head, c)
  od
}
