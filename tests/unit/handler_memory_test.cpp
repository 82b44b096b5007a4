// HandlerMemory: blocks are recycled by size class, large or over-aligned requests bypass the free
// lists, the lists keep at most kMaxCachedBytes, and Asio operations bound to HandlerAllocator take
// their memory from the lists (a second round of the same work allocates nothing new).
#include <cstdint>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "hub/HandlerMemory.hpp"

namespace pgfanout::hub {
namespace {

namespace asio = boost::asio;

TEST(HandlerMemory, AFreedBlockServesTheNextRequestOfItsSizeClass) {
  void* a = handler_memory::allocate(100, 8);
  handler_memory::deallocate(a, 100, 8);
  const auto before = handler_memory::stats();
  void* b = handler_memory::allocate(120, 8);  // same 128-byte class
  EXPECT_EQ(b, a);
  EXPECT_EQ(handler_memory::stats().reused, before.reused + 1);
  EXPECT_EQ(handler_memory::stats().fresh, before.fresh);
  void* c = handler_memory::allocate(40, 8);  // another class: not that block
  EXPECT_NE(c, b);
  handler_memory::deallocate(b, 120, 8);
  handler_memory::deallocate(c, 40, 8);
}

TEST(HandlerMemory, LargeAndOverAlignedRequestsBypassTheLists) {
  const auto before = handler_memory::stats();
  void* big = handler_memory::allocate(4096, 8);
  void* aligned = handler_memory::allocate(64, 64);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(aligned) % 64, 0u);
  handler_memory::deallocate(big, 4096, 8);
  handler_memory::deallocate(aligned, 64, 64);
  const auto after = handler_memory::stats();
  EXPECT_EQ(after.fresh, before.fresh);
  EXPECT_EQ(after.reused, before.reused);
  EXPECT_EQ(after.cached_bytes, before.cached_bytes);
}

TEST(HandlerMemory, TheListsKeepAtMostTheirBound) {
  // On a thread of its own: its full lists are released when it ends and do not affect the
  // other tests.
  handler_memory::Stats seen;
  std::thread([&seen] {
    std::vector<void*> blocks(handler_memory::kMaxCachedBytes / 512 + 100);
    for (auto& b : blocks) b = handler_memory::allocate(512, 8);
    for (auto* b : blocks) handler_memory::deallocate(b, 512, 8);
    seen = handler_memory::stats();
  }).join();
  EXPECT_EQ(seen.cached_bytes, handler_memory::kMaxCachedBytes);
}

TEST(HandlerMemory, AsioOperationsBoundToTheAllocatorAreRecycled) {
  asio::io_context io;
  int ran = 0;
  auto round = [&] {
    for (int i = 0; i < 100; ++i) {
      asio::post(io, asio::bind_allocator(HandlerAllocator<void>(), [&ran] { ++ran; }));
    }
    io.restart();
    io.run();
  };
  round();
  const auto before = handler_memory::stats();
  round();
  const auto after = handler_memory::stats();
  EXPECT_EQ(ran, 200);
  EXPECT_EQ(after.fresh, before.fresh) << "the second round found every block on a free list";
  EXPECT_GE(after.reused - before.reused, 100u);
}

}  // namespace
}  // namespace pgfanout::hub
