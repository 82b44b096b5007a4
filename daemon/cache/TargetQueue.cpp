#include "cache/TargetQueue.hpp"

#include <hiredis/hiredis.h>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

namespace pgfanout::redis {

namespace {

// Commands in flight per target. Enough to keep a local Redis busy; bounded so that a slow
// server backs work up into the (bounded, observable) queue rather than into the connection's
// write buffer.
constexpr std::size_t kMaxInFlight = 32;
// The pause after TRYAGAIN (a multi-key command in a slot being migrated) or CLUSTERDOWN.
constexpr std::chrono::milliseconds kTryAgainPause{100};

}  // namespace

TargetQueue::TargetQueue(boost::asio::io_context& io, Metrics& metrics, const RedisConfig& config,
                         const RedisTarget& spec, Owner& owner, Families families)
    : io_(io),
      config_(config),
      name_(spec.name),
      owner_(owner),
      families_(families),
      nodes_(io, metrics, config, spec, [this] { pump(); }),
      keys_(config.queue_limit),
      hold_timer_(io) {
  Labels l{{"target", spec.name}};
  queued_gauge_ = &metrics.gauge("pgfanout_redis_queued",
                                 "Keys, publishes and patterns queued or in flight, by target", l);
  metrics
      .gauge("pgfanout_redis_queue_limit",
             "redis.queue_limit: the most pgfanout_redis_queued may reach, by target", l)
      .set(static_cast<double>(config.queue_limit));
  keys_sent_ = &metrics.counter("pgfanout_redis_keys_sent_total",
                                "Keys sent in UNLINK/DEL commands that Redis answered", l);
  keys_deleted_ = &metrics.counter("pgfanout_redis_keys_deleted_total",
                                   "Keys that existed and were deleted (UNLINK/DEL replies)", l);
  keys_failed_ = &metrics.counter("pgfanout_redis_keys_failed_total",
                                  "Keys whose UNLINK/DEL got an error reply (not retried)", l);
  keys_deduplicated_ = &metrics.counter(
      "pgfanout_redis_keys_deduplicated_total",
      "Keys left out of an UNLINK/DEL command because the same key was already in it", l);
  publishes_sent_ =
      &metrics.counter("pgfanout_redis_publishes_total", "PUBLISH commands answered", l);
}

bool TargetQueue::admit(std::size_t n, const rules::ActionContext& ctx, bool second_round) {
  if (keys_.has_room(total() - keys_.size() + n)) {
    full_logged_ = false;
    return true;
  }
  // Full: drop the new work, never silently. The action fails (an outbox event is retried) and
  // the rule's on_gap actions run once the target can take work again.
  const std::string& rule = ctx.rule_name();
  if (!full_logged_) {
    spdlog::error(
        "Redis target {}: queue full ({} queued, limit {}); dropping evictions and "
        "running on_gap for the affected rules once Redis catches up",
        name_, total(), config_.queue_limit);
    full_logged_ = true;
  }
  families_.dropped.with({rule, name_}).inc();
  gap_rules_.insert(rule);
  const std::string why = "Redis target " + name_ + ": queue full; dropped (on_gap will run)";
  if (second_round) {
    ctx.failed_after_success(why);  // the first eviction already counted the action
  } else {
    ctx.failed(why);
  }
  return false;
}

void TargetQueue::pump() {
  if (held_ || nodes_.any_ready() == nullptr) {
    update_gauge();
    return;
  }
  if (!gap_rules_.empty() && total() <= config_.queue_limit / 2) {
    auto rules = std::move(gap_rules_);
    gap_rules_.clear();
    for (const auto& rule : rules) {
      families_.gaps.with({rule}).inc();
      spdlog::warn("Redis target {}: evictions of rule {} were dropped; running its on_gap", name_,
                   rule);
      // Posted: on_gap re-enters the router, which calls back into execute() and flush().
      boost::asio::post(io_, [this, rule] { owner_.gap(rule); });
    }
  }
  // Keys before publishes: a publish never overtakes an eviction queued before it.
  bool sending = true;
  while (sending && in_flight_ < kMaxInFlight && !held_) {
    if (publish_due()) {
      sending = send_publish();
    } else if (keys_.pending() > 0) {
      sending = send_batch();
    } else if (!publishes_.empty() && !nodes_.cluster()) {
      sending = send_publish();  // after the keys on the same connection: Redis keeps the order
    } else {
      break;
    }
  }
  if (scans_.can_step() && in_flight_ < kMaxInFlight && !held_) scans_.step(*this);
  update_gauge();
}

void TargetQueue::pump_soon() {
  if (pump_posted_) return;
  pump_posted_ = true;
  boost::asio::post(io_, [this] {
    pump_posted_ = false;
    pump();
  });
}

void TargetQueue::handed_back_after(const Reply& reply, RedisConnection& conn) {
  switch (reply.kind) {
    case Reply::Kind::ReadOnly:
      nodes_.lost_role(conn, "the server is a read-only replica (" + reply.message + ")");
      break;
    case Reply::Kind::Moved: {
      std::uint16_t slot = 0;
      ClusterNode to;
      if (parse_redirect(reply.message, slot, to)) {
        nodes_.moved(slot, to);
        pump_soon();
        break;
      }
      // A redirect it cannot read (e.g. an empty host): sent again at once it would come back
      // the same, so the target pauses while the slot map is read again.
      count_error(reply.message);
      nodes_.stale();
      [[fallthrough]];
    }
    case Reply::Kind::Ask:  // the node asked for is not connected yet
    case Reply::Kind::TryAgain:
      if (held_) break;
      held_ = true;
      hold_timer_.expires_after(kTryAgainPause);
      hold_timer_.async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        held_ = false;
        pump();
      });
      break;
    default:
      break;  // a lost reply: sent again once the connection (or the slot map) is back
  }
}

void TargetQueue::count_error(const std::string& message) {
  families_.errors.with({name_, error_code(message)}).inc();
}

bool TargetQueue::send_batch() {
  Batch batch = keys_.take(config_.batch_keys);
  keys_deduplicated_->inc(batch.duplicates());
  if (!nodes_.cluster()) {  // one server takes the batch as it is
    RedisConnection* conn = nodes_.for_slot(0);
    if (conn == nullptr || !conn->ready()) {
      keys_.requeue(std::move(batch));
      return false;
    }
    send_keys(*conn, std::make_shared<Batch>(std::move(batch)), false);
    return true;
  }
  std::vector<bool> unique(batch.items.size(), false);
  for (std::size_t i : batch.unique) unique[i] = true;
  auto groups = slot_groups(batch.items.size(),
                            [&](std::size_t i) -> std::string_view { return batch.items[i].key; });
  bool sent_all = true;
  for (auto& [slot, indexes] : groups) {
    auto part = std::make_shared<Batch>();
    part->unlink = batch.unlink;
    for (std::size_t i : indexes) {
      if (unique[i]) part->unique.push_back(part->items.size());
      part->items.push_back(std::move(batch.items[i]));
    }
    RedisConnection* conn = nodes_.for_slot(slot);
    if (conn == nullptr || !conn->ready()) {
      keys_.requeue(std::move(*part));  // waits for the slot's primary
      sent_all = false;
      continue;
    }
    send_keys(*conn, std::move(part), false);
  }
  return sent_all;
}

void TargetQueue::send_keys(RedisConnection& conn, std::shared_ptr<Batch> batch, bool asking) {
  if (asking) {
    const char* asking_argv[] = {"ASKING"};
    std::size_t asking_len[] = {6};
    conn.command(1, asking_argv, asking_len, [](redisReply*) {});  // the next reply tells
  }
  argv_.clear();
  argv_len_.clear();
  argv_.push_back(batch->unlink ? "UNLINK" : "DEL");
  argv_len_.push_back(batch->unlink ? 6 : 3);
  for (std::size_t i : batch->unique) {
    argv_.push_back(batch->items[i].key.data());
    argv_len_.push_back(batch->items[i].key.size());
  }
  ++in_flight_;
  RedisConnection* cp = &conn;
  conn.command(argv_.size(), argv_.data(), argv_len_.data(), [this, batch, cp](redisReply* r) {
    --in_flight_;
    Reply reply = classify(r, nodes_.cluster());
    if (reply.kind == Reply::Kind::Ask && follow_ask(reply, batch)) return;
    if (handed_back(reply, *cp, [&] { keys_.requeue(std::move(*batch)); })) return;
    keys_.done(*batch);
    if (!reply.ok()) {
      const std::size_t sent = batch->unique.size();
      std::string error = std::string(batch->unlink ? "UNLINK" : "DEL") + " " +
                          batch->items.front().key +
                          (sent > 1 ? " (and " + std::to_string(sent - 1) + " more)" : "") +
                          " on Redis target " + name_ + ": " + reply.message;
      keys_failed_->inc(sent);
      answer_keys(*batch, &error);
    } else {
      cp->note_success();
      keys_sent_->inc(batch->unique.size());
      if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
        keys_deleted_->inc(static_cast<std::uint64_t>(r->integer));
      }
      answer_keys(*batch, nullptr);
    }
    pump();
  });
}

bool TargetQueue::follow_ask(const Reply& reply, const std::shared_ptr<Batch>& batch) {
  std::uint16_t slot = 0;
  ClusterNode to;
  if (!parse_redirect(reply.message, slot, to)) return false;
  RedisConnection* conn = nodes_.node(to);
  if (!conn->ready()) return false;  // handed back; sent again once the map says where
  nodes_.asked();
  send_keys(*conn, batch, true);
  return true;
}

bool TargetQueue::send_publish() {
  RedisConnection* conn = nodes_.any_ready();
  if (conn == nullptr) return false;
  auto item = std::make_shared<PublishItem>(std::move(publishes_.front()));
  publishes_.pop_front();
  const char* argv[] = {"PUBLISH", item->channel.data(), item->message.data()};
  std::size_t lens[] = {7, item->channel.size(), item->message.size()};
  ++in_flight_;
  ++publishes_in_flight_;
  conn->command(3, argv, lens, [this, item, conn](redisReply* r) {
    --in_flight_;
    --publishes_in_flight_;
    Reply reply = classify(r, nodes_.cluster());
    if (handed_back(reply, *conn, [&] { publishes_.push_front(std::move(*item)); })) return;
    if (!reply.ok()) {
      std::string error =
          "PUBLISH " + item->channel + " on Redis target " + name_ + ": " + reply.message;
      answer(*item->job, &error);
    } else {
      conn->note_success();
      publishes_sent_->inc();
      answer(*item->job, nullptr);
    }
    pump();
  });
  return true;
}

void TargetQueue::stop() {
  hold_timer_.cancel();
  nodes_.stop();
}

void TargetQueue::abandon(const std::string& why) {
  std::vector<Job*> refs;
  keys_.clear([&](const KeyRef& r) { refs.push_back(r.job); });
  order_.clear();
  for (auto& p : publishes_) refs.push_back(p.job);
  publishes_.clear();
  scans_.abandon([&](Job& j) { refs.push_back(&j); });
  for (Job* j : refs) answer(*j, &why);
}

}  // namespace pgfanout::redis
