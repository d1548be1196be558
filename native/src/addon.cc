// Module glue for @loch/native: per-environment state (one ring per JS thread, torn down by the
// instance-data finalizer when the environment or worker goes away), the kernel probe, and the
// exported functions. The ring itself is in ring.cc, socket setup in net.cc, memory trimming in
// memory.cc, thread affinity in thread.cc.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "dir_watch.h"
#include "gateway_json.h"
#include "head_scan.h"
#include "memory.h"
#include "net.h"
#include "ring.h"
#include "tls_shelf.h"
#include "siv.h"
#include "thread.h"
#include "tls_addon.h"

namespace loch {
int InitProbeRing(unsigned entries, io_uring* ring, io_uring_params* out);
}

namespace {

using loch::Ring;

// Everything this addon keeps for one napi_env.
struct EnvState {
  Ring ring;
  // Calls of submit() on this thread: the idle-trim policy reads it to tell activity from idle.
  double submits = 0;
  // The TLS face's state (tls_addon.h): its sessions are the ones the ring can carry.
  loch::tlsjs::TlsEnv tls;
};

// Runs when the environment (main thread or worker) is torn down.
void FinalizeState(Napi::Env env, EnvState* state) {
  state->ring.Destroy(env);
  state->ring.CloseOwnedFds();
  delete state;
}

EnvState* State(Napi::Env env) {
  EnvState* s = env.GetInstanceData<EnvState>();
  if (s == nullptr) {
    s = new EnvState();
    env.SetInstanceData<EnvState, FinalizeState>(s);
  }
  return s;
}

std::string DisabledSysctl() {
  FILE* f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
  if (f == nullptr) return "";
  int v = 0;
  int n = fscanf(f, "%d", &v);
  fclose(f);
  if (n != 1 || v == 0) return "";
  return " (kernel.io_uring_disabled=" + std::to_string(v) + ")";
}

// probe() -> { ok: true, setupFlags, features, ops, multishotRecv, bufRing } | { ok: false, errno, reason }
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  io_uring ring;
  io_uring_params p{};
  int e = loch::InitProbeRing(8, &ring, &p);
  if (e < 0) {
    std::string reason = std::string("io_uring_setup failed: ") + strerror(-e);
    if (e == -EPERM || e == -EACCES) reason += " (seccomp, container policy or sysctl)";
    if (e == -ENOSYS) reason += " (kernel without io_uring, or filtered by seccomp)";
    reason += DisabledSysctl();
    out.Set("ok", false);
    out.Set("errno", Napi::Number::New(env, -e));
    out.Set("reason", reason);
    return out;
  }
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  Napi::Object ops = Napi::Object::New(env);
  struct {
    const char* name;
    int op;
  } const wanted[] = {
      {"accept", IORING_OP_ACCEPT},   {"connect", IORING_OP_CONNECT},     {"recv", IORING_OP_RECV},
      {"send", IORING_OP_SEND},       {"sendmsg", IORING_OP_SENDMSG},     {"splice", IORING_OP_SPLICE},
      {"shutdown", IORING_OP_SHUTDOWN}, {"close", IORING_OP_CLOSE},       {"timeout", IORING_OP_TIMEOUT},
      {"linkTimeout", IORING_OP_LINK_TIMEOUT}, {"asyncCancel", IORING_OP_ASYNC_CANCEL},
      {"socket", IORING_OP_SOCKET},   {"sendZc", IORING_OP_SEND_ZC},   {"uringCmd", IORING_OP_URING_CMD},
      {"fixedFdInstall", loch::kOpFixedFdInstall},
  };
  bool all = probe != nullptr;
  for (const auto& w : wanted) {
    bool has = probe != nullptr && io_uring_opcode_supported(probe, w.op);
    ops.Set(w.name, has);
    // Required: the ops up to shutdown (5.11); the later ones are optional: socket (5.19),
    // sendZc (6.0), uringCmd (5.19), fixedFdInstall (6.8).
    if (w.op <= IORING_OP_SHUTDOWN) all = all && has;
  }
  // Multishot recv and send_zc arrived together (Linux 6.0): the opcode is the only visible marker.
  bool multishotRecv = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
  if (probe != nullptr) io_uring_free_probe(probe);
  // Provided-buffer rings (Linux 5.19): try to register a one-entry ring.
  bool bufRing = false;
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* mem = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem != MAP_FAILED) {
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(mem);
    reg.ring_entries = 1;
    reg.bgid = 7;
    if (io_uring_register_buf_ring(&ring, &reg, 0) == 0) {
      bufRing = true;
      io_uring_unregister_buf_ring(&ring, 7);
    }
    munmap(mem, page);
  }
  // A sparse direct descriptor table: what init's directFiles registers (one slot here), on a
  // kernel that also cancels by slot (6.0, SEND_ZC its marker), as Ring::RegisterDirectFiles asks.
  io_uring_rsrc_register rsrc{};
  rsrc.nr = 1;
  rsrc.flags = IORING_RSRC_REGISTER_SPARSE;
  const bool directFiles = multishotRecv && io_uring_register(static_cast<unsigned>(ring.ring_fd),
                                                              IORING_REGISTER_FILES2, &rsrc, sizeof rsrc) >= 0;
  io_uring_queue_exit(&ring);
  out.Set("ok", true);
  out.Set("setupFlags", Napi::Number::New(env, p.flags));
  out.Set("features", Napi::Number::New(env, p.features));
  out.Set("nodrop", (p.features & IORING_FEAT_NODROP) != 0);
  out.Set("ops", ops);
  out.Set("allRequiredOps", all);
  out.Set("multishotRecv", multishotRecv);
  out.Set("bufRing", bufRing);
  out.Set("directFiles", directFiles);
  return out;
}

// init(sq, cq, onComplete, { entries, sqpoll, pool, bufferCount, bufferSize }) -> description
Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvState* s = State(env);
  if (s->ring.alive()) {
    Napi::Error::New(env, "a ring already exists for this thread; destroy() it first").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string why;
  int e = s->ring.Init(env, info, &why);
  if (e < 0) {
    Napi::Error err = Napi::Error::New(env, why + DisabledSysctl());
    err.Set("errno", Napi::Number::New(env, -e));
    err.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return s->ring.Describe(env);
}

// submit(n, bufs, drainInline) -> completions written to the shared array (0 when not draining)
Napi::Value Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvState* s = State(env);
  s->submits++;
  int n = info[0].As<Napi::Number>().Int32Value();
  // ring.ts passes a boolean: read it as one (ToBoolean is napi_coerce_to_bool, a TryCatch and a
  // can-call-into-JS check, ~180 instructions a submit); anything else is coerced as before.
  bool drain = false;
  if (napi_get_value_bool(env, info[2], &drain) != napi_ok) drain = info[2].ToBoolean().Value();
  int r = s->ring.Submit(env, n, info[1], drain);
  return Napi::Number::New(env, r);
}

// submitShared(bufs) -> as submit(n, bufs, drainInline), with n, drainInline and what `bufs` is
// read from init's submitArgs (Ring::SubmitShared). A plain napi callback, not node-addon-api's
// wrapper (its CallbackInfo reads six arguments), with the thread's EnvState as its data (no
// instance-data lookup): the flush of every wakeup turn calls it.
napi_value SubmitShared(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value bufs;
  void* data = nullptr;
  napi_value out;
  if (napi_get_cb_info(env, info, &argc, &bufs, nullptr, &data) != napi_ok) {
    napi_create_int32(env, -EINVAL, &out);
    return out;
  }
  if (argc < 1) napi_get_undefined(env, &bufs);
  EnvState* s = static_cast<EnvState*>(data);
  s->submits++;
  napi_create_int32(env, s->ring.SubmitShared(env, bufs), &out);
  return out;
}

// armFlush() -> 0 | -EBADF: init's onFlush runs in this loop iteration's check phase (Ring::ArmFlush).
Napi::Value ArmFlush(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), State(info.Env())->ring.ArmFlush());
}

// reportUncaught(error): reports `error` as node reports an exception that reaches the top of a
// callback (napi_fatal_exception: 'uncaughtException', else this thread's environment ends), at
// once. For an error the ring's completion callback caught from node's tick queue: node's report
// also clears the async id stack the throwing tick left pushed (ring.ts ticksRan).
Napi::Value ReportUncaught(const Napi::CallbackInfo& info) {
  napi_fatal_exception(info.Env(), info[0]);
  return info.Env().Undefined();
}

// destroy(): cancels in-flight ops, unpins their buffers, closes the ring. Idempotent.
Napi::Value Destroy(const Napi::CallbackInfo& info) {
  State(info.Env())->ring.Destroy(info.Env());
  return info.Env().Undefined();
}

// shutdownOwned() -> how many sockets it ended: shutdown(2) of every socket this environment owns
// (Ring::ShutdownOwnedFds), for a worker that is dying: its clients get their FIN now, its
// listeners leave their SO_REUSEPORT groups now; the descriptors are closed at the teardown.
Napi::Value ShutdownOwned(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), State(info.Env())->ring.ShutdownOwnedFds());
}

// submitCount() -> how many times submit() ran on this thread (a number that changes while the
// ring is busy; the runtime's idle-trim timer compares two readings).
Napi::Value SubmitCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), State(info.Env())->submits);
}

// tlsAttach(fd, session) -> conn id (>= 0) | -errno: the ring carries `session` (a TlsSession of
// this module's `tls`) on the stream `fd` from now on (in-ring TLS; native/README.md).
Napi::Value TlsAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber()) return Napi::Number::New(env, -EINVAL);
  auto session = loch::tlsjs::SessionOf(env, info[1]);
  if (session == nullptr) return Napi::Number::New(env, -EINVAL);
  return Napi::Number::New(env, State(env)->ring.TlsAttach(info[0].As<Napi::Number>().Int32Value(), session));
}

// tlsSentPage(page, counts) -> 0 | -EINVAL: the ring keeps the ciphertext sent counts of in-ring
// TLS conns [page * 1024, (page + 1) * 1024) in `counts` (a Float64Array of 1024) from now on.
Napi::Value TlsSentPage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber()) return Napi::Number::New(env, -EINVAL);
  return Napi::Number::New(env, State(env)->ring.TlsSentPage(info[0].As<Napi::Number>().Uint32Value(), info[1]));
}

// crossings() -> [submit calls, completion callbacks, TlsSession calls] on this thread.
Napi::Value Crossings(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvState* s = State(env);
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::Number::New(env, s->submits));
  out.Set(1u, Napi::Number::New(env, s->ring.callbacks));
  out.Set(2u, Napi::Number::New(env, s->tls.calls));
  return out;
}

// tlsBufferStats() -> { grows, shelfHits, shelfBytes }: in-ring TLS output buffers on this
// thread (tls_shelf.h): growths past what an idle conn keeps, those a shelved buffer served, and
// the capacity on the shelf now.
Napi::Value TlsBufferStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const loch::TlsShelfStats s = loch::TlsShelfStatsNow();
  Napi::Object out = Napi::Object::New(env);
  out.Set("grows", Napi::Number::New(env, static_cast<double>(s.grows)));
  out.Set("shelfHits", Napi::Number::New(env, static_cast<double>(s.hits)));
  out.Set("shelfBytes", Napi::Number::New(env, static_cast<double>(s.bytes)));
  return out;
}

Napi::Object Module(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("init", Napi::Function::New(env, Init, "init"));
  exports.Set("submit", Napi::Function::New(env, Submit, "submit"));
  napi_value submitShared;
  napi_create_function(env, "submitShared", NAPI_AUTO_LENGTH, SubmitShared, State(env), &submitShared);
  exports.Set("submitShared", submitShared);
  exports.Set("destroy", Napi::Function::New(env, Destroy, "destroy"));
  exports.Set("armFlush", Napi::Function::New(env, ArmFlush, "armFlush"));
  exports.Set("reportUncaught", Napi::Function::New(env, ReportUncaught, "reportUncaught"));
  exports.Set("submitCount", Napi::Function::New(env, SubmitCount, "submitCount"));
  exports.Set("shutdownOwned", Napi::Function::New(env, ShutdownOwned, "shutdownOwned"));
  exports.Set("tlsAttach", Napi::Function::New(env, TlsAttach, "tlsAttach"));
  exports.Set("tlsSentPage", Napi::Function::New(env, TlsSentPage, "tlsSentPage"));
  exports.Set("crossings", Napi::Function::New(env, Crossings, "crossings"));
  exports.Set("tlsBufferStats", Napi::Function::New(env, TlsBufferStats, "tlsBufferStats"));
  State(env);  // the TLS face keeps its state there
  Napi::Object tls = Napi::Object::New(env);
  loch::tlsjs::Register(env, tls);
  exports.Set("tls", tls);
  loch::RegisterNet(env, exports);
  loch::RegisterMemory(env, exports);
  loch::RegisterThread(env, exports);
  loch::RegisterSiv(env, exports);
  loch::headscan::Register(env, exports);
  loch::gatewayjson::Register(env, exports);
  loch::dirwatch::Register(env, exports);
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("sqStride", Napi::Number::New(env, loch::kSqStride));
  layout.Set("cqStride", Napi::Number::New(env, loch::kCqStride));
  exports.Set("layout", layout);
  return exports;
}

}  // namespace

loch::Ring& loch::RingOf(Napi::Env env) { return State(env)->ring; }
loch::tlsjs::TlsEnv* loch::tlsjs::EnvOf(Napi::Env env) { return &State(env)->tls; }

NODE_API_MODULE(loch_native, Module)
