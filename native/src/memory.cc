// Memory release for idle threads: trimMemory() asks V8 to collect everything it can and give
// committed-but-free heap back (new space shrinks, empty old-space pages are unmapped), then asks
// glibc to return free malloc arenas (malloc_trim). The runtime calls it once per idle period
// (its idle-trim policy), never on a hot path: it runs several full GCs synchronously.
// collectAfterWave() is the lighter one for a busy thread after a wave of connections closed.
// Also the submit counter that tells that policy whether the thread's ring saw activity.
// Not for per-connection memory, which the JS layers keep small themselves.
#include <malloc.h>
#include <napi.h>
#include <v8.h>

#include "memory.h"
#include "tls_shelf.h"

namespace loch {

namespace {

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

// collectAfterWave(): for the runtime's wave-collect policy, after a wave of connections closed
// on a thread that stays busy. MemoryPressureNotification(kModerate) starts incremental marking
// with the memory-reducing flags (a no-op while a marking already runs): the collection then
// finishes in steps on the thread's next allocations and tasks, compacts fragmented old-space
// pages and gives the emptied ones and free ranges back to the OS. Measured against the other
// ways (bench/idle-memory/readings-2026-12-07c.md, 19,000 connections opened and closed under
// wrk): this call 5 ms and V8's final pause 8-11 ms, where a plain full GC (`gc`) pauses 20-24 ms
// and keeps the fragmented pages (RSS 99-108 MiB against 87-93), kCritical or
// LowMemoryNotification run two reducing GCs at once (40-70 ms), and malloc_trim added up to
// 26 ms for nothing visible in RSS. It ages bytecode by one mark-compact, as any does; none was
// flushed in those runs. Returns whether an isolate was there to notify.
Napi::Value CollectAfterWave(const Napi::CallbackInfo& info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kModerate);
  return Napi::Boolean::New(info.Env(), isolate != nullptr);
}

}  // namespace

void RegisterMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("trimMemory", Napi::Function::New(env, TrimMemory, "trimMemory"));
  exports.Set("collectAfterWave", Napi::Function::New(env, CollectAfterWave, "collectAfterWave"));
}

}  // namespace loch
