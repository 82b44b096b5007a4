// HandlerMemory: recycled memory for the Asio operations on the hub's write path.
//
// Each subscriber's write allocates an operation object (and so does the post that gathers one
// turn's frames into it), so a broadcast to N subscribers allocates N of them at once and frees
// them a few milliseconds later. HandlerAllocator, bound to those handlers as their associated
// allocator, takes the blocks from a free list of the calling thread instead, sized in classes of
// 64 bytes up to 512; a freed block goes back to the list of the thread that frees it. Once the
// lists have grown to the largest fan-out seen, a broadcast costs no malloc at all, and the
// allocator never receives a storm of small frees to consolidate later. Larger requests, and
// blocks beyond kMaxCachedBytes per thread, go to the global heap.
//
// Blocks are plain ::operator new memory, so one thread may free what another allocated; each
// thread's lists are released when the thread exits. No locking: the lists are thread-local.
#pragma once

#include <cstddef>
#include <new>

namespace pgfanout::hub {

namespace handler_memory {

// The most a thread keeps on its free lists.
inline constexpr std::size_t kMaxCachedBytes = std::size_t{16} << 20;

void* allocate(std::size_t size, std::size_t align);
void deallocate(void* p, std::size_t size, std::size_t align) noexcept;

// The calling thread's figures, for tests and diagnostics.
struct Stats {
  std::size_t fresh = 0;         // blocks taken from the global heap
  std::size_t reused = 0;        // blocks taken from a free list
  std::size_t cached_bytes = 0;  // bytes on the free lists now
};
Stats stats();

}  // namespace handler_memory

template <class T>
class HandlerAllocator {
 public:
  using value_type = T;

  HandlerAllocator() noexcept = default;
  template <class U>
  HandlerAllocator(const HandlerAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    return static_cast<T*>(handler_memory::allocate(sizeof(T) * n, alignof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    handler_memory::deallocate(p, sizeof(T) * n, alignof(T));
  }

  template <class U>
  bool operator==(const HandlerAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace pgfanout::hub
