#include "app/ShutdownDrain.hpp"

#include <algorithm>

namespace pgfanout::app {

ShutdownDrain::ShutdownDrain(boost::asio::io_context& io, std::function<std::size_t()> pending,
                             std::chrono::milliseconds poll_every)
    : timer_(io), pending_(std::move(pending)), poll_every_(poll_every) {}

void ShutdownDrain::start(std::chrono::milliseconds deadline,
                          std::function<void(std::size_t)> done) {
  deadline_ = std::chrono::steady_clock::now() + deadline;
  done_ = std::move(done);
  check();
}

void ShutdownDrain::cancel() {
  timer_.cancel();
  done_ = nullptr;
}

void ShutdownDrain::check() {
  if (!done_) return;
  std::size_t left = pending_();
  if (left == 0 || std::chrono::steady_clock::now() >= deadline_) {
    auto done = std::move(done_);
    done_ = nullptr;
    done(left);
    return;
  }
  timer_.expires_after(std::min<std::chrono::steady_clock::duration>(
      poll_every_, deadline_ - std::chrono::steady_clock::now()));
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) check();
  });
}

}  // namespace pgfanout::app
