// trimMemory(), collectAfterWave() and gcPauses() of @loch/native (memory.cc); registering them
// also installs the mark-compact pause hook on the thread's isolate.
#pragma once
#include <napi.h>

namespace loch {
void RegisterMemory(Napi::Env env, Napi::Object exports);
}  // namespace loch
