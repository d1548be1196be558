// Memory release for idle threads: trimMemory() asks V8 to collect everything it can and give
// committed-but-free heap back (new space shrinks, empty old-space pages are unmapped), then asks
// glibc to return free malloc arenas (malloc_trim). The runtime calls it once per idle period
// (its idle-trim policy), never on a hot path: it runs several full GCs synchronously.
// collectAfterWave() is the lighter one for a busy thread after a wave of connections closed.
// gcPauses() reads V8's own mark-compact pauses on this thread, timed by a GC hook.
// Also the submit counter that tells that policy whether the thread's ring saw activity.
// Not for per-connection memory, which the JS layers keep small themselves.
#include <malloc.h>
#include <napi.h>
#include <v8.h>

#include <chrono>
#include <cstdint>

#include "memory.h"
#include "tls_shelf.h"

namespace loch {

namespace {

// V8's own mark-compact pauses on this thread (one isolate a thread in Node: the main thread and
// each worker), timed by a GC prologue/epilogue hook: the atomic pause from the prologue to the
// epilogue, which is where V8 stops the thread to finish a collection. Not in it: the incremental
// marking steps V8 runs before that on allocations and tasks (--trace-gc's "+ N ms in M steps"),
// nor the concurrent marking on other threads. The hook is registered for mark-compacts and
// incremental-marking starts only: V8 filters by type before calling, so a scavenge calls nothing.
struct GcPauses {
  double markCompacts = 0;
  double totalMs = 0;
  double lastMs = 0;
  // The final pause of the last collection collectAfterWave() started (0 before one finished).
  double lastWaveMs = 0;
  // Incremental markings started on this thread: collectAfterWave() reads whether its call
  // started one.
  uint64_t markingStarts = 0;
  // A marking collectAfterWave() started whose final pause is still to come.
  bool waveMarking = false;
  bool installed = false;
  std::chrono::steady_clock::time_point pauseStart;
};

thread_local GcPauses gc_pauses;

constexpr v8::GCType kHookedGcTypes =
    static_cast<v8::GCType>(v8::kGCTypeMarkSweepCompact | v8::kGCTypeIncrementalMarking);

void OnGcPrologue(v8::Isolate*, v8::GCType type, v8::GCCallbackFlags, void*) {
  if (type == v8::kGCTypeIncrementalMarking) {
    gc_pauses.markingStarts++;
    return;
  }
  gc_pauses.pauseStart = std::chrono::steady_clock::now();
}

void OnGcEpilogue(v8::Isolate*, v8::GCType type, v8::GCCallbackFlags, void*) {
  if (type != v8::kGCTypeMarkSweepCompact) return;
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - gc_pauses.pauseStart).count();
  gc_pauses.markCompacts++;
  gc_pauses.totalMs += ms;
  gc_pauses.lastMs = ms;
  if (gc_pauses.waveMarking) {
    gc_pauses.lastWaveMs = ms;
    gc_pauses.waveMarking = false;
  }
}

// Registers the hook on this thread's isolate once, and removes it when the environment ends.
void InstallGcHook(Napi::Env env) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate == nullptr || gc_pauses.installed) return;
  isolate->AddGCPrologueCallback(OnGcPrologue, nullptr, kHookedGcTypes);
  isolate->AddGCEpilogueCallback(OnGcEpilogue, nullptr, kHookedGcTypes);
  gc_pauses.installed = true;
  env.AddCleanupHook([isolate]() {
    isolate->RemoveGCPrologueCallback(OnGcPrologue, nullptr);
    isolate->RemoveGCEpilogueCallback(OnGcEpilogue, nullptr);
    gc_pauses.installed = false;
  });
}

// trimMemory() -> { mallocTrimmed: boolean }
// Isolate::LowMemoryNotification runs full GCs with the reduce-memory flag: new space shrinks
// and its from-space is uncommitted, empty old-space pages are unmapped. On Node 20 (V8 11.3) it
// took a 70 MiB heap with 6 MiB live down to 7 MiB committed; MemoryPressureNotification(kCritical)
// did the same, slightly less (measured), so this one is used.
Napi::Value TrimMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->LowMemoryNotification();
  TlsShelfRelease();  // in-ring TLS's spare ciphertext buffers (tls_shelf.h)
  int released = malloc_trim(0);
  Napi::Object out = Napi::Object::New(env);
  out.Set("mallocTrimmed", Napi::Boolean::New(env, released != 0));
  return out;
}

// collectAfterWave() -> boolean: for the runtime's wave-collect policy, after a wave of
// connections closed on a thread that stays busy. MemoryPressureNotification(kModerate) starts
// incremental marking with the memory-reducing flags: the collection then finishes in steps on
// the thread's next allocations and tasks, compacts fragmented old-space pages and gives the
// emptied ones and free ranges back to the OS. Measured against the other ways
// (bench/idle-memory/readings-2026-12-07c.md, 19,000 connections opened and closed under wrk):
// this call 5 ms and V8's final pause 8-11 ms, where a plain full GC (`gc`) pauses 20-24 ms and
// keeps the fragmented pages (RSS 99-108 MiB against 87-93), kCritical or LowMemoryNotification
// run two reducing GCs at once (40-70 ms), and malloc_trim added up to 26 ms for nothing visible
// in RSS. It ages bytecode by one mark-compact, as any does; none was flushed in those runs.
// While a marking already runs (V8 started one on its allocation limit) the notification is a
// no-op, and that marking finishes without compacting: returns whether this call started the
// collection (a marking began, or a mark-compact ran, during it), so the caller can try again
// once the running marking is over (wave-collect.ts). False also when there is no isolate.
Napi::Value CollectAfterWave(const Napi::CallbackInfo& info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  bool started = false;
  if (isolate != nullptr) {
    uint64_t markingsBefore = gc_pauses.markingStarts;
    double compactsBefore = gc_pauses.markCompacts;
    isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kModerate);
    started = gc_pauses.markingStarts != markingsBefore || gc_pauses.markCompacts != compactsBefore;
    // The next mark-compact's pause is this collection's (unless one ran inside the call).
    if (started && gc_pauses.markCompacts == compactsBefore) gc_pauses.waveMarking = true;
  }
  return Napi::Boolean::New(info.Env(), started);
}

// gcPauses() -> { markCompacts, pauseMs, lastPauseMs, lastWavePauseMs }: this thread's
// mark-compacts since the addon loaded on it, their atomic pauses' total and the last one (ms),
// and the final pause of the last collection collectAfterWave() started (0 before one finished).
Napi::Value GcPausesRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("markCompacts", Napi::Number::New(env, gc_pauses.markCompacts));
  out.Set("pauseMs", Napi::Number::New(env, gc_pauses.totalMs));
  out.Set("lastPauseMs", Napi::Number::New(env, gc_pauses.lastMs));
  out.Set("lastWavePauseMs", Napi::Number::New(env, gc_pauses.lastWaveMs));
  return out;
}

}  // namespace

void RegisterMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("trimMemory", Napi::Function::New(env, TrimMemory, "trimMemory"));
  exports.Set("collectAfterWave", Napi::Function::New(env, CollectAfterWave, "collectAfterWave"));
  exports.Set("gcPauses", Napi::Function::New(env, GcPausesRead, "gcPauses"));
  InstallGcHook(env);
}

}  // namespace loch
