// Hub: the WebSocket / SSE subscriber hub — pgfanout's "message concentrator".
//
// It registers the hub's HTTP endpoints (`/ws`, `/events`, the Web::Hippie compatible
// `/_hippie/...` ones and, with http.static, the static files) on the daemon's HttpRouter, owns
// the topic table and the hub's PostgreSQL connections, and provides the executor of the `push`
// action: each pushed event is rendered and serialized once and its buffer shared by every
// subscriber of the topic. The sessions run on `hub.threads` event loops (hub/HubLoops.hpp): the
// daemon's own, and the hub's threads. This header keeps Beast out of its includers. Called on the
// daemon's event loop only.
#pragma once

#include <functional>
#include <memory>

#include "http/HttpConfig.hpp"
#include "hub/HubConfig.hpp"
#include "pg/PgConfig.hpp"
#include "rules/Action.hpp"

namespace boost::asio {
class io_context;
}

namespace pgfanout {
class Metrics;
}

namespace pgfanout::http {
class HealthChecks;
class HttpRouter;
}  // namespace pgfanout::http

namespace pgfanout::rules {
class RuleSet;
}

namespace pgfanout::hub {

class HubLoops;
class HubState;

class Hub {
 public:
  // `rules` returns the running rule set (for SSE resumes from the outbox).
  // `config`: the hub's section; `access`: auth:, topics: and commands:; `http`: the HTTP limits
  // it shares with the server (origins, static files); `postgres`: where its own SQL connections
  // go.
  Hub(boost::asio::io_context& io, Metrics& metrics, const HubConfig& config,
      const AccessConfig& access, const http::HttpConfig& http, const pg::PostgresConfig& postgres,
      std::function<std::shared_ptr<const rules::RuleSet>()> rules);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  void add_routes(http::HttpRouter& router);
  // Connects the hub's PostgreSQL connections.
  void start();
  // Closes every subscriber connection (each on its loop) and the SQL connections; then, when
  // given, calls `then` on the daemon's loop once the connections are gone (their close
  // handshakes done) or a second passed.
  void stop(std::function<void()> then = {});
  // Applies new access rules (a reload) without dropping connections: each open one is checked
  // again (HubConnection::recheck); says what that took away.
  AccessChange set_access(const AccessConfig& access);
  // Registers the `jwks` check (with auth.jwt.jwks_url): failing until a first key set arrived.
  void add_health_checks(http::HealthChecks& health);
  // Tells every subscriber that events may have been lost (the listener reconnected).
  void resync_all();

  rules::ActionExecutor& push_executor();
  std::size_t connection_count() const;
  // The event loops sessions run on (hub.threads), the daemon's own included.
  std::size_t thread_count() const;

 private:
  class PushExecutor;
  std::unique_ptr<HubLoops> loops_;
  std::shared_ptr<HubState> state_;
  std::unique_ptr<PushExecutor> push_;
  std::shared_ptr<void> hippie_;  // the long-poll pipes (HippiePoll)
};

}  // namespace pgfanout::hub
