#include "hub/QueuedStream.hpp"

#include <algorithm>
#include <span>

#include <boost/asio/write.hpp>

namespace pgfanout::hub {

namespace asio = boost::asio;

namespace {
// At most this many queued items per writev (well under IOV_MAX).
constexpr std::size_t kMaxBatch = 256;
// A server's close frame starts with this byte (FIN, opcode 8, unmasked).
constexpr unsigned char kCloseFrame = 0x88;
}  // namespace

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
  asio::post(next_.get_executor(), [this, keep = owner_.lock()] { flush(); });
}

void QueuedStream::flush() {
  if (failed_) return;
  in_flight_ = std::min(queue_.size() - head_, kMaxBatch);
  if (in_flight_ == 0) {
    flushing_ = false;
    return;
  }
  iov_.clear();
  ++writes_;
  for (std::size_t i = head_; i < head_ + in_flight_; ++i) {
    iov_.push_back(asio::buffer(*queue_[i].bytes));
  }
  asio::async_write(
      next_.socket(), std::span<const asio::const_buffer>(iov_),
      [this, keep = owner_.lock()](boost::system::error_code ec, std::size_t) { on_flushed(ec); });
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
    if (iov_.capacity() > 16) iov_.shrink_to_fit();
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
