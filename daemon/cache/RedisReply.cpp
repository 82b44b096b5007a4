#include "cache/RedisReply.hpp"

#include <hiredis/hiredis.h>

namespace pgfanout::redis {

namespace {

Reply error_reply(std::string message, bool cluster) {
  auto kind = message.starts_with("READONLY") ? Reply::Kind::ReadOnly : Reply::Kind::Error;
  if (cluster) {
    if (message.starts_with("MOVED ")) kind = Reply::Kind::Moved;
    if (message.starts_with("ASK ")) kind = Reply::Kind::Ask;
    if (message.starts_with("TRYAGAIN") || message.starts_with("CLUSTERDOWN")) {
      kind = Reply::Kind::TryAgain;
    }
  }
  return Reply{kind, std::move(message)};
}

}  // namespace

Reply classify(const redisReply* r, bool cluster) {
  if (r == nullptr) return Reply{Reply::Kind::Lost, {}};
  if (r->type == REDIS_REPLY_ERROR) return error_reply(std::string(r->str, r->len), cluster);
  return Reply{};
}

Reply classify_scan(const redisReply* r, bool cluster) {
  if (r == nullptr || r->type == REDIS_REPLY_ERROR) return classify(r, cluster);
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
    return error_reply("unexpected SCAN reply", false);
  }
  return Reply{};
}

std::string_view error_code(std::string_view message) {
  std::string_view code = message.substr(0, message.find(' '));
  bool plain = !code.empty() && code.size() <= 16;
  for (char c : code) plain = plain && ((c >= 'A' && c <= 'Z') || c == '_');
  return plain ? code : std::string_view("other");
}

}  // namespace pgfanout::redis
