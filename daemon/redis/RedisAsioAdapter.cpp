#include "redis/RedisAsioAdapter.hpp"

#include <hiredis/async.h>

namespace pgfanout::redis {

namespace asio = boost::asio;

std::shared_ptr<RedisAsioAdapter> RedisAsioAdapter::attach(asio::io_context& io,
                                                           redisAsyncContext* ac) {
  auto a = std::make_shared<RedisAsioAdapter>(io);
  boost::system::error_code ec;
  a->socket_.assign(ac->c.fd, ec);
  if (ec) return nullptr;
  a->ac_ = ac;
  a->self_ = a;
  ac->ev.data = a.get();
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  return a;
}

void RedisAsioAdapter::add_read(void* p) {
  auto* self = static_cast<RedisAsioAdapter*>(p);
  self->want_read_ = true;
  self->wait_read();
}

void RedisAsioAdapter::del_read(void* p) {
  static_cast<RedisAsioAdapter*>(p)->want_read_ = false;
}

void RedisAsioAdapter::add_write(void* p) {
  auto* self = static_cast<RedisAsioAdapter*>(p);
  self->want_write_ = true;
  self->wait_write();
}

void RedisAsioAdapter::del_write(void* p) {
  static_cast<RedisAsioAdapter*>(p)->want_write_ = false;
}

void RedisAsioAdapter::cleanup(void* p) {
  auto* self = static_cast<RedisAsioAdapter*>(p);
  self->ac_ = nullptr;
  self->want_read_ = self->want_write_ = false;
  if (self->socket_.is_open()) {
    boost::system::error_code ignored;
    self->socket_.cancel(ignored);
    self->socket_.release();  // hiredis closes the descriptor itself
  }
  // Pending waits hold their own reference; dropping this one may free the adapter later.
  auto keep = std::move(self->self_);
}

void RedisAsioAdapter::wait_read() {
  if (read_waiting_ || !want_read_ || ac_ == nullptr) return;
  read_waiting_ = true;
  socket_.async_wait(asio::posix::stream_descriptor::wait_read,
                     [self = shared_from_this()](boost::system::error_code ec) {
                       self->read_waiting_ = false;
                       if (ec == asio::error::operation_aborted || self->ac_ == nullptr) return;
                       // On any other error hiredis's own read reports it and frees the context.
                       if (self->want_read_) redisAsyncHandleRead(self->ac_);
                       self->wait_read();
                     });
}

void RedisAsioAdapter::wait_write() {
  if (write_waiting_ || !want_write_ || ac_ == nullptr) return;
  write_waiting_ = true;
  socket_.async_wait(asio::posix::stream_descriptor::wait_write,
                     [self = shared_from_this()](boost::system::error_code ec) {
                       self->write_waiting_ = false;
                       if (ec == asio::error::operation_aborted || self->ac_ == nullptr) return;
                       if (self->want_write_) redisAsyncHandleWrite(self->ac_);
                       self->wait_write();
                     });
}

}  // namespace pgfanout::redis
