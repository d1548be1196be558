// The descriptors a ring owns (closed when its environment goes away), as a bitmap indexed by
// descriptor number: one bit per number up to the highest seen, instead of std::unordered_set's
// 32-byte node (plus a bucket pointer) per descriptor. A worker holding 10,000 idle connections
// tracked ~400 KB of hash nodes, each a small long-lived malloc among the request path's
// short-lived buffers; the bitmap for descriptors up to 20,000 is 2.5 KB (issue 18; measured in
// bench/results/idle-memory-2026-12-03.md, session 25 MEM2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace loch {

class FdSet {
 public:
  void insert(int fd) {
    if (fd < 0) return;
    size_t word = static_cast<size_t>(fd) >> 6;
    if (word >= bits_.size()) bits_.resize(word < 64 ? 64 : word * 2, 0);
    bits_[word] |= uint64_t{1} << (fd & 63);
  }
  void erase(int fd) {
    if (fd < 0) return;
    size_t word = static_cast<size_t>(fd) >> 6;
    if (word < bits_.size()) bits_[word] &= ~(uint64_t{1} << (fd & 63));
  }
  template <typename F>
  void forEach(F f) const {
    for (size_t w = 0; w < bits_.size(); w++) {
      for (uint64_t b = bits_[w]; b != 0; b &= b - 1) f(static_cast<int>(w * 64 + __builtin_ctzll(b)));
    }
  }
  void clear() { std::vector<uint64_t>().swap(bits_); }
  // Bytes the set holds (Ring::Describe's ownedFdBytes).
  size_t bytes() const { return bits_.capacity() * sizeof(uint64_t); }

 private:
  std::vector<uint64_t> bits_;
};

}  // namespace loch
