#include "redis/RedisReplyReader.hpp"

#include <hiredis/hiredis.h>

#include <new>

namespace pgfanout::redis {

void RedisReplyReader::FreeReply::operator()(redisReply* reply) const {
  freeReplyObject(reply);
}

RedisReplyReader::RedisReplyReader() : reader_(redisReaderCreate()) {
  if (reader_ == nullptr) throw std::bad_alloc();
}

RedisReplyReader::~RedisReplyReader() {
  redisReaderFree(reader_);
}

void RedisReplyReader::take_error() {
  error_ = reader_->errstr[0] != '\0' ? reader_->errstr : "malformed reply";
}

bool RedisReplyReader::feed(const char* data, std::size_t n) {
  if (failed()) return false;
  if (redisReaderFeed(reader_, data, n) != REDIS_OK) {
    take_error();
    return false;
  }
  return true;
}

RedisReplyReader::Reply RedisReplyReader::next() {
  if (failed()) return nullptr;
  void* reply = nullptr;
  if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
    take_error();
    return nullptr;
  }
  return Reply(static_cast<redisReply*>(reply));
}

}  // namespace pgfanout::redis
