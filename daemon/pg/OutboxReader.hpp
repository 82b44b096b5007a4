// OutboxReader: reads durable events from pgfanout.outbox for the rules marked `durable: true`.
//
// The NOTIFY on a durable channel is only a doorbell: ring() makes the reader fetch. It fetches in
// the outbox's safe order under this instance's consumer name (config `consumer`), hands each
// event to `deliver` with an EventCompletion, and acknowledges the position only once the actions
// of every event up to it have succeeded (at-least-once: after a failure, a crash or a restart the
// unacknowledged events come again; the outbox id is the idempotency key). It also polls every
// outbox.poll_interval (a doorbell can ring while an older transaction still holds the events
// back), catches up after its own reconnects, and trims consumed events every trim_interval.
//
// It has its own connection (a fetch never waits behind the listener's LISTENs). All calls and
// callbacks run on the io_context's thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/Config.hpp"
#include "rules/Action.hpp"
#include "rules/Event.hpp"

namespace boost::asio {
class io_context;
}

namespace pgfanout {
class Metrics;
}

namespace pgfanout::pg {

class OutboxReader {
 public:
  using Deliver =
      std::function<void(const rules::Notification&, std::shared_ptr<rules::EventCompletion>)>;

  OutboxReader(boost::asio::io_context& io, Metrics& metrics, config::PostgresConfig pg,
               config::OutboxConfig options, std::string consumer, Deliver deliver,
               std::function<void()> batch_end);
  ~OutboxReader();
  OutboxReader(const OutboxReader&) = delete;
  OutboxReader& operator=(const OutboxReader&) = delete;

  // Starts reading `channels` (no connection is made while the list is empty).
  void start(std::vector<std::string> channels);
  void set_channels(std::vector<std::string> channels);
  // Fetch now (a doorbell rang, or the listener reconnected).
  void ring();
  void stop();

  // No batch is being delivered or acknowledged.
  bool idle() const;
  bool connected() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace pgfanout::pg
