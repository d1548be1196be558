// The per-thread shelf of large ciphertext buffers for in-ring TLS (ring_tls.cc): the output
// buffers a TLS conn gives up when it goes idle (or closes) wait here for the next conn whose
// output grows, instead of going back to malloc. Not for plaintext (the ring's plaintext pool)
// nor for the buffers an idle conn keeps (up to 16 KiB, ring_tls.cc's kIdleKeep).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ring.h"

namespace loch {

// Capacity (bytes) the shelf of one thread keeps at most; a buffer that does not fit is freed.
// A conn answering HTTP/2 streams gathers a burst's records before its one send (h2load -c16
// -m16 at 11,268 B: ~125-180 KB per burst) and goes idle after it; 2 MiB holds the bursts of a
// dozen such conns idle at once (an earlier form of this shelf: page faults per request 0.3-0.6
// -> 0.004-0.009, large mallocs 0.09 -> 0.003-0.007; this one, measured once the upstream pool
// no longer churned: faults 0.09 -> 0.06-0.07). It is what one thread may hold beyond its conns'
// own buffers (a sixth of the default 12 MiB worker receive budget); trimMemory() gives it back
// when the thread is idle.
constexpr size_t kTlsShelfBytes = 2 * 1024 * 1024;

// What the shelf did on this thread (tlsBufferStats() in addon.cc).
struct TlsShelfStats {
  // Growths of a conn's output buffer past what an idle conn keeps.
  uint64_t grows = 0;
  // Of those, served by a shelved buffer large enough (no allocation).
  uint64_t hits = 0;
  // Capacity on the shelf now.
  size_t bytes = 0;
};

// Gives up `b`'s storage (it must not be read by the kernel any more): onto the shelf while it
// has room, else freed. `b` is left empty with no capacity.
void TlsShelve(ByteBuffer& b);

// `b` is about to hold `need` bytes (keeping its contents): when its capacity is smaller and
// `need` is above `idleKeep`, it counts as a growth and takes the smallest shelved buffer that
// holds `need` (a hit), giving its own storage to the shelf; else it grows by itself later.
void TlsUnshelve(ByteBuffer& b, size_t need, size_t idleKeep);

// This thread's counts.
TlsShelfStats TlsShelfStatsNow();

// Frees every shelved buffer of this thread (an idle thread's memory trim).
void TlsShelfRelease();

}  // namespace loch
