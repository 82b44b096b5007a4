#include "cache/RedisEvictor.hpp"

#include <hiredis/hiredis.h>

#include <deque>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "cache/EvictionQueue.hpp"
#include "cache/RedisActions.hpp"
#include "metrics/Metrics.hpp"
#include "redis/RedisConnection.hpp"
#include "rules/RuleSet.hpp"

namespace pgfanout::redis {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// Commands in flight per target. Enough to keep a local Redis busy; bounded so that a slow
// server backs work up into the (bounded, observable) queue rather than into hiredis's buffers.
constexpr std::size_t kMaxInFlight = 32;

}  // namespace

// One action run for one event: completes when all its parts (keys, patterns, a publish) are
// answered.
struct RedisEvictor::Job {
  rules::ActionContext ctx;
  std::size_t outstanding = 0;
  std::string error;  // first error; empty while all went well
  bool unlink = true;
  std::chrono::milliseconds again_after{0};
  bool second_round = false;
  std::vector<std::string> again_keys;  // kept only when again_after is set
};

struct RedisEvictor::ScanJob {
  std::string pattern;
  std::vector<Job*> waiting;
  std::string cursor = "0";
  bool started = false;
  bool scan_done = false;
  bool restart = false;  // an UNLINK reply was lost: scan again from the start
  std::size_t unlinks_in_flight = 0;
  std::string error;
};

struct RedisEvictor::PublishItem {
  std::string channel;
  std::string message;
  Job* job;
};

struct RedisEvictor::Target {
  std::string name;
  std::unique_ptr<RedisConnection> conn;
  EvictionQueue<Job*> keys;
  std::deque<PublishItem> publishes;
  std::size_t publishes_in_flight = 0;
  std::deque<ScanJob*> scans;                           // waiting for their next step
  std::unordered_map<std::string, ScanJob*> unstarted;  // for sharing identical patterns
  std::size_t scan_jobs = 0;                            // alive, whatever their state
  bool scan_in_flight = false;
  std::size_t in_flight = 0;  // commands
  std::set<std::string> gap_rules;
  bool full_logged = false;
  Gauge* queued_gauge;
  Counter* keys_sent;
  Counter* keys_deleted;
  Counter* keys_failed;
  Counter* keys_deduplicated;
  Counter* publishes_sent;

  explicit Target(std::size_t limit) : keys(limit) {}
  std::size_t total() const {
    return keys.size() + publishes.size() + publishes_in_flight + scan_jobs;
  }
};

RedisEvictor::RedisEvictor(asio::io_context& io, Metrics& metrics, const RedisConfig& config,
                           GapHandler on_gap)
    : io_(io),
      dropped_(metrics, "pgfanout_redis_dropped_total",
               "Redis actions dropped because the target's queue was full, by rule",
               {"rule", "target"}),
      gaps_(metrics, "pgfanout_redis_gaps_total",
            "Times a rule's on_gap actions were run after Redis work was dropped", {"rule"}),
      errors_(metrics, "pgfanout_redis_errors_total",
              "Error replies from Redis, by target and error code", {"target", "error"}),
      config_(config),
      on_gap_(std::move(on_gap)),
      again_timer_(io) {
  for (const auto& spec : config_.targets) {
    auto t = std::make_unique<Target>(config_.queue_limit);
    t->name = spec.name;
    Labels l{{"target", spec.name}};
    t->queued_gauge = &metrics.gauge(
        "pgfanout_redis_queued", "Keys, publishes and patterns queued or in flight, by target", l);
    t->keys_sent = &metrics.counter("pgfanout_redis_keys_sent_total",
                                    "Keys sent in UNLINK/DEL commands that Redis answered", l);
    t->keys_deleted =
        &metrics.counter("pgfanout_redis_keys_deleted_total",
                         "Keys that existed and were deleted (UNLINK/DEL replies)", l);
    t->keys_failed = &metrics.counter("pgfanout_redis_keys_failed_total",
                                      "Keys whose UNLINK/DEL got an error reply (not retried)", l);
    t->keys_deduplicated = &metrics.counter(
        "pgfanout_redis_keys_deduplicated_total",
        "Keys left out of an UNLINK/DEL command because the same key was already in it", l);
    t->publishes_sent =
        &metrics.counter("pgfanout_redis_publishes_total", "PUBLISH commands answered", l);
    Target* raw = t.get();
    RedisConnection::Options o{spec.name,
                               spec.url,
                               config_.connect_timeout,
                               config_.command_timeout,
                               config_.reconnect_min,
                               config_.reconnect_max};
    t->conn = std::make_unique<RedisConnection>(
        io, metrics, std::move(o),
        RedisConnection::Callbacks{[this, raw] { pump(*raw); }, [](const std::string&) {}});
    if (const auto* d = config_.default_target(); d != nullptr && d->name == spec.name) {
      default_target_ = raw;
    }
    targets_.push_back(std::move(t));
  }
}

RedisEvictor::~RedisEvictor() {
  abandon();
}

void RedisEvictor::start() {
  for (auto& t : targets_) t->conn->start();
}

RedisEvictor::Target* RedisEvictor::resolve(const std::string& name) {
  if (name.empty()) return default_target_;
  for (auto& t : targets_) {
    if (t->name == name) return t.get();
  }
  return nullptr;
}

std::size_t RedisEvictor::queued() const {
  std::size_t n = 0;
  for (const auto& t : targets_) n += t->total();
  return n;
}

bool RedisEvictor::healthy(std::string& detail) const {
  bool ok = true;
  for (const auto& t : targets_) {
    if (t->conn && t->conn->ready()) continue;
    ok = false;
    detail += (detail.empty() ? "" : ", ") + t->name + " disconnected";
  }
  if (ok) detail = std::to_string(targets_.size()) + " target(s) connected";
  return ok;
}

bool RedisEvictor::idle() const {
  return queued() == 0 && again_.empty();
}

bool RedisEvictor::admit(Target& t, std::size_t n, const rules::ActionContext& ctx,
                         bool second_round) {
  if (t.keys.has_room(t.total() - t.keys.size() + n)) {
    t.full_logged = false;
    return true;
  }
  // Full: drop the new work, never silently. The action fails (an outbox event is retried) and
  // the rule's on_gap actions run once the target can take work again.
  const std::string& rule = ctx.rule_name();
  if (!t.full_logged) {
    spdlog::error(
        "Redis target {}: queue full ({} queued, limit {}); dropping evictions and "
        "running on_gap for the affected rules once Redis catches up",
        t.name, t.total(), config_.queue_limit);
    t.full_logged = true;
  }
  dropped_.with({rule, t.name}).inc();
  t.gap_rules.insert(rule);
  const std::string why = "Redis target " + t.name + ": queue full; dropped (on_gap will run)";
  if (second_round) {
    ctx.failed_after_success(why);  // the first eviction already counted the action
  } else {
    ctx.failed(why);
  }
  return false;
}

void RedisEvictor::execute(const rules::Action& action, const rules::Event& event,
                           const rules::ActionContext& ctx) {
  const auto* evict = action.as<EvictAction>();
  const auto* evict_pattern = action.as<EvictPatternAction>();
  const auto* publish = action.as<PublishAction>();
  const RedisAction* ra = publish;
  if (evict != nullptr) ra = evict;
  if (evict_pattern != nullptr) ra = evict_pattern;
  if (ra == nullptr) {
    ctx.failed("action kind \"" + std::string(action.kind()) + "\" is not a Redis action");
    return;
  }
  Target* t = resolve(ra->target());
  if (t == nullptr) {
    ctx.failed("no Redis target \"" + (ra->target().empty() ? "default" : ra->target()) +
               "\" (Redis targets change only on restart)");
    return;
  }
  if (stopping_) {
    ctx.failed("shutting down");
    return;
  }
  if (evict != nullptr) {
    const auto& ev = *evict;
    keys_.clear();
    render_evict_keys(ev, event, ctx, keys_);
    if (keys_.empty()) return;  // skipped (and reported), or no key applies to this op
    if (!admit(*t, keys_.size(), ctx)) return;
    auto* job = new Job{ctx, keys_.size(), {}, ev.unlink, ev.again_after};
    if (ev.again_after.count() > 0) job->again_keys = keys_;
    for (auto& k : keys_) t->keys.push(std::move(k), job, ev.unlink);
    return;
  }
  if (evict_pattern != nullptr) {
    const auto& ep = *evict_pattern;
    std::vector<std::string> patterns;
    std::string p;
    for (const auto& tpl : ep.patterns) {
      if (!rules::render_for_action(tpl, event, ctx, p, false, rules::Side::New, true)) return;
      patterns.push_back(std::move(p));
    }
    if (!admit(*t, patterns.size(), ctx)) return;
    auto* job = new Job{ctx, patterns.size()};
    for (auto& pattern : patterns) {
      auto it = t->unstarted.find(pattern);
      if (it != t->unstarted.end()) {
        it->second->waiting.push_back(job);
        continue;
      }
      auto* scan = new ScanJob{pattern, {job}};
      t->unstarted.emplace(std::move(pattern), scan);
      t->scans.push_back(scan);
      ++t->scan_jobs;
    }
    return;
  }
  const auto& pa = *publish;
  PublishItem item{{}, {}, nullptr};
  if (!rules::render_for_action(pa.channel, event, ctx, item.channel, false)) return;
  if (!rules::render_for_action(pa.message, event, ctx, item.message, true)) return;
  if (!admit(*t, 1, ctx)) return;
  item.job = new Job{ctx, 1};
  t->publishes.push_back(std::move(item));
}

void RedisEvictor::flush() {
  for (auto& t : targets_) pump(*t);
}

void RedisEvictor::pump(Target& t) {
  if (!t.conn->ready()) {
    update_gauge(t);
    return;
  }
  if (!t.gap_rules.empty() && t.total() <= config_.queue_limit / 2) {
    auto rules = std::move(t.gap_rules);
    t.gap_rules.clear();
    for (const auto& rule : rules) {
      gaps_.with({rule}).inc();
      spdlog::warn("Redis target {}: evictions of rule {} were dropped; running its on_gap", t.name,
                   rule);
      // Posted: on_gap re-enters the router, which calls back into execute() and flush().
      if (on_gap_) asio::post(io_, [this, rule] { on_gap_(rule); });
    }
  }
  // Keys before publishes: a publish never overtakes an eviction queued before it.
  while (t.in_flight < kMaxInFlight && t.conn->ready()) {
    if (t.keys.pending() > 0) {
      send_batch(t);
    } else if (!t.publishes.empty()) {
      send_publish(t);
    } else {
      break;
    }
  }
  if (!t.scan_in_flight && !t.scans.empty() && t.in_flight < kMaxInFlight && t.conn->ready()) {
    scan_step(t);
  }
  update_gauge(t);
}

void RedisEvictor::update_gauge(Target& t) {
  t.queued_gauge->set(static_cast<std::int64_t>(t.total()));
}

void RedisEvictor::count_error(Target& t, const std::string& message) {
  // The error code is the reply's first word (OOM, READONLY, WRONGTYPE, NOPERM...): a small set.
  std::string_view code = std::string_view(message).substr(0, message.find(' '));
  bool plain = !code.empty() && code.size() <= 16;
  for (char c : code) plain = plain && ((c >= 'A' && c <= 'Z') || c == '_');
  errors_.with({t.name, plain ? code : std::string_view("other")}).inc();
}

void RedisEvictor::send_batch(Target& target) {
  auto batch = std::make_shared<EvictionQueue<Job*>::Batch>(target.keys.take(config_.batch_keys));
  argv_.clear();
  argv_len_.clear();
  argv_.push_back(batch->unlink ? "UNLINK" : "DEL");
  argv_len_.push_back(batch->unlink ? 6 : 3);
  for (std::size_t i : batch->unique) {
    argv_.push_back(batch->items[i].key.data());
    argv_len_.push_back(batch->items[i].key.size());
  }
  target.keys_deduplicated->inc(batch->duplicates());
  ++target.in_flight;
  Target* tp = &target;
  target.conn->command(
      argv_.size(), argv_.data(), argv_len_.data(), [this, tp, batch](redisReply* r) {
        Target& t = *tp;
        --t.in_flight;
        if (r == nullptr) {
          t.keys.requeue(std::move(*batch));  // connection lost: send again after reconnecting
          return;
        }
        if (r->type == REDIS_REPLY_ERROR) {
          std::string message(r->str, r->len);
          count_error(t, message);
          if (message.starts_with("READONLY")) {
            t.keys.requeue(std::move(*batch));
            t.conn->reconnect("the server is a read-only replica (" + message + ")");
            return;
          }
          const std::size_t sent = batch->unique.size();
          std::string error = std::string(batch->unlink ? "UNLINK" : "DEL") + " " +
                              batch->items.front().key +
                              (sent > 1 ? " (and " + std::to_string(sent - 1) + " more)" : "") +
                              " on Redis target " + t.name + ": " + message;
          t.keys.done(*batch);
          t.keys_failed->inc(sent);
          for (auto& item : batch->items) part_done(t, item.ref, &error);
        } else {
          t.conn->note_success();
          t.keys.done(*batch);
          t.keys_sent->inc(batch->unique.size());
          if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
            t.keys_deleted->inc(static_cast<std::uint64_t>(r->integer));
          }
          for (auto& item : batch->items) part_done(t, item.ref, nullptr);
        }
        pump(t);
      });
}

void RedisEvictor::send_publish(Target& target) {
  auto item = std::make_shared<PublishItem>(std::move(target.publishes.front()));
  target.publishes.pop_front();
  const char* argv[] = {"PUBLISH", item->channel.data(), item->message.data()};
  std::size_t lens[] = {7, item->channel.size(), item->message.size()};
  ++target.in_flight;
  ++target.publishes_in_flight;
  Target* tp = &target;
  target.conn->command(3, argv, lens, [this, tp, item](redisReply* r) {
    Target& t = *tp;
    --t.in_flight;
    --t.publishes_in_flight;
    if (r == nullptr) {
      t.publishes.push_front(std::move(*item));
      return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
      std::string message(r->str, r->len);
      count_error(t, message);
      if (message.starts_with("READONLY")) {
        t.publishes.push_front(std::move(*item));
        t.conn->reconnect("the server is a read-only replica (" + message + ")");
        return;
      }
      std::string error =
          "PUBLISH " + item->channel + " on Redis target " + t.name + ": " + message;
      part_done(t, item->job, &error);
    } else {
      t.conn->note_success();
      t.publishes_sent->inc();
      part_done(t, item->job, nullptr);
    }
    pump(t);
  });
}

void RedisEvictor::scan_step(Target& target) {
  ScanJob* job = target.scans.front();
  target.scans.pop_front();
  if (!job->started) {
    job->started = true;
    target.unstarted.erase(job->pattern);
  }
  std::string count = std::to_string(config_.scan_count);
  const char* argv[] = {"SCAN",  job->cursor.data(), "MATCH", job->pattern.data(),
                        "COUNT", count.data()};
  std::size_t lens[] = {4, job->cursor.size(), 5, job->pattern.size(), 5, count.size()};
  ++target.in_flight;
  target.scan_in_flight = true;
  Target* tp = &target;
  target.conn->command(6, argv, lens, [this, tp, job](redisReply* r) {
    Target& t = *tp;
    --t.in_flight;
    t.scan_in_flight = false;
    if (r == nullptr) {
      job->cursor = "0";  // the server may have restarted: scan again from the start
      t.scans.push_front(job);
      return;
    }
    if (r->type == REDIS_REPLY_ERROR || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      std::string message =
          r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "unexpected SCAN reply";
      count_error(t, message);
      if (message.starts_with("READONLY")) {
        t.scans.push_front(job);
        t.conn->reconnect("the server is a read-only replica (" + message + ")");
        return;
      }
      job->error = "SCAN MATCH " + job->pattern + " on Redis target " + t.name + ": " + message;
      job->scan_done = true;
      finish_scan(t, job);
      pump(t);
      return;
    }
    t.conn->note_success();
    job->cursor.assign(r->element[0]->str, r->element[0]->len);
    const redisReply* found = r->element[1];
    if (found->elements > 0) {
      argv_.clear();
      argv_len_.clear();
      argv_.push_back("UNLINK");
      argv_len_.push_back(6);
      for (std::size_t i = 0; i < found->elements; ++i) {
        argv_.push_back(found->element[i]->str);
        argv_len_.push_back(found->element[i]->len);
      }
      ++t.in_flight;
      ++job->unlinks_in_flight;
      std::size_t n = found->elements;
      t.conn->command(
          argv_.size(), argv_.data(), argv_len_.data(), [this, tp, job, n](redisReply* ur) {
            Target& tu = *tp;
            --tu.in_flight;
            --job->unlinks_in_flight;
            if (ur == nullptr) {
              job->restart = true;
            } else if (ur->type == REDIS_REPLY_ERROR) {
              std::string message(ur->str, ur->len);
              count_error(tu, message);
              if (message.starts_with("READONLY")) {
                job->restart = true;
                tu.conn->reconnect("the server is a read-only replica (" + message + ")");
              } else if (job->error.empty()) {
                job->error = "UNLINK for pattern " + job->pattern + " on Redis target " + tu.name +
                             ": " + message;
              }
            } else {
              tu.keys_sent->inc(n);
              if (ur->type == REDIS_REPLY_INTEGER && ur->integer > 0) {
                tu.keys_deleted->inc(static_cast<std::uint64_t>(ur->integer));
              }
            }
            finish_scan(tu, job);
            if (tu.conn->ready()) pump(tu);
          });
    }
    if (job->cursor == "0") {
      job->scan_done = true;
      finish_scan(t, job);
    } else {
      t.scans.push_back(job);  // round-robin with the other patterns
    }
    pump(t);
  });
}

void RedisEvictor::finish_scan(Target& t, ScanJob* job) {
  if (!job->scan_done || job->unlinks_in_flight > 0) return;
  if (job->restart && job->error.empty()) {
    job->restart = false;
    job->scan_done = false;
    job->cursor = "0";
    t.scans.push_front(job);
    return;
  }
  --t.scan_jobs;
  for (Job* waiting : job->waiting)
    part_done(t, waiting, job->error.empty() ? nullptr : &job->error);
  delete job;
}

void RedisEvictor::part_done(Target& t, Job* job, const std::string* error) {
  if (error != nullptr && job->error.empty()) job->error = *error;
  if (--job->outstanding == 0) finish(t, job);
}

void RedisEvictor::finish(Target& t, Job* job) {
  if (!job->error.empty()) {
    if (stopping_) {
      if (job->ctx.completion) job->ctx.completion->fail();
    } else if (job->second_round) {
      job->ctx.failed_after_success(job->error);  // counted once, when the first round succeeded
    } else {
      job->ctx.failed(job->error);
    }
    delete job;
    return;
  }
  if (job->again_after.count() > 0 && !job->second_round) {
    // The first eviction is done: that is the action's latency. The second one closes the race
    // with a reader that loaded the old row before the commit and writes it back afterwards.
    job->ctx.succeeded();
    job->second_round = true;
    bool earliest = again_.empty() || Clock::now() + job->again_after < again_.begin()->first;
    again_.emplace(Clock::now() + job->again_after, std::make_pair(&t, job));
    if (earliest) arm_again_timer();
    return;
  }
  if (!job->second_round) job->ctx.succeeded();
  delete job;
}

void RedisEvictor::arm_again_timer() {
  if (again_.empty()) return;
  again_timer_.expires_at(again_.begin()->first);
  again_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    on_again_timer();
  });
}

void RedisEvictor::on_again_timer() {
  auto now = Clock::now();
  std::set<Target*> touched;
  while (!again_.empty() && again_.begin()->first <= now) {
    auto [t, job] = again_.begin()->second;
    again_.erase(again_.begin());
    if (!admit(*t, job->again_keys.size(), job->ctx, /*second_round=*/true)) {
      delete job;
      continue;
    }
    job->outstanding = job->again_keys.size();
    for (auto& k : job->again_keys) t->keys.push(std::move(k), job, job->unlink);
    job->again_keys.clear();
    touched.insert(t);
  }
  for (Target* t : touched) pump(*t);
  arm_again_timer();
}

void RedisEvictor::abandon() {
  // Fails (without acknowledging) whatever is left, so outbox events are read again next time.
  stopping_ = true;
  static const std::string kStopping = "shutting down";
  for (auto& t : targets_) t->conn->stop();  // lost replies put their work back in the queues
  for (auto& t : targets_) {
    std::vector<Job*> refs;
    t->keys.clear([&](Job* j) { refs.push_back(j); });
    for (auto& p : t->publishes) refs.push_back(p.job);
    t->publishes.clear();
    for (ScanJob* s : t->scans) {
      for (Job* j : s->waiting) refs.push_back(j);
      delete s;
    }
    t->scans.clear();
    for (Job* j : refs) part_done(*t, j, &kStopping);
  }
  for (auto& [_, entry] : again_) {
    if (entry.second->ctx.completion) entry.second->ctx.completion->fail();
    delete entry.second;
  }
  again_.clear();
}

}  // namespace pgfanout::redis
