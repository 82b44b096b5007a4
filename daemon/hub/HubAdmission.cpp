#include "hub/HubAdmission.hpp"

#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "hub/HubState.hpp"
#include "hub/ServerFrames.hpp"
#include "pg/ReplicationProtocol.hpp"

namespace pgfanout::hub {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// A file descriptor on its way to another loop: closed unless taken.
class LoneSocket {
 public:
  explicit LoneSocket(int fd) : fd_(fd) {}
  ~LoneSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  LoneSocket(const LoneSocket&) = delete;
  LoneSocket& operator=(const LoneSocket&) = delete;
  int take() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Runs `start(stream)` on the loop of `shard`, with the connection moved there: its descriptor
// is taken out of this loop's reactor and registered with that loop's.
template <class Start>
void on_shard(HubShard& shard, beast::tcp_stream&& stream, Start start) {
  if (shard.index == 0) return start(std::move(stream));
  boost::system::error_code ec;
  auto socket = stream.release_socket();
  const auto protocol = socket.local_endpoint(ec).protocol();
  if (ec) return;  // the client is gone already
  auto fd = std::make_shared<LoneSocket>(socket.release(ec));
  if (ec) return;
  asio::post(shard.io, [&shard, fd, protocol, start = std::move(start)]() mutable {
    asio::ip::tcp::socket moved(shard.io);
    boost::system::error_code failed;
    moved.assign(protocol, fd->take(), failed);
    if (!failed) start(beast::tcp_stream(std::move(moved)));
  });
}

// The token of a request: `Authorization: Bearer`, `Sec-WebSocket-Protocol: bearer, TOKEN`, or
// (only with auth.allow_query_token) `?access_token=`. A token that is present must be valid.
RequestAuth request_auth(HubState& hub, const UpgradeRequestView& req) {
  RequestAuth out;
  std::string token;
  std::string_view authorization = req.header("authorization");
  if (authorization.size() > 7 && iequals(authorization.substr(0, 7), "bearer ")) {
    token = std::string(trim(authorization.substr(7)));
  }
  std::string_view protocols = req.header("sec-websocket-protocol");
  if (!protocols.empty()) {
    std::vector<std::string_view> items;
    std::size_t start = 0;
    while (start <= protocols.size()) {
      auto comma = protocols.find(',', start);
      items.push_back(trim(protocols.substr(
          start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (iequals(items[i], "bearer") && i + 1 < items.size()) {
        if (token.empty()) token = std::string(items[i + 1]);
        out.subprotocol = "bearer";
        break;
      }
      if (items[i] == "pgfanout") out.subprotocol = "pgfanout";
    }
  }
  if (token.empty() && hub.access()->config.allow_query_token) {
    for (const auto& v : req.query_values("access_token")) token = v;
  }
  if (token.empty()) return out;
  std::string key_id;
  auto r = hub.authenticate(token, &key_id);
  if (!r.ok) {
    out.ok = false;
    out.error = r.message;
    return out;
  }
  out.identity = Identity{std::move(r.claims), std::move(key_id)};
  return out;
}

}  // namespace

void respond(beast::tcp_stream&& stream, unsigned status, std::string body,
             std::string content_type) {
  struct Reply {
    beast::tcp_stream stream;
    std::string text;
  };
  std::string reason(bhttp::obsolete_reason(static_cast<bhttp::status>(status)));
  auto r = std::make_shared<Reply>(Reply{std::move(stream), {}});
  r->text = "HTTP/1.1 " + std::to_string(status) + " " + reason +
            "\r\nServer: pgfanout/" PGFANOUT_VERSION "\r\nContent-Type: " + content_type +
            "\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n" + body;
  r->stream.expires_after(std::chrono::seconds(10));
  asio::async_write(r->stream, asio::buffer(r->text), [r](beast::error_code, std::size_t) {
    beast::error_code ignored;
    r->stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    r->stream.close();
  });
}

void respond_error(beast::tcp_stream&& stream, unsigned status, std::string_view code,
                   std::string_view message) {
  respond(std::move(stream), status, error_frame({}, code, message) + "\n");
}

// A refused hub request, counted in pgfanout_hub_connections_rejected_total by its error code.
void refuse(HubState& hub, beast::tcp_stream&& stream, unsigned status, std::string_view code,
            std::string_view message) {
  hub.rejected(code);
  respond_error(std::move(stream), status, code, message);
}

// The Origin allow-list; refuses with 403.
bool origin_ok(HubState& hub, http::UpgradeRequest& u) {
  if (hub.origin_allowed(u.request[bhttp::field::origin])) return true;
  hub.rejected("origin");
  respond_error(std::move(u.stream), 403, "forbidden", "origin not allowed");
  return false;
}

// Checks of every long-lived hub connection: the connection limit and the Origin allow-list.
bool admit_request(HubState& hub, http::UpgradeRequest& u) {
  if (hub.connection_count() >= static_cast<std::size_t>(hub.config.max_connections)) {
    hub.rejected("limit");
    respond_error(std::move(u.stream), 503, "unavailable", "too many connections");
    return false;
  }
  return origin_ok(hub, u);
}

// The request's token (see request_auth); refuses with 401 when one is present but invalid.
std::optional<RequestAuth> authenticate(HubState& hub, http::UpgradeRequest& u) {
  UpgradeRequestView view(u.request);
  auto a = request_auth(hub, view);
  if (a.ok) return a;
  respond_error(std::move(u.stream), 401, "unauthorized", a.error);
  return std::nullopt;
}

// The topic ACL for `topic`: the index of the `topics:` entry that allows it, or nullopt after
// refusing with 401 (no token where one is needed) or 403.
std::optional<std::size_t> acl_allows(HubState& hub, http::UpgradeRequest& u,
                                      const std::string& topic, auth::TopicAccess access,
                                      const RequestAuth& a) {
  auto d = hub.access()->config.acl.check(topic, access, a.claims());
  if (d.allowed) return d.entry;
  refuse(hub, std::move(u.stream), d.code == "unauthorized" ? 401 : 403, d.code, d.message);
  return std::nullopt;
}

void open_websocket(const std::shared_ptr<HubState>& hub, http::UpgradeRequest&& u,
                    WebSocketSession::Mode mode, std::string hippie_topic) {
  if (!beast::websocket::is_upgrade(u.request)) {
    refuse(*hub, std::move(u.stream), 426, "upgrade_required", "a WebSocket upgrade is required");
    return;
  }
  if (!admit_request(*hub, u)) return;
  auto a = authenticate(*hub, u);
  if (!a) return;
  if (mode == WebSocketSession::Mode::Hippie &&
      !acl_allows(*hub, u, hippie_topic, auth::TopicAccess::Subscribe, *a)) {
    return;
  }
  auto& shard = hub->place();
  on_shard(shard, std::move(u.stream),
           [hub, &shard, mode, topic = std::move(hippie_topic), request = std::move(u.request),
            identity = std::move(a->identity),
            subprotocol = std::move(a->subprotocol)](beast::tcp_stream&& stream) mutable {
             auto session = std::make_shared<WebSocketSession>(hub, shard, std::move(stream), mode,
                                                               std::move(topic));
             session->run(std::move(request), std::move(identity), std::move(subprotocol));
           });
}

void open_stream(const std::shared_ptr<HubState>& hub, http::UpgradeRequest&& u,
                 StreamSession::Format format, std::vector<std::string> topics) {
  if (u.request.method() != bhttp::verb::get) {
    refuse(*hub, std::move(u.stream), 405, "method_not_allowed", "use GET");
    return;
  }
  if (!admit_request(*hub, u)) return;
  auto a = authenticate(*hub, u);
  if (!a) return;
  if (topics.empty()) {
    refuse(*hub, std::move(u.stream), 400, "bad_request", "name at least one ?topic=");
    return;
  }
  if (static_cast<int>(topics.size()) > hub->config.max_subscriptions) {
    refuse(*hub, std::move(u.stream), 400, "too_many_subscriptions", "too many topics");
    return;
  }
  std::vector<std::size_t> entries;
  for (const auto& t : topics) {
    auto d = hub->access()->config.acl.check(t, auth::TopicAccess::Subscribe, a->claims());
    if (!d.allowed) {
      refuse(*hub, std::move(u.stream), d.code == "unauthorized" ? 401 : 403, d.code,
             t + ": " + d.message);
      return;
    }
    entries.push_back(d.entry);
  }
  std::sort(topics.begin(), topics.end());
  std::optional<std::int64_t> last_event_id;
  UpgradeRequestView view(u.request);
  std::string last = std::string(view.header("last-event-id"));
  if (last.empty()) {
    for (const auto& v : view.query_values("lastEventId")) last = v;
  }
  // An id that is not one the hub sent cannot be resumed from: the client gets `resync` for
  // every topic rather than a stream that silently skips what it missed.
  bool resume_unknown = false;
  std::optional<std::uint64_t> last_lsn;
  if (last.find('/') != std::string::npos) {
    // The WAL position of an event from the WAL source: resumed from the hub's history.
    last_lsn = pg::parse_lsn(last);
    if (!last_lsn) {
      resume_unknown = true;
      hub->count_client_error("bad_last_event_id");
    }
  } else if (!last.empty()) {
    try {
      std::size_t used = 0;
      long long id = std::stoll(last, &used);
      if (used == last.size() && id >= 0) last_event_id = id;
    } catch (const std::exception&) {
    }
    if (!last_event_id) {
      resume_unknown = true;
      hub->count_client_error("bad_last_event_id");
    }
  }
  // Duplicates would subscribe twice.
  std::vector<std::string> unique_topics;
  std::vector<std::size_t> unique_entries;
  for (std::size_t i = 0; i < topics.size(); ++i) {
    if (i > 0 && topics[i] == topics[i - 1]) continue;
    unique_topics.push_back(topics[i]);
    auto d = hub->access()->config.acl.check(topics[i], auth::TopicAccess::Subscribe, a->claims());
    unique_entries.push_back(d.entry);
  }
  auto& shard = hub->place();
  on_shard(shard, std::move(u.stream),
           [hub, &shard, format, topics = std::move(unique_topics),
            entries = std::move(unique_entries), identity = std::move(a->identity), last_event_id,
            resume_unknown, last_lsn](beast::tcp_stream&& stream) mutable {
             auto session = std::make_shared<StreamSession>(hub, shard, std::move(stream), format);
             session->run(std::move(topics), std::move(entries), std::move(identity), last_event_id,
                          resume_unknown, last_lsn);
           });
}

// The channel of `/_hippie/<kind>/<channel>`.
std::string hippie_channel(std::string_view target, std::string_view prefix) {
  std::string_view path = target.substr(0, target.find('?'));
  return percent_decode(path.substr(prefix.size()));
}

}  // namespace pgfanout::hub
