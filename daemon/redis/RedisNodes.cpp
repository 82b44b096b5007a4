#include "redis/RedisNodes.hpp"

#include <hiredis/hiredis.h>

#include <spdlog/spdlog.h>

#include "metrics/Metrics.hpp"

namespace pgfanout::redis {

namespace {

using namespace std::chrono_literals;
// Soonest a refresh asked for by a redirect or a lost connection runs (redirects come in bursts).
constexpr auto kRefreshSoon = 100ms;
// How often the map is read while it is incomplete or a primary is unreachable.
constexpr auto kRefreshDegraded = 1s;

}  // namespace

RedisNodes::RedisNodes(boost::asio::io_context& io, Metrics& metrics, const RedisConfig& config,
                       const RedisTarget& spec, std::function<void()> wake)
    : io_(io),
      metrics_(metrics),
      config_(config),
      spec_(spec),
      wake_(std::move(wake)),
      cluster_(spec.is_cluster()),
      timer_(io) {
  if (!cluster_) {
    add_connection(ClusterNode{spec.url.host, spec.url.port});
    single_ = conns_.begin()->second.get();
    return;
  }
  Labels l{{"target", spec.name}};
  connected_ = &metrics.gauge("pgfanout_redis_connected",
                              "1 while the Redis target is connected (a cluster: its slot map is "
                              "complete and every primary is connected)",
                              l);
  nodes_gauge_ = &metrics.gauge("pgfanout_redis_cluster_nodes",
                                "Primaries in the slot map of a Redis Cluster target", l);
  const char* refresh_help = "Slot map reads (CLUSTER SHARDS) of a Redis Cluster target, by result";
  refresh_ok_ = &metrics.counter("pgfanout_redis_cluster_slot_map_refreshes_total", refresh_help,
                                 {{"target", spec.name}, {"result", "ok"}});
  refresh_error_ = &metrics.counter("pgfanout_redis_cluster_slot_map_refreshes_total", refresh_help,
                                    {{"target", spec.name}, {"result", "error"}});
  const char* redirect_help = "MOVED and ASK redirects a Redis Cluster target answered, by kind";
  moved_ = &metrics.counter("pgfanout_redis_cluster_redirects_total", redirect_help,
                            {{"target", spec.name}, {"kind", "moved"}});
  ask_ = &metrics.counter("pgfanout_redis_cluster_redirects_total", redirect_help,
                          {{"target", spec.name}, {"kind", "ask"}});
}

RedisNodes::~RedisNodes() {
  stop();
}

void RedisNodes::add_connection(const ClusterNode& node) {
  RedisUrl url = spec_.url;
  if (cluster_) {
    url.host = node.host;
    url.port = node.port;
  }
  RedisConnection::Options o{spec_.name,
                             url,
                             config_.connect_timeout,
                             config_.command_timeout,
                             config_.reconnect_min,
                             config_.reconnect_max,
                             cluster_};
  auto conn = std::make_unique<RedisConnection>(
      io_, metrics_, std::move(o),
      RedisConnection::Callbacks{[this] { on_ready(); },
                                 [this](const std::string&) { on_down(); }});
  RedisConnection* c = conn.get();
  conns_[node.address()] = std::move(conn);
  if (!stopped_ && started_) c->start();
}

void RedisNodes::start() {
  started_ = true;
  if (!cluster_) {
    single_->start();
    return;
  }
  for (const auto& seed : spec_.cluster) {
    if (conns_.find(seed.address()) == conns_.end()) add_connection(seed);
  }
  for (auto& [_, c] : conns_) c->start();
  schedule(config_.cluster_refresh);
}

void RedisNodes::stop() {
  if (stopped_) return;
  stopped_ = true;
  timer_.cancel();
  for (auto& [_, c] : conns_) c->stop();
  for (auto& c : retired_) c->stop();
}

bool RedisNodes::ready() const {
  if (!cluster_) return single_->ready();
  if (!map_.complete()) return false;
  for (const auto* c : by_index_) {
    if (c == nullptr || !c->ready()) return false;
  }
  return true;
}

std::string RedisNodes::problem() const {
  if (!cluster_) return ready() ? "" : "disconnected";
  if (map_.primaries.empty()) return "no slot map yet";
  if (!map_.complete()) {
    return "slot map covers " + std::to_string(map_.covered()) + " of 16384 slots";
  }
  std::string out;
  for (std::size_t i = 0; i < by_index_.size(); ++i) {
    if (by_index_[i] != nullptr && by_index_[i]->ready()) continue;
    out += (out.empty() ? "primary " : ", ") + map_.primaries[i].address();
  }
  return out.empty() ? out : out + " disconnected";
}

RedisConnection* RedisNodes::node(const ClusterNode& address) {
  if (!cluster_) return single_;
  auto key = address.address();
  auto it = conns_.find(key);
  if (it == conns_.end()) {
    add_connection(address);
    it = conns_.find(key);
  }
  return it->second.get();
}

RedisConnection* RedisNodes::primary(const std::string& address) const {
  if (!cluster_) return single_;
  for (std::size_t i = 0; i < map_.primaries.size(); ++i) {
    if (map_.primaries[i].address() == address) return by_index_[i];
  }
  return nullptr;
}

std::vector<std::string> RedisNodes::primaries() const {
  if (!cluster_) return {std::string()};
  std::vector<std::string> out;
  for (const auto& p : map_.primaries) out.push_back(p.address());
  return out;
}

RedisConnection* RedisNodes::any_ready() const {
  if (stopped_) return nullptr;
  if (!cluster_) return single_->ready() ? single_ : nullptr;
  for (auto* c : by_index_) {
    if (c != nullptr && c->ready()) return c;
  }
  for (const auto& [_, c] : conns_) {
    if (c->ready()) return c.get();
  }
  return nullptr;
}

void RedisNodes::moved(std::uint16_t slot, const ClusterNode& to) {
  moved_->inc();
  node(to);
  map_.assign(slot, to);
  by_index_.resize(map_.primaries.size());
  by_index_[static_cast<std::size_t>(map_.owner[slot])] = conns_[to.address()].get();
  update_state();
  schedule(kRefreshSoon);
}

void RedisNodes::asked() {
  ask_->inc();
}

void RedisNodes::lost_role(RedisConnection& conn, const std::string& why) {
  if (!cluster_) {
    conn.reconnect(why);
    return;
  }
  spdlog::warn("Redis target {}: {} answered {}; reading the slot map again", spec_.name,
               conn.options().url.describe(), why);
  schedule(kRefreshSoon);
}

void RedisNodes::on_ready() {
  if (cluster_) {
    if (map_.primaries.empty()) refresh();
    update_state();
  }
  wake_();
}

void RedisNodes::on_down() {
  if (!cluster_) return;
  update_state();
  schedule(kRefreshSoon);
}

void RedisNodes::schedule(std::chrono::milliseconds delay) {
  if (stopped_) return;
  auto at = std::chrono::steady_clock::now() + delay;
  if (timer_armed_ && timer_.expiry() <= at) return;
  timer_armed_ = true;
  timer_.expires_at(at);
  timer_.async_wait([this, generation = ++timer_generation_](boost::system::error_code ec) {
    if (ec || generation != timer_generation_) return;
    timer_armed_ = false;
    retired_.clear();  // closed connections, none of whose handlers is running now
    refresh();
  });
}

void RedisNodes::refresh() {
  if (stopped_) return;
  if (refreshing_) {
    refresh_again_ = true;
    return;
  }
  RedisConnection* c = any_ready();
  if (c == nullptr) {
    // Nothing to ask: (re)connect the seeds; the first one ready asks.
    for (const auto& seed : spec_.cluster) node(seed);
    schedule(kRefreshDegraded);
    return;
  }
  refreshing_ = true;
  const char* argv[] = {"CLUSTER", use_slots_ ? "SLOTS" : "SHARDS"};
  std::size_t lens[] = {7, use_slots_ ? 5u : 6u};
  c->command(2, argv, lens, [this, host = c->options().url.host](redisReply* r) {
    if (stopped_) return;
    refreshing_ = false;
    on_map(r, host);
    if (refresh_again_) {
      refresh_again_ = false;
      schedule(kRefreshSoon);
    }
  });
}

void RedisNodes::on_map(redisReply* r, const std::string& asked_host) {
  std::string error;
  SlotMap map;
  if (r == nullptr) {
    error = "connection lost";
  } else if (r->type == REDIS_REPLY_ERROR) {
    error.assign(r->str, r->len);
    if (!use_slots_ && error.find("nknown subcommand") != std::string::npos) {
      use_slots_ = true;  // before Redis 7.0
      schedule(0ms);
      return;
    }
  } else if (use_slots_ ? parse_cluster_slots(r, asked_host, map, error)
                        : parse_cluster_shards(r, spec_.url.tls.enabled, asked_host, map, error)) {
    refresh_ok_->inc();
    apply(std::move(map));
    schedule(ready() ? config_.cluster_refresh : kRefreshDegraded);
    return;
  }
  refresh_error_->inc();
  spdlog::warn("Redis target {}: cannot read the slot map: {}", spec_.name, error);
  schedule(kRefreshDegraded);
}

void RedisNodes::apply(SlotMap map) {
  bool changed = !(map == map_);
  map_ = std::move(map);
  // Connections to the primaries; the others (seeds, former primaries) are closed.
  std::map<std::string, std::unique_ptr<RedisConnection>> keep;
  by_index_.assign(map_.primaries.size(), nullptr);
  for (std::size_t i = 0; i < map_.primaries.size(); ++i) {
    by_index_[i] = node(map_.primaries[i]);
    auto key = map_.primaries[i].address();
    keep[key] = std::move(conns_[key]);
  }
  std::vector<std::unique_ptr<RedisConnection>> closing;
  for (auto& [_, c] : conns_) {
    if (c) closing.push_back(std::move(c));
  }
  conns_ = std::move(keep);
  if (changed) {
    spdlog::info("Redis target {}: slot map of {} primaries, {} of 16384 slots covered", spec_.name,
                 map_.primaries.size(), map_.covered());
  }
  // Closed now (their commands in flight come back as lost, to be sent again), destroyed later.
  for (auto& c : closing) {
    c->stop();
    retired_.push_back(std::move(c));
  }
  update_state();
  wake_();
}

void RedisNodes::update_state() {
  connected_->set(ready() ? 1 : 0);
  nodes_gauge_->set(static_cast<double>(map_.primaries.size()));
}

}  // namespace pgfanout::redis
