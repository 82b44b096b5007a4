// FlushQueue: the QueuedStreams of one io_context that have bytes to write, flushed kBatch at a
// time per turn of the event loop.
//
// A broadcast queues a frame on every subscriber's stream within one handler; each stream then
// needs one writev. Were each flush a handler of its own, all of them would run before the loop
// next looked at its timers and sockets, holding it for as long as N system calls take (over
// 100 ms for 10,000 subscribers). Here the streams wait in one list, and a handler flushes the
// next kBatch of them and posts itself again behind whatever became ready meanwhile, so timers,
// reads and other events wait for one batch at most. A stream's own frames stay in order (they
// are in its queue); streams are flushed in the order they asked.
//
// An io_context service (one per io_context; use_service()), used only on the loop's thread. An
// entry holds the stream's owner (the session) alive until its flush; shutting the io_context
// down drops the entries.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>

namespace pgfanout::hub {

class QueuedStream;

class FlushQueue : public boost::asio::execution_context::service {
 public:
  using key_type = FlushQueue;
  static boost::asio::execution_context::id id;

  // Streams flushed per handler.
  static constexpr std::size_t kBatch = 64;

  explicit FlushQueue(boost::asio::execution_context& context);

  // Flushes `stream` in a later handler on `loop`, keeping `owner` alive until then.
  void schedule(const boost::asio::io_context::executor_type& loop, QueuedStream* stream,
                std::shared_ptr<void> owner);

  // Handlers run so far (for tests: a broadcast to N streams takes about N / kBatch).
  std::size_t batches() const { return batches_; }

 private:
  void shutdown() override;
  void run_batch();

  std::vector<std::pair<QueuedStream*, std::shared_ptr<void>>> pending_;
  std::size_t next_ = 0;  // pending_[next_...] are still to be flushed
  std::size_t batches_ = 0;
  bool posted_ = false;
  std::optional<boost::asio::io_context::executor_type> loop_;  // set by the first schedule()
};

}  // namespace pgfanout::hub
