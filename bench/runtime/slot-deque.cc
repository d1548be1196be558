// Bytes the native ring's op slots take from malloc per slot (issue 18): native/src/ring.h keeps
// them in a std::deque<Slot> (since 1c6028a) that Ring::SlotAt grows with resize(index + 64), so
// they grow in steps of 64 slots in 512-byte blocks, never by doubling. This mirrors the Slot's
// layout (keep it in step with ring.h) and that growth, and prints mallinfo2's bytes in use per
// slot for N slots (as many as a server's idle connections with an armed receive each).
//
// Build and run: g++ -O2 -std=c++17 bench/runtime/slot-deque.cc -o /tmp/slot-deque &&
//   /tmp/slot-deque 19000
#include <malloc.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>

struct SlotOpRef {
  void* op;
};
struct Slot {  // native/src/ring.h's Slot
  int32_t err = 0;
  uint8_t op = 0;
  bool inFlight = false;
  uint32_t tls = 0;
  uint32_t tlsGen = 0;
  unsigned char* tlsHeap = nullptr;
  union {
    SlotOpRef extra{nullptr};
    SlotOpRef iov;
  };
};

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? strtoul(argv[1], nullptr, 10) : 19000;
  const size_t before = mallinfo2().uordblks;
  auto* slots = new std::deque<Slot>();
  slots->resize(1024);  // Ring::Init
  for (size_t i = 0; i < n; i++)
    if (i >= slots->size()) slots->resize(i + 64);  // Ring::SlotAt
  const size_t used = mallinfo2().uordblks - before;
  printf("sizeof(Slot) %zu B; %zu slots for %zu in use; malloc in use %zu B: %.1f B per slot in use\n", sizeof(Slot),
         slots->size(), n, used, static_cast<double>(used) / static_cast<double>(n));
  delete slots;
}
