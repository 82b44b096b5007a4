#include "cache/RedisReply.hpp"

#include <hiredis/hiredis.h>

namespace pgfanout::redis {

namespace {

Reply error_reply(std::string message) {
  auto kind = message.starts_with("READONLY") ? Reply::Kind::ReadOnly : Reply::Kind::Error;
  return Reply{kind, std::move(message)};
}

}  // namespace

Reply classify(const redisReply* r) {
  if (r == nullptr) return Reply{Reply::Kind::Lost, {}};
  if (r->type == REDIS_REPLY_ERROR) return error_reply(std::string(r->str, r->len));
  return Reply{};
}

Reply classify_scan(const redisReply* r) {
  if (r == nullptr || r->type == REDIS_REPLY_ERROR) return classify(r);
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) return error_reply("unexpected SCAN reply");
  return Reply{};
}

std::string_view error_code(std::string_view message) {
  std::string_view code = message.substr(0, message.find(' '));
  bool plain = !code.empty() && code.size() <= 16;
  for (char c : code) plain = plain && ((c >= 'A' && c <= 'Z') || c == '_');
  return plain ? code : std::string_view("other");
}

}  // namespace pgfanout::redis
