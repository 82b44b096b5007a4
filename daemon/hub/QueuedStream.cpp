#include "hub/QueuedStream.hpp"

#include <algorithm>
#include <iterator>
#include <stdexcept>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/strand.hpp>

#include "hub/FlushQueue.hpp"
#include "hub/HandlerMemory.hpp"

namespace pgfanout::hub {

namespace asio = boost::asio;

namespace {
// At most this many queued items per writev (well under IOV_MAX).
constexpr std::size_t kMaxBatch = 256;
// A server's close frame starts with this byte (FIN, opcode 8, unmasked).
constexpr unsigned char kCloseFrame = 0x88;
}  // namespace

namespace {

// The io_context executor of a stream on an io_context or on a strand of one.
asio::io_context::executor_type loop_of(const QueuedStream::executor_type& ex) {
  if (const auto* strand = ex.target<asio::strand<asio::io_context::executor_type>>()) {
    return strand->get_inner_executor();
  }
  if (const auto* io = ex.target<asio::io_context::executor_type>()) return *io;
  throw std::logic_error("QueuedStream: the stream is not on an io_context");
}

// The unwritten bytes of items[first, first + count), the first `skip` bytes of the first one
// already written: a buffer sequence over the queue that copies nothing. It holds indices, not
// pointers to items, because the queue may grow (and move) while the write waits.
template <class Items>
class UnsentBuffers {
 public:
  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = asio::const_buffer;
    using difference_type = std::ptrdiff_t;
    using pointer = const asio::const_buffer*;
    using reference = asio::const_buffer;

    const_iterator() = default;
    const_iterator(const Items* items, std::size_t at, std::size_t first, std::size_t skip)
        : items_(items), at_(at), first_(first), skip_(skip) {}
    asio::const_buffer operator*() const {
      asio::const_buffer b = asio::buffer(*(*items_)[at_].bytes);
      return at_ == first_ ? b + skip_ : b;
    }
    const_iterator& operator++() {
      ++at_;
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator before = *this;
      ++at_;
      return before;
    }
    bool operator==(const const_iterator& o) const { return at_ == o.at_; }
    bool operator!=(const const_iterator& o) const { return at_ != o.at_; }

   private:
    const Items* items_ = nullptr;
    std::size_t at_ = 0, first_ = 0, skip_ = 0;
  };

  UnsentBuffers(const Items& items, std::size_t first, std::size_t count, std::size_t skip)
      : items_(&items), first_(first), count_(count), skip_(skip) {}
  const_iterator begin() const { return {items_, first_, first_, skip_}; }
  const_iterator end() const { return {items_, first_ + count_, first_, skip_}; }

 private:
  const Items* items_;
  std::size_t first_, count_, skip_;
};

}  // namespace

QueuedStream::QueuedStream(boost::beast::tcp_stream&& stream)
    : next_(std::move(stream)),
      loop_(loop_of(next_.get_executor())),
      flushes_(asio::use_service<FlushQueue>(asio::query(loop_, asio::execution::context))) {}

void QueuedStream::write(std::shared_ptr<const std::string> bytes) {
  if (close_queued_ || failed_ || bytes->empty()) return;
  push({std::move(bytes), {}});
}

void QueuedStream::enqueue_copy(std::string bytes, Handler done) {
  if (failed_) {
    complete_now(std::move(done), asio::error::broken_pipe, 0);
    return;
  }
  if (bytes.empty()) {
    complete_now(std::move(done), {}, 0);
    return;
  }
  if (static_cast<unsigned char>(bytes.front()) == kCloseFrame) close_queued_ = true;
  push({std::make_shared<const std::string>(std::move(bytes)), std::move(done)});
}

void QueuedStream::complete_now(Handler done, boost::system::error_code ec, std::size_t n) {
  auto ex = next_.get_executor();
  asio::post(ex, asio::append(std::move(done), ec, n));
}

void QueuedStream::push(Item item) {
  queued_bytes_ += item.bytes->size();
  queue_.push_back(std::move(item));
  if (flushing_) return;
  // Wait for the rest of this turn of the event loop: a burst of events leaves in one write.
  flushing_ = true;
  flushes_.schedule(loop_, this, owner_.lock());
}

void QueuedStream::flush() {
  if (failed_) return;
  in_flight_ = std::min(queue_.size() - head_, kMaxBatch);
  if (in_flight_ == 0) {
    flushing_ = false;
    return;
  }
  sent_items_ = 0;
  sent_bytes_ = 0;
  ++writes_;
  // The socket mostly takes it all at once: write now, without an operation whose completion
  // would be one more handler for the loop to run later (a broadcast would queue one per
  // subscriber, and the loop's timers wait behind all of them). Only what the socket refuses
  // waits for an asynchronous write.
  boost::system::error_code ec;
  auto& socket = next_.socket();
  if (!socket.non_blocking()) socket.non_blocking(true, ec);
  const std::size_t n =
      ec ? 0
         : socket.write_some(UnsentBuffers<std::vector<Item>>(queue_, head_, in_flight_, 0), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) return write_some();
  on_written(ec, n);
}

void QueuedStream::write_some() {
  // Not asio::async_write, whose operation carries a copy of up to 64 buffers (over 1 KiB per
  // session in flight): the operation carries this view of the queue, and the buffers are read
  // from the queue (into an iovec on the stack) when the write is performed.
  const std::size_t first = head_ + sent_items_;
  next_.socket().async_write_some(
      UnsentBuffers<std::vector<Item>>(queue_, first, head_ + in_flight_ - first, sent_bytes_),
      asio::bind_executor(loop_, asio::bind_allocator(HandlerAllocator<void>(),
                                                      [this, keep = owner_.lock()](
                                                          boost::system::error_code ec,
                                                          std::size_t n) { on_written(ec, n); })));
}

void QueuedStream::on_written(boost::system::error_code ec, std::size_t n) {
  if (ec) return on_flushed(ec);
  while (n > 0) {
    const std::size_t left = queue_[head_ + sent_items_].bytes->size() - sent_bytes_;
    if (n < left) {
      sent_bytes_ += n;
      break;
    }
    n -= left;
    ++sent_items_;
    sent_bytes_ = 0;
  }
  if (sent_items_ < in_flight_) return write_some();
  on_flushed(ec);
}

void QueuedStream::on_flushed(boost::system::error_code ec) {
  const std::size_t end = head_ + in_flight_;
  for (; head_ < end; ++head_) {
    Item& item = queue_[head_];
    queued_bytes_ -= item.bytes->size();
    if (item.done) complete_now(std::move(item.done), ec, ec ? 0 : item.bytes->size());
    item.bytes.reset();
  }
  in_flight_ = 0;
  if (ec) {
    // The peer is gone or the socket broke: fail what is left and close, which ends the read
    // that the session keeps pending.
    failed_ = true;
    for (; head_ < queue_.size(); ++head_) {
      if (queue_[head_].done) complete_now(std::move(queue_[head_].done), ec, 0);
    }
    queue_.clear();
    head_ = 0;
    queued_bytes_ = 0;
    flushing_ = false;
    cut();
    return;
  }
  if (head_ == queue_.size()) {
    queue_.clear();
    head_ = 0;
    // An idle connection keeps no buffers.
    if (queue_.capacity() > 16) queue_.shrink_to_fit();
    flushing_ = false;
    return;
  }
  flush();
}

void QueuedStream::cut() {
  boost::system::error_code ignored;
  next_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  next_.close();
}

void QueuedStream::drop_unsent() {
  // Items being written stay, and so do Beast's (their handlers must complete in order).
  std::size_t keep = head_ + in_flight_;
  for (std::size_t i = keep; i < queue_.size(); ++i) {
    if (queue_[i].done) {
      if (keep != i) queue_[keep] = std::move(queue_[i]);
      ++keep;
    } else {
      queued_bytes_ -= queue_[i].bytes->size();
    }
  }
  queue_.resize(keep);
}

void teardown(boost::beast::role_type role, QueuedStream& stream, boost::system::error_code& ec) {
  boost::beast::teardown(role, stream.next_layer(), ec);
}

}  // namespace pgfanout::hub
