// RedisReply: what a reply to one of the executor's commands means — the one place replies are
// classified. A lost reply (nullptr: the connection went before it came) and READONLY (the server
// became a replica) mean the work was not done and is sent again; any other error reply fails the
// work it answers. For a cluster target, MOVED and ASK (the key's slot is served elsewhere) and
// TRYAGAIN, CLUSTERDOWN (a slot in migration or without primary) also mean "send it again",
// after the redirect or a short pause; a single server that sent them would be answered as errors.
#pragma once

#include <string>
#include <string_view>

struct redisReply;

namespace pgfanout::redis {

struct Reply {
  enum class Kind { Ok, Lost, ReadOnly, Moved, Ask, TryAgain, Error };
  Kind kind = Kind::Ok;
  std::string message;  // the error's text (ReadOnly, Error)

  bool ok() const { return kind == Kind::Ok; }
  // The command's work was not done and must be sent again.
  bool resend() const { return kind != Kind::Ok && kind != Kind::Error; }
};

// Any reply but an error is Ok. `cluster`: the reply comes from a Redis Cluster node.
Reply classify(const redisReply* r, bool cluster = false);
// A SCAN reply: anything but an array of two (cursor, keys) is an error.
Reply classify_scan(const redisReply* r, bool cluster = false);

// The metric label for an error reply: its first word (OOM, READONLY, WRONGTYPE...) when that is
// a plain upper-case code, "other" otherwise.
std::string_view error_code(std::string_view message);

}  // namespace pgfanout::redis
