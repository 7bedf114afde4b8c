/* The only file with system calls: the monotonic clock, sleeping and yielding, shared futex
 * wait/wake, mapping shared memory objects, process identity from /proc, and the kernel's random
 * bytes (getrandom). Everything above it is
 * plain memory and atomics (and pthread mutexes, which only enter the kernel when contended). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

int64_t ir_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t ir_deadline(int64_t timeout_ms) {
  if (timeout_ms < 0) {
    return -1;
  }
  /* Far-future timeouts saturate instead of overflowing. */
  if (timeout_ms > INT64_MAX / 2000000) {
    return INT64_MAX / 2;
  }
  return ir_now_ns() + timeout_ms * 1000000LL;
}

void ir_sleep_ns(int64_t ns) {
  struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000LL), .tv_nsec = (long)(ns % 1000000000LL)};
  (void)nanosleep(&ts, NULL);
}

void ir_yield(void) {
  (void)sched_yield();
}

int ir_random_bytes(uint8_t *out, size_t len) {
  size_t done = 0;
  while (done < len) {
    /* Blocks only until the kernel's pool is initialised at boot; reads of up to 256 bytes are not cut
     * short by signals once it is, but longer ones may be, hence the loop. */
    ssize_t n = getrandom(out + done, len - done, 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno;
    }
    if (n == 0) {
      return EIO;
    }
    done += (size_t)n;
  }
  return 0;
}

uint32_t ir_getpid(void) {
  return (uint32_t)getpid();
}

bool ir_shm_exists(const char *name) {
  char path[IR_SEG_NAME_MAX + 16];
  (void)snprintf(path, sizeof path, "/dev/shm%s", name);
  return access(path, F_OK) == 0;
}

int ir_shm_map(const char *name, size_t min_len, uint8_t **base, size_t *len) {
  *base = NULL;
  *len = 0;
  int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) {
    return errno;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return err;
  }
  *len = (size_t)st.st_size;
  if (st.st_size < 0 || (size_t)st.st_size < min_len) {
    close(fd);
    return ENODATA;
  }
  void *mapped = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (mapped == MAP_FAILED) {
    *len = 0;
    return err;
  }
  *base = mapped;
  return 0;
}

void ir_shm_unmap(uint8_t *base, size_t len) {
  (void)munmap(base, len);
}

void ir_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns) {
  struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000LL), .tv_nsec = (long)(timeout_ns % 1000000000LL)};
  /* FUTEX_WAIT without FUTEX_PRIVATE_FLAG: the word lives in memory mapped by several processes. The
   * result does not matter: every waiter re-checks its condition after a wake, timeout or signal. */
  (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, &ts, NULL, 0);
}

void ir_futex_wake_all(_Atomic uint32_t *word) {
  (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Reads /proc/PID/stat into `buf`; returns the text after the command name's last ')', or NULL. */
static const char *stat_fields(uint32_t pid, char *buf, size_t cap) {
  char path[64];
  (void)snprintf(path, sizeof path, "/proc/%u/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return NULL;
  }
  size_t len = 0;
  while (len + 1 < cap) {
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  /* The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'. */
  const char *close_paren = strrchr(buf, ')');
  return close_paren != NULL ? close_paren + 1 : NULL;
}

/* Field `n` (1-based, n >= 3) of a stat line given the text after the command name; NULL if absent. */
static const char *stat_field(const char *rest, int n, size_t *len) {
  const char *p = rest;
  for (int field = 3;; field++) {
    while (*p == ' ') {
      p++;
    }
    if (*p == '\0' || *p == '\n') {
      return NULL;
    }
    const char *start = p;
    while (*p != '\0' && *p != ' ' && *p != '\n') {
      p++;
    }
    if (field == n) {
      *len = (size_t)(p - start);
      return start;
    }
  }
}

static bool parse_u64(const char *s, size_t len, uint64_t *out) {
  if (len == 0 || len > 20) {
    return false;
  }
  uint64_t value = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    uint64_t digit = (uint64_t)(s[i] - '0');
    if (value > (UINT64_MAX - digit) / 10) {
      return false;
    }
    value = value * 10 + digit;
  }
  *out = value;
  return true;
}

uint64_t ir_process_start_time(uint32_t pid) {
  char buf[1024];
  const char *rest = stat_fields(pid, buf, sizeof buf);
  size_t len = 0;
  const char *field = rest != NULL ? stat_field(rest, 22, &len) : NULL;
  uint64_t start = 0;
  if (field == NULL || !parse_u64(field, len, &start)) {
    return 0;
  }
  return start;
}

bool ir_process_alive(uint32_t pid, uint64_t start_time) {
  if (pid == 0) {
    return false;
  }
  char buf[1024];
  const char *rest = stat_fields(pid, buf, sizeof buf);
  if (rest == NULL) {
    return false;
  }
  size_t len = 0;
  const char *state = stat_field(rest, 3, &len);
  if (state == NULL || len != 1 || *state == 'Z' || *state == 'X') {
    return false;
  }
  const char *field = stat_field(rest, 22, &len);
  uint64_t start = 0;
  return field != NULL && parse_u64(field, len, &start) && start == start_time;
}
