// HttpRequest / HttpResponse: the plain request and response types route handlers see.
//
// They keep Boost.Beast out of the headers that handlers include (Beast is slow to compile):
// HttpSession converts Beast's message into an HttpRequest and an HttpResponse back into Beast's.
// Plain values; any thread.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgfanout::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "GET"
  std::string target;  // "/metrics?x=1", as sent
  std::string path;    // "/metrics"
  std::string query;   // "x=1"
  HeaderList headers;
  std::string body;
  std::string remote;  // "127.0.0.1:54321"

  // The first header called `name` (case-insensitive), or "".
  std::string_view header(std::string_view name) const;
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  HeaderList headers;  // extra headers; Content-Type and Content-Length are set from the above

  static HttpResponse text(unsigned status, std::string body);
  static HttpResponse json(unsigned status, std::string body);
};

}  // namespace pgfanout::http
