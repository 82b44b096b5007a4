// RedisReplyReader: turns the bytes a Redis server sends into replies, one complete reply at a
// time, with hiredis's redisReader (RESP2 parsing, nested arrays, partial input across reads).
//
// feed() appends the bytes of one read; next() then hands out the replies that are complete, in
// order, and nullptr once it needs more bytes. A malformed stream makes failed() true for good:
// the connection must be closed. Each reply is owned by the returned pointer (freeReplyObject on
// destruction). Not thread-safe; one reader per connection, used on that connection's thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

struct redisReader;
struct redisReply;

namespace pgfanout::redis {

class RedisReplyReader {
 public:
  struct FreeReply {
    void operator()(redisReply* reply) const;
  };
  using Reply = std::unique_ptr<redisReply, FreeReply>;

  RedisReplyReader();
  ~RedisReplyReader();
  RedisReplyReader(const RedisReplyReader&) = delete;
  RedisReplyReader& operator=(const RedisReplyReader&) = delete;

  // Appends `n` bytes read from the server. False when the reader has failed (see error()).
  [[nodiscard]] bool feed(const char* data, std::size_t n);
  // The next complete reply, or nullptr when more bytes are needed or the stream is malformed.
  [[nodiscard]] Reply next();
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  void take_error();

  redisReader* reader_;
  std::string error_;
};

}  // namespace pgfanout::redis
