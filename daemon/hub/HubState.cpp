#include "hub/HubState.hpp"

#include <sys/random.h>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <random>
#include <unordered_set>

#include "hub/PushAction.hpp"
#include "hub/ServerFrames.hpp"
#include "pg/ConnInfo.hpp"

namespace pgfanout::hub {

namespace json = boost::json;

namespace {

// PostgreSQL's limit on a NOTIFY payload.
constexpr std::size_t kMaxNotifyPayload = 7999;

json::value column_value(const std::optional<std::string>& text, unsigned oid) {
  if (!text) return nullptr;
  switch (oid) {
    case 16:  // bool
      return *text == "t";
    case 20:      // int8
    case 21:      // int2
    case 23:      // int4
    case 26:      // oid
    case 700:     // float4
    case 701:     // float8
    case 1700: {  // numeric
      boost::system::error_code ec;
      json::value v = json::parse(*text, ec);
      if (!ec && v.is_number()) return v;
      return json::string(*text);  // NaN, Infinity
    }
    case 114:     // json
    case 3802: {  // jsonb
      boost::system::error_code ec;
      json::value v = json::parse(*text, ec);
      if (!ec) return v;
      return json::string(*text);
    }
    default:
      return json::string(*text);
  }
}

json::object row_object(const pg::PgResult& r, std::size_t row) {
  json::object o;
  for (std::size_t c = 0; c < r.columns.size(); ++c) {
    unsigned oid = c < r.column_types.size() ? r.column_types[c] : 25;
    o[r.columns[c]] = column_value(r.rows[row][c], oid);
  }
  return o;
}

bool has_nul(std::string_view s) {
  return s.find('\0') != std::string_view::npos;
}

// What a client may see of a failed statement: the server's own words for errors about the data
// (invalid input, constraint violations, RAISE EXCEPTION in a function), nothing for the rest
// (missing functions, permissions, connection trouble), which is logged instead.
void client_error(const pg::PgResult& r, std::string& code, std::string& message) {
  std::string_view cls = std::string_view(r.sqlstate).substr(0, 2);
  if (r.sqlstate == "57014") {
    code = "timeout";
    message = "the command took too long";
  } else if (cls == "08" || r.sqlstate.empty()) {
    code = "unavailable";
    message = "the database is not available; try again";
  } else if (cls == "P0" || cls == "22" || cls == "23") {
    code = "command_failed";
    message = r.message.empty() ? "command failed" : r.message;
  } else {
    code = "command_failed";
    message = "command failed";
  }
}

const std::string* claim(const auth::Claims* claims, std::string_view name) {
  if (claims == nullptr) return nullptr;
  auto it = claims->find(name);
  return it == claims->end() ? nullptr : &it->second;
}

}  // namespace

// 128 bits from the kernel's random source: a long-poll id is all that names a pipe, so another
// client must not be able to work it out from the ids it was given (as it could from a
// Mersenne Twister's output).
std::string random_client_id() {
  static constexpr char kHex[] = "0123456789abcdef";
  unsigned char bytes[16];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    auto n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got < sizeof bytes) {  // no getrandom (an old kernel): std::random_device reads urandom
    std::random_device rd;
    for (auto& b : bytes) b = static_cast<unsigned char>(rd());
  }
  std::string id(32, '0');
  for (std::size_t i = 0; i < sizeof bytes; ++i) {
    id[2 * i] = kHex[bytes[i] >> 4];
    id[2 * i + 1] = kHex[bytes[i] & 15];
  }
  return id;
}

bool RateLimit::take() {
  auto now = std::chrono::steady_clock::now();
  std::chrono::duration<double> elapsed = now - last_;
  last_ = now;
  tokens_ = std::min(burst_, tokens_ + elapsed.count() * rate_);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

std::string rows_json(const pg::PgResult& r) {
  json::array a;
  a.reserve(r.rows.size());
  for (std::size_t i = 0; i < r.rows.size(); ++i) a.emplace_back(row_object(r, i));
  return json::serialize(a);
}

HubState::HubState(boost::asio::io_context& i, Metrics& m, const HubConfig& hub_config,
                   const http::HttpConfig& http_config, const pg::PostgresConfig& postgres,
                   std::function<std::shared_ptr<const rules::RuleSet>()> r)
    : io(i),
      metrics(m),
      config(hub_config),
      http(http_config),
      sql(i, postgres, hub_config.pg_connections),
      rules(std::move(r)),
      subscribers_(m.gauge("pgfanout_subscribers", "Connected WebSocket and SSE subscribers")),
      delivered_(m.counter("pgfanout_hub_messages_delivered_total",
                           "Event messages queued to subscribers (one per subscriber)")),
      dropped_(m, "pgfanout_subscribers_dropped_total",
               "Subscribers closed by the hub, by reason (slow: send queue full)", {"reason"}),
      client_errors_(m, "pgfanout_hub_client_errors_total",
                     "Client messages refused before they reached a handler, by error code",
                     {"code"}),
      rejected_(m, "pgfanout_hub_connections_rejected_total",
                "Hub connections and requests refused (WebSocket, SSE and Hippie connections, "
                "Hippie long polls and publishes), by reason",
                {"reason"}),
      auth_(m, "pgfanout_hub_auth_total", "Token checks, by result", {"result"}),
      commands_(m, "pgfanout_hub_commands_total", "Client commands, by command and result",
                {"command", "result"}),
      logins_(m, "pgfanout_hub_logins_total", "SQL logins, by result", {"result"}),
      publishes_(m, "pgfanout_hub_publishes_total", "Client publishes, by result", {"result"}) {
  if (config.jwt_enabled) {
    std::string error;
    verifier = auth::JwtVerifier::create(config.jwt, error);
    if (!verifier) spdlog::error("auth.jwt: {}", error);  // the config check already refused it
  }
  for (const char* reason : {"slow", "timeout", "too_big"}) dropped_.with({reason});
}

bool HubState::admit(HubConnection* c) {
  if (static_cast<int>(connections_.size()) >= config.max_connections) {
    rejected("limit");
    return false;
  }
  connections_.emplace(c, true);
  subscribers_.set(static_cast<double>(connections_.size()));
  return true;
}

void HubState::release(HubConnection* c) {
  connections_.erase(c);
  if (!detached) subscribers_.set(static_cast<double>(connections_.size()));
}

void HubState::shutdown_all() {
  std::vector<HubConnection*> open;
  for (auto& [c, _] : connections_) open.push_back(c);
  for (auto* c : open) c->shutdown();
}

bool HubState::origin_allowed(std::string_view origin) const {
  if (origin.empty() || http.allowed_origins.empty()) return true;
  for (const auto& o : http.allowed_origins) {
    if (o == origin) return true;
  }
  return false;
}

void HubState::dropped(std::string_view reason) {
  dropped_.with({reason}).inc();
}

void HubState::count_client_error(std::string_view code) {
  client_errors_.with({code}).inc();
}

void HubState::rejected(std::string_view reason) {
  rejected_.with({reason}).inc();
}

auth::JwtResult HubState::authenticate(std::string_view token) {
  if (!verifier) {
    auth::JwtResult r;
    r.reason = "disabled";
    r.message = "tokens are not accepted (no auth.jwt)";
    return r;
  }
  auto r = verifier->verify(token);
  auth_.with({r.ok ? std::string_view("ok") : std::string_view(r.reason)}).inc();
  return r;
}

void HubState::call(const auth::Claims* claims, const ClientMessage& m,
                    std::function<void(HubResult)> reply) {
  auto count = [this](std::string_view command, std::string_view result) {
    commands_.with({command, result}).inc();
  };
  auto it = config.commands.find(m.command);
  if (it == config.commands.end()) {
    count("(unknown)", "unknown");
    return reply(HubResult::failure("unknown_command", "no such command"));
  }
  const std::string& name = it->first;
  const CommandSpec& spec = it->second;
  if (!spec.anonymous && claims == nullptr) {
    count(name, "unauthorized");
    return reply(HubResult::failure("unauthorized", "log in first"));
  }
  for (const auto& [arg, _] : m.args) {
    bool known = false;
    for (const auto& p : spec.params) {
      if (p.kind == ParamRef::Kind::Arg && p.name == arg) known = true;
    }
    if (!known) {
      count(name, "bad_args");
      return reply(HubResult::failure("bad_args", "unexpected argument \"" + arg + "\""));
    }
  }
  pg::PgConnection::Params params;
  for (const auto& p : spec.params) {
    switch (p.kind) {
      case ParamRef::Kind::Subject:
      case ParamRef::Kind::Claim: {
        const std::string* v = claim(claims, p.kind == ParamRef::Kind::Subject ? "sub" : p.name);
        if (v == nullptr) {
          count(name, "bad_args");
          return reply(
              HubResult::failure("unauthorized", "the token lacks a claim " + p.source + " needs"));
        }
        params.emplace_back(*v);
        break;
      }
      case ParamRef::Kind::Topic:
        params.emplace_back(std::nullopt);
        break;
      case ParamRef::Kind::Arg: {
        const ArgValue* v = find_arg(m, p.name);
        if (v == nullptr) {
          count(name, "bad_args");
          return reply(HubResult::failure("bad_args", "missing argument \"" + p.name + "\""));
        }
        if (v->kind == ArgValue::Kind::Null) {
          params.emplace_back(std::nullopt);
        } else if (has_nul(v->text)) {
          // libpq would silently cut a text parameter at NUL.
          count(name, "bad_args");
          return reply(HubResult::failure("bad_args",
                                          "argument \"" + p.name + "\" contains a NUL character"));
        } else {
          params.emplace_back(v->text);
        }
        break;
      }
    }
  }
  sql.run(spec.sql, std::move(params), spec.timeout,
          [reply = std::move(reply), name, count](pg::PgResult&& r) {
            if (r.ok) {
              count(name, "ok");
              return reply(HubResult::success(rows_json(r)));
            }
            std::string code, message;
            client_error(r, code, message);
            if (message == "command failed" || code == "unavailable") {
              spdlog::warn("command {} failed: {} ({})", name, r.error, r.sqlstate);
            }
            count(name, code);
            reply(HubResult::failure(code, message));
          });
}

void HubState::login(const ClientMessage& m,
                     std::function<void(HubResult, std::optional<auth::Claims>)> reply) {
  auto count = [this](std::string_view result) { logins_.with({result}).inc(); };
  if (!config.login || !verifier) {
    count("disabled");
    return reply(HubResult::failure("unsupported", "login is not configured"), std::nullopt);
  }
  if (has_nul(m.username) || has_nul(m.password)) {
    count("failed");
    return reply(HubResult::failure("login_failed", "wrong username or password"), std::nullopt);
  }
  const LoginSpec& spec = *config.login;
  sql.run(
      spec.sql, {m.username, m.password}, std::chrono::seconds(10),
      [this, reply = std::move(reply), count](pg::PgResult&& r) {
        if (detached) return;
        if (!r.ok) {
          std::string code, message;
          client_error(r, code, message);
          spdlog::warn("login statement failed: {} ({})", r.error, r.sqlstate);
          count("error");
          return reply(
              HubResult::failure(code == "unavailable" ? code : "login_failed",
                                 code == "unavailable" ? message : "wrong username or password"),
              std::nullopt);
        }
        if (r.rows.size() != 1) {
          if (r.rows.size() > 1) spdlog::warn("auth.login.sql returned {} rows", r.rows.size());
          count("failed");
          return reply(HubResult::failure("login_failed", "wrong username or password"),
                       std::nullopt);
        }
        const LoginSpec& login = *config.login;
        json::object claims = row_object(r, 0);
        const json::value* subject = claims.if_contains(login.subject);
        if (subject == nullptr || subject->is_null()) {
          spdlog::error("auth.login.sql has no non-null column \"{}\" (auth.login.subject)",
                        login.subject);
          count("error");
          return reply(HubResult::failure("login_failed", "login is misconfigured"), std::nullopt);
        }
        json::object token_claims = claims;
        token_claims["sub"] = subject->is_string()
                                  ? json::value(subject->as_string())
                                  : json::value(json::string(json::serialize(*subject)));
        auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
        token_claims["iat"] = now;
        token_claims["exp"] = now + login.ttl.count();
        if (!config.jwt.issuer.empty()) token_claims["iss"] = config.jwt.issuer;
        if (!config.jwt.audience.empty()) token_claims["aud"] = config.jwt.audience;
        const bool hs256 = config.jwt.algorithm == auth::JwtAlgorithm::HS256;
        std::string token = auth::jwt_sign(config.jwt.algorithm, json::serialize(token_claims),
                                           hs256 ? config.jwt.secret : login.private_key_pem);
        auto checked = verifier->verify(token);
        if (!checked.ok) {
          count("error");
          return reply(HubResult::failure("login_failed", "login is misconfigured"), std::nullopt);
        }
        count("ok");
        json::object result;
        result["token"] = token;
        result["expires_in"] = login.ttl.count();
        result["claims"] = std::move(token_claims);
        reply(HubResult::success(json::serialize(result)), std::move(checked.claims));
      });
}

void HubState::publish(const auth::Claims* claims, const std::string& topic, std::size_t entry,
                       const std::string& data_json, std::function<void(HubResult)> reply) {
  auto count = [this](std::string_view result) { publishes_.with({result}).inc(); };
  std::string payload = R"({"topic":)" + json_quote(topic) + R"(,"data":)" + data_json;
  const std::string* sub = claim(claims, "sub");
  payload += R"(,"sender":)";
  payload += sub != nullptr ? json_quote(*sub) : std::string("null");
  payload += '}';
  if (payload.size() > kMaxNotifyPayload) {
    count("too_large");
    return reply(HubResult::failure("payload_too_large", "published data must fit in 8000 bytes"));
  }
  const std::string& channel = config.topics[entry].publish_channel;
  sql.run("SELECT pg_notify($1, $2)", {channel, std::move(payload)}, std::chrono::seconds(5),
          [reply = std::move(reply), count](pg::PgResult&& r) {
            if (r.ok) {
              count("ok");
              return reply(HubResult::success());
            }
            std::string code, message;
            client_error(r, code, message);
            spdlog::warn("publish failed: {} ({})", r.error, r.sqlstate);
            count("failed");
            reply(HubResult::failure(code == "unavailable" ? code : "publish_failed",
                                     code == "unavailable" ? message : "publish failed"));
          });
}

void HubState::on_subscribe(
    const auth::Claims* claims, const std::string& topic, std::size_t entry,
    std::function<void(std::vector<std::shared_ptr<const std::string>>, std::optional<HubError>)>
        done) {
  const auto& on = config.topics[entry].on_subscribe;
  if (!on) return done({}, std::nullopt);
  pg::PgConnection::Params params;
  for (const auto& p : on->params) {
    if (p.kind == ParamRef::Kind::Topic) {
      params.emplace_back(topic);
      continue;
    }
    const std::string* v = claim(claims, p.kind == ParamRef::Kind::Subject ? "sub" : p.name);
    if (v == nullptr) {
      params.emplace_back(std::nullopt);
    } else {
      params.emplace_back(*v);
    }
  }
  sql.run(on->sql, std::move(params), std::chrono::seconds(10),
          [done = std::move(done), topic, event = on->event](pg::PgResult&& r) {
            if (!r.ok) {
              std::string code, message;
              client_error(r, code, message);
              spdlog::warn("on_subscribe for {} failed: {} ({})", topic, r.error, r.sqlstate);
              return done({}, HubError{"on_subscribe_failed", message});
            }
            std::vector<std::shared_ptr<const std::string>> frames;
            frames.reserve(r.rows.size());
            for (std::size_t i = 0; i < r.rows.size(); ++i) {
              frames.push_back(std::make_shared<const std::string>(
                  event_frame(topic, event, json::serialize(row_object(r, i)), std::nullopt)));
            }
            done(std::move(frames), std::nullopt);
          });
}

void HubState::replay(
    std::vector<std::string> wanted, std::int64_t after,
    std::function<void(std::vector<ReplayedEvent>, std::vector<std::string>)> done) {
  auto set = rules ? rules() : nullptr;
  std::vector<std::string> channels;
  // A topic is resumable when some durable push could render it: a template with fields might,
  // a literal one only when it is that topic.
  std::unordered_set<std::string> resumable;
  bool any_template = false;
  if (set) {
    for (const auto& channel : set->durable_channels()) {
      bool pushes = false;
      for (const rules::Rule* rule : set->for_channel(channel)) {
        if (!rule->durable) continue;
        for (const auto& a : rule->actions) {
          const auto* push = a->as<PushAction>();
          if (push == nullptr) continue;
          pushes = true;
          if (push->topic().has_fields()) {
            any_template = true;
          } else {
            resumable.insert(push->topic().source());
          }
        }
      }
      if (pushes) channels.push_back(channel);
    }
  }
  std::vector<std::string> lost;
  for (const auto& t : wanted) {
    if (!any_template && !resumable.contains(t)) lost.push_back(t);
  }
  if (channels.empty() || lost.size() == wanted.size()) return done({}, std::move(lost));
  const int limit = config.resume_limit;
  // Resume in the order the outbox reader delivered live events: the safe (txid, id) order after
  // the event the client last saw, never by id alone (ids are not commit order). The first row
  // says whether that event is still in the outbox; when it was trimmed the gap cannot be
  // replayed and the topics get `resync`.
  sql.run(
      "WITH last AS (SELECT txid, id FROM pgfanout.outbox WHERE id = $1), "
      "page AS (SELECT o.txid, o.id, o.channel, o.payload::text AS payload "
      "FROM pgfanout.outbox o, last WHERE (o.txid, o.id) > (last.txid, last.id) "
      "AND o.txid < pg_snapshot_xmin(pg_current_snapshot()) AND o.channel = ANY($2::text[]) "
      "ORDER BY o.txid, o.id LIMIT $3) "
      "SELECT NULL::bigint, NULL::text, (SELECT count(*) FROM last)::text, 0 AS k, "
      "NULL::xid8 AS t, 0::bigint AS i "
      "UNION ALL SELECT id, channel, payload, 1, txid, id FROM page ORDER BY 4, 5, 6",
      {std::to_string(after), pg::text_array(channels), std::to_string(limit + 1)},
      std::chrono::seconds(10),
      [set, wanted = std::move(wanted), lost = std::move(lost), limit,
       done = std::move(done)](pg::PgResult&& r) mutable {
        if (!r.ok) {
          spdlog::warn("SSE resume: reading the outbox failed: {}", r.error);
          return done({}, std::move(wanted));
        }
        std::unordered_set<std::string> wanted_set(wanted.begin(), wanted.end());
        std::vector<ReplayedEvent> out;
        if (r.rows.empty() || r.rows[0][2] != "1") return done({}, std::move(wanted));
        if (static_cast<int>(r.rows.size()) - 1 > limit) lost = wanted;
        std::string topic, name, data, why;
        for (std::size_t i = 1; i < r.rows.size() && static_cast<int>(i) <= limit; ++i) {
          if (!r.rows[i][0] || !r.rows[i][1] || !r.rows[i][2]) continue;
          std::int64_t id = std::stoll(*r.rows[i][0]);
          const std::string& channel = *r.rows[i][1];
          auto payload = rules::ParsedPayload::parse(channel, *r.rows[i][2]);
          set->for_each_match(
              payload, std::chrono::steady_clock::now(), id,
              [&](const rules::Rule& rule, const rules::Event& ev, int) {
                for (const auto& a : rule.actions) {
                  const auto* push = a->as<PushAction>();
                  if (push == nullptr) continue;
                  topic.clear();
                  if (!push->topic().render(ev, topic) || !wanted_set.contains(topic)) continue;
                  if (!push->render(ev, name, data, why)) continue;
                  out.push_back(
                      {topic, id,
                       std::make_shared<const std::string>(event_frame(topic, name, data, id))});
                }
              },
              rules::RuleScope::DurableOnly);
        }
        done(std::move(out), std::move(lost));
      });
}

}  // namespace pgfanout::hub
