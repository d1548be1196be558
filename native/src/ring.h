// The per-environment io_uring ring: batched submission from a shared Int32Array of op records,
// batched completion drain into a shared Int32Array, buffer pinning per op slot, and the
// provided-buffer ring for multishot recv. Not for socket setup (net.h) or module glue (addon.cc).
// The record format is documented in native/README.md and mirrored in
// packages/uring-runtime/src/uring/records.ts; keep the three in step.
#pragma once
#include <liburing.h>
#include <napi.h>
#include <uv.h>

#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_set>
#include <vector>

namespace loch {

// Submission record: kSqStride int32 per op.
constexpr int kSqStride = 8;
enum SqField { F_OP = 0, F_FD = 1, F_SLOT = 2, F_GEN = 3, F_LEN = 4, F_BUF = 5, F_AUX = 6, F_AUX2 = 7 };
// Completion record: kCqStride int32 per CQE: slot, res, flags.
constexpr int kCqStride = 3;

// Opcodes of the record format (low 8 bits of F_OP; bits 8..15 are extra SQE flags).
enum Op : int32_t {
  OP_NOP = 0,
  OP_ACCEPT_MULTI = 1,  // fd: listener
  OP_CONNECT = 2,       // fd, buf: sockaddr bytes, len: addrlen, aux: timeout ms (0 = none)
  OP_RECV_MULTI = 3,    // fd; buffers from the provided-buffer ring
  OP_RECV = 4,          // fd, buf, len: into the caller's buffer
  OP_SEND = 5,          // fd, buf, len, aux: MSG_* flags (MSG_NOSIGNAL always added)
  OP_WRITEV = 6,        // fd, buf: first index, aux: count
  OP_SPLICE = 7,        // fd: in, aux: out, len
  OP_SHUTDOWN = 8,      // fd, aux: how
  OP_CLOSE = 9,         // fd
  OP_TIMEOUT = 10,      // aux: milliseconds
  OP_CANCEL = 11,       // aux: target slot, aux2: target generation; no completion reported
  OP_CANCEL_FD = 12,    // fd: every op on it; no completion reported
  OP_PROVIDE = 13,      // aux: buffer id returned to the provided-buffer ring; no SQE, no completion
  OP_POLL = 14,         // fd, aux: poll mask (POLLIN/POLLOUT); one-shot, res = revents
};

// user_data of SQEs whose completions are not reported to JS (cancel requests, link timeouts).
constexpr uint64_t kIgnoreUserData = ~0ull;

// Per op slot: what native must keep alive until the slot's final CQE.
struct Slot {
  std::vector<napi_ref> refs;     // pinned typed arrays
  std::vector<iovec> iov;         // writev vectors
  msghdr msg{};                   // sendmsg header for writev
  __kernel_timespec ts{};         // timeout / link timeout
  int32_t err = 0;                // validation error reported instead of the CQE's res
  bool inFlight = false;
  int32_t op = OP_NOP;
};

class Ring;

// The uv_poll handle on the ring fd, in its own allocation: libuv may finish closing it after
// the Ring is gone. An async cleanup hook (napi_add_async_cleanup_hook) keeps the environment
// from tearing down, and the addon from being unloaded, until the close callback has run:
// otherwise a terminated worker's loop would call into unmapped code.
struct PollBox {
  uv_poll_t poll;
  Ring* ring = nullptr;  // cleared when the ring lets go of the box
  napi_env env = nullptr;
  napi_async_cleanup_hook_handle hook = nullptr;
  bool closing = false;
};

class Ring {
 public:
  // Creates the ring; returns 0 or -errno (and a message in *why).
  int Init(Napi::Env env, const Napi::CallbackInfo& info, std::string* why);
  int Submit(Napi::Env env, int32_t n, Napi::Value bufs, bool drain);
  void Destroy(Napi::Env env);
  Napi::Object Describe(Napi::Env env) const;
  bool alive() const { return alive_; }
  // Socket and pipe descriptors this environment created and has not closed: closed when the
  // ring is destroyed or the environment (a worker, say) goes away, so nothing leaks.
  void Track(int fd) { fds_.insert(fd); }
  void Untrack(int fd) { fds_.erase(fd); }
  void CloseOwnedFds();

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnTeardown(napi_async_cleanup_hook_handle hook, void* arg);
  void ClosePoll();
  size_t Drain();  // CQEs into the shared array; returns records written
  void UpdateRef();
  void Prep(Napi::Env env, const int32_t* r, Napi::Value bufs, uint32_t nbufs);
  io_uring_sqe* Sqe();
  bool Pin(Napi::Env env, Slot& slot, Napi::Value bufs, uint32_t nbufs, int32_t index, void** data, size_t* len);
  void Release(Napi::Env env, uint32_t slot);
  Slot& SlotAt(uint32_t index);
  void SetupBufRing(Napi::Env env, Napi::Value pool, uint32_t count, uint32_t size);

  io_uring ring_{};
  bool alive_ = false;
  unsigned flags_ = 0;
  unsigned features_ = 0;
  napi_env env_ = nullptr;
  PollBox* box_ = nullptr;
  Napi::FunctionReference callback_;
  Napi::ObjectReference receiver_;
  Napi::Reference<Napi::Int32Array> sqRef_, cqRef_;
  napi_async_context asyncContext_ = nullptr;
  int32_t* sq_ = nullptr;
  size_t sqCap_ = 0;
  int32_t* cq_ = nullptr;
  size_t cqCap_ = 0;
  // A deque: growing it never moves a Slot, and SQEs already prepared point into Slots
  // (timespecs, msghdr) until the kernel has read them.
  std::deque<Slot> slots_;
  // Provided-buffer ring (group 0).
  io_uring_buf_ring* bufRing_ = nullptr;
  size_t bufRingBytes_ = 0;
  Napi::Reference<Napi::Uint8Array> poolRef_;
  uint8_t* pool_ = nullptr;
  uint32_t bufCount_ = 0, bufSize_ = 0;
  int bufPending_ = 0;  // buffers added since the last advance
  size_t inFlight_ = 0;
  bool refed_ = false;
  // JS keeps op buffers reachable until their final completion (init option callerPins): no
  // napi reference per op.
  bool callerPins_ = false;
  // IORING_SETUP_DEFER_TASKRUN experiment: the registered eventfd polled instead of the ring fd.
  bool defer_ = false;
  int efd_ = -1;
  std::unordered_set<int> fds_;
  std::vector<int32_t> synthetic_;  // (slot, res) pairs for ops that got no SQE
};

// The ring of the calling environment (created on first use; defined in addon.cc).
Ring& RingOf(Napi::Env env);

}  // namespace loch
