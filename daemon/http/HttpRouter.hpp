// HttpRouter: the route table of the HTTP server, method + exact path -> handler.
//
// Components register their routes at start-up (`/healthz`, `/metrics`; later the WebSocket and
// SSE hub). handle() answers one request: a GET route also answers HEAD (without body), an unknown
// path gets 404, a known path with another method 405 with an Allow header. A path can instead be
// registered for a connection *take-over* (add_upgrade): HttpSession then hands the connection and
// the parsed request to that handler (for a WebSocket upgrade or a Server-Sent-Events stream) and
// stops serving it. Routes are added before the server starts; lookups run on the event loop.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "http/HttpMessage.hpp"

namespace pgfanout::http {

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Defined in http/HttpUpgrade.hpp (Beast types: the stream, the parsed request, the buffer).
struct UpgradeRequest;
using UpgradeHandler = std::function<void(UpgradeRequest&&)>;

class HttpRouter {
 public:
  void add(std::string method, std::string path, HttpHandler handler);
  // Connections asking for `path` with an `Upgrade:` header, or with `Accept: text/event-stream`,
  // are handed to `handler`.
  void add_upgrade(std::string path, UpgradeHandler handler);
  // Every request for `path` is handed to `handler`, whatever its headers (long polls, streams
  // that plain clients ask for). A path ending in '/' covers every path under it.
  void add_takeover(std::string path, UpgradeHandler handler);

  // Answers GET and HEAD requests that no route matches (static files) instead of a 404.
  void set_fallback(HttpHandler handler);

  HttpResponse handle(const HttpRequest& request) const;
  const UpgradeHandler* upgrade_for(std::string_view path) const;
  const UpgradeHandler* takeover_for(std::string_view path) const;

  // A bounded label for metrics: the registered path, or "other".
  std::string_view route_label(std::string_view path) const;

 private:
  std::map<std::pair<std::string, std::string>, HttpHandler, std::less<>>
      routes_;  // (path, method)
  std::map<std::string, UpgradeHandler, std::less<>> upgrades_;
  std::map<std::string, UpgradeHandler, std::less<>> takeovers_;
  HttpHandler fallback_;
};

}  // namespace pgfanout::http
