// ClusterSlots: the pure parts of Redis Cluster routing — which hash slot a key belongs to, and
// which primary serves each slot.
//
// key_slot() is the cluster specification's HASH_SLOT: CRC16 (XMODEM: polynomial 0x1021, initial
// value 0) of the key modulo 16384, where a key containing `{...}` with at least one character
// between the first `{` and the next `}` is hashed by that part only, so `{user1000}.following`
// and `{user1000}.followers` share a slot. SlotMap is the answer of CLUSTER SHARDS (Redis 7.0+)
// or CLUSTER SLOTS (older servers): the primaries and, per slot, the index of the one serving it.
// No I/O, no state beyond the values; unit-tested on their own (tests/unit/cluster_slots_test.cpp).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

namespace pgfanout::redis {

inline constexpr std::size_t kClusterSlots = 16384;

std::uint16_t crc16_xmodem(std::string_view data);
std::uint16_t key_slot(std::string_view key);

// "host:port", with brackets around an IPv6 host.
std::string node_address(std::string_view host, int port);

struct ClusterNode {
  std::string host;
  int port = 0;

  std::string address() const { return node_address(host, port); }
  bool operator==(const ClusterNode&) const = default;
};

struct SlotMap {
  static constexpr std::int16_t kNone = -1;

  std::vector<ClusterNode> primaries;
  std::array<std::int16_t, kClusterSlots> owner;  // index into primaries, or kNone

  SlotMap() { owner.fill(kNone); }
  // Slots that have a primary.
  std::size_t covered() const;
  bool complete() const { return covered() == kClusterSlots; }
  // The primary of `slot`, or nullptr.
  const ClusterNode* primary(std::uint16_t slot) const {
    auto i = owner[slot];
    return i == kNone ? nullptr : &primaries[static_cast<std::size_t>(i)];
  }
  // Points `slot` at `node` (added to primaries when new), as a MOVED redirect says.
  void assign(std::uint16_t slot, const ClusterNode& node);
  bool operator==(const SlotMap&) const = default;
};

// Parses a CLUSTER SHARDS reply. `tls`: take a node's tls-port when it has one. A node with an
// empty or unknown ("?") endpoint is reached at `asked_host`, the host the command went to.
// False with `error` set when the reply is not what Redis sends.
bool parse_cluster_shards(const redisReply* reply, bool tls, const std::string& asked_host,
                          SlotMap& out, std::string& error);
// Parses a CLUSTER SLOTS reply, likewise.
bool parse_cluster_slots(const redisReply* reply, const std::string& asked_host, SlotMap& out,
                         std::string& error);

// A "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381" error: the slot and the node.
bool parse_redirect(std::string_view message, std::uint16_t& slot, ClusterNode& node);

// "host:port" (IPv6 in brackets) with a port in 1..65535; false when it is not.
bool parse_host_port(std::string_view text, ClusterNode& node);

}  // namespace pgfanout::redis
