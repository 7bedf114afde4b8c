/* A live broker for the self-test: each test starts `impulsed` in a namespace of its own and stops it
 * afterwards, then checks that /dev/shm holds nothing of that namespace any more. */
#ifndef IR_TEST_BROKER_H
#define IR_TEST_BROKER_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct test_broker {
  pid_t pid;
  char ns[64];
} test_broker_t;

/* The broker binary: $IMPULSE_RING_BROKER, else target/debug/impulsed. */
const char *test_broker_path(void);

/* The test run's namespace prefix: $IMPULSE_RING_TEST_NS_PREFIX (set by `cargo ringctl test-matrix`,
 * which checks and cleans only names under it), else "". Every test namespace starts with it. */
const char *test_ns_prefix(void);

/* Starts a broker in `ns` and waits for its control segment; false (with a message) on failure. */
bool test_broker_start(test_broker_t *broker, const char *ns);

/* Stops the broker with SIGTERM (or `signal`) and reaps it; true when it exited as expected. */
bool test_broker_stop(test_broker_t *broker, int signal);

/* Number of /dev/shm entries of namespace `ns`. */
int test_shm_count(const char *ns);

/* Removes /dev/shm entries of `ns` (after a broker was killed); returns how many. */
int test_shm_remove(const char *ns);

#endif
