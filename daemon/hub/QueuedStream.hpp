// QueuedStream: a TCP stream whose writes all go through one FIFO queue and leave in gather writes.
//
// Every byte a hub session sends passes here: the frames of events (already encoded, one shared
// buffer per event for all subscribers, see Wire.hpp), the session's own replies, and — when it
// is the next layer of Beast's websocket::stream — Beast's handshake response, pongs, pings and
// close frames. Whatever is queued while a write is in flight, or within one turn of the event
// loop, goes out in the next single writev, so a burst of N events costs a subscriber one system
// call rather than N, and nothing is copied per subscriber.
//
// Beast's writes are copied (they are small and rare) and complete only once written, which keeps
// Beast's close handshake in order behind the events queued before it. After Beast queues a close
// frame, further frames are dropped. A failed write closes the socket: the session's pending read
// then fails and the session ends.
//
// The flush that gathers one turn's frames is scheduled on the io_context's FlushQueue, which
// flushes a batch of streams per handler so that a broadcast to many sessions does not hold the
// loop for all of their writes at once. A flush first writes at once, non-blocking, over a view of
// the queue: a socket with room takes it all, and no operation or completion handler is made (a
// broadcast would otherwise leave one completion per subscriber for the loop to run, ahead of its
// timers). What the socket refuses goes out by the socket's own async_write_some over the same
// view (a partial write continues where it stopped; no buffer list is kept), so the operation
// Asio allocates is small, and its memory comes from HandlerMemory. Its completion runs on the
// io_context's executor, not through the stream's executor (a session's strand), which would queue
// each in memory of its own. So a broadcast to every session allocates nothing from the heap once
// the free lists have grown. This relies on one thread running the stream's event loop (each hub
// loop has its own streams). A queue item holds the shared buffer and, for Beast's writes
// only, a handler; the queue keeps its capacity between bursts (up to a small bound).
//
// queued_bytes() counts everything not yet written (the session bounds it). set_owner() names the
// object that must outlive a write in flight (the session). Not thread-safe; one event loop.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace pgfanout::hub {

class FlushQueue;

class QueuedStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;
  using next_layer_type = boost::beast::tcp_stream;

  // The stream's executor must belong to an io_context (directly or through a strand).
  explicit QueuedStream(boost::beast::tcp_stream&& stream);

  executor_type get_executor() noexcept { return next_.get_executor(); }
  next_layer_type& next_layer() noexcept { return next_; }
  const next_layer_type& next_layer() const noexcept { return next_; }

  void set_owner(std::weak_ptr<void> owner) { owner_ = std::move(owner); }

  // Shuts the socket down both ways and closes it: no close frame, nothing more in or out.
  void cut();

  // Queues bytes to be written as they are (an encoded frame, an HTTP head, an SSE event).
  void write(std::shared_ptr<const std::string> bytes);
  // Bytes queued or being written.
  std::size_t queued_bytes() const { return queued_bytes_; }
  // Forgets the bytes queued by write() that are not being written yet (a slow client's backlog).
  void drop_unsent();
  // Gather writes started so far (each carries every item queued at that point, up to 256).
  std::size_t writes() const { return writes_; }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return next_.async_read_some(buffers, std::forward<Token>(token));
  }

  // For Beast: copies the bytes into the queue; completes once they have been written.
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          enqueue_copy(boost::beast::buffers_to_string(b), Handler(std::move(handler)));
        },
        token, buffers);
  }

 private:
  friend class FlushQueue;  // calls flush()

  using Handler = boost::asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;
  struct Item {
    std::shared_ptr<const std::string> bytes;
    Handler done;  // Beast's write, or empty
  };

  void enqueue_copy(std::string bytes, Handler done);
  void push(Item item);
  void flush();
  void write_some();
  void on_written(boost::system::error_code ec, std::size_t n);
  void on_flushed(boost::system::error_code ec);
  void complete_now(Handler done, boost::system::error_code ec, std::size_t n);

  boost::beast::tcp_stream next_;
  boost::asio::io_context::executor_type loop_;
  FlushQueue& flushes_;
  std::weak_ptr<void> owner_;
  std::vector<Item> queue_;
  std::size_t head_ = 0;  // queue_[head_, head_ + in_flight_) is being written
  std::size_t in_flight_ = 0;
  std::size_t queued_bytes_ = 0;
  std::size_t writes_ = 0;
  // Of the items being written: how many are written whole, and bytes of the next one.
  std::size_t sent_items_ = 0;
  std::size_t sent_bytes_ = 0;
  bool flushing_ = false;  // a flush is scheduled or a write is in flight
  bool close_queued_ = false;
  bool failed_ = false;
};

// Beast's websocket::stream closes its next layer through these (found by argument lookup).
void teardown(boost::beast::role_type role, QueuedStream& stream, boost::system::error_code& ec);

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, QueuedStream& stream, TeardownHandler&& handler) {
  boost::beast::async_teardown(role, stream.next_layer(), std::forward<TeardownHandler>(handler));
}

}  // namespace pgfanout::hub
