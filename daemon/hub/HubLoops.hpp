// HubLoops: the event loops the hub's sessions run on (`hub.threads`).
//
// Loop 0 is the daemon's own io_context (the thread that also reads PostgreSQL, runs the rules
// and talks to Redis); loops 1..N-1 are io_contexts of the hub's own, each run by one thread.
// A new WebSocket or SSE session is placed on the next loop in turn (HubState::place) and lives
// there: its socket, timers, send queue and writes never leave that thread. Everything the
// sessions share is either immutable, behind a mutex (HubState's connection table, access rules,
// topic index, EventHistory), an atomic (metrics), or work handed to loop 0 (SQL) whose answer
// comes back to the session's loop (HubLoops::back_to). docs/architecture.md has the picture.
//
// on_loop() says which loop the calling thread runs (loop 0 for any thread that is not a hub
// thread). stop() lets the hub threads finish what their sessions still do (close handshakes)
// for a short while, then stops and joins them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

namespace pgfanout::hub {

class HubLoops {
 public:
  // `threads`: loops in all (at least 1); 0 means one per core.
  HubLoops(boost::asio::io_context& main, int threads);
  ~HubLoops();
  HubLoops(const HubLoops&) = delete;
  HubLoops& operator=(const HubLoops&) = delete;

  static std::size_t threads_for(int configured);

  std::size_t size() const { return loops_.size(); }
  boost::asio::io_context& loop(std::size_t i) const { return *loops_[i]; }
  // The loop the calling thread runs: its index, 0 on any thread that is not a hub thread.
  static std::size_t current();
  bool on_loop(std::size_t i) const { return current() == i; }

  // Starts the hub threads (loops 1..N-1).
  void start();
  // Lets the hub threads run out for up to `grace`, then stops and joins them. Idempotent.
  void stop(std::chrono::milliseconds grace);

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<boost::asio::io_context*> loops_;
  std::vector<std::unique_ptr<boost::asio::io_context>> own_;
  std::vector<std::optional<Guard>> guards_;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> running_{0};
};

// A callback that, called on any thread, runs `f` with the arguments on `loop` — for answers that
// loop 0 gives to a session of another loop. Called at most once. Should it never be called, `f`
// is still destroyed on `loop` (it may hold the last reference to the session, whose destructor
// must run on its own loop) unless `alive` says the loops are gone.
template <class F>
class BackTo {
 public:
  BackTo(boost::asio::io_context& loop, F f, std::shared_ptr<const std::atomic<bool>> gone)
      : box_(std::make_shared<Box>(loop, std::move(f), std::move(gone))) {}

  template <class... Args>
  void operator()(Args&&... args) const {
    auto& box = *box_;
    if (!box.f) return;
    auto f = std::move(*box.f);
    box.f.reset();
    boost::asio::post(box.loop, [f = std::move(f),
                                 args = std::make_tuple(std::forward<Args>(args)...)]() mutable {
      std::apply(f, std::move(args));
    });
  }

 private:
  struct Box {
    Box(boost::asio::io_context& l, F fn, std::shared_ptr<const std::atomic<bool>> g)
        : loop(l), f(std::move(fn)), gone(std::move(g)) {}
    ~Box() {
      if (f && !gone->load()) boost::asio::post(loop, [f = std::move(*f)] {});
    }
    boost::asio::io_context& loop;
    std::optional<F> f;
    std::shared_ptr<const std::atomic<bool>> gone;
  };
  std::shared_ptr<Box> box_;
};

}  // namespace pgfanout::hub
