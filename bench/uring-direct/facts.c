// Facts about io_uring direct (registered) descriptors on this machine (issue 18):
//  1. the largest sparse file table one ring registers, and whether 3 rings in 3 threads of one
//     process each get one that large (RLIMIT_NOFILE is checked per registration, per ring);
//  2. accepting more connections than RLIMIT_NOFILE into direct slots across rings, with the
//     clients in separate processes (each under the limit), and what fd-table tools then see;
//  3. what a direct descriptor can do without a real fd: TCP_NODELAY inherited from the
//     listener, setsockopt/getsockopt by SOCKET_URING_OP_*, getpeername's substitute, and
//     IORING_OP_FIXED_FD_INSTALL (a real fd back when one is needed), close direct.
// Build: cc -O2 -Wall -o facts facts.c -luring -lpthread
// Run:   ./facts table            (part 1)
//        ./facts accept RINGS PER_RING CLIENT_PROCS   (part 2, e.g. 3 19990 4)
//        ./facts ops              (part 3)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

// Opcodes and commands newer than liburing 2.3's headers (kernel uapi numbers).
#define OP_FIXED_FD_INSTALL 54  // 6.8
#define SOCK_OP_SIOCINQ 0
#define SOCK_OP_GETSOCKOPT 2  // 6.7
#define SOCK_OP_SETSOCKOPT 3  // 6.7
#define SOCK_OP_GETSOCKNAME 4  // newer kernels only: probed

static void die(const char* what, int err) {
  fprintf(stderr, "%s: %s\n", what, strerror(err < 0 ? -err : err));
  exit(1);
}

static long rlim_soft(void) {
  struct rlimit r;
  getrlimit(RLIMIT_NOFILE, &r);
  return (long)r.rlim_cur;
}

static int count_fds(void) {
  DIR* d = opendir("/proc/self/fd");
  int n = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1;  // the DIR's own fd
}

// ---- part 1 ----
static unsigned largest_sparse(void) {
  unsigned lo = 0, hi = 1u << 21;  // IORING_MAX_FIXED_FILES is 1 << 20
  while (lo + 1 < hi) {
    unsigned mid = lo + (hi - lo) / 2;
    struct io_uring r;
    if (io_uring_queue_init(8, &r, 0) != 0) die("queue_init", errno);
    int ret = io_uring_register_files_sparse(&r, mid);
    io_uring_queue_exit(&r);
    if (ret == 0) lo = mid;
    else hi = mid;
  }
  return lo;
}

struct table_arg {
  unsigned n;
  int ret;
  pthread_barrier_t* bar;
};
static void* table_thread(void* p) {
  struct table_arg* a = p;
  struct io_uring r;
  io_uring_queue_init(8, &r, 0);
  a->ret = io_uring_register_files_sparse(&r, a->n);
  pthread_barrier_wait(a->bar);  // all three tables exist at once
  pthread_barrier_wait(a->bar);
  io_uring_queue_exit(&r);
  return NULL;
}

static int part_table(void) {
  printf("RLIMIT_NOFILE soft %ld\n", rlim_soft());
  unsigned big = largest_sparse();
  printf("largest sparse table one ring registers: %u\n", big);
  {
    struct io_uring r;
    io_uring_queue_init(8, &r, 0);
    int ret = io_uring_register_files_sparse(&r, big + 1);
    printf("register_files_sparse(%u): %s\n", big + 1, ret == 0 ? "ok" : strerror(-ret));
    io_uring_queue_exit(&r);
  }
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, 4);
  pthread_t t[3];
  struct table_arg a[3];
  for (int i = 0; i < 3; i++) {
    a[i] = (struct table_arg){big, -1, &bar};
    pthread_create(&t[i], NULL, table_thread, &a[i]);
  }
  pthread_barrier_wait(&bar);
  for (int i = 0; i < 3; i++) printf("thread %d ring: sparse %u -> %s\n", i, big, a[i].ret == 0 ? "ok" : strerror(-a[i].ret));
  printf("process fds while 3 tables of %u are registered: %d\n", big, count_fds());
  pthread_barrier_wait(&bar);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  // The limit is read at registration: a lower soft limit refuses a larger table, and a table
  // registered before the limit was lowered stays.
  struct io_uring r;
  io_uring_queue_init(8, &r, 0);
  io_uring_register_files_sparse(&r, big);
  struct rlimit lim;
  getrlimit(RLIMIT_NOFILE, &lim);
  struct rlimit low = {1024, lim.rlim_max};
  if (setrlimit(RLIMIT_NOFILE, &low) != 0) die("setrlimit", errno);
  printf("soft limit now %ld\n", rlim_soft());
  struct io_uring r2;
  io_uring_queue_init(8, &r2, 0);
  int ret = io_uring_register_files_sparse(&r2, 2048);
  printf("soft limit 1024: liburing register sparse 2048 -> %s, soft limit after: %ld (liburing raises the soft"
         " limit toward the hard one on EMFILE and retries); the %u table registered before stays\n",
         ret == 0 ? "ok" : strerror(-ret), rlim_soft(), big);
  setrlimit(RLIMIT_NOFILE, &low);
  struct io_uring_rsrc_register reg = {.nr = 2048, .flags = IORING_RSRC_REGISTER_SPARSE};
  struct io_uring r3;
  io_uring_queue_init(8, &r3, 0);
  ret = io_uring_register(r3.ring_fd, IORING_REGISTER_FILES2, &reg, sizeof reg);
  // liburing's io_uring_register returns -errno itself.
  printf("soft limit 1024, raw IORING_REGISTER_FILES2 sparse 2048 -> %s (the kernel checks the soft limit)\n",
         ret >= 0 ? "ok" : strerror(-ret));
  io_uring_queue_exit(&r3);
  setrlimit(RLIMIT_NOFILE, &lim);
  io_uring_queue_exit(&r2);
  io_uring_queue_exit(&r);
  return 0;
}

// ---- part 2 ----
static int listen_on(int port, int nodelay) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (nodelay) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(fd, (struct sockaddr*)&a, sizeof a) != 0) die("bind", errno);
  if (listen(fd, 4096) != 0) die("listen", errno);
  return fd;
}

struct acc_arg {
  int listener;
  unsigned table;
  unsigned target;
  atomic_uint accepted;
  atomic_uint refused;  // -ENFILE: table full
  int ring_fd;
  volatile int stop;
};

static void* acc_thread(void* p) {
  struct acc_arg* a = p;
  struct io_uring r;
  if (io_uring_queue_init(64, &r, 0) != 0) die("queue_init", errno);
  a->ring_fd = r.ring_fd;
  int ret = io_uring_register_files_sparse(&r, a->table);
  if (ret != 0) die("register sparse", ret);
  int armed = 0;
  while (!a->stop) {
    if (!armed) {
      struct io_uring_sqe* sqe = io_uring_get_sqe(&r);
      io_uring_prep_multishot_accept_direct(sqe, a->listener, NULL, NULL, 0);
      io_uring_submit(&r);
      armed = 1;
    }
    struct io_uring_cqe* cqe;
    struct __kernel_timespec ts = {0, 100 * 1000 * 1000};
    if (io_uring_wait_cqe_timeout(&r, &cqe, &ts) != 0) continue;
    if (cqe->res >= 0) atomic_fetch_add(&a->accepted, 1);
    else if (cqe->res == -ENFILE) atomic_fetch_add(&a->refused, 1);
    else fprintf(stderr, "accept: %s\n", strerror(-cqe->res));
    if (!(cqe->flags & IORING_CQE_F_MORE)) armed = 0;
    io_uring_cqe_seen(&r, cqe);
    if (atomic_load(&a->refused) > 0) usleep(100000);  // a full table: do not spin
  }
  // Closing the ring drops every direct descriptor (the table goes with it).
  io_uring_queue_exit(&r);
  return NULL;
}

static void client(int ports, int base, unsigned n, int done_fd) {
  int* fds = malloc(n * sizeof(int));
  for (unsigned i = 0; i < n; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fds[i] < 0) die("client socket", errno);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(base + (int)(i % ports)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fds[i], (struct sockaddr*)&a, sizeof a) != 0) die("client connect", errno);
  }
  char c = 1;
  if (write(done_fd, &c, 1) != 1) die("write", errno);
  pause();  // hold them until killed
  exit(0);
}

static int part_accept(int rings, unsigned per_ring, int procs) {
  int base = 41000;
  unsigned total = rings * per_ring;
  printf("RLIMIT_NOFILE soft %ld; %d rings x %u direct slots; %d client processes x %u connections\n",
         rlim_soft(), rings, per_ring, procs, total / procs);
  struct acc_arg* a = calloc(rings, sizeof *a);
  pthread_t* t = calloc(rings, sizeof *t);
  for (int i = 0; i < rings; i++) {
    a[i].listener = listen_on(base + i, 1);
    a[i].table = per_ring;
    pthread_create(&t[i], NULL, acc_thread, &a[i]);
  }
  int pipefd[2];
  if (pipe(pipefd) != 0) die("pipe", errno);
  pid_t* kids = calloc(procs, sizeof *kids);
  for (int k = 0; k < procs; k++) {
    kids[k] = fork();
    if (kids[k] == 0) {
      close(pipefd[0]);
      client(rings, base, total / procs, pipefd[1]);
    }
  }
  close(pipefd[1]);
  for (int k = 0; k < procs; k++) {
    char c;
    if (read(pipefd[0], &c, 1) != 1) die("a client failed", EIO);
  }
  // Let the accepts catch up.
  for (int w = 0; w < 100; w++) {
    unsigned got = 0;
    for (int i = 0; i < rings; i++) got += atomic_load(&a[i].accepted);
    if (got >= total) break;
    usleep(100000);
  }
  unsigned got = 0;
  for (int i = 0; i < rings; i++) {
    printf("ring %d: %u accepted into direct slots, %u refused (ENFILE)\n", i, atomic_load(&a[i].accepted),
           atomic_load(&a[i].refused));
    got += atomic_load(&a[i].accepted);
  }
  printf("total connections held by this process: %u (limit %ld); its fd table: %d entries\n", got, rlim_soft(),
         count_fds());
  char cmd[512];
  printf("--- ss -tn state established sport range %d-%d: count, and with -p (process names come from /proc/PID/fd)\n",
         base, base + rings - 1);
  snprintf(cmd, sizeof cmd,
           "ss -Htn state established '( sport >= :%d and sport <= :%d )' | wc -l; "
           "ss -Htnp state established '( sport >= :%d and sport <= :%d )' | grep -c 'pid=%d'",
           base, base + rings - 1, base, base + rings - 1, getpid());
  fflush(stdout);
  if (system(cmd) < 0) perror("system");
  printf("--- /proc/self/fdinfo of ring 0 (fd %d): its table\n", a[0].ring_fd);
  snprintf(cmd, sizeof cmd, "grep -E '^(UserFiles|UserBufs)' /proc/%d/fdinfo/%d; grep -c 'socket:' /proc/%d/fdinfo/%d",
           getpid(), a[0].ring_fd, getpid(), a[0].ring_fd);
  fflush(stdout);
  if (system(cmd) < 0) perror("system");
  snprintf(cmd, sizeof cmd, "grep -E 'VmRSS' /proc/%d/status; grep -E '^(sockets|TCP):' /proc/net/sockstat", getpid());
  fflush(stdout);
  if (system(cmd) < 0) perror("system");
  for (int k = 0; k < procs; k++) kill(kids[k], SIGKILL);
  for (int k = 0; k < procs; k++) waitpid(kids[k], NULL, 0);
  for (int i = 0; i < rings; i++) a[i].stop = 1;
  for (int i = 0; i < rings; i++) pthread_join(t[i], NULL);
  return got >= total ? 0 : 1;
}

// ---- part 3 ----
static struct io_uring_cqe* one(struct io_uring* r) {
  struct io_uring_cqe* cqe;
  io_uring_submit(r);
  int ret = io_uring_wait_cqe(r, &cqe);
  if (ret != 0) die("wait_cqe", ret);
  return cqe;
}

static void prep_sock_cmd(struct io_uring_sqe* sqe, unsigned op, int slot, int level, int optname, void* val,
                          unsigned len) {
  io_uring_prep_rw(IORING_OP_URING_CMD, sqe, slot, NULL, 0, 0);
  sqe->off = op;  // cmd_op: low 32 bits of off
  sqe->addr = (unsigned long long)(unsigned)level | ((unsigned long long)(unsigned)optname << 32);
  sqe->splice_fd_in = (int)len;  // optlen
  sqe->addr3 = (unsigned long long)(uintptr_t)val;  // optval
  sqe->flags |= IOSQE_FIXED_FILE;
}

static int part_ops(void) {
  struct io_uring_probe* probe = io_uring_get_probe();
  printf("probe: SOCKET %d, URING_CMD %d, FIXED_FD_INSTALL(54) %d, SEND_ZC %d\n",
         io_uring_opcode_supported(probe, IORING_OP_SOCKET), io_uring_opcode_supported(probe, IORING_OP_URING_CMD),
         probe->last_op >= OP_FIXED_FD_INSTALL && (probe->ops[OP_FIXED_FD_INSTALL].flags & IO_URING_OP_SUPPORTED),
         io_uring_opcode_supported(probe, IORING_OP_SEND_ZC));
  struct io_uring r;
  io_uring_queue_init(16, &r, 0);
  int ret = io_uring_register_files_sparse(&r, 64);
  if (ret) die("sparse", ret);
  int lst = listen_on(41100, 1);
  int cl = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons(41100), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_in peer;
  socklen_t plen = sizeof peer;
  // One-shot accept direct with the peer's address (multishot accept cannot return addresses).
  struct io_uring_sqe* sqe = io_uring_get_sqe(&r);
  // liburing 2.3's prep_accept_direct adds 1 to the index it is given (its multishot and socket
  // helpers subtract it first): ALLOC must be passed as ALLOC - 1 there (fixed in later liburing).
  io_uring_prep_accept_direct(sqe, lst, (struct sockaddr*)&peer, &plen, 0, IORING_FILE_INDEX_ALLOC - 1);
  io_uring_submit(&r);
  if (connect(cl, (struct sockaddr*)&la, sizeof la) != 0) die("connect", errno);
  struct io_uring_cqe* cqe;
  io_uring_wait_cqe(&r, &cqe);
  int slot = cqe->res;
  io_uring_cqe_seen(&r, cqe);
  char ip[64];
  inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
  printf("accept direct (alloc): slot %d, peer from the accept SQE %s:%d; process fds %d\n", slot, ip,
         ntohs(peer.sin_port), count_fds());

  // getsockopt TCP_NODELAY on the direct slot: inherited from the listener?
  int val = -1;
  sqe = io_uring_get_sqe(&r);
  prep_sock_cmd(sqe, SOCK_OP_GETSOCKOPT, slot, IPPROTO_TCP, TCP_NODELAY, &val, sizeof val);
  cqe = one(&r);
  printf("URING_CMD GETSOCKOPT TCP_NODELAY on the direct slot: res %d, value %d (listener had TCP_NODELAY set)\n",
         cqe->res, val);
  io_uring_cqe_seen(&r, cqe);
  int one_ = 1;
  sqe = io_uring_get_sqe(&r);
  prep_sock_cmd(sqe, SOCK_OP_SETSOCKOPT, slot, SOL_SOCKET, SO_KEEPALIVE, &one_, sizeof one_);
  cqe = one(&r);
  printf("URING_CMD SETSOCKOPT SO_KEEPALIVE on the direct slot: res %d\n", cqe->res);
  io_uring_cqe_seen(&r, cqe);
  // getsockname/getpeername by uring cmd (op 4, newer kernels): probed.
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  sqe = io_uring_get_sqe(&r);
  io_uring_prep_rw(IORING_OP_URING_CMD, sqe, slot, NULL, 0, 0);
  sqe->off = SOCK_OP_GETSOCKNAME;
  sqe->addr = (unsigned long long)(uintptr_t)&ss;
  sqe->addr3 = (unsigned long long)(uintptr_t)&sl;
  sqe->splice_fd_in = 1;  // peer
  sqe->flags |= IOSQE_FIXED_FILE;
  cqe = one(&r);
  printf("URING_CMD op 4 (GETSOCKNAME, peer): res %d (%s)\n", cqe->res, cqe->res < 0 ? strerror(-cqe->res) : "ok");
  io_uring_cqe_seen(&r, cqe);

  // recv + send on the direct slot.
  if (write(cl, "ping", 4) != 4) die("write", errno);
  char buf[16];
  sqe = io_uring_get_sqe(&r);
  io_uring_prep_recv(sqe, slot, buf, sizeof buf, 0);
  sqe->flags |= IOSQE_FIXED_FILE;
  cqe = one(&r);
  printf("recv on the direct slot: %d bytes\n", cqe->res);
  io_uring_cqe_seen(&r, cqe);
  // Shutdown on a direct slot.
  // FIXED_FD_INSTALL: a real fd for the slot (for getpeername, the legacy driver, passing it on).
  sqe = io_uring_get_sqe(&r);
  io_uring_prep_rw(OP_FIXED_FD_INSTALL, sqe, slot, NULL, 0, 0);
  sqe->flags |= IOSQE_FIXED_FILE;
  sqe->rw_flags = 0;  // install_fd_flags (same word): 0: O_CLOEXEC; IORING_FIXED_FD_NO_CLOEXEC (1) to leave it off
  cqe = one(&r);
  int real = cqe->res;
  io_uring_cqe_seen(&r, cqe);
  struct sockaddr_in pa;
  socklen_t pal = sizeof pa;
  int gp = real >= 0 ? getpeername(real, (struct sockaddr*)&pa, &pal) : -1;
  printf("FIXED_FD_INSTALL: fd %d, getpeername %s port %d; process fds now %d\n", real, gp == 0 ? "ok" : "failed",
         gp == 0 ? ntohs(pa.sin_port) : -1, count_fds());
  int nd = -1;
  socklen_t ndl = sizeof nd;
  getsockopt(real, IPPROTO_TCP, TCP_NODELAY, &nd, &ndl);
  printf("TCP_NODELAY on the accepted socket (set only on the listener): %d\n", nd);
  int ka = -1;
  sqe = io_uring_get_sqe(&r);
  prep_sock_cmd(sqe, SOCK_OP_GETSOCKOPT, slot, SOL_SOCKET, SO_KEEPALIVE, &ka, sizeof ka);
  cqe = one(&r);
  printf("URING_CMD GETSOCKOPT SOL_SOCKET SO_KEEPALIVE on the slot: res %d, value %d\n", cqe->res, ka);
  io_uring_cqe_seen(&r, cqe);
  // The slot and the fd share one file: a send on the fd, then close the slot, the fd still works.
  sqe = io_uring_get_sqe(&r);
  io_uring_prep_close_direct(sqe, slot);
  cqe = one(&r);
  printf("close direct slot %d: res %d\n", slot, cqe->res);
  io_uring_cqe_seen(&r, cqe);
  ssize_t w = write(real, "pong", 4);
  char rb[8];
  ssize_t rd = read(cl, rb, sizeof rb);
  printf("after close direct, the installed fd still sends: write %zd, peer read %zd\n", w, rd);
  close(real);
  rd = read(cl, rb, sizeof rb);
  printf("after closing the installed fd too, the peer reads %zd (EOF)\n", rd);

  // IORING_OP_SOCKET direct + connect on the slot (the upstream side).
  sqe = io_uring_get_sqe(&r);
  io_uring_prep_socket_direct_alloc(sqe, AF_INET, SOCK_STREAM, 0, 0);
  cqe = one(&r);
  int up = cqe->res;
  io_uring_cqe_seen(&r, cqe);
  sqe = io_uring_get_sqe(&r);
  io_uring_prep_connect(sqe, up, (struct sockaddr*)&la, sizeof la);
  sqe->flags |= IOSQE_FIXED_FILE;
  cqe = one(&r);
  printf("SOCKET direct (alloc): slot %d; CONNECT on it: res %d\n", up, cqe->res);
  io_uring_cqe_seen(&r, cqe);
  sqe = io_uring_get_sqe(&r);
  io_uring_prep_shutdown(sqe, up, SHUT_WR);
  sqe->flags |= IOSQE_FIXED_FILE;
  cqe = one(&r);
  printf("SHUTDOWN on a direct slot: res %d\n", cqe->res);
  io_uring_cqe_seen(&r, cqe);
  // Allocation range: slots handed out by ALLOC can be confined (IORING_REGISTER_FILE_ALLOC_RANGE),
  // leaving the rest for fixed placement.
  ret = io_uring_register_file_alloc_range(&r, 32, 32);
  printf("register_file_alloc_range(32, 32): %d\n", ret);
  sqe = io_uring_get_sqe(&r);
  io_uring_prep_socket_direct_alloc(sqe, AF_INET, SOCK_STREAM, 0, 0);
  cqe = one(&r);
  printf("next SOCKET direct alloc lands in slot %d\n", cqe->res);
  io_uring_cqe_seen(&r, cqe);
  io_uring_queue_exit(&r);
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  alarm(120);  // never left hanging
  if (argc >= 2 && strcmp(argv[1], "table") == 0) return part_table();
  if (argc >= 5 && strcmp(argv[1], "accept") == 0) return part_accept(atoi(argv[2]), (unsigned)atoi(argv[3]), atoi(argv[4]));
  if (argc >= 2 && strcmp(argv[1], "ops") == 0) return part_ops();
  fprintf(stderr, "usage: facts table | accept RINGS PER_RING PROCS | ops\n");
  return 2;
}
