// RedisAsioAdapter: runs a hiredis redisAsyncContext on an Asio io_context.
//
// hiredis ships adapters for libevent, libev, libuv... but none for Asio. This one installs the
// same hooks (addRead/delRead/addWrite/delWrite/cleanup): the context's socket sits in a
// posix::stream_descriptor and each wanted direction has at most one async_wait outstanding; on
// readiness it calls redisAsyncHandleRead/Write. hiredis owns the descriptor, so the cleanup hook
// (called while hiredis frees the context) cancels the waits and release()s the descriptor
// before hiredis closes it. The adapter is shared-owned by its attach() caller and by its pending
// waits, so a wait that completes after the context is gone finds a null context and returns.
// Everything runs on the io_context's thread.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

struct redisAsyncContext;

namespace pgfanout::redis {

class RedisAsioAdapter : public std::enable_shared_from_this<RedisAsioAdapter> {
 public:
  // Installs the hooks on `ac` (whose socket must already exist). Returns nullptr when the
  // descriptor cannot be watched.
  static std::shared_ptr<RedisAsioAdapter> attach(boost::asio::io_context& io,
                                                  redisAsyncContext* ac);

  explicit RedisAsioAdapter(boost::asio::io_context& io) : socket_(io) {}
  RedisAsioAdapter(const RedisAsioAdapter&) = delete;
  RedisAsioAdapter& operator=(const RedisAsioAdapter&) = delete;

 private:
  static void add_read(void* self);
  static void del_read(void* self);
  static void add_write(void* self);
  static void del_write(void* self);
  static void cleanup(void* self);

  void wait_read();
  void wait_write();

  boost::asio::posix::stream_descriptor socket_;
  redisAsyncContext* ac_ = nullptr;
  std::shared_ptr<RedisAsioAdapter> self_;  // keeps the adapter alive while hiredis holds it
  bool want_read_ = false, want_write_ = false;
  bool read_waiting_ = false, write_waiting_ = false;
};

}  // namespace pgfanout::redis
