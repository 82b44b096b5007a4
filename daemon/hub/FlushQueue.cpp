#include "hub/FlushQueue.hpp"

#include <algorithm>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/post.hpp>

#include "hub/HandlerMemory.hpp"
#include "hub/QueuedStream.hpp"

namespace pgfanout::hub {

namespace asio = boost::asio;

asio::execution_context::id FlushQueue::id;

FlushQueue::FlushQueue(asio::execution_context& context)
    : asio::execution_context::service(context) {}

void FlushQueue::schedule(const asio::io_context::executor_type& loop, QueuedStream* stream,
                          std::shared_ptr<void> owner) {
  pending_.emplace_back(stream, std::move(owner));
  if (posted_) return;
  posted_ = true;
  loop_ = loop;
  asio::post(*loop_, asio::bind_allocator(HandlerAllocator<void>(), [this] { run_batch(); }));
}

void FlushQueue::run_batch() {
  ++batches_;
  // flush() may schedule again (never the same stream: it is still flushing), which appends.
  const std::size_t end = std::min(pending_.size(), next_ + kBatch);
  for (; next_ < end; ++next_) {
    auto [stream, owner] = std::move(pending_[next_]);
    stream->flush();
  }
  if (next_ < pending_.size()) {
    // Behind the handlers that became ready meanwhile, the reactor's turn included.
    asio::post(*loop_, asio::bind_allocator(HandlerAllocator<void>(), [this] { run_batch(); }));
    return;
  }
  // The capacity stays (24 bytes per session of the largest broadcast): freeing a block that
  // large makes glibc's malloc consolidate its free lists there and then, a stall of its own.
  pending_.clear();
  next_ = 0;
  posted_ = false;
}

void FlushQueue::shutdown() {
  pending_.clear();
  next_ = 0;
}

}  // namespace pgfanout::hub
