// WebhookExecutor: runs `webhook` actions handed out by the router.
//
// Events of plain NOTIFY rules are delivered from memory: each delivery gets a random
// `webhook-id`, is sent at once and retried per the action's RetryPolicy, on a timer, until it is
// delivered or becomes a dead letter (logged, counted, and recorded in pgfanout.deliveries through
// `dead_letters` when that is set). At most webhook.queue_limit deliveries are held (queued, in
// flight or waiting for a retry); one beyond that is dropped and counted (reason overflow), as
// are those still waiting for a retry at shutdown (reason shutdown). Memory is the stated policy:
// rules that must not lose deliveries use `durable: true`.
//
// Events read from the outbox (event.outbox_id() set) are not sent here: the DeliveryWorker
// records them in pgfanout.deliveries once for all instances and sends them from there. For
// those the executor reports success at once, so that this instance's outbox position moves on.
//
// Event loop thread only.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "rules/Action.hpp"
#include "webhook/WebhookSender.hpp"

namespace boost::asio {
class io_context;
}

namespace pgfanout::webhook {

class WebhookExecutor final : public rules::TypedExecutor<WebhookAction> {
 public:
  WebhookExecutor(boost::asio::io_context& io, WebhookSender& sender, int queue_limit);
  ~WebhookExecutor() override;

  void run(const WebhookAction& hook, const rules::Event& event,
           const rules::ActionContext& ctx) override;
  std::size_t pending() const override { return held_; }

  // Where durable deliveries of events from the WAL source go (the DeliveryWorker): recorded in
  // pgfanout.deliveries once across instances, sent from there.
  using Recorder = std::function<void(DeliveryRow, std::function<void(const std::string&)>)>;
  void set_durable_recorder(Recorder recorder) { recorder_ = std::move(recorder); }
  void set_dead_letter_sink(std::function<void(const DeadLetter&)> sink) {
    dead_letters_ = std::move(sink);
  }
  // Shutdown begins: deliveries waiting for a retry are dropped (counted); those in flight may
  // finish, but are not retried.
  void begin_shutdown();
  // The drain deadline passed: whatever is still in flight is counted as dropped.
  void abandon();

 private:
  struct Delivery;
  struct Timer;
  void send(const std::shared_ptr<Delivery>& d);
  void on_outcome(const std::shared_ptr<Delivery>& d, Outcome&& o);
  void finish(const std::shared_ptr<Delivery>& d);
  void arm_timer();
  void on_timer();

  boost::asio::io_context& io_;
  WebhookSender& sender_;
  int queue_limit_;
  std::unique_ptr<Timer> timer_;
  std::multimap<Clock::time_point, std::shared_ptr<Delivery>> waiting_;
  Clock::time_point timer_at_{};
  std::size_t held_ = 0;
  bool stopping_ = false;
  bool abandoned_ = false;
  std::function<void(const DeadLetter&)> dead_letters_;
  Recorder recorder_;
};

}  // namespace pgfanout::webhook
