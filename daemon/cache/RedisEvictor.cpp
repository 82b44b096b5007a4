#include "cache/RedisEvictor.hpp"

#include <set>

#include "rules/RuleSet.hpp"

namespace pgfanout::redis {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

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
    targets_.push_back(std::make_unique<TargetQueue>(
        io, metrics, config_, spec, *this, TargetQueue::Families{dropped_, gaps_, errors_}));
    if (const auto* d = config_.default_target(); d != nullptr && d->name == spec.name) {
      default_target_ = targets_.back().get();
    }
  }
}

RedisEvictor::~RedisEvictor() {
  abandon();
}

void RedisEvictor::start() {
  for (auto& t : targets_) t->start();
}

TargetQueue* RedisEvictor::resolve(const std::string& name) {
  if (name.empty()) return default_target_;
  for (auto& t : targets_) {
    if (t->name() == name) return t.get();
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
    if (t->ready()) continue;
    ok = false;
    detail += (detail.empty() ? "" : ", ") + t->name() + " " + t->problem();
  }
  if (ok) detail = std::to_string(targets_.size()) + " target(s) connected";
  return ok;
}

bool RedisEvictor::idle() const {
  return queued() == 0 && again_.empty();
}

void RedisEvictor::execute(const rules::Action& action, const rules::Event& event,
                           const rules::ActionContext& ctx) {
  if (const auto* a = action.as<EvictAction>()) return dispatch(*a, event, ctx);
  if (const auto* a = action.as<EvictPatternAction>()) return dispatch(*a, event, ctx);
  if (const auto* a = action.as<PublishAction>()) return dispatch(*a, event, ctx);
  ctx.failed("action kind \"" + std::string(action.kind()) + "\" is not a Redis action");
}

template <class A>
void RedisEvictor::dispatch(const A& action, const rules::Event& event,
                            const rules::ActionContext& ctx) {
  TargetQueue* t = resolve(action.target());
  if (t == nullptr) {
    ctx.failed("no Redis target \"" + (action.target().empty() ? "default" : action.target()) +
               "\" (Redis targets change only on restart)");
    return;
  }
  if (stopping_) {
    ctx.failed("shutting down");
    return;
  }
  run(*t, action, event, ctx);
}

void RedisEvictor::run(TargetQueue& t, const EvictAction& action, const rules::Event& event,
                       const rules::ActionContext& ctx) {
  keys_.clear();
  render_evict_keys(action, event, ctx, keys_);
  if (keys_.empty()) return;  // skipped (and reported), or no key applies to this op
  if (!t.admit(keys_.size(), ctx)) return;
  Job& job = jobs_.make(ctx, keys_.size(), action.unlink, action.again_after);
  if (action.again_after.count() > 0) job.again_keys = keys_;
  for (auto& k : keys_) t.push_key(std::move(k), job, action.unlink);
}

void RedisEvictor::run(TargetQueue& t, const EvictPatternAction& action, const rules::Event& event,
                       const rules::ActionContext& ctx) {
  std::vector<std::string> patterns;
  std::string p;
  for (const auto& tpl : action.patterns) {
    if (!rules::render_for_action(tpl, event, ctx, p, false, rules::Side::New, true)) return;
    patterns.push_back(std::move(p));
  }
  if (!t.admit(patterns.size(), ctx)) return;
  Job& job = jobs_.make(ctx, patterns.size());
  for (auto& pattern : patterns) t.push_pattern(std::move(pattern), job);
}

void RedisEvictor::run(TargetQueue& t, const PublishAction& action, const rules::Event& event,
                       const rules::ActionContext& ctx) {
  PublishItem item;
  if (!rules::render_for_action(action.channel, event, ctx, item.channel, false)) return;
  if (!rules::render_for_action(action.message, event, ctx, item.message, true)) return;
  if (!t.admit(1, ctx)) return;
  item.job = &jobs_.make(ctx, 1);
  t.push_publish(std::move(item));
}

void RedisEvictor::flush() {
  for (auto& t : targets_) t->pump();
}

void RedisEvictor::gap(const std::string& rule) {
  if (on_gap_) on_gap_(rule);
}

void RedisEvictor::finished(TargetQueue& t, Job& job) {
  if (!job.error.empty()) {
    if (stopping_) {
      if (job.ctx.completion) job.ctx.completion->fail();
    } else if (job.second_round) {
      job.ctx.failed_after_success(job.error);  // counted once, when the first round succeeded
    } else {
      job.ctx.failed(job.error);
    }
    jobs_.release(job);
    return;
  }
  if (job.again_after.count() > 0 && !job.second_round) {
    // The first eviction is done: that is the action's latency. The second one closes the race
    // with a reader that loaded the old row before the commit and writes it back afterwards.
    job.ctx.succeeded();
    job.second_round = true;
    bool earliest = again_.empty() || Clock::now() + job.again_after < again_.begin()->first;
    again_.emplace(Clock::now() + job.again_after, std::make_pair(&t, &job));
    if (earliest) arm_again_timer();
    return;
  }
  if (!job.second_round) job.ctx.succeeded();
  jobs_.release(job);
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
  std::set<TargetQueue*> touched;
  while (!again_.empty() && again_.begin()->first <= now) {
    auto [t, job] = again_.begin()->second;
    again_.erase(again_.begin());
    if (!t->admit(job->again_keys.size(), job->ctx, /*second_round=*/true)) {
      jobs_.release(*job);
      continue;
    }
    job->outstanding = job->again_keys.size();
    for (auto& k : job->again_keys) t->push_key(std::move(k), *job, job->unlink);
    job->again_keys.clear();
    touched.insert(t);
  }
  for (TargetQueue* t : touched) t->pump();
  arm_again_timer();
}

void RedisEvictor::abandon() {
  // Fails (without acknowledging) whatever is left, so outbox events are read again next time.
  stopping_ = true;
  static const std::string kStopping = "shutting down";
  for (auto& t : targets_) t->stop();  // lost replies put their work back in the queues
  for (auto& t : targets_) t->abandon(kStopping);
  for (auto& [_, entry] : again_) {
    if (entry.second->ctx.completion) entry.second->ctx.completion->fail();
    jobs_.release(*entry.second);
  }
  again_.clear();
}

std::vector<std::string_view> RedisEvictor::kinds() const {
  return {EvictAction::kKind, EvictPatternAction::kKind, PublishAction::kKind};
}

}  // namespace pgfanout::redis
