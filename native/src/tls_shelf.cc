// The per-thread shelf of large ciphertext buffers (tls_shelf.h). One ring per thread, so the
// shelf is thread_local and needs no lock.
#include "tls_shelf.h"

#include <cstring>
#include <utility>

namespace loch {

namespace {

struct Shelf {
  std::vector<ByteBuffer> buffers;
  TlsShelfStats stats;
};
thread_local Shelf shelf;

}  // namespace

void TlsShelve(ByteBuffer& b) {
  b.clear();
  const size_t capacity = b.capacity();
  if (capacity > 0 && shelf.stats.bytes + capacity <= kTlsShelfBytes) {
    shelf.stats.bytes += capacity;
    shelf.buffers.push_back(std::move(b));
  }
  ByteBuffer().swap(b);
}

void TlsUnshelve(ByteBuffer& b, size_t need, size_t idleKeep) {
  if (b.capacity() >= need || need <= idleKeep) return;
  shelf.stats.grows++;
  // Best fit: the smallest shelved buffer that holds `need`, so large ones stay for large bursts.
  size_t best = shelf.buffers.size();
  for (size_t i = 0; i < shelf.buffers.size(); i++) {
    const size_t capacity = shelf.buffers[i].capacity();
    if (capacity >= need && (best == shelf.buffers.size() || capacity < shelf.buffers[best].capacity())) best = i;
  }
  if (best == shelf.buffers.size()) return;
  shelf.stats.hits++;
  ByteBuffer taken;
  taken.swap(shelf.buffers[best]);
  std::swap(shelf.buffers[best], shelf.buffers.back());
  shelf.buffers.pop_back();
  shelf.stats.bytes -= taken.capacity();
  const size_t size = b.size();
  taken.resize(size);  // within capacity: no allocation, and UninitAllocator leaves the bytes
  if (size > 0) std::memcpy(taken.data(), b.data(), size);
  b.swap(taken);
  if (taken.capacity() > idleKeep) TlsShelve(taken);
}

TlsShelfStats TlsShelfStatsNow() { return shelf.stats; }

void TlsShelfRelease() {
  std::vector<ByteBuffer>().swap(shelf.buffers);
  shelf.stats.bytes = 0;
}

}  // namespace loch
