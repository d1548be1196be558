// Memory release for idle threads: trimMemory() asks V8 to collect everything it can and give
// committed-but-free heap back (new space shrinks, empty old-space pages are unmapped), then asks
// glibc to return free malloc arenas (malloc_trim). The runtime calls it once per idle period
// (its idle-trim policy), never on a hot path: it runs several full GCs synchronously.
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

}  // namespace

void RegisterMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("trimMemory", Napi::Function::New(env, TrimMemory, "trimMemory"));
}

}  // namespace loch
