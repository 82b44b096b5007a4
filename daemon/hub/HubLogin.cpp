// HubState::login: the SQL login (auth.login.sql) that mints a token for its row.
#include <spdlog/spdlog.h>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "hub/HubSql.hpp"
#include "hub/HubState.hpp"
#include "hub/ServerFrames.hpp"

namespace pgfanout::hub {

namespace json = boost::json;

void HubState::login(const ClientMessage& m,
                     std::function<void(HubResult, std::optional<Identity>)> reply) {
  if (hop(reply, [self = shared_from_this(), m](auto r) { self->login(m, std::move(r)); })) return;
  auto count = [this](std::string_view result) { logins_.with({result}).inc(); };
  // The rules in force now, kept for the statement's reply even if a reload replaces them.
  auto access = this->access();
  if (!access->config.login || !access->verifier) {
    count("disabled");
    return reply(HubResult::failure("unsupported", "login is not configured"), std::nullopt);
  }
  if (has_nul(m.username) || has_nul(m.password)) {
    count("failed");
    return reply(HubResult::failure("login_failed", "wrong username or password"), std::nullopt);
  }
  const LoginSpec& spec = *access->config.login;
  sql.run(
      spec.sql, {m.username, m.password}, std::chrono::seconds(10),
      [this, access, reply = std::move(reply), count](pg::PgResult&& r) {
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
        const AccessConfig& granted = access->config;
        const LoginSpec& login = *granted.login;
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
        const auth::JwtOptions& jwt = granted.jwt;
        if (!jwt.issuer.empty()) token_claims["iss"] = jwt.issuer;
        if (!jwt.audience.empty()) token_claims["aud"] = jwt.audience;
        const bool hs256 = jwt.algorithm == auth::JwtAlgorithm::HS256;
        std::string token = auth::jwt_sign(jwt.algorithm, json::serialize(token_claims),
                                           hs256 ? jwt.secret : login.private_key_pem);
        auto checked = access->verifier->verify(token);
        if (!checked.ok) {
          count("error");
          return reply(HubResult::failure("login_failed", "login is misconfigured"), std::nullopt);
        }
        count("ok");
        json::object result;
        result["token"] = token;
        result["expires_in"] = login.ttl.count();
        result["claims"] = std::move(token_claims);
        reply(HubResult::success(json::serialize(result)),
              Identity{std::move(checked.claims), access->single_key_id});
      });
}

}  // namespace pgfanout::hub
