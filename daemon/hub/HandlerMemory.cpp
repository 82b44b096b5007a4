#include "hub/HandlerMemory.hpp"

#include <array>

namespace pgfanout::hub::handler_memory {

namespace {

constexpr std::size_t kGranule = 64;
constexpr std::size_t kClasses = 8;  // 64, 128, ... 512 bytes

struct FreeBlock {
  FreeBlock* next;
};

struct Pool {
  std::array<FreeBlock*, kClasses> heads{};
  Stats figures;

  ~Pool() {
    for (FreeBlock*& head : heads) {
      while (head != nullptr) {
        FreeBlock* b = head;
        head = b->next;
        ::operator delete(b);
      }
    }
  }
};

thread_local Pool pool;

// The size class of a request, or kClasses when it is not pooled.
std::size_t size_class(std::size_t size, std::size_t align) {
  if (size == 0 || size > kGranule * kClasses || align > __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
    return kClasses;
  }
  return (size - 1) / kGranule;
}

}  // namespace

void* allocate(std::size_t size, std::size_t align) {
  const std::size_t c = size_class(size, align);
  if (c == kClasses) {
    return align > __STDCPP_DEFAULT_NEW_ALIGNMENT__ ? ::operator new(size, std::align_val_t(align))
                                                    : ::operator new(size);
  }
  if (FreeBlock* b = pool.heads[c]) {
    pool.heads[c] = b->next;
    pool.figures.cached_bytes -= (c + 1) * kGranule;
    ++pool.figures.reused;
    return b;
  }
  ++pool.figures.fresh;
  return ::operator new((c + 1) * kGranule);
}

void deallocate(void* p, std::size_t size, std::size_t align) noexcept {
  const std::size_t c = size_class(size, align);
  if (c == kClasses) {
    if (align > __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      ::operator delete(p, std::align_val_t(align));
    } else {
      ::operator delete(p);
    }
    return;
  }
  const std::size_t bytes = (c + 1) * kGranule;
  if (pool.figures.cached_bytes + bytes > kMaxCachedBytes) {
    ::operator delete(p);
    return;
  }
  pool.heads[c] = ::new (p) FreeBlock{pool.heads[c]};
  pool.figures.cached_bytes += bytes;
}

Stats stats() {
  return pool.figures;
}

}  // namespace pgfanout::hub::handler_memory
