// UpgradeRequest: what HttpSession hands to a take-over handler registered with
// HttpRouter::add_upgrade — the connection, the request that asked for it, and any bytes already
// read past that request. Includes Beast: only the WebSocket / SSE code should include this.
// The handler owns everything from then on (timeouts included: the stream has none set).
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/HttpRouter.hpp"

namespace pgfanout::http {

struct UpgradeRequest {
  boost::beast::tcp_stream stream;
  boost::beast::http::request<boost::beast::http::string_body> request;
  boost::beast::flat_buffer buffer;
};

}  // namespace pgfanout::http
