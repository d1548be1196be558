// Synchronous socket setup for the ring: socket/bind/listen/setsockopt, address encoding and
// getsockname/getpeername. These run once per listener or connection, never per read or write,
// so plain syscalls are cheaper than a ring round trip. Not for data transfer (ring.h).
#pragma once
#include <napi.h>

namespace loch {
void RegisterNet(Napi::Env env, Napi::Object exports);
}
