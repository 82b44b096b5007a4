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

}  // namespace pgfanout::hub
