// Does a thread sleeping in epoll_wait (as libuv's loop does) wake when io_uring completes a
// receive for it, and how soon (issue 15: the wakeup's EINTR, DEFER_TASKRUN)? One RECV is armed
// on an idle socket, epoll waits (up to 2 s) on the fd the loop would poll, and another thread
// writes one byte 100 ms later; printed: what epoll_wait returned and how long after the write.
//   ring:  IORING_SETUP_DEFER_TASKRUN, epoll on the ring fd itself
//   efd:   IORING_SETUP_DEFER_TASKRUN, epoll on an eventfd registered with the ring
//   coop:  IORING_SETUP_COOP_TASKRUN (loch's ring), epoll on the ring fd
//   wait:  IORING_SETUP_DEFER_TASKRUN, the thread sleeps in io_uring_enter(GETEVENTS) instead,
//          with a POLL_ADD on the epoll fd (as libuv's backend fd would be); the receive wakes it
//   wait-epoll: the same, but the byte goes to a pipe in the epoll set: the POLL_ADD wakes it
// A second argument `tcp` uses a loopback TCP pair instead of a Unix socket pair. After the wait
// it runs the deferred work (GETEVENTS) and prints how many CQEs are then ready.
//
// Build and run: cc -O2 -o /tmp/wakeups-defer bench/thrift/wakeups-defer.c -luring -lpthread &&
//   for m in ring efd coop wait wait-epoll; do /tmp/wakeups-defer $m; /tmp/wakeups-defer $m tcp; done
// Findings on kernel 6.18: bench/thrift/readings-2026-12-06g.md, section 2.
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int writeFd;  // the socket's other end, or the pipe's write end (wait-epoll)
static double writtenAt;

static double nowMs(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void* writeLater(void* arg) {
  (void)arg;
  usleep(100000);
  writtenAt = nowMs();
  if (write(writeFd, "x", 1) != 1) perror("write");
  return NULL;
}

static void socketPair(int tcp, int sv[2]) {
  if (!tcp) {
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    return;
  }
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  bind(listener, (struct sockaddr*)&a, len);
  listen(listener, 1);
  getsockname(listener, (struct sockaddr*)&a, &len);
  sv[1] = socket(AF_INET, SOCK_STREAM, 0);
  connect(sv[1], (struct sockaddr*)&a, len);
  sv[0] = accept(listener, NULL, NULL);
  close(listener);
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "ring";
  int tcp = argc > 2 && strcmp(argv[2], "tcp") == 0;
  int coop = strcmp(mode, "coop") == 0;
  int sleepInRing = strncmp(mode, "wait", 4) == 0;
  int sv[2];
  socketPair(tcp, sv);
  writeFd = sv[1];
  int pipeFds[2];
  if (pipe(pipeFds) != 0) return 1;
  if (strcmp(mode, "wait-epoll") == 0) writeFd = pipeFds[1];

  struct io_uring ring;
  struct io_uring_params p = {0};
  p.flags = IORING_SETUP_SINGLE_ISSUER | (coop ? IORING_SETUP_COOP_TASKRUN : IORING_SETUP_DEFER_TASKRUN);
  int e = io_uring_queue_init_params(8, &ring, &p);
  if (e < 0) {
    printf("io_uring_queue_init: %s\n", strerror(-e));
    return 1;
  }
  int pollFd = ring.ring_fd;
  if (strcmp(mode, "efd") == 0) {
    pollFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    io_uring_register_eventfd(&ring, pollFd);
  }

  char buf[16];
  struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  io_uring_prep_recv(sqe, sv[0], buf, sizeof buf, 0);
  io_uring_submit(&ring);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN};
  epoll_ctl(ep, EPOLL_CTL_ADD, pollFd, &ev);
  struct epoll_event out;
  int probe = epoll_wait(ep, &out, 1, 0);  // libuv's idle-time probe; nothing is ready yet
  if (sleepInRing) {
    // The epoll fd (libuv's backend fd) watched by the ring: its other fds wake the ring's wait.
    struct epoll_event pe = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, pipeFds[0], &pe);
    sqe = io_uring_get_sqe(&ring);
    io_uring_prep_poll_add(sqe, ep, POLLIN);
    io_uring_sqe_set_data64(sqe, 2);
    io_uring_submit(&ring);
    pthread_t writer;
    pthread_create(&writer, NULL, writeLater, NULL);
    struct io_uring_cqe* cqe = NULL;
    struct __kernel_timespec ts = {2, 0};
    int w = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
    double after = nowMs() - writtenAt;
    printf("%s%s: io_uring_wait_cqe_timeout -> %d, first CQE user_data %llu res %d, %.3f ms after the write; "
           "CQEs ready: %u\n",
           mode, tcp ? "/tcp" : "", w, cqe ? (unsigned long long)cqe->user_data : 0ULL, cqe ? cqe->res : 0, after,
           io_uring_cq_ready(&ring));
    pthread_join(writer, NULL);
    io_uring_queue_exit(&ring);
    return 0;
  }

  pthread_t writer;
  pthread_create(&writer, NULL, writeLater, NULL);
  int r = epoll_wait(ep, &out, 1, 2000);
  int err = errno;
  double after = nowMs() - writtenAt;
  io_uring_get_events(&ring);
  printf("%s%s: probe %d; epoll_wait -> %d (%s) %.3f ms after the write; CQEs after GETEVENTS: %u\n", mode,
         tcp ? "/tcp" : "", probe, r, r < 0 ? strerror(err) : "ok", after, io_uring_cq_ready(&ring));
  pthread_join(writer, NULL);
  io_uring_queue_exit(&ring);
  return 0;
}
