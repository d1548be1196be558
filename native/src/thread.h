// Settings of the calling OS thread that Node has no API for: CPU affinity (sched_setaffinity
// and sched_getaffinity with pid 0, so a worker_thread pins itself without knowing its tid).
// Needs no io_uring. Not for process-wide settings.
#pragma once
#include <napi.h>

namespace loch {
void RegisterThread(Napi::Env env, Napi::Object exports);
}
