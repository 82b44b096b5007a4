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
// It is the outbox EventSource: each event goes to the EventSink with its EventCompletion. It has
// its own connection, a PgSession (a fetch never waits behind the listener's LISTENs). All calls
// and callbacks run on the io_context's thread; the object must outlive the io_context's run().
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pg/EventSource.hpp"
#include "pg/PgConfig.hpp"

namespace boost::asio {
class io_context;
}

namespace pgfanout {
class Metrics;
}

namespace pgfanout::pg {

class OutboxReader final : public EventSource {
 public:
  OutboxReader(boost::asio::io_context& io, Metrics& metrics, PostgresConfig pg,
               OutboxConfig options, std::string consumer, EventSink& sink);
  ~OutboxReader() override;
  OutboxReader(const OutboxReader&) = delete;
  OutboxReader& operator=(const OutboxReader&) = delete;

  std::string_view name() const override { return "outbox"; }
  // Starts reading `channels` (no connection is made while the list is empty).
  void start(std::vector<std::string> channels) override;
  void set_channels(std::vector<std::string> channels) override;
  void stop() override;
  bool connected() const override;

  // Fetch now (a doorbell rang, or the listener reconnected).
  void ring();
  // No batch is being delivered or acknowledged.
  bool idle() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgfanout::pg
