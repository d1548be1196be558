// trimMemory() and collectAfterWave() of @loch/native (memory.cc).
#pragma once
#include <napi.h>

namespace loch {
void RegisterMemory(Napi::Env env, Napi::Object exports);
}  // namespace loch
