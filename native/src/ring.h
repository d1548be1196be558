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
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ring_fd_set.h"
#include "tls_engine.h"

namespace v8 {
class Isolate;
}

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
  OP_PROVIDE = 13,      // aux: buffer id returned to the provided-buffer ring (aux2 1: released, kept out); no SQE, no completion
  OP_POLL = 14,         // fd, aux: poll mask (POLLIN/POLLOUT); one-shot, res = revents
  OP_TLS_CLOSE_NOTIFY = 15,  // fd, aux2: TLS conn + 1; completes (res 0) once close_notify was sent
  OP_PLAIN_RELEASE = 16,     // aux: plaintext buffer id back to the ring's free list (aux2 1: released by its reader, kept off the list); no completion
  OP_RECV_SELECT = 17,       // fd, len: one recv of at most len bytes into a provided buffer; aux as RECV_MULTI
                             // (OP_RECV takes aux too: a TLS conn + 1, its ciphertext fed to the session)
  // Direct descriptors (init's directFiles; bench/http-proxy/direct-descriptors-2026-12-07.md).
  // A record whose op word carries IOSQE_FIXED_FILE (1 << 8) names a slot of the ring's table in
  // `fd`: CLOSE then closes the slot (close direct), CANCEL_FD cancels by slot.
  OP_ACCEPT_DIRECT = 18,     // fd: listener; accepts into a free slot of the table (res: the slot). aux 0: one-shot,
                             // buf (len bytes, a multiple of 4): the peer's sockaddr, then its length (the last 4
                             // bytes, native-endian socklen_t); aux 1: multishot, no address
  // 19: SOCKET direct (connect direct, a later slice).
  OP_SETSOCKOPT = 20,        // fd (a slot with the FIXED bit), aux: level, aux2: optname, len: the int value (URING_CMD, 6.7+)
};

// IORING_OP_FIXED_FD_INSTALL (Linux 6.8; newer than liburing 2.3's header): a real descriptor
// for a direct slot, sharing its file (Ring::DirectAddress).
constexpr int kOpFixedFdInstall = 54;
// SOCKET_URING_OP_SETSOCKOPT (Linux 6.7), the URING_CMD's cmd_op.
constexpr unsigned kSocketCmdSetsockopt = 3;

// Completion flags the ring adds (above the kernel's IORING_CQE_F_* bits) on a TLS stream's recv.
// kCqeFPlain: the buffer id in flags >> 16 is a plaintext buffer (OP_PLAIN_RELEASE returns it).
constexpr uint32_t kCqeFPlain = 1u << 8;
// kCqeFTlsEvent: res holds TLS FeedFlags (handshake just done, peer closed, new session, failed).
constexpr uint32_t kCqeFTlsEvent = 1u << 9;
// High half of the user_data of the ring's own TLS sends (low half: the conn id); never reported.
constexpr uint32_t kTlsSendTag = 0xfffffffeu;
// Conns per page of published sent counts (Ring::TlsSentPage; TLS_SENT_PAGE in
// packages/uring-runtime/src/uring/tls-sent.ts: keep the two in step).
constexpr uint32_t kTlsSentPage = 1024;

// An allocator whose resize() leaves new bytes uninitialized. A TLS conn's output is sized to
// the encryption bound and then written by OpenSSL: value-initializing it zero-filled every
// response first (a memset as long as the response, measured at a fifth of the in-ring
// encryption's instructions for 64 KB bodies).
template <typename T>
struct UninitAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitAllocator<U>;
  };
  UninitAllocator() = default;
  template <typename U>
  UninitAllocator(const UninitAllocator<U>&) noexcept {}
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
using ByteBuffer = std::vector<unsigned char, UninitAllocator<unsigned char>>;

// A TLS session carried by a stream of the ring (in-ring TLS): received ciphertext is fed to it
// in the completion drain, writes are encrypted into `out` when their record is prepared, and the
// ring sends `out` itself (one send in flight per conn, so records leave in order); a write whose
// conn has nothing queued is sent at once from the thread's hot buffer (Ring::SendHot).
struct TlsConn {
  std::shared_ptr<tls::TlsSession> session;
  int fd = -1;
  uint32_t id = 0;
  uint32_t gen = 0;
  // Ciphertext queued behind the send in flight; the send in flight reads sendBuf from sendHead
  // (never reallocated while the kernel reads it).
  ByteBuffer out;
  ByteBuffer sendBuf;
  size_t sendHead = 0;
  bool sending = false;
  int32_t sendError = 0;
  // Bytes ever queued and sent: a write completes once `sent` reaches its end offset.
  uint64_t queued = 0;
  uint64_t sent = 0;
  struct Wait {
    uint64_t end;
    uint32_t slot;
    int32_t res;
  };
  std::deque<Wait> waits;
  int32_t recvSlot = -1;  // the armed recv feeding this session, or -1
  // The armed recv as prepared (user_data included), to cancel it and to submit it again after a
  // pause; `recvTaken`: ciphertext bytes it received so far (its byte limit counts them).
  io_uring_sqe recvSqe{};
  uint32_t recvTaken = 0;
  // Starved with this much ciphertext held, the recv is stopped (TCP backpressure) until the
  // session went on: `pausing` while its cancel is in flight, `paused` once the kernel let go of
  // it (recvSlot stays armed for JavaScript; ResumeStarved submits recvSqe again).
  bool pausing = false;
  bool paused = false;
  bool starved = false;   // stopped for want of plaintext buffers, input held in the session
  bool closed = false;    // its fd was closed: freed once no send is in flight
  int reported = 0;       // one-time events already reported (peer closed, failed)
  uint32_t plainHeld = 0;  // plaintext buffers lent to this conn's reader and not released
  // The recv's end (EOF or error) that arrived while plaintext still waited in the session: told
  // after that plaintext (recvSlot stays set until then).
  bool endPending = false;
  int32_t endRes = 0;
  uint32_t endFlags = 0;
};

// user_data of SQEs whose completions are not reported to JS (cancel requests, link timeouts).
constexpr uint64_t kIgnoreUserData = ~0ull;
// user_data of Ring::DirectAddress's install, whose CQE it takes itself (never reported).
constexpr uint64_t kInstallUserData = ~1ull;

// What only some ops keep until their final CQE: a send's or connect's pinned buffers (napi
// references, when the caller does not pin them itself), a writev's vectors and msghdr, a
// timeout's timespec. Taken from the ring's spares by the ops that need it (Ring::OpOf) and given
// back when the op's slot is released, so the slot of an armed receive (most of a server's slots:
// one per idle connection) carries none of it: issue 18, 152 -> 32 bytes per armed receive.
struct SlotOp {
  std::vector<napi_ref> refs;  // pinned typed arrays
  std::vector<iovec> iov;      // writev vectors (a TLS write's plaintext pieces)
  msghdr msg{};                // sendmsg header for writev
  __kernel_timespec ts{};      // timeout / link timeout
  int optval = 0;              // a setsockopt's value
};

// A slot's SlotOp (null: none). Converts to the op's vectors: ring_tls.cc takes a TLS write's
// pieces as `s.iov`, after Prep attached the SlotOp.
struct SlotOpRef {
  SlotOp* op;
  operator std::vector<iovec>&() const { return op->iov; }
};

// Per op slot: what native must keep alive until the slot's final CQE. Kept small: a server
// holds one per armed receive, that is per idle connection.
struct Slot {
  int32_t err = 0;                // validation error reported instead of the CQE's res
  uint8_t op = OP_NOP;
  bool inFlight = false;
  uint32_t tls = 0;     // RECV_MULTI of a TLS stream: conn id + 1 (0: plain)
  uint32_t tlsGen = 0;  // the conn's generation (ids are reused)
  // A TLS stream's RECV into a JavaScript heap buffer (its base read while the kernel's ring is
  // empty): the ciphertext is read there instead of in a provided buffer.
  unsigned char* tlsHeap = nullptr;
  // The op's SlotOp, if it needs one; `iov` is the same handle under the name ring_tls.cc uses.
  union {
    SlotOpRef extra{nullptr};
    SlotOpRef iov;
  };
};

class Ring;

// The ring's libuv handles, in their own allocation: libuv may finish closing them after the
// Ring is gone. An async cleanup hook (napi_add_async_cleanup_hook) keeps the environment from
// tearing down, and the addon from being unloaded, until every close callback has run:
// otherwise a terminated worker's loop would call into unmapped code.
// `poll`: the ring fd. `check` and `idle`: the flush of records JavaScript queued this turn
// (Ring::ArmFlush): the check handle runs it after the poll phase, the idle handle keeps the
// poll phase from blocking when it was armed before it (a timer's records).
struct PollBox {
  uv_poll_t poll;
  uv_check_t check;
  uv_idle_t idle;
  Ring* ring = nullptr;  // cleared when the ring lets go of the box
  napi_env env = nullptr;
  napi_async_cleanup_hook_handle hook = nullptr;
  bool closing = false;
  int open = 0;  // handles not closed yet: the box goes with the last close callback
};

class Ring {
 public:
  // Creates the ring; returns 0 or -errno (and a message in *why).
  int Init(Napi::Env env, const Napi::CallbackInfo& info, std::string* why);
  int Submit(Napi::Env env, int32_t n, Napi::Value bufs, bool drain);
  // What submit's `bufs` is: nothing, the records' lone buffer itself (index 0), or an array of them.
  enum class BufsKind : int32_t { kNone = 0, kView = 1, kArray = 2 };
  // submitShared(bufs): Submit with n, drain and what `bufs` is read from init's submitArgs (an
  // Int32Array JavaScript writes before the call: [n, drain (0 | 1), BufsKind]), not from napi
  // arguments. -EINVAL when init got no submitArgs.
  int SubmitShared(napi_env env, napi_value bufs);
  void Destroy(Napi::Env env);
  Napi::Object Describe(Napi::Env env) const;
  // { slots, slotBytes, ops, opBytes, opsHeld }: the op table's native memory now (slots and
  // SlotOps made, their sizes, SlotOps held by slots). The function `slotMemory` of Describe's
  // object calls it.
  Napi::Object SlotMemory(Napi::Env env) const;
  bool alive() const { return alive_; }
  // Socket and pipe descriptors this environment created and has not closed: closed when the
  // ring is destroyed or the environment (a worker, say) goes away, so nothing leaks.
  void Track(int fd) { fds_.insert(fd); }
  void Untrack(int fd) { fds_.erase(fd); }
  void CloseOwnedFds();
  // The address of direct slot `slot`'s socket (the peer's, or its own): a real descriptor for
  // the slot (IORING_OP_FIXED_FD_INSTALL, completed inline by the submit: its CQE is taken out of
  // the CQ here and never reported), getpeername/getsockname, close. The one place a direct
  // socket gets an fd (6.18 has no getsockname by URING_CMD). 0, or -errno.
  int DirectAddress(int slot, bool peer, sockaddr_storage* ss, socklen_t* len);
  // Ends every owned socket now, whatever holds it open (a pending operation of the ring keeps a
  // reference to its file, so close() alone ends nothing until that is cancelled): shutdown(2)
  // both ways, so a connection's peer gets its FIN at once (after what was queued to it) and a
  // listener leaves its SO_REUSEPORT group at once (its not-yet-accepted connections migrate to
  // another listener of the group with net.ipv4.tcp_migrate_req=1, else they are reset). The
  // descriptors stay open (CloseOwnedFds closes them). For a dying environment (a worker that
  // crashed): its peers learn at once instead of after the teardown. Returns how many it ended.
  int ShutdownOwnedFds();
  // In-ring TLS: carries `session` on the stream `fd` (conn id, or -errno). A client's first
  // flight is queued at once (sent with the next flush).
  int TlsAttach(int fd, std::shared_ptr<tls::TlsSession> session);
  // In-ring TLS: JavaScript hands the ring `counts`, a Float64Array of kTlsSentPage entries, for
  // conns [page * kTlsSentPage, (page + 1) * kTlsSentPage): the ring keeps each conn's ciphertext
  // sent count there (PublishSent), so a stream's write progress (ByteStream.sentBytes, read by
  // every write deadline's arm) is a memory read, not a crossing. 0, or -EINVAL.
  int TlsSentPage(uint32_t page, Napi::Value counts);
  // Completion callbacks into JavaScript so far (the crossing counter, with submits).
  double callbacks = 0;
  // The flush callback given to init (`onFlush`) runs once in this loop iteration's check phase
  // (the next iteration's if the check phase is running or over), as a setImmediate would, without
  // node's Immediate: one per loop turn in 'immediate' flush mode (bench/thrift/
  // readings-2026-12-05c.md, section 3). 0, or -EBADF without a ring or an onFlush.
  int ArmFlush();

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnCheck(uv_check_t* handle);
  static void OnTeardown(napi_async_cleanup_hook_handle hook, void* arg);
  void ClosePoll();
  size_t Drain();  // CQEs into the shared array; returns records written
  size_t Reserve() const;  // records kept free per CQE for what a TLS stream's CQE becomes
  void UpdateRef();
  int SubmitKnown(Napi::Env env, int32_t n, Napi::Value bufs, BufsKind kind, uint32_t nbufs, bool drain);
  void Prep(Napi::Env env, const int32_t* r, Napi::Value bufs, uint32_t nbufs);
  io_uring_sqe* Sqe();
  bool Pin(Napi::Env env, Slot& slot, Napi::Value bufs, uint32_t nbufs, int32_t index, void** data, size_t* len);
  void Release(Napi::Env env, uint32_t slot);
  Slot& SlotAt(uint32_t index);
  // The slot's SlotOp, taken from the spares (or made) when it has none yet.
  SlotOp& OpOf(Slot& slot);
  void RegisterDirectFiles(uint32_t want);
  void SetupBufRing(Napi::Env env, Napi::Value pool, uint32_t count, uint32_t size, uint32_t published);
  void SetupPlainPool(Napi::Value pool, uint32_t count, uint32_t size, uint32_t published);
  void Emit(size_t* n, int32_t slot, int32_t res, uint32_t flags);
  void Wake();
  TlsConn* ConnAt(uint32_t tag, uint32_t gen, int fd);
  // Prep's in-ring TLS steps (ring_tls.cc): a plaintext buffer back, a cancel that may reach a
  // TLS recv, the conn of a closing fd, a multishot recv that feeds conn `tag` - 1.
  void ReleasePlain(uint32_t id, bool keep);
  void CancelTlsRecv(int op, int fd, int32_t slot);
  void CloseTlsConn(int fd);
  void ArmTlsRecv(Slot& s, int fd, uint32_t tag, uint32_t slotIndex, uint64_t userData, io_uring_sqe* sqe);
  void PrepTls(Napi::Env env, const int32_t* r, int op, uint32_t slotIndex, Napi::Value bufs, uint32_t nbufs);
  void PauseRecv(TlsConn* c);
  void ResumeRecv(TlsConn* c, size_t* n);
  void TlsRecv(TlsConn* c, uint32_t slot, int32_t res, uint32_t flags, size_t* n);
  // `own` (may be null): the buffer `data` came in (a provided buffer `ownBid`, or a heap recv's
  // when ownBid is kNoBid), which a reader holding no plaintext gets its records decrypted into
  // when the pool has none for it. True when it did (the buffer is then lent, not given back).
  bool FeedConn(TlsConn* c, uint32_t slot, const unsigned char* data, size_t len, size_t* n, int* events,
                unsigned char* own = nullptr, size_t ownCap = 0, uint32_t ownBid = 0);
  void ReleaseOwnBuffer(uint32_t bid);
  void ReportEvents(TlsConn* c, uint32_t slot, int events, size_t* n);
  void TakeConnOutput(TlsConn* c);
  void KickSend(TlsConn* c);
  // PrepTls's path for a write whose conn has nothing queued: sealed into the thread's hot buffer
  // and sent with send(2) at once, the rest (a full socket) queued in `out`. False when the
  // session failed; a failed send sets sendError.
  bool SendHot(TlsConn* c, const iovec* pieces, size_t count, size_t cap);
  void OnTlsSend(uint32_t id, int32_t res, size_t* n);
  void CompleteWrite(int32_t slot, int32_t res, size_t* n);
  void FailWaits(TlsConn* c, int32_t res, size_t* n = nullptr);
  void CompleteWaits(TlsConn* c, size_t* n = nullptr);
  void ResumeStarved(size_t* n);
  void FreeConn(TlsConn* c);
  // Writes conn `id`'s ciphertext sent count into its page, if JavaScript handed that page over.
  void PublishSent(uint32_t id, uint64_t sent);

  io_uring ring_{};
  bool alive_ = false;
  unsigned flags_ = 0;
  unsigned features_ = 0;
  napi_env env_ = nullptr;
  PollBox* box_ = nullptr;
  Napi::FunctionReference callback_;
  Napi::FunctionReference flushCallback_;  // init's onFlush (empty: none)
  bool flushArmed_ = false;
  // init's flushWant (an Int32Array of one; absent: null), ring.ts's FLUSH_*: kFlushNone while
  // the armed flush has nothing to do (its completion callback flushed already), and OnCheck then
  // makes no call into JavaScript (no callback scope); kFlushNow: OnCheck calls the flush;
  // kFlushNext: the flush is for the next loop iteration's check phase.
  static constexpr int32_t kFlushNone = 0;
  static constexpr int32_t kFlushNow = 1;
  static constexpr int32_t kFlushNext = 2;
  int32_t* flushWant_ = nullptr;
  Napi::Reference<Napi::Int32Array> flushWantRef_;
  Napi::ObjectReference receiver_;
  // init's submitArgs (an Int32Array of at least 3; absent: null): SubmitShared's arguments.
  int32_t* submitArgs_ = nullptr;
  Napi::Reference<Napi::Int32Array> submitArgsRef_;
  Napi::Reference<Napi::Int32Array> sqRef_, cqRef_;
  napi_async_context asyncContext_ = nullptr;
  int32_t* sq_ = nullptr;
  size_t sqCap_ = 0;
  int32_t* cq_ = nullptr;
  size_t cqCap_ = 0;
  // A deque: growing it never moves a Slot (Prep holds a Slot& while it works).
  std::deque<Slot> slots_;
  // Every SlotOp made (a deque: SQEs already prepared point into them, at timespecs and msghdrs,
  // until the kernel has read them) and those no slot holds now. As many as ops that needed one
  // were in flight at once, not one per slot.
  std::deque<SlotOp> ops_;
  std::vector<SlotOp*> spareOps_;
  // Provided-buffer ring (group 0).
  io_uring_buf_ring* bufRing_ = nullptr;
  size_t bufRingBytes_ = 0;
  Napi::Reference<Napi::Uint8Array> poolRef_;
  uint8_t* pool_ = nullptr;
  uint32_t bufCount_ = 0, bufSize_ = 0;
  // Buffers put in the kernel's ring at setup (the rest wait in JavaScript for budget room).
  uint32_t bufPublished_ = 0;
  int bufPending_ = 0;  // buffers added since the last advance
  size_t inFlight_ = 0;
  bool refed_ = false;
  // JS keeps op buffers reachable until their final completion (init option callerPins): no
  // napi reference per op.
  bool callerPins_ = false;
  // This Submit's `bufs` is a lone typed array (its index 0), not an array of them: a hidden
  // argument of Pin, set by Submit, so Pin may be called only inside Submit (its Prep loop and
  // PrepTls, which make no JavaScript call).
  bool bufsView_ = false;
  // The environment's isolate (OnPoll opens a V8 handle scope in it).
  v8::Isolate* isolate_ = nullptr;
  // IORING_SETUP_DEFER_TASKRUN experiment: the registered eventfd polled instead of the ring fd.
  bool defer_ = false;
  // io_uring_register_ring_fd took (enters skip the ring fd's fget).
  bool registeredRing_ = false;
  int efd_ = -1;
  FdSet fds_;  // ring_fd_set.h
  // The direct descriptor table: its size (0: none) and why it was refused (-errno; 0: not asked
  // or registered), and the slots accepts filled and no close direct emptied (ShutdownOwnedFds).
  uint32_t directFiles_ = 0;
  int directError_ = 0;
  bool directInstall_ = false;  // IORING_OP_FIXED_FD_INSTALL supported (6.8)
  FdSet direct_;
  // (slot, res) of ops that complete without a CQE of their own (no SQE; TLS writes once their
  // records were sent), reported first by the next drain, in order.
  std::deque<std::pair<int32_t, int32_t>> synthetic_;
  // In-ring TLS: conns by id (reused through freeConns_), by fd, and the plaintext pool (a JS
  // Uint8Array of plainCount_ * plainSize_ bytes, pinned until Destroy) with its free ids.
  std::vector<std::unique_ptr<TlsConn>> conns_;
  std::vector<uint32_t> freeConns_;
  std::unordered_map<int, uint32_t> connByFd_;
  uint32_t connGen_ = 0;
  Napi::Reference<Napi::Uint8Array> plainRef_;
  unsigned char* plain_ = nullptr;
  uint32_t plainCount_ = 0, plainSize_ = 0;
  std::vector<uint32_t> plainFree_;
  uint32_t plainPublished_ = 0;  // ids put on the free list at setup (JavaScript keeps the rest)
  // Per plaintext buffer lent: the conn (id, generation) it went to, so its release is counted.
  std::vector<std::pair<uint32_t, uint32_t>> plainOwner_;
  // Per provided buffer: the TLS conn whose reader it was lent to as plaintext (FeedConn's own
  // buffer), so OP_PROVIDE counts its release; empty until the first such loan.
  std::vector<std::pair<uint32_t, uint32_t>> bidOwner_;
  std::vector<uint32_t> starved_;  // conn ids waiting for plaintext buffers
  // Pages of published sent counts (TlsSentPage): JavaScript's Float64Arrays, pinned until Destroy.
  std::vector<Napi::Reference<Napi::Float64Array>> sentRefs_;
  std::vector<double*> sentPages_;
  bool wake_ = false;              // a drain has work without a CQE (starved conns to resume)
};

// The ring of the calling environment (created on first use; defined in addon.cc).
Ring& RingOf(Napi::Env env);

}  // namespace loch
