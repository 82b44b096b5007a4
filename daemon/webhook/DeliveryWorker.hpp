// DeliveryWorker: durable webhook deliveries, kept in pgfanout.deliveries (sql 040_deliveries).
//
// Two jobs on one connection of its own. Claiming: for the durable channels whose rules have
// webhook actions, it claims outbox events for the shared group (webhook.group, through
// pgfanout.outbox_claim) and records each webhook they trigger with delivery_record in the same
// transaction, so that each event's deliveries are recorded once across all instances. The
// `webhook-id` is derived from the outbox id, the rule and the action's position, so it is the
// same on every attempt and every instance. Sending: it takes due rows (delivery_take, SKIP
// LOCKED, leased for webhook.lease), at most webhook.max_in_flight at a time, sends them through
// the WebhookSender and reports the outcomes in batches (delivery_report). A row is sent with the
// current config's rule of that name (endpoint, headers, secrets); a row whose rule or action is
// gone becomes a dead letter. It also records the dead letters of non-durable rules, and deletes
// delivered rows after webhook.keep_done.
//
// It polls every webhook.poll_interval; ring() (a doorbell on a durable channel) claims at once.
// All calls and callbacks on the io_context's thread.
#pragma once

#include <memory>
#include <string>

#include "pg/PgConfig.hpp"
#include "webhook/WebhookConfig.hpp"
#include "webhook/WebhookSender.hpp"

namespace boost::asio {
class io_context;
}

namespace pgfanout {
class Metrics;
}

namespace pgfanout::rules {
class RuleSet;
}

namespace pgfanout::webhook {

class DeliveryWorker {
 public:
  DeliveryWorker(boost::asio::io_context& io, Metrics& metrics, pg::PostgresConfig pg,
                 webhook::WebhookConfig options, std::string instance, WebhookSender& sender);
  ~DeliveryWorker();
  DeliveryWorker(const DeliveryWorker&) = delete;
  DeliveryWorker& operator=(const DeliveryWorker&) = delete;

  // The rules to claim and send for (at start and on reload). The worker connects when the
  // rules have any webhook action.
  void set_rules(std::shared_ptr<const rules::RuleSet> rules);
  void ring();
  // Stops claiming and taking; deliveries in flight finish and their outcomes are written.
  void stop();
  // Deliveries in flight plus outcomes and dead letters not yet written.
  std::size_t pending() const;
  void record_dead_letter(const DeadLetter& letter);
  // Records a durable delivery of an event from the WAL source; `done` gets "" once the row is in
  // pgfanout.deliveries (or was already, recorded by another instance), else the error (the
  // event's position is then not confirmed and the event comes again).
  void record(DeliveryRow row, std::function<void(const std::string& error)> done);
  bool connected() const;

  // The durable channels of `rules` that have a rule with a webhook action.
  static std::vector<std::string> claim_channels(const rules::RuleSet& rules);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgfanout::webhook
