// Which io_uring setup lets a thread asleep in epoll be woken by a completion with one epoll
// wait and no EINTR (issues 15 and 18; bench/thrift/readings-2026-12-05d.md section 2)?
//
// The thread of the addon sleeps in libuv's epoll_pwait with the ring fd in its set; a socket's
// data arrives, io_uring queues the receive's completion as task work, and with
// IORING_SETUP_COOP_TASKRUN that epoll_pwait returns -1 EINTR (the task work's TIF_NOTIFY_SIGNAL)
// and libuv waits again to see the ring fd readable. This program is that loop without node: one
// echo connection on 127.0.0.1, the client (a thread of its own, blocking sockets) sleeping GAP_US
// after each echo so the server thread is asleep when every message arrives, and the server
// thread doing what libuv and the addon do, per ring setup MODE:
//   coop        SINGLE_ISSUER | COOP_TASKRUN | SUBMIT_ALL, the ring fd polled (the addon today)
//   coop-flag   the same + TASKRUN_FLAG
//   plain       no flags (task work signalled with an IPI)
//   coop-efd    coop, with an eventfd registered with the ring polled instead of the ring fd
//   defer-efd   SINGLE_ISSUER | DEFER_TASKRUN, an eventfd registered and polled, read, then
//               GETEVENTS (the addon's LOCH_URING_DEFER_TASKRUN=1 path)
//   defer-ring  SINGLE_ISSUER | DEFER_TASKRUN, the ring fd polled, then GETEVENTS
//   sqpoll      SQPOLL (completions posted by the kernel's SQ thread)
// Each wakeup: epoll_wait (timeout WAIT_MS; a wait that times out while a message is outstanding
// is a lost or late wakeup), drain the CQ, send the echo with io_uring (submit, then drain again
// as the addon's flush does). Counted by the program itself (load-insensitive): epoll waits,
// EINTRs, empty waits and timeouts, io_uring_enter calls, eventfd reads, per round trip; the
// client's mean round trip and the process's CPU per round trip (the client thread's included,
// alike in every mode) are printed too: times, only to see a wakeup that comes late or a mode that
// spins (SQPOLL's kernel thread is a thread of this process).
//
// Build and run: cc -O2 -o /tmp/wakeup-flags bench/runtime/wakeup-flags.c -luring -lpthread
//   /tmp/wakeup-flags MODE [rounds=2000] [gap_us=2000] [wait_ms=100]
// (`strace -f -c` of a run confirms the syscall counts; the program counts only its own calls.)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SIZE 64

static int rounds = 2000, gap_us = 2000, wait_ms = 100, port;
static double rtt_sum;

// The whole process's CPU (user + system, every thread: SQPOLL's kernel thread is one of them).
static double cpu(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char* what, int e) {
  fprintf(stderr, "%s: %s\n", what, strerror(e < 0 ? -e : e));
  exit(1);
}

static void* client(void* arg) {
  (void)arg;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
  if (connect(s, (struct sockaddr*)&a, sizeof a) < 0) die("connect", errno);
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char msg[SIZE], got[SIZE];
  memset(msg, 'x', sizeof msg);
  for (int i = 0; i < rounds; i++) {
    usleep(gap_us);
    double t0 = now();
    if (send(s, msg, SIZE, 0) != SIZE) die("send", errno);
    for (int n = 0; n < SIZE;) {
      ssize_t r = recv(s, got + n, SIZE - n, 0);
      if (r <= 0) die("recv", r < 0 ? errno : EPIPE);
      n += (int)r;
    }
    rtt_sum += now() - t0;
  }
  close(s);
  return NULL;
}

struct counts {
  long waits, eintr, empty, timeouts, enters, reads;
};

static struct counts c;
static struct io_uring ring;
static char rbuf[SIZE];
static int conn;

static int submit(int getevents) {
  c.enters++;
  int r = getevents ? io_uring_submit_and_get_events(&ring) : io_uring_submit(&ring);
  if (r < 0) die("submit", r);
  return r;
}

static void arm_recv(void) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  io_uring_prep_recv(sqe, conn, rbuf, SIZE, 0);
  io_uring_sqe_set_data64(sqe, 1);
}

// Reaps the CQ: a receive (user_data 1) queues its echo (user_data 2) and a new receive, as the
// runtime's echo does; returns 1 when the client closed.
static int drain(int* queued) {
  struct io_uring_cqe* cqe;
  unsigned head, seen = 0;
  int closed = 0;
  io_uring_for_each_cqe(&ring, head, cqe) {
    seen++;
    if (cqe->user_data == 1) {
      if (cqe->res <= 0) {
        closed = 1;
        continue;
      }
      struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      io_uring_prep_send(sqe, conn, rbuf, (unsigned)cqe->res, MSG_NOSIGNAL);
      io_uring_sqe_set_data64(sqe, 2);
      arm_recv();
      *queued = 1;
    }
  }
  io_uring_cq_advance(&ring, seen);
  return closed;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "coop";
  if (argc > 2) rounds = atoi(argv[2]);
  if (argc > 3) gap_us = atoi(argv[3]);
  if (argc > 4) wait_ms = atoi(argv[4]);
  struct io_uring_params p = {0};
  int defer = 0, use_efd = 0;
  if (!strcmp(mode, "coop")) {
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL;
  } else if (!strcmp(mode, "coop-flag")) {
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL |
              IORING_SETUP_TASKRUN_FLAG;
  } else if (!strcmp(mode, "plain")) {
    p.flags = 0;
  } else if (!strcmp(mode, "coop-efd")) {
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL;
    use_efd = 1;
  } else if (!strcmp(mode, "defer-efd")) {
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
    defer = use_efd = 1;
  } else if (!strcmp(mode, "defer-ring")) {
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
    defer = 1;
  } else if (!strcmp(mode, "sqpoll")) {
    p.flags = IORING_SETUP_SQPOLL;
    p.sq_thread_idle = 50;
  } else {
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }
  int e = io_uring_queue_init_params(64, &ring, &p);
  if (e < 0) die("io_uring_queue_init_params", e);

  int lst = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
  socklen_t al = sizeof a;
  if (bind(lst, (struct sockaddr*)&a, sizeof a) < 0 || listen(lst, 1) < 0) die("listen", errno);
  getsockname(lst, (struct sockaddr*)&a, &al);
  port = ntohs(a.sin_port);
  pthread_t t;
  pthread_create(&t, NULL, client, NULL);
  conn = accept(lst, NULL, NULL);
  if (conn < 0) die("accept", errno);
  int one = 1;
  setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  int efd = -1, pollfd = ring.ring_fd;
  if (use_efd) {
    efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if ((e = io_uring_register_eventfd(&ring, efd)) < 0) die("io_uring_register_eventfd", e);
    pollfd = efd;
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = pollfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, pollfd, &ev);

  arm_recv();
  submit(0);
  struct counts start = c;
  double cpu0 = cpu();
  int closed = 0;
  while (!closed) {
    struct epoll_event out[4];
    c.waits++;
    int n = epoll_wait(ep, out, 4, wait_ms);
    if (n < 0) {
      if (errno != EINTR) die("epoll_wait", errno);
      c.eintr++;
      continue;
    }
    if (n == 0) {
      c.empty++;
      // Whether anything was waiting when the wait ran out (a lost wakeup, found late).
      if (defer) {
        c.enters++;
        io_uring_get_events(&ring);
      }
      if (io_uring_cq_ready(&ring) > 0) c.timeouts++;
      else continue;
    }
    if (use_efd) {
      uint64_t v;
      c.reads++;
      if (read(efd, &v, sizeof v) < 0 && errno != EAGAIN) die("read", errno);
    }
    if (defer) {
      c.enters++;
      io_uring_get_events(&ring);
    }
    int queued = 0;
    closed = drain(&queued);
    // The flush: the echo and the next receive, then what completed at once (the send).
    if (queued) {
      submit(defer);
      closed |= drain(&queued);
    }
  }
  pthread_join(t, NULL);
  double cpu1 = cpu();
  double r = rounds;
  printf("%-10s per round trip: epoll waits %.3f (EINTR %.3f, empty %.3f, late %.3f), io_uring_enter %.3f, "
         "eventfd reads %.3f; setup flags 0x%x; client round trip %.1f us; process CPU %.1f us\n",
         mode, (c.waits - start.waits) / r, (c.eintr - start.eintr) / r, (c.empty - start.empty) / r,
         (c.timeouts - start.timeouts) / r, (c.enters - start.enters) / r, (c.reads - start.reads) / r, p.flags,
         rtt_sum / r * 1e6, (cpu1 - cpu0) / r * 1e6);
  io_uring_queue_exit(&ring);
  return 0;
}
