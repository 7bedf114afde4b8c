/* Starting and stopping a live broker for the self-test (see broker.h). */
#include "broker.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *test_broker_path(void) {
  const char *path = getenv("IMPULSE_RING_BROKER");
  return path != NULL && path[0] != '\0' ? path : "target/debug/impulsed";
}

const char *test_ns_prefix(void) {
  const char *prefix = getenv("IMPULSE_RING_TEST_NS_PREFIX");
  return prefix != NULL ? prefix : "";
}

static void sleep_ms(long ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

bool test_broker_start(test_broker_t *broker, const char *ns) {
  (void)snprintf(broker->ns, sizeof broker->ns, "%s", ns);
  const char *path = test_broker_path();
  if (access(path, X_OK) != 0) {
    fprintf(stderr, "broker %s is not executable; build it with `cargo build -p impulsed` or set IMPULSE_RING_BROKER\n",
            path);
    return false;
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return false;
  }
  if (pid == 0) {
    /* Quiet unless something goes wrong: warnings and errors only. */
    execl(path, path, "--ns", ns, "--log-level", "warn", (char *)NULL);
    perror("exec impulsed");
    _exit(127);
  }
  broker->pid = pid;
  char ctl[256];
  (void)snprintf(ctl, sizeof ctl, "/dev/shm/impulse-ring.%s.ctl", ns);
  for (int i = 0; i < 500; i++) {
    if (access(ctl, F_OK) == 0) {
      /* The file appears before the header is complete; give the broker a moment to mark it ready. */
      sleep_ms(20);
      return true;
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      fprintf(stderr, "the broker exited (status %d) before creating %s\n", status, ctl);
      broker->pid = 0;
      return false;
    }
    sleep_ms(10);
  }
  fprintf(stderr, "the broker did not create %s within 5 s\n", ctl);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  broker->pid = 0;
  return false;
}

bool test_broker_stop(test_broker_t *broker, int signal) {
  if (broker->pid <= 0) {
    return false;
  }
  kill(broker->pid, signal);
  int status = 0;
  for (int i = 0; i < 1000; i++) {
    pid_t got = waitpid(broker->pid, &status, WNOHANG);
    if (got == broker->pid) {
      broker->pid = 0;
      if (signal == SIGTERM) {
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
      }
      return true;
    }
    sleep_ms(10);
  }
  kill(broker->pid, SIGKILL);
  waitpid(broker->pid, NULL, 0);
  broker->pid = 0;
  fprintf(stderr, "the broker ignored signal %d for 10 s\n", signal);
  return false;
}

static int for_each_entry(const char *ns, bool remove) {
  char prefix[128];
  (void)snprintf(prefix, sizeof prefix, "impulse-ring.%s.", ns);
  DIR *dir = opendir("/dev/shm");
  if (dir == NULL) {
    return -1;
  }
  int count = 0;
  struct dirent *entry;
  while ((entry = readdir(dir)) != NULL) {
    if (strncmp(entry->d_name, prefix, strlen(prefix)) == 0) {
      count++;
      if (remove) {
        char path[512];
        (void)snprintf(path, sizeof path, "/dev/shm/%s", entry->d_name);
        (void)unlink(path);
      }
    }
  }
  closedir(dir);
  return count;
}

int test_shm_count(const char *ns) {
  return for_each_entry(ns, false);
}

int test_shm_remove(const char *ns) {
  return for_each_entry(ns, true);
}
