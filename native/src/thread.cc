// CPU affinity of the calling thread (see thread.h). Failures return -errno rather than throwing:
// pinning is best effort and the caller reports the outcome.
#include "thread.h"

#include <sched.h>
#include <unistd.h>

#include <cerrno>

namespace loch {
namespace {

// Largest CPU number accepted; CPU_ALLOC sizes the mask from the highest one asked for.
constexpr int kMaxCpu = 1 << 16;

// setThreadAffinity(cpus: number[]) -> 0 | -errno. Pins the calling thread to exactly `cpus`
// (threads it starts later inherit the mask). -EINVAL for an empty list or a CPU out of range;
// the kernel's -EINVAL when none of them is online or allowed (cpuset), -EPERM when forbidden.
Napi::Value SetThreadAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) return Napi::Number::New(env, -EINVAL);
  Napi::Array list = info[0].As<Napi::Array>();
  uint32_t n = list.Length();
  if (n == 0) return Napi::Number::New(env, -EINVAL);
  int highest = -1;
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsNumber()) return Napi::Number::New(env, -EINVAL);
    int cpu = v.As<Napi::Number>().Int32Value();
    if (cpu < 0 || cpu >= kMaxCpu) return Napi::Number::New(env, -EINVAL);
    if (cpu > highest) highest = cpu;
  }
  cpu_set_t* set = CPU_ALLOC(highest + 1);
  if (set == nullptr) return Napi::Number::New(env, -ENOMEM);
  size_t size = CPU_ALLOC_SIZE(highest + 1);
  CPU_ZERO_S(size, set);
  for (uint32_t i = 0; i < n; i++) CPU_SET_S(list.Get(i).As<Napi::Number>().Int32Value(), size, set);
  int r = sched_setaffinity(0, size, set) == 0 ? 0 : -errno;
  CPU_FREE(set);
  return Napi::Number::New(env, r);
}

// threadAffinity() -> number[] (the CPUs the calling thread may run on, ascending) | -errno.
Napi::Value ThreadAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  long conf = sysconf(_SC_NPROCESSORS_CONF);
  int count = conf > 0 ? static_cast<int>(conf) : 64;
  for (;;) {
    cpu_set_t* set = CPU_ALLOC(count);
    if (set == nullptr) return Napi::Number::New(env, -ENOMEM);
    size_t size = CPU_ALLOC_SIZE(count);
    if (sched_getaffinity(0, size, set) != 0) {
      int e = errno;
      CPU_FREE(set);
      // EINVAL: the kernel's mask is wider than ours; retry with a larger one.
      if (e == EINVAL && count < kMaxCpu) {
        count *= 2;
        continue;
      }
      return Napi::Number::New(env, -e);
    }
    Napi::Array out = Napi::Array::New(env);
    uint32_t k = 0;
    for (int cpu = 0; cpu < static_cast<int>(size * 8); cpu++) {
      if (CPU_ISSET_S(cpu, size, set)) out.Set(k++, Napi::Number::New(env, cpu));
    }
    CPU_FREE(set);
    return out;
  }
}

}  // namespace

void RegisterThread(Napi::Env env, Napi::Object exports) {
  exports.Set("setThreadAffinity", Napi::Function::New(env, SetThreadAffinity, "setThreadAffinity"));
  exports.Set("threadAffinity", Napi::Function::New(env, ThreadAffinity, "threadAffinity"));
}

}  // namespace loch
