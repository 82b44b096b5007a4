#include "redis/ClusterSlots.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>

namespace pgfanout::redis {

namespace {

constexpr auto kCrcTable = [] {
  std::array<std::uint16_t, 256> t{};
  for (unsigned i = 0; i < 256; ++i) {
    auto crc = static_cast<std::uint16_t>(i << 8);
    for (int b = 0; b < 8; ++b) {
      crc = (crc & 0x8000) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<std::uint16_t>(crc << 1);
    }
    t[i] = crc;
  }
  return t;
}();

std::string_view text(const redisReply* r) {
  if (r == nullptr || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) return {};
  return {r->str, r->len};
}

bool is_array(const redisReply* r) {
  return r != nullptr && r->type == REDIS_REPLY_ARRAY;
}

// The value of `key` in a RESP2 flat map (key, value, key, value...); nullptr when absent.
const redisReply* field(const redisReply* map, std::string_view key) {
  for (std::size_t i = 0; i + 1 < map->elements; i += 2) {
    if (text(map->element[i]) == key) return map->element[i + 1];
  }
  return nullptr;
}

bool integer(const redisReply* r, long long& out) {
  if (r == nullptr) return false;
  if (r->type == REDIS_REPLY_INTEGER) {
    out = r->integer;
    return true;
  }
  auto s = text(r);
  return !s.empty() && std::from_chars(s.data(), s.data() + s.size(), out).ec == std::errc{};
}

bool valid_port(long long p) {
  return p > 0 && p <= 65535;
}

// Records that slots [from, to] belong to `node`.
bool assign_range(SlotMap& map, long long from, long long to, const ClusterNode& node,
                  std::string& error) {
  if (from < 0 || to < from || to >= static_cast<long long>(kClusterSlots)) {
    error = "slot range " + std::to_string(from) + "-" + std::to_string(to) + " out of bounds";
    return false;
  }
  for (auto s = from; s <= to; ++s) map.assign(static_cast<std::uint16_t>(s), node);
  return true;
}

// Empties `out`; false (with `error`) when `reply` to `command` is not an array.
bool begin_parse(const redisReply* reply, const char* command, SlotMap& out, std::string& error) {
  out = SlotMap{};
  if (is_array(reply)) return true;
  error = std::string(command) + " did not answer an array";
  return false;
}

std::string reachable_host(std::string_view endpoint, std::string_view ip,
                           const std::string& asked_host) {
  if (!endpoint.empty() && endpoint != "?") return std::string(endpoint);
  if (!ip.empty() && ip != "?") return std::string(ip);
  return asked_host;
}

}  // namespace

std::uint16_t crc16_xmodem(std::string_view data) {
  std::uint16_t crc = 0;
  for (unsigned char c : data) {
    crc = static_cast<std::uint16_t>((crc << 8) ^ kCrcTable[((crc >> 8) ^ c) & 0xff]);
  }
  return crc;
}

std::uint16_t key_slot(std::string_view key) {
  auto open = key.find('{');
  if (open != key.npos) {
    auto close = key.find('}', open + 1);
    if (close != key.npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return static_cast<std::uint16_t>(crc16_xmodem(key) & (kClusterSlots - 1));
}

std::string node_address(std::string_view host, int port) {
  bool v6 = host.find(':') != host.npos;
  return (v6 ? "[" : "") + std::string(host) + (v6 ? "]:" : ":") + std::to_string(port);
}

std::size_t SlotMap::covered() const {
  return static_cast<std::size_t>(
      std::count_if(owner.begin(), owner.end(), [](std::int16_t i) { return i != kNone; }));
}

void SlotMap::assign(std::uint16_t slot, const ClusterNode& node) {
  auto it = std::find(primaries.begin(), primaries.end(), node);
  if (it == primaries.end()) it = primaries.insert(primaries.end(), node);
  owner[slot] = static_cast<std::int16_t>(it - primaries.begin());
}

bool parse_cluster_shards(const redisReply* reply, bool tls, const std::string& asked_host,
                          SlotMap& out, std::string& error) {
  if (!begin_parse(reply, "CLUSTER SHARDS", out, error)) return false;
  for (std::size_t i = 0; i < reply->elements; ++i) {
    const redisReply* shard = reply->element[i];
    const redisReply* slots = is_array(shard) ? field(shard, "slots") : nullptr;
    const redisReply* nodes = is_array(shard) ? field(shard, "nodes") : nullptr;
    if (!is_array(slots) || !is_array(nodes) || slots->elements % 2 != 0) {
      error = "CLUSTER SHARDS: a shard without slots and nodes";
      return false;
    }
    if (slots->elements == 0) continue;  // a shard that serves no slot (yet)
    const redisReply* primary = nullptr;
    for (std::size_t n = 0; n < nodes->elements; ++n) {
      const redisReply* node = nodes->element[n];
      if (is_array(node) && text(field(node, "role")) == "master") primary = node;
    }
    if (primary == nullptr) continue;  // no primary right now (a failover): the slots wait
    long long port = 0;
    if (!(tls && integer(field(primary, "tls-port"), port)) &&
        !integer(field(primary, "port"), port)) {
      integer(field(primary, "tls-port"), port);
    }
    ClusterNode node{
        reachable_host(text(field(primary, "endpoint")), text(field(primary, "ip")), asked_host),
        static_cast<int>(port)};
    if (!valid_port(port)) {
      error = "CLUSTER SHARDS: a primary without a valid port";
      return false;
    }
    for (std::size_t s = 0; s < slots->elements; s += 2) {
      long long from = 0, to = 0;
      if (!integer(slots->element[s], from) || !integer(slots->element[s + 1], to) ||
          !assign_range(out, from, to, node, error)) {
        if (error.empty()) error = "CLUSTER SHARDS: a slot that is not a number";
        return false;
      }
    }
  }
  return true;
}

bool parse_cluster_slots(const redisReply* reply, const std::string& asked_host, SlotMap& out,
                         std::string& error) {
  if (!begin_parse(reply, "CLUSTER SLOTS", out, error)) return false;
  for (std::size_t i = 0; i < reply->elements; ++i) {
    const redisReply* range = reply->element[i];
    long long from = 0, to = 0, port = 0;
    if (!is_array(range) || range->elements < 3 || !integer(range->element[0], from) ||
        !integer(range->element[1], to) || !is_array(range->element[2]) ||
        range->element[2]->elements < 2 || !integer(range->element[2]->element[1], port) ||
        !valid_port(port)) {
      error = "CLUSTER SLOTS: a slot range without its primary";
      return false;
    }
    const redisReply* primary = range->element[2];
    ClusterNode node{reachable_host({}, text(primary->element[0]), asked_host),
                     static_cast<int>(port)};
    if (!assign_range(out, from, to, node, error)) return false;
  }
  return true;
}

bool parse_redirect(std::string_view message, std::uint16_t& slot, ClusterNode& node) {
  auto sp1 = message.find(' ');
  if (sp1 == message.npos) return false;
  auto sp2 = message.find(' ', sp1 + 1);
  if (sp2 == message.npos) return false;
  std::string_view number = message.substr(sp1 + 1, sp2 - sp1 - 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc{} || end != number.data() + number.size() || value >= kClusterSlots) {
    return false;
  }
  slot = static_cast<std::uint16_t>(value);
  return parse_host_port(message.substr(sp2 + 1), node);
}

bool parse_host_port(std::string_view text, ClusterNode& node) {
  auto colon = text.rfind(':');
  if (colon == text.npos || colon == 0) return false;
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != host.npos) {
    return false;  // an IPv6 address needs brackets
  }
  int p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc{} || end != port.data() + port.size() || !valid_port(p)) return false;
  if (host.find_first_of(" /@?#") != host.npos) return false;
  node = ClusterNode{std::string(host), p};
  return true;
}

}  // namespace pgfanout::redis
