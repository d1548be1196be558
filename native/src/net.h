// Synchronous socket setup: socket/bind/listen/setsockopt, address encoding and
// getsockname/getpeername, for the ring's sockets and for SO_REUSEPORT listeners handed to Node's
// net.Server (openTcpListener; Node 20 cannot set the option itself). These run once per listener
// or connection, never per read or write, so plain syscalls are cheaper than a ring round trip.
// Not for data transfer (ring.h).
#pragma once
#include <napi.h>

namespace loch {
void RegisterNet(Napi::Env env, Napi::Object exports);
}
