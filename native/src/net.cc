// Socket setup helpers (see net.h). Failures return { errno, syscall } instead of throwing, so
// the TypeScript driver builds its typed RuntimeError with the address it knows.
#include "net.h"

#include "ring.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace loch {
namespace {

Napi::Value Failure(Napi::Env env, int err, const char* syscall) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("errno", Napi::Number::New(env, err));
  o.Set("syscall", Napi::String::New(env, syscall));
  return o;
}

// Parses an IP literal into a sockaddr; false when `host` is not one.
bool ParseIp(const std::string& host, int port, sockaddr_storage* ss, socklen_t* len) {
  std::memset(ss, 0, sizeof *ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(ss);
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

bool ParseUnix(const std::string& path, sockaddr_storage* ss, socklen_t* len) {
  std::memset(ss, 0, sizeof *ss);
  auto* un = reinterpret_cast<sockaddr_un*>(ss);
  if (path.empty() || path.size() >= sizeof un->sun_path) return false;
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return true;
}

Napi::Value DescribeAddress(Napi::Env env, const sockaddr_storage& ss, socklen_t len) {
  Napi::Object o = Napi::Object::New(env);
  char text[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
    o.Set("family", "ipv4");
    o.Set("address", text);
    o.Set("port", Napi::Number::New(env, ntohs(a->sin_port)));
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
    o.Set("family", "ipv6");
    o.Set("address", text);
    o.Set("port", Napi::Number::New(env, ntohs(a->sin6_port)));
  } else {
    auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
    size_t max = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    o.Set("family", "unix");
    o.Set("path", std::string(un->sun_path, strnlen(un->sun_path, max)));
  }
  return o;
}

// Binds and listens `fd`: returns it, or -errno with `*failed` naming the syscall (and closes it).
int BindAndListen(int fd, const sockaddr_storage& ss, socklen_t len, int backlog, const char** failed) {
  if (bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0) *failed = "bind";
  else if (listen(fd, backlog) != 0) *failed = "listen";
  else return fd;
  int e = errno;
  close(fd);
  return -e;
}

// A listening TCP socket (SO_REUSEADDR; SO_REUSEPORT when asked; IPV6_V6ONLY on or off for IPv6):
// the fd, or -errno with `*failed` naming the syscall. `host` must be an IP literal (JS resolves
// names). Shared by listenTcp (the ring's listeners) and openTcpListener (Node's). `noDelay`:
// TCP_NODELAY on the listener itself, which every socket it accepts inherits on Linux (the
// accepted socket is a clone of the listener's: tcp_create_openreq_child copies the flag), so the
// ring's accepts need no setsockopt each (issue 18; bench/http-proxy/direct-descriptors-2026-12-07.md).
int OpenTcpListener(const std::string& host, int port, int backlog, bool reusePort, bool v6only, bool noDelay,
                    const char** failed) {
  sockaddr_storage ss;
  socklen_t len;
  *failed = "bind";
  if (!ParseIp(host, port, &ss, &len)) return -EINVAL;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *failed = "socket";
    return -errno;
  }
  int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reusePort && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int e = errno;
    close(fd);
    *failed = "setsockopt";
    return -e;
  }
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only ? &one : &zero, sizeof one);
  if (noDelay && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    // The runtime marks every accepted stream no-delay on the strength of this: never a guess.
    int e = errno;
    close(fd);
    *failed = "setsockopt";
    return -e;
  }
  return BindAndListen(fd, ss, len, backlog, failed);
}

int OpenTcpListener(const Napi::CallbackInfo& info, bool noDelay, const char** failed) {
  return OpenTcpListener(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Number>().Int32Value(),
                         info[2].As<Napi::Number>().Int32Value(), info[3].ToBoolean().Value(),
                         info[4].ToBoolean().Value(), noDelay, failed);
}

// listenTcp(host, port, backlog, reusePort, ipv6Only) -> fd | { errno, syscall }. The fd is this
// environment's: closed at teardown unless closeFd() or a CLOSE record closed it first. TCP_NODELAY
// is set on it: the ring's streams are no-delay, and its accepted sockets inherit the flag.
Napi::Value ListenTcp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* failed = nullptr;
  int fd = OpenTcpListener(info, true, &failed);
  if (fd < 0) return Failure(env, -fd, failed);
  RingOf(env).Track(fd);
  return Napi::Number::New(env, fd);
}

// openTcpListener(host, port, backlog, reusePort, ipv6Only) -> fd | { errno, syscall }. Like
// listenTcp, but the fd is not tracked: it is for `net.Server.listen({ fd })`, after which libuv
// owns and closes it (tracking it would close a number libuv may have reused). No TCP_NODELAY:
// node:net's sockets keep Node's own default.
Napi::Value OpenTcpListenerForNode(const Napi::CallbackInfo& info) {
  const char* failed = nullptr;
  int fd = OpenTcpListener(info, false, &failed);
  if (fd < 0) return Failure(info.Env(), -fd, failed);
  return Napi::Number::New(info.Env(), fd);
}

// listenUnix(path, backlog) -> fd | { errno, syscall }
Napi::Value ListenUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int backlog = info[1].As<Napi::Number>().Int32Value();
  sockaddr_storage ss;
  socklen_t len;
  if (!ParseUnix(path, &ss, &len)) return Failure(env, ENAMETOOLONG, "bind");
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Failure(env, errno, "socket");
  const char* failed = nullptr;
  fd = BindAndListen(fd, ss, len, backlog, &failed);
  if (fd < 0) return Failure(env, -fd, failed);
  RingOf(env).Track(fd);
  return Napi::Number::New(env, fd);
}

// socket(family: 4 | 6 | 0 for unix) -> fd | { errno, syscall }
Napi::Value Socket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family = info[0].As<Napi::Number>().Int32Value();
  int domain = family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNIX;
  int fd = socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Failure(env, errno, "socket");
  RingOf(env).Track(fd);
  return Napi::Number::New(env, fd);
}

Napi::Value ToBytes(Napi::Env env, const sockaddr_storage& ss, socklen_t len) {
  Napi::Uint8Array out = Napi::Uint8Array::New(env, len);
  std::memcpy(out.Data(), &ss, len);
  return out;
}

// encodeIp(host, port) -> Uint8Array (a sockaddr_in/_in6) | null when host is no IP literal
Napi::Value EncodeIp(const Napi::CallbackInfo& info) {
  sockaddr_storage ss;
  socklen_t len;
  if (!ParseIp(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Number>().Int32Value(), &ss, &len))
    return info.Env().Null();
  return ToBytes(info.Env(), ss, len);
}

// encodeUnix(path) -> Uint8Array (a sockaddr_un) | null when the path does not fit
Napi::Value EncodeUnix(const Napi::CallbackInfo& info) {
  sockaddr_storage ss;
  socklen_t len;
  if (!ParseUnix(info[0].As<Napi::String>().Utf8Value(), &ss, &len)) return info.Env().Null();
  return ToBytes(info.Env(), ss, len);
}

// address(fd, peer) -> SocketAddress | { errno, syscall }
Napi::Value Address(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  bool peer = info[1].ToBoolean().Value();
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int r = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
               : getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (r != 0) return Failure(env, errno, peer ? "getpeername" : "getsockname");
  return DescribeAddress(env, ss, len);
}

// describeSockaddr(bytes) -> SocketAddress | null: what address() makes of a sockaddr (its text
// by inet_ntop), for bytes from elsewhere (encodeIp's, a direct accept's); null for a buffer
// shorter than its family's sockaddr, or another family than IPv4, IPv6 and Unix. Tests hold
// the runtime's JavaScript decoding to it.
Napi::Value DescribeSockaddr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto bytes = info[0].As<Napi::Uint8Array>();
  sockaddr_storage ss{};
  size_t len = std::min(bytes.ByteLength(), sizeof ss);
  std::memcpy(&ss, bytes.Data(), len);
  bool whole = len >= sizeof(sa_family_t) &&
               ((ss.ss_family == AF_INET && len >= sizeof(sockaddr_in)) ||
                (ss.ss_family == AF_INET6 && len >= sizeof(sockaddr_in6)) || ss.ss_family == AF_UNIX);
  if (!whole) return env.Null();
  return DescribeAddress(env, ss, static_cast<socklen_t>(len));
}

// directAddress(slot, peer) -> SocketAddress | { errno, syscall }: the address of a socket in
// this thread's ring's direct table (Ring::DirectAddress: a real fd for a moment).
Napi::Value DirectAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int slot = info[0].As<Napi::Number>().Int32Value();
  bool peer = info[1].ToBoolean().Value();
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int r = RingOf(env).DirectAddress(slot, peer, &ss, &len);
  if (r != 0) return Failure(env, -r, peer ? "getpeername" : "getsockname");
  return DescribeAddress(env, ss, len);
}

// setSockOpt(fd, level, optname, value) -> 0 | -errno: setsockopt with an int value, the one
// way the runtime sets a socket option on a descriptor (TCP_NODELAY, SO_RCVLOWAT, ...; the
// level and option numbers come from the caller). A direct slot's goes by an OP_SETSOCKOPT record.
Napi::Value SetSockOpt(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  int level = info[1].As<Napi::Number>().Int32Value();
  int optname = info[2].As<Napi::Number>().Int32Value();
  int value = info[3].As<Napi::Number>().Int32Value();
  int r = setsockopt(fd, level, optname, &value, sizeof value);
  return Napi::Number::New(info.Env(), r == 0 ? 0 : -errno);
}

// noDelay(fd) -> 1 | 0 | -errno: TCP_NODELAY as the kernel has it (tests: an accepted socket
// inherits the listener's).
Napi::Value NoDelay(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  int on = 0;
  socklen_t len = sizeof on;
  int r = getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len);
  return Napi::Number::New(info.Env(), r == 0 ? (on != 0 ? 1 : 0) : -errno);
}

// pipe(sizeBytes?) -> [readFd, writeFd] | { errno, syscall }. Both ends are O_NONBLOCK (the
// splice pump never waits on the pipe); sizeBytes > 0 asks F_SETPIPE_SZ (best effort: a refusal,
// e.g. above /proc/sys/fs/pipe-max-size, keeps the default 64 KiB).
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return Failure(env, errno, "pipe2");
  if (info.Length() > 0 && info[0].IsNumber()) {
    int size = info[0].As<Napi::Number>().Int32Value();
    if (size > 0) (void)fcntl(fds[1], F_SETPIPE_SZ, size);
  }
  RingOf(env).Track(fds[0]);
  RingOf(env).Track(fds[1]);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, fds[0]));
  out.Set(1u, Napi::Number::New(env, fds[1]));
  return out;
}

// closeFd(fd) -> 0 | -errno; for cleanup paths where no ring is available.
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  RingOf(info.Env()).Untrack(fd);
  int r = close(fd);
  return Napi::Number::New(info.Env(), r == 0 ? 0 : -errno);
}

// spliceNow(fdIn, fdOut, len) -> bytes moved | 0 at end of stream | -errno. One splice(2) with
// SPLICE_F_NONBLOCK | SPLICE_F_MOVE, on this thread: for O_NONBLOCK sockets and pipes only, where it
// returns -EAGAIN instead of waiting (the caller polls through the ring and tries again).
Napi::Value SpliceNow(const Napi::CallbackInfo& info) {
  int in = info[0].As<Napi::Number>().Int32Value();
  int out = info[1].As<Napi::Number>().Int32Value();
  int64_t len = info[2].As<Napi::Number>().Int64Value();
  if (len < 0) len = 0;
  ssize_t r;
  do {
    r = splice(in, nullptr, out, nullptr, static_cast<size_t>(len), SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
  } while (r < 0 && errno == EINTR);
  return Napi::Number::New(info.Env(), r >= 0 ? static_cast<double>(r) : -errno);
}

// setNonBlocking(fd, on) -> 0 | -errno (O_NONBLOCK on the open file description).
Napi::Value SetNonBlocking(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  bool on = info[1].ToBoolean().Value();
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return Napi::Number::New(info.Env(), -errno);
  int want = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (want != flags && fcntl(fd, F_SETFL, want) != 0) return Napi::Number::New(info.Env(), -errno);
  return Napi::Number::New(info.Env(), 0);
}

}  // namespace

void RegisterNet(Napi::Env env, Napi::Object exports) {
  exports.Set("listenTcp", Napi::Function::New(env, ListenTcp, "listenTcp"));
  exports.Set("openTcpListener", Napi::Function::New(env, OpenTcpListenerForNode, "openTcpListener"));
  exports.Set("listenUnix", Napi::Function::New(env, ListenUnix, "listenUnix"));
  exports.Set("socket", Napi::Function::New(env, Socket, "socket"));
  exports.Set("encodeIp", Napi::Function::New(env, EncodeIp, "encodeIp"));
  exports.Set("encodeUnix", Napi::Function::New(env, EncodeUnix, "encodeUnix"));
  exports.Set("address", Napi::Function::New(env, Address, "address"));
  exports.Set("directAddress", Napi::Function::New(env, DirectAddress, "directAddress"));
  exports.Set("describeSockaddr", Napi::Function::New(env, DescribeSockaddr, "describeSockaddr"));
  exports.Set("setSockOpt", Napi::Function::New(env, SetSockOpt, "setSockOpt"));
  exports.Set("noDelay", Napi::Function::New(env, NoDelay, "noDelay"));
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("spliceNow", Napi::Function::New(env, SpliceNow, "spliceNow"));
  exports.Set("setNonBlocking", Napi::Function::New(env, SetNonBlocking, "setNonBlocking"));
}

}  // namespace loch
