// The per-environment io_uring ring (see ring.h). One Submit call per JS flush, one JS callback
// per drain; buffers pinned by napi references from submission to the op's final CQE.
#include "ring.h"

#include "callback_failure.h"

#include <v8.h>

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <algorithm>
#include <cstring>

namespace loch {

namespace {

uint32_t OptU32(Napi::Object o, const char* key, uint32_t fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : fallback;
}

// Tries the preferred setup flags first and falls back when the kernel refuses them (EINVAL).
int InitRing(unsigned entries, bool sqpoll, io_uring* ring, io_uring_params* out, bool defer = false) {
  if (defer && !sqpoll) {
    // Experiment (LOCH_URING_DEFER_TASKRUN=1): completions run as task work only when this thread
    // asks (GETEVENTS), announced through a registered eventfd; see native/README.md.
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
    p.cq_entries = entries * 4;
    if (io_uring_queue_init_params(entries, ring, &p) == 0) {
      *out = p;
      return 0;
    }
  }
  const unsigned normal[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
      IORING_SETUP_COOP_TASKRUN,
      0,
  };
  const unsigned polled[] = {
      IORING_SETUP_SQPOLL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_SUBMIT_ALL,
      IORING_SETUP_SQPOLL,
      0,
  };
  const unsigned* ladder = sqpoll ? polled : normal;
  int e = -EINVAL;
  for (int i = 0; i < 3; i++) {
    io_uring_params p{};
    p.flags = ladder[i] | IORING_SETUP_CQSIZE;
    p.cq_entries = entries * 4;
    if (p.flags & IORING_SETUP_SQPOLL) p.sq_thread_idle = 50;
    e = io_uring_queue_init_params(entries, ring, &p);
    if (e == 0) {
      *out = p;
      return 0;
    }
    if (e != -EINVAL) return e;
  }
  return e;
}

}  // namespace

int InitProbeRing(unsigned entries, io_uring* ring, io_uring_params* out) { return InitRing(entries, false, ring, out); }

Slot& Ring::SlotAt(uint32_t index) {
  if (index >= slots_.size()) slots_.resize(index + 64);
  return slots_[index];
}

SlotOp& Ring::OpOf(Slot& slot) {
  if (slot.extra.op != nullptr) return *slot.extra.op;
  SlotOp* o;
  if (!spareOps_.empty()) {
    o = spareOps_.back();
    spareOps_.pop_back();
  } else {
    o = &ops_.emplace_back();
  }
  slot.extra.op = o;
  return *o;
}

int Ring::Init(Napi::Env env, const Napi::CallbackInfo& info, std::string* why) {
  if (info.Length() < 4 || !info[0].IsTypedArray() || !info[1].IsTypedArray() || !info[2].IsFunction() ||
      !info[3].IsObject()) {
    *why = "init(sq: Int32Array, cq: Int32Array, onComplete: Function, options: object)";
    return -EINVAL;
  }
  auto sq = info[0].As<Napi::Int32Array>();
  auto cq = info[1].As<Napi::Int32Array>();
  Napi::Object opts = info[3].As<Napi::Object>();
  unsigned entries = OptU32(opts, "entries", 256);
  bool sqpoll = opts.Get("sqpoll").ToBoolean().Value();
  callerPins_ = opts.Get("callerPins").ToBoolean().Value();
  io_uring_params p{};
  const char* deferEnv = getenv("LOCH_URING_DEFER_TASKRUN");
  bool defer = deferEnv != nullptr && deferEnv[0] == '1';
  int e = InitRing(entries, sqpoll, &ring_, &p, defer);
  if (e < 0) {
    *why = std::string("io_uring_queue_init: ") + strerror(-e);
    return e;
  }
  env_ = env;
  isolate_ = v8::Isolate::GetCurrent();  // this thread's: init runs in JavaScript
  flags_ = p.flags;
  features_ = p.features;
  sq_ = sq.Data();
  sqCap_ = sq.ElementLength() / kSqStride;
  cq_ = cq.Data();
  cqCap_ = cq.ElementLength() / kCqStride;
  sqRef_ = Napi::Persistent(sq);
  cqRef_ = Napi::Persistent(cq);
  callback_ = Napi::Persistent(info[2].As<Napi::Function>());
  Napi::Value onFlush = opts.Get("onFlush");
  if (onFlush.IsFunction()) flushCallback_ = Napi::Persistent(onFlush.As<Napi::Function>());
  Napi::Value flushWant = opts.Get("flushWant");
  if (flushWant.IsTypedArray() && flushWant.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array &&
      flushWant.As<Napi::Int32Array>().ElementLength() >= 1) {
    flushWantRef_ = Napi::Persistent(flushWant.As<Napi::Int32Array>());
    flushWant_ = flushWant.As<Napi::Int32Array>().Data();
  }
  Napi::Value submitArgs = opts.Get("submitArgs");
  if (submitArgs.IsTypedArray() && submitArgs.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array &&
      submitArgs.As<Napi::Int32Array>().ElementLength() >= 3) {
    submitArgsRef_ = Napi::Persistent(submitArgs.As<Napi::Int32Array>());
    submitArgs_ = submitArgs.As<Napi::Int32Array>().Data();
  }
  flushArmed_ = false;
  receiver_ = Napi::Persistent(Napi::Object::New(env));
  napi_value resource = Napi::Object::New(env);
  napi_async_init(env, resource, Napi::String::New(env, "LochRing"), &asyncContext_);
  slots_.resize(1024);
  SetupBufRing(env, opts.Get("pool"), OptU32(opts, "bufferCount", 0), OptU32(opts, "bufferSize", 0),
               OptU32(opts, "publishedBuffers", 0xffffffffu));
  SetupPlainPool(opts.Get("plainPool"), OptU32(opts, "plainCount", 0), OptU32(opts, "plainSize", 0),
                 OptU32(opts, "plainPublished", 0xffffffffu));

  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  box_ = new PollBox();
  box_->ring = this;
  box_->env = env;
  box_->poll.data = box_;
  int pollFd = ring_.ring_fd;
  if (flags_ & IORING_SETUP_DEFER_TASKRUN) {
    // The ring fd does not become readable for deferred task work: poll an eventfd the kernel
    // signals when work is queued, and run that work with GETEVENTS in Drain.
    efd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd_ >= 0 && io_uring_register_eventfd(&ring_, efd_) == 0) {
      pollFd = efd_;
      defer_ = true;
    } else {
      if (efd_ >= 0) close(efd_);
      efd_ = -1;
      io_uring_queue_exit(&ring_);
      e = InitRing(entries, sqpoll, &ring_, &p, false);
      if (e < 0) {
        // No handle of the box was initialized yet: free it here (Destroy never runs: not alive).
        delete box_;
        box_ = nullptr;
        *why = std::string("io_uring_queue_init: ") + strerror(-e);
        return e;
      }
      flags_ = p.flags;
      features_ = p.features;
      pollFd = ring_.ring_fd;
    }
  }
  // The ring fd registered with the ring (liburing then enters with IORING_ENTER_REGISTERED_RING):
  // no fget/fput of it per io_uring_enter (0.03-0.18 us a relayed Thrift call at 64 connections
  // in two profiles, bench/thrift/readings-2026-12-06e.md). The fd stays open for the poll.
  // Unregistered by io_uring_queue_exit; without it (a kernel before 5.18, or a thread holding 16
  // registered rings already) every enter passes the fd.
  registeredRing_ = io_uring_register_ring_fd(&ring_) == 1;
  RegisterDirectFiles(OptU32(opts, "directFiles", 0));
  uv_poll_init(loop, &box_->poll, pollFd);
  uv_poll_start(&box_->poll, UV_READABLE, OnPoll);
  uv_unref(reinterpret_cast<uv_handle_t*>(&box_->poll));
  // Started by ArmFlush only; while started they keep the loop alive (records wait), as a
  // pending setImmediate does.
  uv_check_init(loop, &box_->check);
  uv_idle_init(loop, &box_->idle);
  box_->check.data = box_;
  box_->idle.data = box_;
  box_->open = 3;
  napi_add_async_cleanup_hook(env, OnTeardown, box_, &box_->hook);
  refed_ = false;
  alive_ = true;
  return 0;
}

// Direct (registered) descriptors (issue 18, bench/http-proxy/direct-descriptors-2026-12-07.md): a
// sparse table of `want` slots that OP_ACCEPT_DIRECT fills. Its sockets are not in the process's
// fd table (the kernel checks RLIMIT_NOFILE per table, at registration), so each worker's ring
// holds up to the soft limit of them, and an op on a slot takes no file reference. The raw
// IORING_REGISTER_FILES2 call, not liburing's io_uring_register_files_sparse: on EMFILE that one
// raises the process's soft RLIMIT_NOFILE toward the hard limit and retries, a process-wide side
// effect of making a ring. A refusal (EMFILE: larger than the soft limit; EINVAL: a kernel before
// 5.19) leaves the ring on fds and is reported as ringInfo.directFilesError. The table lives as
// long as the ring (io_uring_queue_exit drops it, and every socket in it closes).
void Ring::RegisterDirectFiles(uint32_t want) {
  directFiles_ = 0;
  directError_ = 0;
  direct_.clear();
  if (want == 0) return;
  // What a direct stream's life needs beyond the table (5.19): CANCEL_FD by slot
  // (IORING_ASYNC_CANCEL_FD_FIXED, 6.0; without it a closing stream's armed recv keeps the socket
  // open), told by SEND_ZC (6.0), the marker the probe reads too. FIXED_FD_INSTALL (6.8) is
  // optional: reported (directInstall) for the addresses an accept does not bring.
  io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
  const bool recent = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
  directInstall_ = probe != nullptr && io_uring_opcode_supported(probe, kOpFixedFdInstall);
  if (probe != nullptr) io_uring_free_probe(probe);
  if (!recent) {
    directError_ = -EOPNOTSUPP;
    return;
  }
  io_uring_rsrc_register reg{};
  reg.nr = want;
  reg.flags = IORING_RSRC_REGISTER_SPARSE;
  int r = io_uring_register(static_cast<unsigned>(ring_.ring_fd), IORING_REGISTER_FILES2, &reg, sizeof reg);
  if (r >= 0) directFiles_ = want;
  else directError_ = r;
}

// Only the first `published` buffers go in the kernel's ring at first: JavaScript keeps the rest
// out until the thread's receive budget has room for them (Ring.publish in uring/ring.ts), since
// the kernel fills whatever the ring holds.
void Ring::SetupBufRing(Napi::Env env, Napi::Value pool, uint32_t count, uint32_t size, uint32_t published) {
  if (!pool.IsTypedArray() || count == 0 || size == 0 || (count & (count - 1)) != 0 || count > 32768) return;
  auto bytes = pool.As<Napi::Uint8Array>();
  if (bytes.ByteLength() < static_cast<size_t>(count) * size) return;
  size_t len = count * sizeof(io_uring_buf);
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  len = (len + page - 1) & ~(page - 1);
  void* mem = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) return;
  auto* br = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(br);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(br);
  reg.ring_entries = count;
  reg.bgid = 0;
  if (io_uring_register_buf_ring(&ring_, &reg, 0) != 0) {
    munmap(mem, len);
    return;
  }
  bufRing_ = br;
  bufRingBytes_ = len;
  pool_ = bytes.Data();
  poolRef_ = Napi::Persistent(bytes);
  bufCount_ = count;
  bufSize_ = size;
  int mask = io_uring_buf_ring_mask(count);
  bufPublished_ = published < count ? published : count;
  for (uint32_t i = 0; i < bufPublished_; i++)
    io_uring_buf_ring_add(br, pool_ + static_cast<size_t>(i) * size, size, i, mask, static_cast<int>(i));
  io_uring_buf_ring_advance(br, static_cast<int>(bufPublished_));
}

Napi::Object Ring::Describe(Napi::Env env) const {
  Napi::Object o = Napi::Object::New(env);
  o.Set("setupFlags", Napi::Number::New(env, flags_));
  o.Set("features", Napi::Number::New(env, features_));
  o.Set("sqEntries", Napi::Number::New(env, ring_.sq.ring_entries));
  o.Set("cqEntries", Napi::Number::New(env, ring_.cq.ring_entries));
  o.Set("singleIssuer", Napi::Boolean::New(env, (flags_ & IORING_SETUP_SINGLE_ISSUER) != 0));
  o.Set("coopTaskrun", Napi::Boolean::New(env, (flags_ & IORING_SETUP_COOP_TASKRUN) != 0));
  o.Set("sqpoll", Napi::Boolean::New(env, (flags_ & IORING_SETUP_SQPOLL) != 0));
  o.Set("deferTaskrun", Napi::Boolean::New(env, defer_));
  o.Set("registeredRing", Napi::Boolean::New(env, registeredRing_));
  // The direct descriptor table's slots (0: none), and the errno that refused the one asked for.
  o.Set("directFiles", Napi::Number::New(env, directFiles_));
  // FIXED_FD_INSTALL works (6.8): directAddress can read a slot's addresses.
  o.Set("directInstall", Napi::Boolean::New(env, directFiles_ > 0 && directInstall_));
  if (directError_ != 0) o.Set("directFilesError", Napi::Number::New(env, -directError_));
  // submit(n, bufs) takes a lone buffer as `bufs` itself (index 0), not only an array.
  o.Set("submitView", Napi::Boolean::New(env, true));
  // submitShared(bufs) reads its other arguments from init's submitArgs (it was given one).
  o.Set("submitArgs", Napi::Boolean::New(env, submitArgs_ != nullptr));
  o.Set("nodrop", Napi::Boolean::New(env, (features_ & IORING_FEAT_NODROP) != 0));
  o.Set("bufRing", Napi::Boolean::New(env, bufRing_ != nullptr));
  if (bufRing_ != nullptr) o.Set("publishedBuffers", Napi::Number::New(env, bufPublished_));
  if (plain_ != nullptr) o.Set("plainPublished", Napi::Number::New(env, plainPublished_));
  o.Set("plainPool", Napi::Boolean::New(env, plain_ != nullptr));
  o.Set("ownedFdBytes", Napi::Number::New(env, static_cast<double>(fds_.bytes())));
  // The op table's memory, read when asked (a function: this object is made once, at init).
  // Not enumerable, so the description still clones (postMessage) and prints as data.
  o.DefineProperty(Napi::PropertyDescriptor::Function(
      env, o, "slotMemory",
      [](const Napi::CallbackInfo& info) -> Napi::Value { return RingOf(info.Env()).SlotMemory(info.Env()); }));
  return o;
}

Napi::Object Ring::SlotMemory(Napi::Env env) const {
  Napi::Object o = Napi::Object::New(env);
  o.Set("slots", Napi::Number::New(env, static_cast<double>(slots_.size())));
  o.Set("slotBytes", Napi::Number::New(env, static_cast<double>(sizeof(Slot))));
  o.Set("ops", Napi::Number::New(env, static_cast<double>(ops_.size())));
  o.Set("opBytes", Napi::Number::New(env, static_cast<double>(sizeof(SlotOp))));
  o.Set("opsHeld", Napi::Number::New(env, static_cast<double>(ops_.size() - spareOps_.size())));
  return o;
}

io_uring_sqe* Ring::Sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  for (int i = 0; sqe == nullptr && i < 8; i++) {
    io_uring_submit(&ring_);
    if (flags_ & IORING_SETUP_SQPOLL) io_uring_sqring_wait(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

bool Ring::Pin(Napi::Env env, Slot& slot, Napi::Value bufs, uint32_t nbufs, int32_t index, void** data,
               size_t* len) {
  if (index < 0 || static_cast<uint32_t>(index) >= nbufs) return false;
  napi_value v;
  if (bufsView_) {
    // submit() was given the one buffer itself (a flush with a single buffer, the wakeup turn's
    // usual send): no element lookup (napi_get_element, ~600 instructions a buffer).
    v = bufs;
  } else if (napi_get_element(env, bufs, static_cast<uint32_t>(index), &v) != napi_ok) {
    return false;
  }
  // napi_get_typedarray_info fails (napi_invalid_arg) on anything that is not a typed array.
  napi_typedarray_type type;
  size_t length;
  void* ptr;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, &ab, &offset) != napi_ok) return false;
  if (type != napi_uint8_array && type != napi_uint8_clamped_array && type != napi_int8_array) return false;
  *data = ptr;
  *len = length;
  // Views into the provided-buffer pool need no reference: the pool stays pinned until Destroy.
  auto* p = static_cast<uint8_t*>(ptr);
  if (pool_ != nullptr && p >= pool_ && p + length <= pool_ + static_cast<size_t>(bufCount_) * bufSize_) return true;
  // The caller keeps the buffer reachable until the final CQE (getting its info above already
  // moved an on-heap typed array's bytes off the heap, so the pointer stays valid).
  if (callerPins_) return true;
  napi_ref ref;
  if (napi_create_reference(env, v, 1, &ref) != napi_ok) return false;
  OpOf(slot).refs.push_back(ref);
  return true;
}

void Ring::Release(Napi::Env env, uint32_t index) {
  if (index >= slots_.size()) return;
  Slot& s = slots_[index];
  if (SlotOp* o = s.extra.op) {
    for (napi_ref r : o->refs) napi_delete_reference(env, r);
    o->refs.clear();
    o->iov.clear();
    s.extra.op = nullptr;
    spareOps_.push_back(o);
  }
  s.err = 0;
  if (s.inFlight) {
    s.inFlight = false;
    inFlight_--;
  }
}

void Ring::Prep(Napi::Env env, const int32_t* r, Napi::Value bufs, uint32_t nbufs) {
  const int op = r[F_OP] & 0xff;
  const uint8_t sqeFlags = static_cast<uint8_t>((r[F_OP] >> 8) & 0xff);
  const int fd = r[F_FD];
  const uint32_t slotIndex = static_cast<uint32_t>(r[F_SLOT]);
  const uint64_t userData = (static_cast<uint64_t>(static_cast<uint32_t>(r[F_GEN])) << 32) | slotIndex;

  if (op == OP_PROVIDE) {
    uint32_t bid = static_cast<uint32_t>(r[F_AUX]);
    if (bufRing_ != nullptr && bid < bufCount_) {
      if (!bidOwner_.empty()) ReleaseOwnBuffer(bid);
      // aux2: its reader let go of it, JavaScript keeps it out of the ring for now (the budget).
      if (r[F_AUX2] != 0) return;
      io_uring_buf_ring_add(bufRing_, pool_ + static_cast<size_t>(bid) * bufSize_, bufSize_, bid,
                            io_uring_buf_ring_mask(bufCount_), bufPending_++);
    }
    return;
  }
  if (op == OP_PLAIN_RELEASE) {
    ReleasePlain(static_cast<uint32_t>(r[F_AUX]), r[F_AUX2] != 0);
    return;
  }
  // IOSQE_FIXED_FILE in the record: `fd` is a direct slot (a number space of its own: in-ring TLS
  // and the owned-fd set are keyed by descriptor and never see it).
  const bool fixed = (sqeFlags & IOSQE_FIXED_FILE) != 0;
  if ((op == OP_CANCEL || op == OP_CANCEL_FD) && !connByFd_.empty() && !fixed) CancelTlsRecv(op, fd, r[F_AUX]);
  if (op == OP_CANCEL || op == OP_CANCEL_FD) {
    io_uring_sqe* sqe = Sqe();
    if (sqe == nullptr) return;
    if (op == OP_CANCEL) {
      uint64_t target = (static_cast<uint64_t>(static_cast<uint32_t>(r[F_AUX2])) << 32) | static_cast<uint32_t>(r[F_AUX]);
      io_uring_prep_cancel64(sqe, target, 0);
    } else {
      io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL | (fixed ? IORING_ASYNC_CANCEL_FD_FIXED : 0));
      // aux2: the next record is the descriptor's close, run once the cancel completed (whatever
      // it found): a stream's close in one submission (Ring.cancelFdAndClose in TypeScript).
      if (r[F_AUX2] != 0) sqe->flags |= IOSQE_IO_HARDLINK;
    }
    io_uring_sqe_set_data64(sqe, kIgnoreUserData);
    return;
  }

  Slot& s = SlotAt(slotIndex);
  s.err = 0;
  s.op = static_cast<uint8_t>(op);
  s.tls = 0;
  s.tlsHeap = nullptr;
  // Ops whose other descriptor or in-ring state is keyed by real fd take no slot: SPLICE (its
  // input is splice_fd_in, which IOSQE_FIXED_FILE does not cover), TLS_CLOSE_NOTIFY and any
  // record of a TLS conn (connByFd_, the ring's own sends by fd). Slots and fds are number spaces
  // that collide: such a record would reach another socket of the process. Refused (-EINVAL).
  if (fixed && (op == OP_SPLICE || op == OP_TLS_CLOSE_NOTIFY ||
                ((op == OP_RECV_MULTI || op == OP_RECV || op == OP_RECV_SELECT) && r[F_AUX] > 0) ||
                ((op == OP_SEND || op == OP_WRITEV) && r[F_AUX2] > 0))) {
    s.err = -EINVAL;
    io_uring_sqe* nop = Sqe();
    if (nop == nullptr) {
      synthetic_.emplace_back(static_cast<int32_t>(slotIndex), -EINVAL);
    } else {
      io_uring_prep_nop(nop);
      io_uring_sqe_set_data64(nop, userData);
    }
    if (!s.inFlight) {
      s.inFlight = true;
      inFlight_++;
    }
    return;
  }
  // CLOSE of a direct slot: close direct (the slot is free once it completes).
  const bool closeDirect = op == OP_CLOSE && fixed;
  if (closeDirect) {
    direct_.erase(fd);
  } else if (op == OP_CLOSE) {
    fds_.erase(fd);
    CloseTlsConn(fd);
  }
  if (!s.inFlight) {
    s.inFlight = true;
    inFlight_++;
  }
  // A TLS stream's write: encrypted now into the conn's queue, sent by the ring; the op completes
  // (with the plaintext length) once its records were sent.
  if (((op == OP_SEND || op == OP_WRITEV) && r[F_AUX2] > 0) || op == OP_TLS_CLOSE_NOTIFY) {
    OpOf(s);  // its plaintext pieces (s.iov)
    PrepTls(env, r, op, slotIndex, bufs, nbufs);
    return;
  }
  io_uring_sqe* sqe = Sqe();
  if (sqe == nullptr) {
    synthetic_.emplace_back(static_cast<int32_t>(slotIndex), -EBUSY);
    return;
  }
  void* data = nullptr;
  size_t len = 0;
  const uint32_t want = static_cast<uint32_t>(r[F_LEN]);
  bool ok = true;
  io_uring_sqe* linkTimeout = nullptr;
  switch (op) {
    case OP_NOP:
      io_uring_prep_nop(sqe);
      break;
    case OP_ACCEPT_MULTI:
      io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC);
      break;
    case OP_ACCEPT_DIRECT:
      if (directFiles_ == 0) {
        ok = false;
        s.err = -EBADF;  // no table: the caller asked for what ringInfo.directFiles said it lacks
        break;
      }
      if (r[F_AUX] == 1) {
        // Multishot: one CQE per connection, but one address buffer for all of them, so none
        // (unix listeners, whose peers have no address worth reading).
        io_uring_prep_multishot_accept_direct(sqe, fd, nullptr, nullptr, 0);
        break;
      }
      ok = Pin(env, s, bufs, nbufs, r[F_BUF], &data, &len) && want <= len && want >= 8 && want % 4 == 0;
      if (!ok) break;
      {
        // The peer's address comes with the accept: no getpeername, which a slot cannot do. The
        // buffer's last 4 bytes hold the address length the kernel reads and writes (so an armed
        // accept keeps no SlotOp: a listener has several armed), the address the bytes before.
        auto* bytes = static_cast<unsigned char*>(data);
        auto* addrLen = reinterpret_cast<socklen_t*>(bytes + want - sizeof(socklen_t));
        *addrLen = static_cast<socklen_t>(want - sizeof(socklen_t));
        // liburing 2.3's prep_accept_direct adds 1 to the index: ALLOC - 1 asks for ALLOC.
        io_uring_prep_accept_direct(sqe, fd, reinterpret_cast<sockaddr*>(bytes), addrLen, 0,
                                    IORING_FILE_INDEX_ALLOC - 1);
      }
      break;
    case OP_SETSOCKOPT: {
      // URING_CMD SOCKET_URING_OP_SETSOCKOPT (6.7+) by number: liburing 2.3 has no helper, and its
      // SQE names the fields after their other uses (off: cmd_op; addr: level | optname << 32;
      // splice_fd_in: optlen; addr3: optval).
      SlotOp& o = OpOf(s);
      o.optval = r[F_LEN];
      io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, nullptr, 0, 0);
      sqe->off = kSocketCmdSetsockopt;
      sqe->addr = static_cast<uint64_t>(static_cast<uint32_t>(r[F_AUX])) |
                  (static_cast<uint64_t>(static_cast<uint32_t>(r[F_AUX2])) << 32);
      sqe->splice_fd_in = static_cast<int32_t>(sizeof o.optval);
      sqe->addr3 = reinterpret_cast<uint64_t>(&o.optval);
      break;
    }
    case OP_CONNECT:
      ok = Pin(env, s, bufs, nbufs, r[F_BUF], &data, &len) && want <= len;
      if (!ok) break;
      io_uring_prep_connect(sqe, fd, static_cast<sockaddr*>(data), want);
      if (r[F_AUX] > 0) {
        SlotOp& o = OpOf(s);
        o.ts.tv_sec = r[F_AUX] / 1000;
        o.ts.tv_nsec = static_cast<long long>(r[F_AUX] % 1000) * 1000000;
        linkTimeout = sqe;  // linked below, after the connect's own flags are set
      }
      break;
    case OP_RECV_MULTI:
      if (bufRing_ == nullptr) {
        ok = false;
        s.err = -ENOBUFS;
        break;
      }
      io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = 0;
      // len > 0: the recv's byte limit (the stream's buffer budget). The kernel's field is
      // sqe->optlen, which liburing 2.3's header names file_index (the same union member); the
      // multishot then ends (no IORING_CQE_F_MORE) once it received that many bytes. Kernels
      // without the limit refuse it with EINVAL and JavaScript arms without one.
      if (r[F_LEN] > 0) sqe->file_index = static_cast<uint32_t>(r[F_LEN]);
      if (r[F_AUX] > 0) ArmTlsRecv(s, fd, static_cast<uint32_t>(r[F_AUX]), slotIndex, userData, sqe);
      break;
    case OP_RECV:
      ok = Pin(env, s, bufs, nbufs, r[F_BUF], &data, &len) && want <= len;
      if (ok) io_uring_prep_recv(sqe, fd, data, want, 0);
      if (ok && r[F_AUX] > 0) {
        // A TLS stream's base read while the kernel's ring is empty (a plain stream's HeapRecv in
        // uring/stream.ts): its ciphertext lands in this buffer and is fed to the session as a
        // provided buffer's would be, so a handshake or a reader holding at most one chunk never
        // waits for buffers that readers elsewhere keep.
        s.tlsHeap = static_cast<unsigned char*>(data);
        ArmTlsRecv(s, fd, static_cast<uint32_t>(r[F_AUX]), slotIndex, userData, sqe);
      }
      break;
    case OP_RECV_SELECT:
      // One recv of at most len bytes into a buffer of the provided-buffer ring: a stream near
      // its buffer budget reads exactly what it may still hold (aux: a TLS conn + 1, as for
      // RECV_MULTI).
      if (bufRing_ == nullptr || want == 0) {
        ok = false;
        s.err = bufRing_ == nullptr ? -ENOBUFS : -EINVAL;
        break;
      }
      io_uring_prep_recv(sqe, fd, nullptr, want, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = 0;
      if (r[F_AUX] > 0) ArmTlsRecv(s, fd, static_cast<uint32_t>(r[F_AUX]), slotIndex, userData, sqe);
      break;
    case OP_SEND:
      ok = Pin(env, s, bufs, nbufs, r[F_BUF], &data, &len) && want <= len;
      if (ok) io_uring_prep_send(sqe, fd, data, want, r[F_AUX] | MSG_NOSIGNAL);
      break;
    case OP_WRITEV: {
      int32_t first = r[F_BUF], count = r[F_AUX];
      if (count <= 0 || count > 1024) {
        ok = false;
        break;
      }
      // clear + push_back, not resize: resize value-initializes the entries on every writev
      // (std::vector's _M_default_append was ~0.5-1% of a Thrift proxy worker's samples).
      SlotOp& o = OpOf(s);
      o.iov.clear();
      o.iov.reserve(static_cast<size_t>(count));
      for (int32_t i = 0; ok && i < count; i++) {
        ok = Pin(env, s, bufs, nbufs, first + i, &data, &len);
        if (ok) o.iov.push_back(iovec{data, len});
      }
      if (!ok) break;
      o.msg = msghdr{};
      o.msg.msg_iov = o.iov.data();
      o.msg.msg_iovlen = o.iov.size();
      io_uring_prep_sendmsg(sqe, fd, &o.msg, MSG_NOSIGNAL);
      break;
    }
    case OP_SPLICE:
      io_uring_prep_splice(sqe, fd, -1, r[F_AUX], -1, want, SPLICE_F_MOVE);
      break;
    case OP_POLL:
      io_uring_prep_poll_add(sqe, fd, static_cast<unsigned>(r[F_AUX]));
      break;
    case OP_SHUTDOWN:
      io_uring_prep_shutdown(sqe, fd, r[F_AUX]);
      break;
    case OP_CLOSE:
      if (closeDirect) io_uring_prep_close_direct(sqe, static_cast<unsigned>(fd));
      else io_uring_prep_close(sqe, fd);
      break;
    case OP_TIMEOUT: {
      SlotOp& o = OpOf(s);
      o.ts.tv_sec = r[F_AUX] / 1000;
      o.ts.tv_nsec = static_cast<long long>(r[F_AUX] % 1000) * 1000000;
      io_uring_prep_timeout(sqe, &o.ts, 0, 0);
      break;
    }
    default:
      ok = false;
  }
  if (!ok) {
    if (s.err == 0) s.err = -EINVAL;
    io_uring_prep_nop(sqe);
  } else {
    // A close direct names its slot in file_index; the kernel refuses it with IOSQE_FIXED_FILE.
    sqe->flags |= closeDirect ? static_cast<uint8_t>(sqeFlags & ~IOSQE_FIXED_FILE) : sqeFlags;
  }
  io_uring_sqe_set_data64(sqe, userData);
  if (ok && linkTimeout != nullptr) {
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe* lt = Sqe();
    if (lt == nullptr) {
      sqe->flags &= static_cast<uint8_t>(~IOSQE_IO_LINK);
    } else {
      io_uring_prep_link_timeout(lt, &OpOf(s).ts, 0);
      io_uring_sqe_set_data64(lt, kIgnoreUserData);
    }
  }
}

int Ring::Submit(Napi::Env env, int32_t n, Napi::Value bufs, bool drain) {
  if (!alive_) return -EBADF;
  // `bufs`: the records' buffers by index, or the only one itself (index 0; ringInfo.submitView).
  if (bufs.IsTypedArray()) return SubmitKnown(env, n, bufs, BufsKind::kView, 1, drain);
  if (bufs.IsArray()) return SubmitKnown(env, n, bufs, BufsKind::kArray, bufs.As<Napi::Array>().Length(), drain);
  return SubmitKnown(env, n, bufs, BufsKind::kNone, 0, drain);
}

// The wakeup turn's submit without napi argument reads (issues 15, 18): n, drain and what `bufs`
// is come from the shared submitArgs, so the call reads one napi argument and makes no type
// checks (napi_get_value_int32, napi_get_value_bool, napi_is_typedarray, napi_is_array: ~170
// instructions a submit). A kind that does not match `bufs` fails as a wrong buffer does: the
// records that use a buffer complete with -EINVAL (Pin's napi_get_typedarray_info refuses a
// non-typed array; an array's length read fails on anything else, leaving no buffers).
int Ring::SubmitShared(napi_env env, napi_value bufs) {
  if (!alive_) return -EBADF;
  if (submitArgs_ == nullptr) return -EINVAL;
  const int32_t n = submitArgs_[0];
  const bool drain = submitArgs_[1] != 0;
  uint32_t nbufs = 0;
  BufsKind kind;
  switch (submitArgs_[2]) {
    case static_cast<int32_t>(BufsKind::kView):
      kind = BufsKind::kView;
      nbufs = 1;
      break;
    case static_cast<int32_t>(BufsKind::kArray):
      kind = BufsKind::kArray;
      if (napi_get_array_length(env, bufs, &nbufs) != napi_ok) nbufs = 0;
      break;
    default:
      kind = BufsKind::kNone;
  }
  return SubmitKnown(Napi::Env(env), n, Napi::Value(env, bufs), kind, nbufs, drain);
}

int Ring::SubmitKnown(Napi::Env env, int32_t n, Napi::Value bufs, BufsKind kind, uint32_t nbufs, bool drain) {
  if (n < 0 || static_cast<size_t>(n) > sqCap_) return -EINVAL;
  bufsView_ = kind == BufsKind::kView;
  for (int32_t i = 0; i < n; i++) Prep(env, sq_ + static_cast<size_t>(i) * kSqStride, bufs, nbufs);
  UpdateRef();
  if (bufPending_ > 0) {
    io_uring_buf_ring_advance(bufRing_, bufPending_);
    bufPending_ = 0;
  }
  // Completions without a CQE (TLS writes done at once, starved TLS streams that can go on): a
  // caller that does not drain now hears of them through the poll, woken by a NOP.
  if (!drain && (!synthetic_.empty() || wake_)) Wake();
  // A flush of buffer returns only touches shared memory: no syscall.
  if (io_uring_sq_ready(&ring_) == 0) return drain ? static_cast<int>(Drain()) : 0;
  for (int attempt = 0; attempt < 4; attempt++) {
    int ret = defer_ && drain ? io_uring_submit_and_get_events(&ring_) : io_uring_submit(&ring_);
    if (ret != -EBUSY && ret != -EAGAIN) break;
    // The CQ is backed up (overflow list): completions must be reaped before more submissions.
    if (!drain) break;
    return static_cast<int>(Drain());
  }
  return drain ? static_cast<int>(Drain()) : 0;
}

void Ring::UpdateRef() {
  // Like a libuv handle with a pending request: the loop stays alive while ops are in flight
  // (an accept, a read, a timer), and an idle ring does not hold the thread open.
  if (box_ == nullptr) return;
  bool want = inFlight_ > 0;
  if (want == refed_) return;
  refed_ = want;
  if (want)
    uv_ref(reinterpret_cast<uv_handle_t*>(&box_->poll));
  else
    uv_unref(reinterpret_cast<uv_handle_t*>(&box_->poll));
}

// Room kept free in the completion array for what one CQE of a TLS stream may become.
constexpr size_t kCqReserve = 16;

void Ring::Emit(size_t* n, int32_t slot, int32_t res, uint32_t flags) {
  int32_t* rec = cq_ + *n * kCqStride;
  rec[0] = slot;
  rec[1] = res;
  rec[2] = static_cast<int32_t>(flags);
  (*n)++;
}

void Ring::Wake() {
  io_uring_sqe* sqe = Sqe();
  if (sqe == nullptr) return;
  io_uring_prep_nop(sqe);
  io_uring_sqe_set_data64(sqe, kIgnoreUserData);
  io_uring_submit(&ring_);
}

size_t Ring::Reserve() const { return plain_ == nullptr ? 0 : std::min<size_t>(kCqReserve, cqCap_ / 2); }

size_t Ring::Drain() {
  size_t n = 0;
  const size_t reserve = Reserve();

  while (n + reserve < cqCap_) {
    // Ops that completed without a CQE of their own first, in order.
    while (!synthetic_.empty() && n < cqCap_) {
      auto [slot, res] = synthetic_.front();
      synthetic_.pop_front();
      Release(env_, static_cast<uint32_t>(slot));
      Emit(&n, slot, res, 0);
    }
    const size_t before = n;
    if (wake_ || !starved_.empty()) ResumeStarved(&n);
    const bool resumed = n > before;
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if (n + reserve >= cqCap_) break;
      seen++;
      if (cqe->user_data == kIgnoreUserData) continue;
      if (cqe->user_data == kInstallUserData) {
        // A DirectAddress install whose CQE it did not find: its descriptor is nobody's.
        if (cqe->res >= 0) close(cqe->res);
        continue;
      }
      if ((cqe->user_data >> 32) == kTlsSendTag) {
        OnTlsSend(static_cast<uint32_t>(cqe->user_data), cqe->res, &n);
        continue;
      }
      uint32_t slot = static_cast<uint32_t>(cqe->user_data);
      int32_t res = cqe->res;
      uint32_t flags = cqe->flags;
      TlsConn* conn = nullptr;
      if (slot < slots_.size()) {
        Slot& s = slots_[slot];
        if (s.err != 0) res = s.err;
        if (s.op == OP_ACCEPT_MULTI && res >= 0) fds_.insert(res);
        else if (s.op == OP_ACCEPT_DIRECT && res >= 0) direct_.insert(res);
        if (s.tls != 0) conn = ConnAt(s.tls, s.tlsGen, -1);
        // A TLS recv's final completion may be told later (TlsRecv): released when it is.
        if (!(flags & IORING_CQE_F_MORE) && conn == nullptr) Release(env_, slot);
      }
      if (conn != nullptr) {
        TlsRecv(conn, slot, res, flags, &n);
        continue;
      }
      Emit(&n, static_cast<int32_t>(slot), res, flags);
    }
    io_uring_cq_advance(&ring_, seen);
    if (seen == 0) {
      // A TLS send completed writes, or starved TLS streams went on: report them now, and go on.
      if (!synthetic_.empty() || resumed) continue;
      // With IORING_FEAT_NODROP, CQEs that did not fit wait in the kernel's overflow list.
      if (io_uring_cq_has_overflow(&ring_) && io_uring_get_events(&ring_) == 0 && io_uring_cq_ready(&ring_) > 0)
        continue;
      break;
    }
  }
  // TLS sends (handshake flights, alerts, records queued behind a finished send) prepared here.
  if (io_uring_sq_ready(&ring_) > 0) io_uring_submit(&ring_);
  UpdateRef();
  return n;
}

void Ring::OnPoll(uv_poll_t* handle, int status, int events) {
  (void)status;
  (void)events;
  Ring* self = static_cast<PollBox*>(handle->data)->ring;
  if (self == nullptr || !self->alive_) return;
  napi_env env = self->env_;
  // V8's own scope: napi_open_handle_scope heap-allocates a wrapper per call (~590 Ir a wakeup
  // turn with its close, against ~60); the napi calls below make their handles in it as in any.
  v8::HandleScope scope(self->isolate_);
  // Bounded: a ring that keeps producing must not starve the rest of the loop.
  if (self->defer_) {
    // Clear the eventfd, then run the deferred completions (GETEVENTS) so Drain sees them.
    uint64_t ignored;
    if (read(self->efd_, &ignored, sizeof ignored) < 0) {
      // EAGAIN: nothing signalled since the last read; the work is run anyway.
    }
    io_uring_get_events(&self->ring_);
  }
  for (int round = 0; round < 16 && self->alive_; round++) {
    if (round > 0 && self->defer_) io_uring_get_events(&self->ring_);
    size_t n = self->Drain();
    if (n == 0) break;
    self->callbacks++;
    napi_value argv[1];
    napi_create_uint32(env, static_cast<uint32_t>(n), &argv[0]);
    napi_value result;
    napi_status st = napi_make_callback(env, self->asyncContext_, self->receiver_.Value(), self->callback_.Value(), 1,
                                        argv, &result);
    if (st != napi_ok) {
      // The environment can no longer run JavaScript (a worker being terminated): stop polling
      // and let the teardown hook destroy the ring.
      if (!ReportCallbackFailure(env) && self->box_ != nullptr) uv_poll_stop(&self->box_->poll);
      break;
    }
    if (n + self->Reserve() < self->cqCap_ && self->synthetic_.empty()) break;
  }
}

int Ring::ArmFlush() {
  if (!alive_ || box_ == nullptr || flushCallback_.IsEmpty()) return -EBADF;
  if (flushArmed_) return 0;
  flushArmed_ = true;
  uv_check_start(&box_->check, OnCheck);
  // A no-op idle callback: an active idle handle makes libuv's poll phase not block.
  uv_idle_start(&box_->idle, [](uv_idle_t*) {});
  return 0;
}

void Ring::OnCheck(uv_check_t* handle) {
  PollBox* box = static_cast<PollBox*>(handle->data);
  Ring* self = box->ring;
  const bool live = self != nullptr && self->alive_;
  // Without flushWant (an older ring.ts) every armed check phase calls the flush.
  const int32_t want = live && self->flushWant_ != nullptr ? *self->flushWant_ : kFlushNow;
  if (want == kFlushNext) {
    // Records the completion callback's own flush made completions queue: they wait one more
    // poll phase (the check and idle handles stay started), as what a flush's completions queue
    // did when the flush ran here; a completion callback there takes them, else the next check.
    *self->flushWant_ = kFlushNow;
    return;
  }
  uv_check_stop(&box->check);
  uv_idle_stop(&box->idle);
  if (!live) return;
  self->flushArmed_ = false;
  // The completion callback flushed what was queued (JavaScript cleared flushWant): no call.
  if (want == kFlushNone) return;
  napi_env env = self->env_;
  v8::HandleScope scope(self->isolate_);  // as in OnPoll: not napi's heap-allocated wrapper
  napi_value result;
  // A callback scope as for the completions: the flush's deliveries may settle promises, whose
  // jobs run at its end (the microtask checkpoint), as after an immediate.
  napi_status st = napi_make_callback(env, self->asyncContext_, self->receiver_.Value(), self->flushCallback_.Value(),
                                      0, nullptr, &result);
  if (st != napi_ok) ReportCallbackFailure(env);
}

void Ring::ClosePoll() {
  PollBox* box = box_;
  if (box == nullptr) return;
  box_ = nullptr;
  box->ring = nullptr;
  box->closing = true;
  flushArmed_ = false;
  uv_poll_stop(&box->poll);
  uv_check_stop(&box->check);
  uv_idle_stop(&box->idle);
  auto closed = [](uv_handle_t* h) {
    PollBox* b = static_cast<PollBox*>(h->data);
    if (--b->open > 0) return;
    if (b->hook != nullptr) napi_remove_async_cleanup_hook(b->hook);
    delete b;
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&box->poll), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&box->check), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&box->idle), closed);
}

// Environment teardown (worker exit or termination, process exit): destroy the ring while
// JavaScript values can still be released; the environment waits until the poll handle's close
// callback removed this hook.
void Ring::OnTeardown(napi_async_cleanup_hook_handle hook, void* arg) {
  (void)hook;
  PollBox* box = static_cast<PollBox*>(arg);
  if (box->closing) return;  // closing already; its callback removes the hook
  Ring* ring = box->ring;
  if (ring != nullptr) ring->Destroy(Napi::Env(box->env));
  if (!box->closing) {
    // Not reachable (Destroy closes the poll), but never leave the environment waiting.
    napi_remove_async_cleanup_hook(box->hook);
    box->hook = nullptr;
  }
}

int Ring::ShutdownOwnedFds() {
  int n = 0;
  fds_.forEach([&n](int fd) {
    if (shutdown(fd, SHUT_RDWR) == 0) n++;  // ENOTSOCK (a pipe), ENOTCONN: nothing to end
  });
  // Direct slots have no fd for shutdown(2): a SHUTDOWN SQE each, on this thread (the ring's only
  // submitter: shutdownOwned runs on the dying worker's 'exit' event, Destroy at its teardown).
  // Their completions are not reported. Counted when submitted.
  if (directFiles_ > 0) {
    direct_.forEach([this, &n](int slot) {
      io_uring_sqe* sqe = Sqe();
      if (sqe == nullptr) return;
      io_uring_prep_shutdown(sqe, slot, SHUT_RDWR);
      sqe->flags |= IOSQE_FIXED_FILE;
      io_uring_sqe_set_data64(sqe, kIgnoreUserData);
      n++;
    });
    io_uring_submit(&ring_);
  }
  return n;
}

void Ring::CloseOwnedFds() {
  fds_.forEach([](int fd) { close(fd); });
  fds_.clear();
}

int Ring::DirectAddress(int slot, bool peer, sockaddr_storage* ss, socklen_t* len) {
  if (!alive_ || directFiles_ == 0) return -EBADF;
  if (slot < 0 || static_cast<uint32_t>(slot) >= directFiles_) return -EINVAL;
  io_uring_sqe* sqe = Sqe();
  if (sqe == nullptr) return -EBUSY;
  io_uring_prep_rw(kOpFixedFdInstall, sqe, slot, nullptr, 0, 0);
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, kInstallUserData);
  io_uring_submit(&ring_);
  // The install completes inline (it never waits), so its CQE is in the CQ after the submit (or,
  // with the CQ full, in the overflow list: GETEVENTS flushes it). Taken here: its user_data is
  // overwritten so Drain skips it.
  int fd = -EAGAIN;
  for (int attempt = 0; attempt < 3 && fd == -EAGAIN; attempt++) {
    if (attempt > 0) io_uring_get_events(&ring_);
    unsigned head;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if (cqe->user_data != kInstallUserData) continue;
      cqe->user_data = kIgnoreUserData;
      fd = cqe->res;
      break;
    }
  }
  if (fd < 0) return fd;
  *len = sizeof *ss;
  int r = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(ss), len)
               : getsockname(fd, reinterpret_cast<sockaddr*>(ss), len);
  int e = r == 0 ? 0 : -errno;
  close(fd);
  return e;
}

void Ring::Destroy(Napi::Env env) {
  if (!alive_) return;
  alive_ = false;
  // The peers first: the cancel below can wait up to a second, and the descriptors are closed
  // only after it (nothing is left open at a normal close(); at a worker's death everything is).
  ShutdownOwnedFds();
  ClosePoll();
  // Cancel whatever is still in flight and wait (bounded) for the kernel to let go of the pinned
  // buffers before the references that keep them alive are dropped.
  if (inFlight_ > 0) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe != nullptr) {
      io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
      io_uring_sqe_set_data64(sqe, kIgnoreUserData);
    }
    io_uring_submit(&ring_);
    for (int i = 0; i < 20 && inFlight_ > 0; i++) {
      __kernel_timespec ts{0, 50 * 1000 * 1000};
      io_uring_cqe* cqe = nullptr;
      if (io_uring_wait_cqe_timeout(&ring_, &cqe, &ts) != 0) continue;
      unsigned head, seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        seen++;
        if ((cqe->user_data >> 32) == kTlsSendTag) {
          if (inFlight_ > 0) inFlight_--;
          continue;
        }
        if (cqe->user_data != kIgnoreUserData && !(cqe->flags & IORING_CQE_F_MORE))
          Release(env, static_cast<uint32_t>(cqe->user_data));
      }
      io_uring_cq_advance(&ring_, seen);
    }
  }
  if (bufRing_ != nullptr) io_uring_unregister_buf_ring(&ring_, 0);
  if (efd_ >= 0) {
    io_uring_unregister_eventfd(&ring_);
    close(efd_);
    efd_ = -1;
    defer_ = false;
  }
  io_uring_queue_exit(&ring_);
  // The table went with the ring: its sockets closed (once the cancels above let go of them).
  direct_.clear();
  directFiles_ = 0;
  CloseOwnedFds();
  if (bufRing_ != nullptr) munmap(bufRing_, bufRingBytes_);
  bufRing_ = nullptr;
  for (uint32_t i = 0; i < slots_.size(); i++) Release(env, i);
  slots_.clear();
  spareOps_.clear();
  ops_.clear();
  inFlight_ = 0;
  synthetic_.clear();
  conns_.clear();  // after the kernel let go of their send buffers
  freeConns_.clear();
  connByFd_.clear();
  starved_.clear();
  plainFree_.clear();
  plainRef_.Reset();
  plain_ = nullptr;
  sentRefs_.clear();  // in-ring TLS's published sent counts (TlsSentPage)
  sentPages_.clear();
  plainCount_ = plainSize_ = 0;
  poolRef_.Reset();
  sqRef_.Reset();
  cqRef_.Reset();
  callback_.Reset();
  flushCallback_.Reset();
  flushWantRef_.Reset();
  flushWant_ = nullptr;
  receiver_.Reset();
  submitArgsRef_.Reset();
  submitArgs_ = nullptr;
  if (asyncContext_ != nullptr) napi_async_destroy(env, asyncContext_);
  asyncContext_ = nullptr;
  sq_ = cq_ = nullptr;
  pool_ = nullptr;
}

}  // namespace loch
