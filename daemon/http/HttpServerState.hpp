// HttpServerState: what the listener and every session of one HttpServer share — the router, the
// limits, the metrics, the set of open sessions, and whether the server is stopping.
//
// Held by shared_ptr so that a session outliving its server (its handler still queued when the
// io_context is torn down) finds it; `detached` is set when the HttpServer is destroyed, after
// which the router and metrics must not be touched. Sessions may run on their own strands, so the
// session set is guarded by a mutex.
#pragma once

#include <charconv>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "http/HttpConfig.hpp"
#include "metrics/Metrics.hpp"

namespace pgfanout::http {

class HttpRouter;
class HttpSession;

struct HttpServerState {
  HttpServerState(const HttpRouter& r, Metrics& m, http::HttpConfig o)
      : router(r),
        metrics(m),
        options(std::move(o)),
        connections(m.gauge("pgfanout_http_connections", "Open HTTP connections")),
        rejected(m.counter("pgfanout_http_connections_rejected_total",
                           "HTTP connections closed at once because http.max_connections were "
                           "open")),
        requests_(m, "pgfanout_http_requests_total",
                  "HTTP requests answered, by route and status code", {"route", "code"}) {}

  Counter& requests(std::string_view route, unsigned status) {
    char code[8];
    auto end = std::to_chars(code, code + sizeof code, status).ptr;
    return requests_.with({route, std::string_view(code, static_cast<std::size_t>(end - code))});
  }

  const HttpRouter& router;
  Metrics& metrics;
  const http::HttpConfig options;
  Gauge& connections;
  Counter& rejected;

  std::mutex mutex;
  std::unordered_map<HttpSession*, std::weak_ptr<HttpSession>> sessions;
  bool stopping = false;
  bool detached = false;

 private:
  CounterFamily requests_;
};

}  // namespace pgfanout::http
