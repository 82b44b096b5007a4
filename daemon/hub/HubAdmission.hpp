// HubAdmission: how a hub request becomes a session — the checks every long-lived connection
// passes (the connection limit, the Origin allow-list, the token, the topic ACL), the plain HTTP
// replies that refuse one, and the opening of WebSocket and SSE / multipart sessions. Hub.cpp
// maps the routes onto these.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "auth/Jwt.hpp"
#include "auth/TopicAcl.hpp"
#include "http/HttpUpgrade.hpp"
#include "hub/QueryString.hpp"
#include "hub/StreamSession.hpp"
#include "hub/WebSocketSession.hpp"

namespace pgfanout::hub {

class HubState;

// Header and query lookups on the request a take-over handler got.
class UpgradeRequestView {
 public:
  explicit UpgradeRequestView(const boost::beast::http::request<boost::beast::http::string_body>& r)
      : r_(r) {}
  std::string_view header(std::string_view name) const {
    auto it = r_.find(boost::beast::string_view(name.data(), name.size()));
    return it == r_.end() ? std::string_view() : std::string_view(it->value());
  }
  std::vector<std::string> query_values(std::string_view name) const {
    std::string_view target = r_.target();
    auto q = target.find('?');
    if (q == std::string_view::npos) return {};
    return form_values(target.substr(q + 1), name);
  }

 private:
  const boost::beast::http::request<boost::beast::http::string_body>& r_;
};

struct RequestAuth {
  bool ok = true;
  std::optional<Identity> identity;  // a valid token was given
  std::string subprotocol;
  const auth::Claims* claims() const { return identity ? &identity->claims : nullptr; }
  std::string error;
};

// Answers with `status` and `body`, then closes the connection.
void respond(boost::beast::tcp_stream&& stream, unsigned status, std::string body,
             std::string content_type = "application/json");
void respond_error(boost::beast::tcp_stream&& stream, unsigned status, std::string_view code,
                   std::string_view message);
// A refused hub request, counted in pgfanout_hub_connections_rejected_total by its error code.
void refuse(HubState& hub, boost::beast::tcp_stream&& stream, unsigned status,
            std::string_view code, std::string_view message);
// The Origin allow-list; refuses with 403.
bool origin_ok(HubState& hub, http::UpgradeRequest& u);
// Checks of every long-lived hub connection: the connection limit and the Origin allow-list.
bool admit_request(HubState& hub, http::UpgradeRequest& u);
// The request's token; refuses with 401 when one is present but invalid.
std::optional<RequestAuth> authenticate(HubState& hub, http::UpgradeRequest& u);
// The topic ACL for `topic`: the index of the `topics:` entry that allows it, or nullopt after
// refusing with 401 (no token where one is needed) or 403.
std::optional<std::size_t> acl_allows(HubState& hub, http::UpgradeRequest& u,
                                      const std::string& topic, auth::TopicAccess access,
                                      const RequestAuth& a);
void open_websocket(const std::shared_ptr<HubState>& hub, http::UpgradeRequest&& u,
                    WebSocketSession::Mode mode, std::string hippie_topic);
void open_stream(const std::shared_ptr<HubState>& hub, http::UpgradeRequest&& u,
                 StreamSession::Format format, std::vector<std::string> topics);
// The channel of `/_hippie/<kind>/<channel>`.
std::string hippie_channel(std::string_view target, std::string_view prefix);

}  // namespace pgfanout::hub
