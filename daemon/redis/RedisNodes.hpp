// RedisNodes: the connections of one Redis target — one RedisConnection for a single server, or
// one per primary of a Redis Cluster, with the cluster's slot map.
//
// A cluster target starts with connections to its seed nodes, asks the first that is ready for
// CLUSTER SHARDS (CLUSTER SLOTS when the server does not know SHARDS) and then keeps one
// connection per primary; connections to nodes that are no longer primaries are closed (their
// commands in flight get the nullptr of a lost reply, so the caller sends them again). The map is
// read again every `cluster_refresh`, soon after a MOVED redirect (moved() points the slot at its
// new primary at once), after a lost connection, and every second while a slot has no primary or
// a primary is unreachable (a failover: its replica is promoted after cluster-node-timeout). When
// no connection is ready the seed nodes are connected again. ready() — the target's health — is
// true when the map covers all 16384 slots and every primary is connected.
//
// Metrics (labelled by target): pgfanout_redis_connected (1 while ready()),
// pgfanout_redis_cluster_nodes (primaries in the map), pgfanout_redis_cluster_slot_map_refreshes
// _total{result="ok"|"error"}, pgfanout_redis_cluster_redirects_total{kind="moved"|"ask"}.
// Everything runs on the io_context's thread; `wake` is called when work may be sent again (a
// connection became ready, the map changed).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "redis/ClusterSlots.hpp"
#include "redis/RedisConfig.hpp"
#include "redis/RedisConnection.hpp"

namespace pgfanout::redis {

class RedisNodes {
 public:
  RedisNodes(boost::asio::io_context& io, Metrics& metrics, const RedisConfig& config,
             const RedisTarget& spec, std::function<void()> wake);
  ~RedisNodes();
  RedisNodes(const RedisNodes&) = delete;
  RedisNodes& operator=(const RedisNodes&) = delete;

  void start();
  // Closes every connection (their pending replies come back as nullptr) and stops refreshing.
  void stop();
  bool cluster() const { return cluster_; }
  // Single server: connected. Cluster: all slots have a primary and every primary is connected.
  bool ready() const;
  // What is missing for ready(), for the health check ("disconnected", "slot map covers ...").
  std::string problem() const;

  // The connection serving `slot` (any slot for a single server); nullptr when no primary is
  // known for it. It may not be ready().
  RedisConnection* for_slot(std::uint16_t slot) const {
    if (!cluster_) return single_;
    auto i = map_.owner[slot];
    return i == SlotMap::kNone ? nullptr : by_index_[static_cast<std::size_t>(i)];
  }
  // The connection to the node at `address` ("host:port"), made when there is none yet; for a
  // single server its connection.
  RedisConnection* node(const ClusterNode& address);
  // The connection to the primary at `address` when it still is one, else nullptr.
  RedisConnection* primary(const std::string& address) const;
  // Addresses of the primaries (a single server: one empty string, which primary() resolves).
  std::vector<std::string> primaries() const;
  // A ready connection, nullptr when there is none.
  RedisConnection* any_ready() const;

  // A MOVED redirect: `slot` is served by `to` now; the map is read again soon.
  void moved(std::uint16_t slot, const ClusterNode& to);
  // An ASK redirect was followed (counted).
  void asked();
  // `conn` answered READONLY: it is a replica now. A single server reconnects; a cluster reads
  // its map again.
  void lost_role(RedisConnection& conn, const std::string& why);
  // The map may be out of date (a redirect that could not be read): read it again soon.
  void stale() { schedule(std::chrono::milliseconds(100)); }

 private:
  void add_connection(const ClusterNode& node);
  void on_ready();
  void on_down();
  void refresh();
  void on_map(redisReply* reply, const std::string& asked_host);
  void apply(SlotMap map);
  void schedule(std::chrono::milliseconds delay);
  void update_state();

  boost::asio::io_context& io_;
  Metrics& metrics_;
  const RedisConfig& config_;
  RedisTarget spec_;
  std::function<void()> wake_;
  bool cluster_;
  bool started_ = false;
  bool stopped_ = false;
  RedisConnection* single_ = nullptr;
  std::map<std::string, std::unique_ptr<RedisConnection>> conns_;  // by address
  std::vector<std::unique_ptr<RedisConnection>> retired_;  // stopped, destroyed on the next timer
  SlotMap map_;
  std::vector<RedisConnection*> by_index_;  // map_.primaries' connections
  bool refreshing_ = false;
  bool refresh_again_ = false;
  bool use_slots_ = false;  // the server does not know CLUSTER SHARDS
  boost::asio::steady_timer timer_;
  bool timer_armed_ = false;
  std::uint64_t timer_generation_ = 0;
  Gauge* connected_ = nullptr;
  Gauge* nodes_gauge_ = nullptr;
  Counter* refresh_ok_ = nullptr;
  Counter* refresh_error_ = nullptr;
  Counter* moved_ = nullptr;
  Counter* ask_ = nullptr;
};

}  // namespace pgfanout::redis
