// HubState's SQL operations for clients: declared commands, client publishes (pg_notify on the
// topic's publish_channel) and a topic's on_subscribe query.
#include <spdlog/spdlog.h>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "hub/HubSql.hpp"
#include "hub/HubState.hpp"
#include "hub/ServerFrames.hpp"

namespace pgfanout::hub {

namespace json = boost::json;

namespace {

// The claims as a value: a call from another loop runs on loop 0 after the session moved on.
std::optional<auth::Claims> copied(const auth::Claims* claims) {
  return claims ? std::optional<auth::Claims>(*claims) : std::nullopt;
}

const auth::Claims* ptr(const std::optional<auth::Claims>& claims) {
  return claims ? &*claims : nullptr;
}

}  // namespace

void HubState::call(const auth::Claims* claims, const ClientMessage& m,
                    std::function<void(HubResult)> reply) {
  if (hop(reply, [self = shared_from_this(), c = copied(claims), m](auto r) {
        self->call(ptr(c), m, std::move(r));
      })) {
    return;
  }
  auto count = [this](std::string_view command, std::string_view result) {
    commands_.with({command, result}).inc();
  };
  // The command's spec lives in the rules in force now; the reply may come after a reload.
  auto access = this->access();
  auto it = access->config.commands.find(m.command);
  if (it == access->config.commands.end()) {
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

void HubState::publish(const auth::Claims* claims, const std::string& topic, std::size_t entry,
                       const std::string& data_json, std::function<void(HubResult)> reply) {
  if (hop(reply, [self = shared_from_this(), c = copied(claims), topic, entry, data_json](auto r) {
        self->publish(ptr(c), topic, entry, data_json, std::move(r));
      })) {
    return;
  }
  auto count = [this](std::string_view result) { publishes_.with({result}).inc(); };
  auto access = this->access();
  if (entry >= access->config.topics.size()) {  // the topics changed since the ACL check
    count("failed");
    return reply(HubResult::failure("forbidden", "the topic rules changed; try again"));
  }
  std::string payload = R"({"topic":)" + json_quote(topic) + R"(,"data":)" + data_json;
  const std::string* sub = claim(claims, "sub");
  payload += R"(,"sender":)";
  payload += sub != nullptr ? json_quote(*sub) : std::string("null");
  payload += '}';
  if (payload.size() > kMaxNotifyPayload) {
    count("too_large");
    return reply(HubResult::failure("payload_too_large", "published data must fit in 8000 bytes"));
  }
  const std::string& channel = access->config.topics[entry].publish_channel;
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
  if (hop(done, [self = shared_from_this(), c = copied(claims), topic, entry](auto d) {
        self->on_subscribe(ptr(c), topic, entry, std::move(d));
      })) {
    return;
  }
  auto access = this->access();
  if (entry >= access->config.topics.size()) {  // the topics changed since the ACL check
    return done({}, HubError{"forbidden", "the topic rules changed; subscribe again"});
  }
  const auto& on = access->config.topics[entry].on_subscribe;
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
                  event_frame(topic, event, json::serialize(row_object(r, i)), {})));
            }
            done(std::move(frames), std::nullopt);
          });
}

}  // namespace pgfanout::hub
