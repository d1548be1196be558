// Relay microbench for io_uring fixed (direct) descriptors vs normal fds (issue 18).
// Two threads, each its own ring (SINGLE_ISSUER | COOP_TASKRUN, registered ring fd, as loch's
// native ring), each holding PAIRS loopback TCP connection pairs (both ends in the same ring):
// a message goes a -> b, b's receive completes, b sends it back, and so on, one message in flight
// per pair. Per message: one receive completion and one send on the ring. Thread CPU time
// (CLOCK_THREAD_CPUTIME_ID: user + the kernel work run in the thread, io_uring's inline issue and
// task work) over messages is the result.
// Modes: normal fds, or fixed: the sockets registered in the ring's file table and their fds
// closed (what accept/socket direct leaves), every SQE with IOSQE_FIXED_FILE.
// Receive: multishot with a provided-buffer ring (loch's RECV_MULTI: the file is taken once, when
// armed) or one-shot (a file lookup per receive, like the send).
// A third kind, "nop-send": batches of 64 zero-byte sends on idle sockets, nothing else: the file
// lookup's share of a bare op.
// Build: cc -O2 -Wall -o relay relay.c -luring -lpthread
// Run:   ./relay ROUNDS SECONDS [PAIRS] [SIZE]   (rotates the 6 configurations each round)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { KIND_MULTI = 0, KIND_ONESHOT = 1, KIND_NOPSEND = 2 };
static const char* kind_name[] = {"recv-multishot", "recv-oneshot", "nop-send"};

static int PAIRS = 32;
static int SIZE = 64;
static double SECONDS = 2;
#define NBUF 256
#define BUFSZ 2048

static void die(const char* what, int err) {
  fprintf(stderr, "%s: %s\n", what, strerror(err < 0 ? -err : err));
  exit(1);
}

static double now_thread(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}
static double now_mono(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

struct job {
  int fixed, kind, port;
  double cpu;
  unsigned long msgs;
};

// user_data: op << 32 | conn
enum { U_RECV = 1, U_SEND = 2 };

static void* run(void* p) {
  struct job* j = p;
  int n = 2 * PAIRS;
  int* fds = calloc(n, sizeof(int));
  // Connect PAIRS pairs through a listener of this thread.
  int lst = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(lst, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(lst, (struct sockaddr*)&a, sizeof a) != 0) die("bind", errno);
  socklen_t al = sizeof a;
  getsockname(lst, (struct sockaddr*)&a, &al);  // an ephemeral port
  listen(lst, 1024);
  for (int i = 0; i < PAIRS; i++) {
    fds[2 * i] = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fds[2 * i], (struct sockaddr*)&a, sizeof a) != 0) die("connect", errno);
    fds[2 * i + 1] = accept(lst, NULL, NULL);
    setsockopt(fds[2 * i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fds[2 * i + 1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  close(lst);
  struct io_uring r;
  struct io_uring_params prm = {0};
  prm.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
  prm.cq_entries = 1024;
  int ret = io_uring_queue_init_params(256, &r, &prm);
  if (ret) die("queue_init", ret);
  io_uring_register_ring_fd(&r);
  // The file of conn i: its fd, or (fixed) its slot i with the fd closed.
  int* file = calloc(n, sizeof(int));
  if (j->fixed) {
    ret = io_uring_register_files(&r, fds, n);
    if (ret) die("register_files", ret);
    for (int i = 0; i < n; i++) {
      close(fds[i]);
      file[i] = i;
    }
  } else
    for (int i = 0; i < n; i++) file[i] = fds[i];
  unsigned char flag = j->fixed ? IOSQE_FIXED_FILE : 0;
  char* bufs = aligned_alloc(4096, (size_t)NBUF * BUFSZ);
  struct io_uring_buf_ring* br = NULL;
  if (j->kind == KIND_MULTI) {
    // liburing 2.3 has no io_uring_setup_buf_ring: map and register it here.
    br = mmap(NULL, NBUF * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (br == MAP_FAILED) die("mmap", errno);
    io_uring_buf_ring_init(br);
    struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)br, .ring_entries = NBUF, .bgid = 0};
    ret = io_uring_register_buf_ring(&r, &reg, 0);
    if (ret) die("register_buf_ring", ret);
    for (int b = 0; b < NBUF; b++) io_uring_buf_ring_add(br, bufs + (size_t)b * BUFSZ, BUFSZ, b, NBUF - 1, b);
    io_uring_buf_ring_advance(br, NBUF);
  }
  char* msg = calloc(1, SIZE);
  char* own = calloc(n, BUFSZ);  // one-shot receive buffers
#define ARM_RECV(i)                                                                  \
  do {                                                                               \
    struct io_uring_sqe* s = io_uring_get_sqe(&r);                                   \
    if (j->kind == KIND_MULTI) {                                                     \
      io_uring_prep_recv_multishot(s, file[i], NULL, 0, 0);                          \
      s->flags |= IOSQE_BUFFER_SELECT;                                               \
      s->buf_group = 0;                                                              \
    } else                                                                           \
      io_uring_prep_recv(s, file[i], own + (size_t)(i) * BUFSZ, BUFSZ, 0);           \
    s->flags |= flag;                                                                \
    io_uring_sqe_set_data64(s, ((unsigned long long)U_RECV << 32) | (unsigned)(i)); \
  } while (0)
#define SEND(i, len)                                                                 \
  do {                                                                               \
    struct io_uring_sqe* s = io_uring_get_sqe(&r);                                   \
    io_uring_prep_send(s, file[i], msg, (len), MSG_NOSIGNAL);                        \
    s->flags |= flag;                                                                \
    io_uring_sqe_set_data64(s, ((unsigned long long)U_SEND << 32) | (unsigned)(i)); \
  } while (0)

  unsigned long msgs = 0;
  double t0 = 0, c0 = 0, end = 0;
  int measuring = 0;
  double start = now_mono();
  if (j->kind == KIND_NOPSEND) {
    // Batches of n zero-byte sends: nothing moves, each op is the file lookup plus a send's shell.
    for (;;) {
      for (int i = 0; i < n; i++) SEND(i, 0);
      io_uring_submit_and_wait(&r, n);
      struct io_uring_cqe* cqe;
      unsigned head, cnt = 0;
      io_uring_for_each_cqe(&r, head, cqe) {
        if (cqe->res < 0) die("send0", cqe->res);
        cnt++;
      }
      io_uring_cq_advance(&r, cnt);
      msgs += cnt;
      double t = now_mono();
      if (!measuring && t - start > 0.3) {
        measuring = 1;
        msgs = 0;
        c0 = now_thread();
        t0 = t;
        end = t + SECONDS;
      } else if (measuring && t >= end)
        break;
    }
  } else {
    for (int i = 0; i < n; i++) ARM_RECV(i);
    for (int p = 0; p < PAIRS; p++) SEND(2 * p, SIZE);
    for (;;) {
      io_uring_submit_and_wait(&r, 1);
      struct io_uring_cqe* cqe;
      unsigned head, cnt = 0;
      io_uring_for_each_cqe(&r, head, cqe) {
        cnt++;
        unsigned op = cqe->user_data >> 32, i = (unsigned)cqe->user_data;
        if (op == U_SEND) {
          if (cqe->res != SIZE) die("send", cqe->res < 0 ? cqe->res : -EIO);
          continue;
        }
        if (cqe->res <= 0) die("recv", cqe->res == 0 ? -EPIPE : cqe->res);
        if (cqe->res != SIZE) die("recv: a split message", EIO);
        if (j->kind == KIND_MULTI) {
          unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
          io_uring_buf_ring_add(br, bufs + (size_t)bid * BUFSZ, BUFSZ, bid, NBUF - 1, 0);
          io_uring_buf_ring_advance(br, 1);
          if (!(cqe->flags & IORING_CQE_F_MORE)) ARM_RECV(i);
        } else
          ARM_RECV(i);
        msgs++;
        SEND(i ^ 1, SIZE);  // back to the other end of the pair
      }
      io_uring_cq_advance(&r, cnt);
      double t = now_mono();
      if (!measuring && t - start > 0.3) {
        measuring = 1;
        msgs = 0;
        c0 = now_thread();
        t0 = t;
        end = t + SECONDS;
      } else if (measuring && t >= end)
        break;
    }
  }
  j->cpu = now_thread() - c0;
  j->msgs = msgs;
  (void)t0;
  io_uring_queue_exit(&r);
  if (!j->fixed)
    for (int i = 0; i < n; i++) close(fds[i]);
  free(fds);
  free(file);
  free(bufs);
  free(msg);
  free(own);
  return NULL;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int rounds = argc > 1 ? atoi(argv[1]) : 4;
  SECONDS = argc > 2 ? atof(argv[2]) : 2;
  if (argc > 3) PAIRS = atoi(argv[3]);
  if (argc > 4) SIZE = atoi(argv[4]);
  printf("relay: 2 threads x %d pairs (%d connections), %d B messages, %g s a reading, %d rounds\n", PAIRS,
         4 * PAIRS, SIZE, SECONDS, rounds);
  enum { NCONF = 6 };
  double ns[NCONF][64];
  int port = 42000;
  for (int rd = 0; rd < rounds; rd++) {
    for (int k = 0; k < NCONF; k++) {
      int c = (k + rd) % NCONF;  // rotated order
      int fixed = c & 1, kind = c >> 1;
      struct job jobs[2] = {{fixed, kind, port++}, {fixed, kind, port++}};
      pthread_t t[2];
      for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, run, &jobs[i]);
      for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
      double cpu = jobs[0].cpu + jobs[1].cpu;
      unsigned long m = jobs[0].msgs + jobs[1].msgs;
      ns[c][rd] = cpu * 1e9 / m;
      printf("round %d %-14s %-6s: %8.1f ns CPU a message (%lu messages, %.2f s CPU)\n", rd, kind_name[kind],
             fixed ? "fixed" : "normal", ns[c][rd], m, cpu);
    }
  }
  printf("\nmedians (ns thread CPU a message; per op for nop-send)\n");
  for (int kind = 0; kind < 3; kind++) {
    double med[2], d[64];
    for (int fixed = 0; fixed < 2; fixed++) {
      double v[64];
      memcpy(v, ns[kind * 2 + fixed], rounds * sizeof(double));
      qsort(v, rounds, sizeof(double), cmp);
      med[fixed] = v[rounds / 2];
    }
    for (int rd = 0; rd < rounds; rd++) d[rd] = ns[kind * 2][rd] - ns[kind * 2 + 1][rd];
    qsort(d, rounds, sizeof(double), cmp);
    printf("%-14s normal %8.1f  fixed %8.1f  saved %6.1f ns (%.1f%%); per-round saving min %.1f median %.1f max %.1f\n",
           kind_name[kind], med[0], med[1], med[0] - med[1], 100 * (med[0] - med[1]) / med[0], d[0], d[rounds / 2],
           d[rounds - 1]);
  }
  return 0;
}
