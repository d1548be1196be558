// malloc probe for a loch process (issue 18: what a busy worker's glibc arena holds), loaded with
// LD_PRELOAD by malloc-probe.ts. It acts only in a process whose command line names bin.ts or
// bin.js (loch), so the peers started with the same environment are left alone. A control
// thread polls $MEMPRE_DIR every 100 ms for command files (each removed once done):
//   cmd-info   malloc_info(0) of every arena -> info-<n>.xml (in use = system current - fast - rest)
//   cmd-trim   malloc_trim(0) now, logged to trim.log (RSS before/after, wall and CPU time)
//   cmd-count  start counting malloc/calloc/realloc/memalign calls per thread (size classes by
//              powers of two from 16 B) and sampling one call in 16 by its caller stack
//   cmd-dump   stop counting and append the counts and the sampled stacks to counts.txt
//              (stacks as module+offset; node is not PIE: add 0x400000 for addr2line)
// $MEMPRE_TRIM_MS=N also runs malloc_trim(0) every N ms from the control thread, logged the same.
// Not a leak checker and not for production: the counting path takes a lock per sampled call.
//
// Build: gcc -O2 -fPIC -shared -o malloc-probe.so malloc-probe.c -ldl -lpthread
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void __libc_free(void*);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);

#define MAXT 64
#define NSIZE 16
struct tcount {
  long tid;
  long calls, bytes;
  long bysize[NSIZE];
};
static struct tcount counts[MAXT];
static int nthreads;
static __thread int tindex = -1;
static __thread int inhook;
static __thread unsigned sampctr;
static volatile int counting;
static char dir[512];

#define NSAMP 4096
#define DEPTH 10
struct samp {
  void* pc[DEPTH];
  int n;
  int thread;
  long hits;
  long bytes;
};
static struct samp samples[NSAMP];
static pthread_mutex_t sampmu = PTHREAD_MUTEX_INITIALIZER;

static int myindex(void) {
  if (tindex >= 0) return tindex;
  int i = __atomic_fetch_add(&nthreads, 1, __ATOMIC_RELAXED);
  if (i >= MAXT) i = MAXT - 1;
  counts[i].tid = syscall(SYS_gettid);
  tindex = i;
  return i;
}

static int bucket(size_t n) {
  int b = 0;
  while (n > 16 && b < NSIZE - 1) {
    n >>= 1;
    b++;
  }
  return b;
}

static void sample(int i, size_t n) {
  void* pc[DEPTH + 2];
  int k = backtrace(pc, DEPTH + 2);
  if (k <= 2) return;
  k -= 2;  // this function and note()
  uint64_t h = 1469598103934665603ull ^ (uint64_t)i;
  for (int j = 0; j < k; j++) h = (h ^ (uint64_t)pc[j + 2]) * 1099511628211ull;
  pthread_mutex_lock(&sampmu);
  for (int p = 0; p < 64; p++) {
    struct samp* s = &samples[(h + p) % NSAMP];
    if (s->n == 0) {
      memcpy(s->pc, pc + 2, sizeof(void*) * k);
      s->n = k;
      s->thread = i;
    }
    if (s->n == k && s->thread == i && memcmp(s->pc, pc + 2, sizeof(void*) * k) == 0) {
      s->hits++;
      s->bytes += n;
      break;
    }
  }
  pthread_mutex_unlock(&sampmu);
}

static void note(size_t n) {
  if (!counting || inhook) return;
  inhook = 1;
  int i = myindex();
  counts[i].calls++;
  counts[i].bytes += n;
  counts[i].bysize[bucket(n)]++;
  if ((++sampctr & 15) == 0) sample(i, n);
  inhook = 0;
}

void* malloc(size_t n) {
  note(n);
  return __libc_malloc(n);
}
void free(void* p) { __libc_free(p); }
void* calloc(size_t a, size_t b) {
  note(a * b);
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  note(n);
  return __libc_realloc(p, n);
}
void* memalign(size_t a, size_t n) {
  note(n);
  return __libc_memalign(a, n);
}
void* aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
int posix_memalign(void** out, size_t a, size_t n) {
  void* p = memalign(a, n);
  if (!p) return 12;  // ENOMEM
  *out = p;
  return 0;
}

static double now_ms(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int take(const char* name) {
  char p[600];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  if (access(p, F_OK) != 0) return 0;
  unlink(p);
  return 1;
}

static FILE* openout(const char* name) {
  char p[600];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return fopen(p, "a");
}

static void dump(void) {
  FILE* f = openout("counts.txt");
  if (!f) return;
  fprintf(f, "=== dump\n");
  int n = nthreads < MAXT ? nthreads : MAXT;
  for (int i = 0; i < n; i++) {
    if (counts[i].calls == 0) continue;
    fprintf(f, "thread %d tid %ld calls %ld bytes %ld sizes", i, counts[i].tid, counts[i].calls, counts[i].bytes);
    for (int b = 0; b < NSIZE; b++) fprintf(f, " %ld", counts[i].bysize[b]);
    fprintf(f, "\n");
  }
  pthread_mutex_lock(&sampmu);
  for (int s = 0; s < NSAMP; s++) {
    if (samples[s].n == 0 || samples[s].hits < 8) continue;
    fprintf(f, "sample thread %d hits %ld bytes %ld :", samples[s].thread, samples[s].hits, samples[s].bytes);
    for (int j = 0; j < samples[s].n; j++) {
      Dl_info d;
      if (dladdr(samples[s].pc[j], &d) && d.dli_fname) {
        const char* base = strrchr(d.dli_fname, '/');
        fprintf(f, " %s+0x%lx", base ? base + 1 : d.dli_fname,
                (unsigned long)((char*)samples[s].pc[j] - (char*)d.dli_fbase));
      } else {
        fprintf(f, " %p", samples[s].pc[j]);
      }
    }
    fprintf(f, "\n");
  }
  pthread_mutex_unlock(&sampmu);
  fclose(f);
}

static long rss_kib(void) {
  long size = 0, res = 0;
  FILE* f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
  fclose(f);
  return res * 4;
}

static void trimlog(const char* why) {
  long r0 = rss_kib();
  double w0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_THREAD_CPUTIME_ID);
  int released = malloc_trim(0);
  double w1 = now_ms(CLOCK_MONOTONIC), c1 = now_ms(CLOCK_THREAD_CPUTIME_ID);
  long r1 = rss_kib();
  FILE* f = openout("trim.log");
  if (!f) return;
  fprintf(f, "%.0f %s rss %ld->%ld KiB released=%d wall_ms=%.3f cpu_ms=%.3f\n", w0, why, r0, r1, released, w1 - w0,
          c1 - c0);
  fclose(f);
}

static void* control(void* arg) {
  (void)arg;
  inhook = 1;  // this thread's own allocations are not counted
  const char* env = getenv("MEMPRE_TRIM_MS");
  long period = env ? atol(env) : 0;
  double last = now_ms(CLOCK_MONOTONIC);
  int seq = 0;
  for (;;) {
    usleep(100000);
    if (take("cmd-count")) {
      for (int i = 0; i < MAXT; i++) {
        counts[i].calls = counts[i].bytes = 0;
        memset(counts[i].bysize, 0, sizeof counts[i].bysize);
      }
      pthread_mutex_lock(&sampmu);
      memset(samples, 0, sizeof samples);
      pthread_mutex_unlock(&sampmu);
      counting = 1;
    }
    if (take("cmd-dump")) {
      counting = 0;
      dump();
    }
    if (take("cmd-info")) {
      char name[64];
      snprintf(name, sizeof name, "info-%d.xml", seq++);
      FILE* f = openout(name);
      if (f) {
        malloc_info(0, f);
        fclose(f);
      }
    }
    if (take("cmd-trim")) trimlog("cmd");
    if (period > 0 && now_ms(CLOCK_MONOTONIC) - last >= period) {
      last = now_ms(CLOCK_MONOTONIC);
      trimlog("period");
    }
  }
  return 0;
}

__attribute__((constructor)) static void init(void) {
  const char* d = getenv("MEMPRE_DIR");
  if (!d) return;
  char cmd[4096];
  FILE* f = fopen("/proc/self/cmdline", "r");
  if (!f) return;
  size_t n = fread(cmd, 1, sizeof cmd - 1, f);
  fclose(f);
  for (size_t i = 0; i < n; i++)
    if (cmd[i] == 0) cmd[i] = ' ';
  cmd[n] = 0;
  if (!strstr(cmd, "bin.ts") && !strstr(cmd, "bin.js")) return;
  snprintf(dir, sizeof dir, "%s", d);
  pthread_t t;
  pthread_create(&t, 0, control, 0);
  pthread_detach(t);
}
