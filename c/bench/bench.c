/* ring_c_bench: the C connector's side of `ringctl bench`, the same cases, parameters and JSON rows as
 * tools/bench (ring-bench) so the two connectors compare line for line (system "ring-c"). Each case is
 * a leader on CPU 0 and a follower (this program again, `follow <case> ...`) on CPU 1, through a live
 * broker in IMPULSE_RING_NS.
 *
 *   ring_c_bench suite [--quick]
 *   ring_c_bench pubsub-latency|call-latency|throughput [--size N --wait spin|adaptive|block --iters N
 *                --warmup N --count N --gap-us N]
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "impulse_ring.h"

extern char **environ;

/* Generous: a follower that takes this long is stuck, not slow. */
static const int64_t TIMEOUT_MS = 30000;

/* ---- Parameters: the flags of tools/bench/src/lib.rs, with its defaults ---- */

typedef struct params {
  size_t size;
  const char *wait;
  uint64_t iters;
  uint64_t warmup;
  uint64_t gap_us;
  uint64_t count;
  /* The CPU a follower pins itself to (leaders always take CPU 0). */
  unsigned cpu;
} params_t;

static params_t default_params(void) {
  return (params_t){.size = 64, .wait = "adaptive", .iters = 10000, .warmup = 1000, .count = 100000, .cpu = 1};
}

static void usage(const char *message) __attribute__((noreturn));

static void usage(const char *message) {
  fprintf(stderr,
          "ring_c_bench: %s\nusage: ring_c_bench suite [--quick] | ring_c_bench <case> [--size N --wait "
          "spin|adaptive|block --iters N --warmup N --count N --gap-us N]\n",
          message);
  exit(2);
}

static uint64_t parse_number(const char *flag, const char *value) {
  char *end = NULL;
  errno = 0;
  unsigned long long n = strtoull(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0') {
    char message[256];
    (void)snprintf(message, sizeof message, "`%s` takes a number, not `%s`", flag, value);
    usage(message);
  }
  return (uint64_t)n;
}

static params_t parse_params(int argc, char **argv) {
  params_t p = default_params();
  for (int i = 0; i < argc; i += 2) {
    const char *flag = argv[i];
    if (i + 1 >= argc) {
      char message[256];
      (void)snprintf(message, sizeof message, "`%s` needs a value", flag);
      usage(message);
    }
    const char *value = argv[i + 1];
    if (strcmp(flag, "--size") == 0) {
      p.size = (size_t)parse_number(flag, value);
    } else if (strcmp(flag, "--wait") == 0) {
      p.wait = value;
    } else if (strcmp(flag, "--iters") == 0) {
      p.iters = parse_number(flag, value);
    } else if (strcmp(flag, "--warmup") == 0) {
      p.warmup = parse_number(flag, value);
    } else if (strcmp(flag, "--gap-us") == 0) {
      p.gap_us = parse_number(flag, value);
    } else if (strcmp(flag, "--count") == 0) {
      p.count = parse_number(flag, value);
    } else if (strcmp(flag, "--cpu") == 0) {
      p.cpu = (unsigned)parse_number(flag, value);
    } else {
      char message[256];
      (void)snprintf(message, sizeof message, "unknown flag `%s`", flag);
      usage(message);
    }
  }
  return p;
}

/* ---- Processes: pinning, the follower and its lines ---- */

/* Online CPUs from sysfs, not the affinity mask: a follower inherits its pinned leader's mask. */
static unsigned online_cpus(void) {
  FILE *f = fopen("/sys/devices/system/cpu/online", "r");
  if (f == NULL) {
    return 1;
  }
  char line[256] = "";
  if (fgets(line, sizeof line, f) == NULL) {
    line[0] = '\0';
  }
  (void)fclose(f);
  unsigned count = 0;
  for (char *range = strtok(line, ",\n"); range != NULL; range = strtok(NULL, ",\n")) {
    unsigned a = 0;
    unsigned b = 0;
    int n = sscanf(range, "%u-%u", &a, &b);
    if (n == 2 && b >= a) {
      count += b - a + 1;
    } else if (n == 1) {
      count += 1;
    }
  }
  return count > 0 ? count : 1;
}

/* Pins the calling thread to `cpu` modulo the CPUs (nothing on a single core). */
static void pin(unsigned cpu) {
  unsigned cpus = online_cpus();
  if (cpus < 2) {
    return;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % cpus, &set);
  (void)sched_setaffinity(0, sizeof set, &set);
}

typedef struct follower {
  pid_t pid;
  /* Our end of its stdin: closing it tells the follower to leave. */
  int to_child;
  FILE *from_child;
} follower_t;

/* The running follower, so that a failing leader does not leave it behind. */
static pid_t live_follower = -1;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...) {
  fprintf(stderr, "ring_c_bench: ");
  va_list args;
  va_start(args, fmt);
  vfprintf(stderr, fmt, args);
  va_end(args);
  fprintf(stderr, "\n");
  if (live_follower > 0) {
    (void)kill(live_follower, SIGKILL);
    (void)waitpid(live_follower, NULL, 0);
  }
  exit(1);
}

static void check(ir_conn_t *conn, ir_error_e code, const char *what) {
  if (code != IR_OK) {
    die("%s failed: %s: %s", what, ir_error_name(code), ir_last_error(conn));
  }
}

/* Starts `/proc/self/exe follow <case> <params>` on `cpu`, its stdin and stdout piped to us. */
static follower_t spawn_follower(const char *name, const params_t *p, unsigned cpu) {
  char size[24];
  char iters[24];
  char warmup[24];
  char count[24];
  char gap[24];
  char cpu_text[24];
  (void)snprintf(size, sizeof size, "%zu", p->size);
  (void)snprintf(iters, sizeof iters, "%llu", (unsigned long long)p->iters);
  (void)snprintf(warmup, sizeof warmup, "%llu", (unsigned long long)p->warmup);
  (void)snprintf(count, sizeof count, "%llu", (unsigned long long)p->count);
  (void)snprintf(gap, sizeof gap, "%llu", (unsigned long long)p->gap_us);
  (void)snprintf(cpu_text, sizeof cpu_text, "%u", cpu);
  char *argv[] = {"ring_c_bench",  "follow",   (char *)name, "--size",   size,     "--wait",
                  (char *)p->wait, "--iters",  iters,        "--warmup", warmup,   "--count",
                  count,           "--gap-us", gap,          "--cpu",    cpu_text, NULL};
  int in[2];
  int out[2];
  /* Close-on-exec: the follower keeps only the dup2'ed ends, so closing ours is an EOF it sees. */
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
    die("pipe2: %s", strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  /* Flush first: the child must not inherit and repeat what our stdio still buffers. */
  (void)fflush(stdout);
  pid_t pid = -1;
  int err = posix_spawn(&pid, "/proc/self/exe", &actions, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    die("cannot start a follower: %s", strerror(err));
  }
  (void)close(in[0]);
  (void)close(out[1]);
  live_follower = pid;
  FILE *from_child = fdopen(out[0], "r");
  if (from_child == NULL) {
    die("fdopen: %s", strerror(errno));
  }
  return (follower_t){.pid = pid, .to_child = in[1], .from_child = from_child};
}

/* Waits for the follower's line `word` (`ready`, `done`). */
static void expect_line(follower_t *f, const char *word) {
  char line[256];
  while (fgets(line, sizeof line, f->from_child) != NULL) {
    line[strcspn(line, "\r\n")] = '\0';
    if (strcmp(line, word) == 0) {
      return;
    }
  }
  die("the follower exited while the leader waited for `%s`", word);
}

/* Closes its stdin, gives it half a second to leave cleanly, then kills it; always reaps it. */
static void finish_follower(follower_t *f) {
  (void)close(f->to_child);
  (void)fclose(f->from_child);
  for (int i = 0; i < 50; i++) {
    if (waitpid(f->pid, NULL, WNOHANG) == f->pid) {
      live_follower = -1;
      return;
    }
    struct timespec ten_ms = {.tv_sec = 0, .tv_nsec = 10000000L};
    (void)nanosleep(&ten_ms, NULL);
  }
  (void)kill(f->pid, SIGKILL);
  (void)waitpid(f->pid, NULL, 0);
  live_follower = -1;
}

/* Follower side: one line to the leader, flushed at once. */
static void say(const char *word) {
  printf("%s\n", word);
  (void)fflush(stdout);
}

/* Follower side: blocks until the leader closes our stdin. */
static void wait_for_leader(void) {
  char buf[256];
  while (read(STDIN_FILENO, buf, sizeof buf) > 0 || errno == EINTR) {
    errno = 0;
  }
}

/* ---- Measuring ---- */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sleep_us(uint64_t us) {
  struct timespec ts = {.tv_sec = (time_t)(us / 1000000), .tv_nsec = (long)(us % 1000000) * 1000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int compare_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a;
  uint64_t y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* The sample at quantile `q` of sorted `samples`: the ceil(q * n)-th smallest, like hdrhistogram. */
static uint64_t quantile(const uint64_t *samples, size_t n, double q) {
  size_t rank = (size_t)(q * (double)n + 0.999999);
  if (rank < 1) {
    rank = 1;
  }
  return samples[(rank > n ? n : rank) - 1];
}

/* Prints a latency row in the format of tools/bench/src/report.rs; sorts `samples`. */
static void print_latency(const char *name, const params_t *p, uint64_t *samples, size_t n) {
  qsort(samples, n, sizeof *samples, compare_u64);
  printf(
      "{\"case\":\"%s\",\"system\":\"ring-c\",\"payload_bytes\":%zu,\"wait\":\"%s\",\"subscribers\":null,"
      "\"p50_ns\":%llu,\"p99_ns\":%llu,\"p999_ns\":%llu,\"msgs_per_s\":null,\"bytes_per_s\":null}\n",
      name, p->size, p->wait, (unsigned long long)quantile(samples, n, 0.5),
      (unsigned long long)quantile(samples, n, 0.99), (unsigned long long)quantile(samples, n, 0.999));
  (void)fflush(stdout);
}

static void print_rate(const params_t *p, double seconds) {
  double per_s = (double)p->count / seconds;
  printf(
      "{\"case\":\"pubsub_throughput\",\"system\":\"ring-c\",\"payload_bytes\":%zu,\"wait\":\"%s\",\"subscribers\":1,"
      "\"p50_ns\":null,\"p99_ns\":null,\"p999_ns\":null,\"msgs_per_s\":%.1f,\"bytes_per_s\":%.1f}\n",
      p->size, p->wait, per_s, per_s * (double)p->size);
  (void)fflush(stdout);
}

/* ---- Ring: connections, channels and the schema of `size` bytes ---- */

static ir_wait_e strategy(const char *wait) {
  if (strcmp(wait, "spin") == 0) {
    return IR_WAIT_BUSY_SPIN;
  }
  if (strcmp(wait, "block") == 0) {
    return IR_WAIT_BLOCKING;
  }
  return IR_WAIT_ADAPTIVE;
}

static ir_conn_t *connect_as(const char *app, const params_t *p) {
  ir_conn_t *conn = NULL;
  check(NULL, ir_connect(app, &conn), "connecting to the broker");
  /* Publishers and subscribers opened later inherit the strategy. */
  check(conn, ir_set_wait(conn, strategy(p->wait), 0, 0), "ir_set_wait");
  return conn;
}

/* An Avro `fixed` of exactly `size` bytes: its datum is the payload itself. */
static void fixed_schema(size_t size, char *out, size_t cap) {
  (void)snprintf(out, cap, "{\"type\":\"fixed\",\"name\":\"Payload%zu\",\"namespace\":\"bench\",\"size\":%zu}", size,
                 size);
}

/* At least 4 messages of `size` and 1 MiB: large enough to batch, small enough for the last-level cache. */
static uint64_t capacity(size_t size) {
  uint64_t want = ((uint64_t)size + 64) * 4;
  uint64_t cap = 1u << 20;
  while (cap < want) {
    cap <<= 1;
  }
  return cap;
}

static ir_publisher_t *publish(ir_conn_t *conn, const char *name, const char *schema, size_t size) {
  ir_publisher_t *pub = NULL;
  /* The previous case's channel of this name may still be on its way out. */
  ir_error_e code = IR_OK;
  for (int attempt = 0; attempt < 500; attempt++) {
    code = ir_publish_channel(conn, name, schema, NULL, capacity(size), IR_CHANNEL_BLOCK, &pub);
    if (code != IR_ERR_NAME_TAKEN) {
      break;
    }
    sleep_us(10000);
  }
  check(conn, code, name);
  return pub;
}

static ir_subscriber_t *subscribe(ir_conn_t *conn, const char *name, const char *schema) {
  ir_subscriber_t *sub = NULL;
  check(conn, ir_subscribe(conn, name, NULL, schema, &sub), name);
  return sub;
}

static uint8_t *filled(size_t size, uint8_t byte) {
  uint8_t *payload = malloc(size > 0 ? size : 1);
  if (payload == NULL) {
    die("out of memory");
  }
  memset(payload, byte, size);
  return payload;
}

static uint64_t *samples_for(const params_t *p) {
  if (p->iters == 0) {
    usage("--iters must be at least 1");
  }
  uint64_t *samples = calloc(p->iters, sizeof *samples);
  if (samples == NULL) {
    die("out of memory");
  }
  return samples;
}

/* ---- Cases ---- */

/* Channel ping-pong: one way = round trip / 2. */
static void pubsub_latency(const params_t *p) {
  pin(0);
  ir_conn_t *conn = connect_as("bench-c-ping", p);
  char schema[160];
  fixed_schema(p->size, schema, sizeof schema);
  uint64_t *samples = samples_for(p);
  ir_publisher_t *ping = publish(conn, "bench.ping", schema, p->size);
  follower_t f = spawn_follower("pubsub-latency", p, 1);
  expect_line(&f, "ready");
  ir_subscriber_t *pong = subscribe(conn, "bench.pong", schema);
  uint8_t *payload = filled(p->size, 0xA5);
  for (uint64_t i = 0; i < p->warmup + p->iters; i++) {
    uint64_t start = now_ns();
    check(conn, ir_publish(ping, payload, p->size, TIMEOUT_MS), "publish");
    const uint8_t *datum = NULL;
    size_t len = 0;
    check(conn, ir_receive_view(pong, &datum, &len, TIMEOUT_MS), "receive");
    ir_subscriber_release(pong);
    uint64_t rtt = now_ns() - start;
    if (i >= p->warmup) {
      samples[i - p->warmup] = rtt / 2;
    }
    if (p->gap_us > 0) {
      sleep_us(p->gap_us);
    }
  }
  print_latency("pubsub_latency", p, samples, (size_t)p->iters);
  free(samples);
  free(payload);
  ir_subscriber_close(pong);
  finish_follower(&f);
  ir_publisher_close(ping);
  ir_close(conn);
}

static void pubsub_latency_follower(const params_t *p) {
  pin(p->cpu);
  ir_conn_t *conn = connect_as("bench-c-pong", p);
  char schema[160];
  fixed_schema(p->size, schema, sizeof schema);
  ir_subscriber_t *ping = subscribe(conn, "bench.ping", schema);
  ir_publisher_t *pong = publish(conn, "bench.pong", schema, p->size);
  say("ready");
  for (uint64_t i = 0; i < p->warmup + p->iters; i++) {
    const uint8_t *datum = NULL;
    size_t len = 0;
    check(conn, ir_receive_view(ping, &datum, &len, TIMEOUT_MS), "receive");
    check(conn, ir_publish(pong, datum, len, TIMEOUT_MS), "publish");
    ir_subscriber_release(ping);
  }
  wait_for_leader();
  ir_publisher_close(pong);
  ir_subscriber_close(ping);
  ir_close(conn);
}

/* Round trip of a call to `bench.echo` (not halved: a call is a round trip). */
static void call_latency(const params_t *p) {
  pin(0);
  ir_conn_t *conn = connect_as("bench-c-caller", p);
  char schema[160];
  fixed_schema(p->size, schema, sizeof schema);
  uint64_t *samples = samples_for(p);
  follower_t f = spawn_follower("call-latency", p, 1);
  expect_line(&f, "ready");
  uint8_t *payload = filled(p->size, 0x5A);
  for (uint64_t i = 0; i < p->warmup + p->iters; i++) {
    uint8_t *response = NULL;
    size_t len = 0;
    uint64_t start = now_ns();
    check(conn, ir_call(conn, "bench.echo", NULL, schema, schema, payload, p->size, &response, &len, TIMEOUT_MS),
          "call");
    uint64_t rtt = now_ns() - start;
    ir_free(response);
    if (len != p->size) {
      die("the echo returned %zu bytes instead of %zu", len, p->size);
    }
    if (i >= p->warmup) {
      samples[i - p->warmup] = rtt;
    }
  }
  print_latency("call_latency", p, samples, (size_t)p->iters);
  free(samples);
  free(payload);
  finish_follower(&f);
  ir_close(conn);
}

static ir_error_e echo(void *user, const uint8_t *request, size_t len, ir_response_t *response) {
  (void)user;
  return ir_response_write(response, request, len);
}

static atomic_bool leader_gone;

static void *watch_leader(void *conn) {
  wait_for_leader();
  atomic_store(&leader_gone, true);
  ir_serve_stop(conn);
  return NULL;
}

static void call_latency_follower(const params_t *p) {
  pin(p->cpu);
  ir_conn_t *conn = connect_as("bench-c-provider", p);
  char schema[160];
  fixed_schema(p->size, schema, sizeof schema);
  ir_function_t *fn = NULL;
  check(conn, ir_expose_function(conn, "bench.echo", schema, schema, NULL, echo, NULL, &fn), "expose bench.echo");
  say("ready");
  /* ir_serve sleeps, spins or both as ir_set_wait says; the watcher ends it when the leader is done. */
  pthread_t watcher;
  if (pthread_create(&watcher, NULL, watch_leader, conn) != 0) {
    die("cannot start the stdin watcher");
  }
  while (!atomic_load(&leader_gone)) {
    check(conn, ir_serve(conn, IR_FOREVER), "serve");
  }
  pthread_join(watcher, NULL);
  ir_function_withdraw(fn);
  ir_close(conn);
}

/* One publisher, one subscriber: messages per second at the publisher until the subscriber has all. */
static void throughput(const params_t *p) {
  pin(0);
  ir_conn_t *conn = connect_as("bench-c-publisher", p);
  char schema[160];
  fixed_schema(p->size, schema, sizeof schema);
  ir_publisher_t *pub = publish(conn, "bench.stream", schema, p->size);
  follower_t f = spawn_follower("throughput", p, 1);
  expect_line(&f, "ready");
  uint8_t *payload = filled(p->size, 0x3C);
  uint64_t start = now_ns();
  for (uint64_t i = 0; i < p->count; i++) {
    check(conn, ir_publish(pub, payload, p->size, TIMEOUT_MS), "publish");
  }
  expect_line(&f, "done");
  double seconds = (double)(now_ns() - start) / 1e9;
  print_rate(p, seconds);
  free(payload);
  finish_follower(&f);
  ir_publisher_close(pub);
  ir_close(conn);
}

static void throughput_follower(const params_t *p) {
  pin(p->cpu);
  ir_conn_t *conn = connect_as("bench-c-subscriber", p);
  char schema[160];
  fixed_schema(p->size, schema, sizeof schema);
  ir_subscriber_t *sub = subscribe(conn, "bench.stream", schema);
  say("ready");
  uint64_t bytes = 0;
  for (uint64_t i = 0; i < p->count; i++) {
    const uint8_t *datum = NULL;
    size_t len = 0;
    check(conn, ir_receive_view(sub, &datum, &len, TIMEOUT_MS), "receive");
    bytes += len;
    ir_subscriber_release(sub);
  }
  uint64_t want = (uint64_t)p->size * p->count;
  if (bytes != want) {
    die("received %llu bytes instead of %llu", (unsigned long long)bytes, (unsigned long long)want);
  }
  say("done");
  wait_for_leader();
  ir_subscriber_close(sub);
  ir_close(conn);
}

/* ---- Dispatch ---- */

typedef struct bench_case {
  const char *name;
  void (*lead)(const params_t *p);
  void (*follow)(const params_t *p);
} bench_case_t;

static const bench_case_t CASES[] = {
    {"pubsub-latency", pubsub_latency, pubsub_latency_follower},
    {"call-latency", call_latency, call_latency_follower},
    {"throughput", throughput, throughput_follower},
};

static const bench_case_t *find_case(const char *name) {
  for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
    if (strcmp(CASES[i].name, name) == 0) {
      return &CASES[i];
    }
  }
  char message[256];
  (void)snprintf(message, sizeof message, "unknown case `%s`", name);
  usage(message);
}

/* The C subset of ring-bench's suite(), with the same iteration counts. */
static void suite(bool quick) {
  params_t lat = default_params();
  lat.iters = quick ? 2000 : 100000;
  lat.warmup = quick ? 200 : 10000;
  static const struct {
    size_t size;
    const char *wait;
  } latencies[] = {{64, "spin"}, {64, "adaptive"}, {4096, "spin"}};
  for (size_t i = 0; i < sizeof latencies / sizeof latencies[0]; i++) {
    params_t p = lat;
    p.size = latencies[i].size;
    p.wait = latencies[i].wait;
    pubsub_latency(&p);
  }
  params_t call = lat;
  call.wait = "spin";
  call_latency(&call);
  params_t tp = default_params();
  tp.count = quick ? 200000 : 5000000;
  throughput(&tp);
  tp.size = 4096;
  tp.count = quick ? 20000 : 500000;
  throughput(&tp);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage("no case given");
  }
  if (strcmp(argv[1], "suite") == 0) {
    bool quick = argc > 2 && strcmp(argv[2], "--quick") == 0;
    if (argc > 3 || (argc == 3 && !quick)) {
      usage("suite takes only --quick");
    }
    suite(quick);
  } else if (strcmp(argv[1], "follow") == 0) {
    if (argc < 3) {
      usage("follow needs a case");
    }
    params_t p = parse_params(argc - 3, argv + 3);
    find_case(argv[2])->follow(&p);
  } else {
    params_t p = parse_params(argc - 2, argv + 2);
    find_case(argv[1])->lead(&p);
  }
  return 0;
}
