/* Weak memory for Ring's Promela models: Partial Store Order (PSO). Each thread's store to a shared
 * word first goes to a store buffer of its own for that word, and becomes visible to the other thread
 * whenever the thread's flusher (an independent process) writes it to memory: stores to different
 * words may become visible out of order, and after later loads of the same thread (store-load
 * reordering, what x86 does too). A thread reads its own pending store (store forwarding). Loads are
 * performed in program order, so Acquire is implicit: the models check the store side of every pairing,
 * not load-load reordering (arm64 has that too; the Rust/C/Go code uses Acquire loads for it).
 *
 *   STORE(x, t, v)   plain (Relaxed) store of v to word x by thread t
 *   LOAD(x, t, d)    d = x as thread t sees it
 *   DRAIN_x(t)       waits until thread t's store to x is visible (building block of the fences)
 * A Release store drains the thread's earlier stores first; a SeqCst fence or read-modify-write drains
 * every store of the thread. Each model defines DRAIN_ALL_<t> for its threads. */

#define WORD(x, t) byte x##_##t##_v; bool x##_##t##_p
#define STORE(x, t, v) (!x##_##t##_p) -> atomic { x##_##t##_v = (v); x##_##t##_p = true }
#define LOAD(x, t, d) atomic { if :: x##_##t##_p -> d = x##_##t##_v :: else -> d = x fi }
#define DRAIN(x, t) (!x##_##t##_p)
#define FLUSH(x, t) atomic { x##_##t##_p -> x = x##_##t##_v; x##_##t##_p = false }
