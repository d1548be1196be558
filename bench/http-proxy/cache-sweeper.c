// A co-runner for cache-share.sh (issue 18, the 1 -> 2 worker step): pinned beside a proxy worker
// on one CPU, it wakes every PERIOD_US microseconds, writes one byte in each 64-byte line of a
// BYTES-long buffer (BYTES = 0: wakes and sleeps only, a context switch with no working set), and
// sleeps again. What the proxy's CPU per request gains with it running is what the proxy pays to
// refill its caches after another working set had the core: the cost two loch workers taking
// turns on a core would pay each other, without a second loch. On SIGTERM/SIGINT it prints
// "sweeps N cpu_us U" (its own CPU time) and exits. PERIOD_US = 0: it never sleeps (a spinner;
// run under SCHED_IDLE, `chrt -i 0`, it only fills the core's idle time, so the vCPU never halts).
// Build: gcc -O2 -o cache-sweeper cache-sweeper.c. Usage: cache-sweeper BYTES PERIOD_US
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static volatile sig_atomic_t stop = 0;
static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s BYTES PERIOD_US\n", argv[0]);
    return 2;
  }
  size_t bytes = strtoull(argv[1], NULL, 10);
  long period_us = strtol(argv[2], NULL, 10);
  volatile unsigned char* buf = NULL;
  if (bytes > 0) {
    void* p = NULL;
    if (posix_memalign(&p, 4096, bytes) != 0) return 1;
    memset(p, 1, bytes);  // fault the pages in before the measured window
    buf = p;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  struct timespec ts = {period_us / 1000000, (period_us % 1000000) * 1000};
  unsigned long sweeps = 0;
  while (!stop) {
    for (size_t i = 0; i < bytes; i += 64) buf[i]++;
    sweeps++;
    if (period_us > 0) nanosleep(&ts, NULL);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu_us = ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1e6 + ru.ru_stime.tv_usec;
  printf("sweeps %lu cpu_us %.0f\n", sweeps, cpu_us);
  return 0;
}
