#include "hub/HubLoops.hpp"

#include <spdlog/spdlog.h>

#include <exception>
#include <string>

#include <pthread.h>

namespace pgfanout::hub {

namespace {
thread_local std::size_t tl_loop = 0;
}

std::size_t HubLoops::threads_for(int configured) {
  if (configured > 0) return static_cast<std::size_t>(configured);
  auto cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

HubLoops::HubLoops(boost::asio::io_context& main, int threads) {
  const std::size_t n = threads_for(threads);
  loops_.push_back(&main);
  for (std::size_t i = 1; i < n; ++i) {
    // One thread runs each: Asio may leave out its locking for it.
    own_.push_back(std::make_unique<boost::asio::io_context>(1));
    loops_.push_back(own_.back().get());
  }
}

HubLoops::~HubLoops() {
  stop(std::chrono::milliseconds(0));
}

std::size_t HubLoops::current() {
  return tl_loop;
}

void HubLoops::start() {
  if (!threads_.empty() || own_.empty()) return;
  for (std::size_t i = 0; i < own_.size(); ++i) {
    guards_.emplace_back(own_[i]->get_executor());
    threads_.emplace_back([this, i] {
      tl_loop = i + 1;
      std::string name = "pgfanout-hub" + std::to_string(i + 1);
      pthread_setname_np(pthread_self(), name.c_str());
      ++running_;
      for (;;) {
        try {
          own_[i]->run();
          break;
        } catch (const std::exception& e) {
          // A handler must not throw; should one, the loop keeps serving its other sessions.
          spdlog::error("hub thread {}: {}", i + 1, e.what());
        }
      }
      --running_;
    });
  }
}

void HubLoops::stop(std::chrono::milliseconds grace) {
  if (threads_.empty()) return;
  for (auto& g : guards_) g.reset();
  // The sessions' close handshakes and final writes finish, or the grace ends.
  const auto until = std::chrono::steady_clock::now() + grace;
  while (running_.load() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto& io : own_) io->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  guards_.clear();
}

}  // namespace pgfanout::hub
