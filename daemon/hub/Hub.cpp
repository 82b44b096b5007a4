#include "hub/Hub.hpp"

#include <strings.h>

#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "http/HealthChecks.hpp"
#include "http/HttpRouter.hpp"
#include "http/HttpUpgrade.hpp"
#include "hub/HippiePoll.hpp"
#include "hub/HubAdmission.hpp"
#include "hub/HubState.hpp"
#include "hub/JwksRefresher.hpp"
#include "hub/PushAction.hpp"
#include "hub/QueryString.hpp"
#include "hub/ServerFrames.hpp"
#include "hub/StaticFiles.hpp"
#include "hub/StreamSession.hpp"
#include "hub/WebSocketSession.hpp"
#include "metrics/Metrics.hpp"
#include "pg/ReplicationProtocol.hpp"
#include "rules/RuleSet.hpp"

namespace pgfanout::hub {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

std::vector<asio::io_context*> loop_list(const HubLoops& loops) {
  std::vector<asio::io_context*> out;
  for (std::size_t i = 0; i < loops.size(); ++i) out.push_back(&loops.loop(i));
  return out;
}

}  // namespace

// ---- push

class Hub::PushExecutor final : public rules::TypedExecutor<PushAction> {
 public:
  explicit PushExecutor(std::shared_ptr<HubState> state)
      : state_(std::move(state)),
        no_subscribers_(state_->metrics.counter("pgfanout_hub_pushes_total",
                                                "Pushed events, by whether a subscriber was there",
                                                {{"delivered", "no"}})),
        delivered_(state_->metrics.counter("pgfanout_hub_pushes_total",
                                           "Pushed events, by whether a subscriber was there",
                                           {{"delivered", "yes"}})) {}

  void run(const PushAction& push, const rules::Event& event,
           const rules::ActionContext& ctx) override {
    if (!rules::render_for_action(push.topic(), event, ctx, topic_, /*allow_empty=*/false)) {
      return;
    }
    std::string why;
    if (!auth::valid_topic(topic_, &why)) {
      ctx.skipped("topic \"" + topic_ + "\" rendered from \"" + push.topic().source() +
                  "\" is not valid: " + why);
      return;
    }
    const bool listened = state_->listened(topic_);
    // An event from the WAL is kept for clients that resume, listened to now or not.
    const bool keep = event.lsn() && state_->history.enabled();
    if (!listened && !keep) {
      // Nobody listens here: nothing to serialize.
      no_subscribers_.inc();
      ctx.succeeded();
      return;
    }
    if (!push.render(event, name_, data_, why)) {
      ctx.skipped(why);
      return;
    }
    HubMessage m;
    m.topic = topic_;
    if (auto id = event.outbox_id()) {
      m.id = std::to_string(*id);
      m.outbox_id = *id;
      m.outbox_txid = event.outbox_txid();
    } else if (auto lsn = event.lsn()) {
      m.id = pg::format_lsn(*lsn);
    }
    m.frame = std::make_shared<const std::string>(event_frame(topic_, name_, data_, m.id));
    if (keep) state_->history.record(*event.lsn(), topic_, m.frame);
    if (!listened) {
      no_subscribers_.inc();
      ctx.succeeded();
      return;
    }
    m.data = std::make_shared<const std::string>(data_);
    state_->publish(m);
    delivered_.inc();
    ctx.succeeded();
  }

 private:
  std::shared_ptr<HubState> state_;
  Counter& no_subscribers_;
  Counter& delivered_;
  std::string topic_, name_, data_;  // scratch, reused
};

Hub::Hub(asio::io_context& io, Metrics& metrics, const HubConfig& config,
         const AccessConfig& access, const http::HttpConfig& http,
         const pg::PostgresConfig& postgres,
         std::function<std::shared_ptr<const rules::RuleSet>()> rules)
    : loops_(std::make_unique<HubLoops>(io, config.threads)),
      state_(std::make_shared<HubState>(io, metrics, config, access, http, postgres,
                                        std::move(rules), loop_list(*loops_))),
      push_(std::make_unique<PushExecutor>(state_)) {
  hippie_ = std::make_shared<HippiePoll>(state_);
}

Hub::~Hub() {
  stop();
  state_->detached = true;
  // The hub threads finish the close handshakes shutdown_all() began, for a moment at most.
  state_->loops_running(false);
  loops_->stop(std::chrono::milliseconds(500));
}

void Hub::add_routes(http::HttpRouter& router) {
  auto hub = state_;
  router.add_upgrade("/ws", [hub](http::UpgradeRequest&& u) {
    open_websocket(hub, std::move(u), WebSocketSession::Mode::Protocol, {});
  });
  router.add_takeover("/events", [hub](http::UpgradeRequest&& u) {
    UpgradeRequestView view(u.request);
    open_stream(hub, std::move(u), StreamSession::Format::Sse, view.query_values("topic"));
  });
  router.add_takeover("/_hippie/ws/", [hub](http::UpgradeRequest&& u) {
    std::string channel = hippie_channel(u.request.target(), "/_hippie/ws/");
    open_websocket(hub, std::move(u), WebSocketSession::Mode::Hippie, std::move(channel));
  });
  router.add_takeover("/_hippie/mxhr/", [hub](http::UpgradeRequest&& u) {
    std::string channel = hippie_channel(u.request.target(), "/_hippie/mxhr/");
    open_stream(hub, std::move(u), StreamSession::Format::Multipart, {std::move(channel)});
  });
  auto poll = std::static_pointer_cast<HippiePoll>(hippie_);
  router.add_takeover("/_hippie/poll/", [hub, poll](http::UpgradeRequest&& u) {
    std::string channel = hippie_channel(u.request.target(), "/_hippie/poll/");
    if (!origin_ok(*hub, u)) return;
    auto a = authenticate(*hub, u);
    if (!a) return;
    std::string client_id;
    for (const auto& v : UpgradeRequestView(u.request).query_values("client_id")) client_id = v;
    poll->poll(std::move(u.stream), channel, client_id, std::move(a->identity));
  });
  router.add_takeover("/_hippie/pub/", [hub](http::UpgradeRequest&& u) {
    std::string channel = hippie_channel(u.request.target(), "/_hippie/pub/");
    if (u.request.method() != bhttp::verb::post) {
      return refuse(*hub, std::move(u.stream), 405, "method_not_allowed", "use POST");
    }
    if (!origin_ok(*hub, u)) return;
    auto a = authenticate(*hub, u);
    if (!a) return;
    auto entry = acl_allows(*hub, u, channel, auth::TopicAccess::Publish, *a);
    if (!entry) return;
    const auth::Claims* claims = a->claims();
    std::string message;
    for (const auto& v : form_values(u.request.body(), "message")) message = v;
    auto parsed = parse_client_message(R"({"type":"publish","topic":"x","data":)" +
                                       (message.empty() ? std::string("null") : message) + "}");
    if (message.empty() || !parsed.message) {
      hub->count_client_error("bad_message");
      return respond_error(std::move(u.stream), 400, "bad_message",
                           "message=JSON is required in the form body");
    }
    auto stream = std::make_shared<beast::tcp_stream>(std::move(u.stream));
    hub->publish(claims, channel, *entry, parsed.message->data, [stream](HubResult r) {
      respond(std::move(*stream), r.ok() ? 200 : 503,
              r.ok() ? std::string(R"({"success":true})") + "\n" : reply_frame({}, r) + "\n");
    });
  });
  if (!state_->http.static_dir.empty()) {
    auto files = std::make_shared<StaticFiles>(state_->http.static_dir);
    router.set_fallback([files](const http::HttpRequest& r) { return files->serve(r); });
  }
}

void Hub::start() {
  loops_->start();
  state_->loops_running(true);
  state_->sql.start();
  if (state_->jwks) state_->jwks->start();
}

namespace {

// Calls `then` once every hub connection is gone or `deadline` passed, looking every 10 ms.
void when_closed(std::shared_ptr<HubState> state, std::shared_ptr<asio::steady_timer> timer,
                 std::chrono::steady_clock::time_point deadline, std::function<void()> then) {
  if (state->connection_count() == 0 || std::chrono::steady_clock::now() >= deadline) {
    return then();
  }
  timer->expires_after(std::chrono::milliseconds(10));
  timer->async_wait([state, timer, deadline, then](boost::system::error_code) {
    when_closed(state, timer, deadline, then);
  });
}

}  // namespace

void Hub::stop(std::function<void()> then) {
  if (state_->jwks) state_->jwks->stop();
  state_->shutdown_all();
  std::static_pointer_cast<HippiePoll>(hippie_)->stop();
  state_->sql.stop();
  if (!then) return;
  when_closed(state_, std::make_shared<asio::steady_timer>(state_->io),
              std::chrono::steady_clock::now() + std::chrono::seconds(1), std::move(then));
}

AccessChange Hub::set_access(const AccessConfig& access) {
  auto change = state_->set_access(access);
  spdlog::info(
      "reload: access rules checked on {} connection(s): {} closed (token key no longer "
      "trusted), {} subscription(s) withdrawn",
      change.checked, change.closed, change.unsubscribed);
  return change;
}

void Hub::add_health_checks(http::HealthChecks& health) {
  if (!state_->jwks || !state_->jwks->from_url()) return;
  // A reload may replace the refresher or end the key set: the check follows what runs.
  health.add("jwks", [state = state_] {
    return state->jwks && state->jwks->from_url() ? state->jwks->health()
                                                  : http::HealthStatus{true, "no jwks_url"};
  });
}

void Hub::resync_all() {
  state_->resync_all();
}

std::size_t Hub::thread_count() const {
  return loops_->size();
}

rules::ActionExecutor& Hub::push_executor() {
  return *push_;
}

std::size_t Hub::connection_count() const {
  return state_->connection_count();
}

}  // namespace pgfanout::hub
