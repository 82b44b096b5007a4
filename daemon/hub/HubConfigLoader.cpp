#include <fstream>
#include <sstream>

#include "config/ChannelName.hpp"
#include "config/Fields.hpp"
#include "config/YamlReader.hpp"
#include "http/HttpsGet.hpp"
#include "hub/HubConfig.hpp"

namespace pgfanout::hub {

namespace {

// "$user", "$claim.x", "$topic" or a bare name (an argument for commands, a claim for
// on_subscribe).
bool parse_param(const std::string& text, bool bare_is_claim, ParamRef& out, std::string& error) {
  out.source = text;
  if (text == "$user" || text == "$sub") {
    out.kind = ParamRef::Kind::Subject;
    return true;
  }
  if (text == "$topic") {
    out.kind = ParamRef::Kind::Topic;
    return true;
  }
  if (text.starts_with("$claim.") && text.size() > 7) {
    out.kind = ParamRef::Kind::Claim;
    out.name = text.substr(7);
    return true;
  }
  if (text.empty() || text[0] == '$') {
    error = "unknown parameter \"" + text + "\" ($user, $claim.NAME, $topic or a name)";
    return false;
  }
  out.kind = bare_is_claim ? ParamRef::Kind::Claim : ParamRef::Kind::Arg;
  out.name = text;
  return true;
}

std::vector<ParamRef> read_params(config::MapReader& m, bool bare_is_claim) {
  std::vector<ParamRef> params;
  for (const auto& p : m.string_list("params")) {
    ParamRef ref;
    std::string error;
    if (!parse_param(p, bare_is_claim, ref, error)) {
      m.error("params", error);
      continue;
    }
    params.push_back(std::move(ref));
  }
  return params;
}

void check_placeholders(config::MapReader& m, const std::string& sql, std::size_t params) {
  // A cheap sanity check: $N beyond the parameter count is a typo PostgreSQL would report on
  // every call.
  for (std::size_t i = 0; i + 1 < sql.size(); ++i) {
    if (sql[i] != '$' || !std::isdigit(static_cast<unsigned char>(sql[i + 1]))) continue;
    std::size_t n = 0;
    std::size_t j = i + 1;
    while (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j]))) {
      n = n * 10 + static_cast<std::size_t>(sql[j] - '0');
      ++j;
    }
    if (n == 0 || n > params) {
      m.error("sql", "$" + std::to_string(n) + " has no matching entry in params");
      return;
    }
  }
}

std::string read_file(const std::string& path, const std::string& base_dir, bool& ok) {
  std::string full = path;
  if (!full.empty() && full[0] != '/' && !base_dir.empty()) full = base_dir + "/" + full;
  std::ifstream in(full, std::ios::binary);
  ok = static_cast<bool>(in);
  std::stringstream s;
  if (ok) s << in.rdbuf();
  return s.str();
}

// The login key must sign tokens that auth.jwt accepts: the right type for the algorithm, and
// the private half of public_key_file.
void check_login_key(config::MapReader& login, const auth::JwtOptions& jwt,
                     const std::string& private_key_pem) {
  std::string alg(auth::jwt_algorithm_name(jwt.algorithm));
  std::string token =
      auth::jwt_sign(jwt.algorithm, R"({"sub":"pgfanout-key-check"})", private_key_pem);
  if (token.empty()) {
    login.error("private_key_file",
                "not a PEM private key usable for " + alg +
                    (jwt.algorithm == auth::JwtAlgorithm::RS256   ? " (RSA, at least 2048 bits)"
                     : jwt.algorithm == auth::JwtAlgorithm::ES256 ? " (EC on curve P-256)"
                                                                  : " (Ed25519)"));
    return;
  }
  auth::JwtOptions check = jwt;
  check.audience.clear();
  check.issuer.clear();
  std::string error;
  auto verifier = auth::JwtVerifier::create(check, error);
  if (verifier && !verifier->verify(token).ok) {
    login.error("private_key_file", "does not match auth.jwt.public_key_file");
  }
}

std::string resolve(const std::string& path, const std::string& base_dir) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return base_dir + "/" + path;
}

// auth.jwt.jwks_file / jwks_url: a key set instead of one public key.
void load_jwks(config::MapReader& jwt, AccessConfig& hub) {
  config::read_fields(jwt, hub.jwks);
  config::check_fields(jwt, hub.jwks);
  const std::string& base = jwt.ctx().base_dir;
  std::string file = jwt.string("jwks_file");
  hub.jwks.url = jwt.string("jwks_url");
  std::string ca_file = jwt.string("jwks_ca_file");
  if (file.empty() && hub.jwks.url.empty()) {
    if (!ca_file.empty()) jwt.error("jwks_ca_file", "is only used with jwks_url");
    return;
  }
  hub.jwt.key_set = true;
  if (!file.empty() && !hub.jwks.url.empty()) {
    jwt.error("jwks_url", "give either jwks_file or jwks_url, not both");
  }
  if (jwt.has("public_key_file")) {
    jwt.error("public_key_file", "give either public_key_file or a JWKS, not both");
  }
  if (jwt.has("algorithm") && hub.jwt.algorithm != auth::JwtAlgorithm::HS256) {
    jwt.error("algorithm",
              "with a JWKS each key's type decides its algorithm; only HS256 (with `secret`) "
              "can be named");
  }
  if (!file.empty()) {
    hub.jwks.file = resolve(file, base);
    bool ok = false;
    std::string text = read_file(hub.jwks.file, {}, ok);
    auto parsed = ok ? auth::parse_jwks(text) : auth::JwksParse{};
    if (!ok) {
      jwt.error("jwks_file", "cannot read " + file);
    } else if (!parsed.set) {
      jwt.error("jwks_file", file + ": " + parsed.error);
    }
    for (const auto& s : parsed.skipped) jwt.warning("jwks_file", "key skipped: " + s);
    hub.jwt.keys = parsed.set;
  }
  if (!hub.jwks.url.empty()) {
    std::string error;
    if (!http::parse_https_url(hub.jwks.url, error)) jwt.error("jwks_url", error);
    if (!ca_file.empty()) {
      hub.jwks.ca_file = resolve(ca_file, base);
      bool ok = false;
      read_file(hub.jwks.ca_file, {}, ok);
      if (!ok) jwt.error("jwks_ca_file", "cannot read " + ca_file);
    }
  } else if (!ca_file.empty()) {
    jwt.error("jwks_ca_file", "is only used with jwks_url");
  }
}

void load_auth(config::MapReader& root, AccessConfig& hub) {
  auto auth = root.map("auth");
  if (!auth) return;
  config::read_fields(*auth, hub);
  if (auto jwt = auth->map("jwt")) {
    hub.jwt_enabled = true;
    std::string alg = jwt->string("algorithm");
    if (auto a = auth::parse_jwt_algorithm(alg)) {
      hub.jwt.algorithm = *a;
    } else {
      jwt->error("algorithm",
                 "unsupported algorithm \"" + alg + "\" (HS256, RS256, ES256 or EdDSA)");
    }
    hub.jwt.secret = jwt->string("secret");
    std::string key_file = jwt->string("public_key_file");
    hub.jwt.audience = jwt->string("audience");
    hub.jwt.issuer = jwt->string("issuer");
    hub.jwt.leeway = std::chrono::duration_cast<std::chrono::seconds>(jwt->duration("leeway"));
    load_jwks(*jwt, hub);
    if (hub.jwt.key_set) {  // the key set stands in for public_key_file
    } else if (hub.jwt.algorithm == auth::JwtAlgorithm::HS256) {
      if (!key_file.empty()) jwt->error("public_key_file", "HS256 uses `secret`, not a key file");
    } else if (key_file.empty()) {
      jwt->error("public_key_file", "RS256, ES256 and EdDSA need public_key_file");
    } else {
      bool ok = false;
      hub.jwt.public_key_pem = read_file(key_file, jwt->ctx().base_dir, ok);
      if (!ok) jwt->error("public_key_file", "cannot read " + key_file);
    }
    if (jwt->ctx().diags.ok()) {
      std::string error;
      if (!auth::JwtVerifier::create(hub.jwt, error)) {
        jwt->error(hub.jwt.algorithm == auth::JwtAlgorithm::HS256 || hub.jwt.key_set
                       ? "secret"
                       : "public_key_file",
                   error);
      }
    }
  }
  if (auto login = auth->map("login")) {
    LoginSpec spec;
    config::read_fields(*login, spec);
    check_placeholders(*login, spec.sql, 2);
    std::string key_file = login->string("private_key_file");
    if (!hub.jwt_enabled) {
      login->error_here("auth.login needs auth.jwt (its tokens are checked like any other)");
    } else if (hub.jwt.key_set && hub.jwt.secret.empty()) {
      login->error_here(
          "with a JWKS, auth.login signs HS256 tokens with auth.jwt.secret, which is not set");
    } else if (hub.jwt.algorithm == auth::JwtAlgorithm::HS256) {
      if (!key_file.empty()) {
        login->error("private_key_file", "HS256 tokens are signed with auth.jwt.secret");
      }
    } else if (key_file.empty()) {
      login->error("private_key_file",
                   "RS256, ES256 and EdDSA logins need the private key of "
                   "auth.jwt.public_key_file");
    } else {
      bool ok = false;
      spec.private_key_pem = read_file(key_file, login->ctx().base_dir, ok);
      if (!ok) {
        login->error("private_key_file", "cannot read " + key_file);
      } else if (login->ctx().diags.ok()) {
        check_login_key(*login, hub.jwt, spec.private_key_pem);
      }
    }
    config::check_fields(*login, spec);
    hub.login = std::move(spec);
  }
}

void load_topics(config::MapReader& root, AccessConfig& hub) {
  std::vector<auth::AclEntry> entries;
  root.each("topics", [&](config::MapReader& t, std::size_t) {
    auth::AclEntry e;
    TopicEntry extra;
    std::string pattern = t.string("pattern");
    std::string error;
    if (!auth::TopicPattern::parse(pattern, e.pattern, error)) t.error("pattern", error);
    for (const auto& a : t.string_list("allow")) {
      if (a == "subscribe") {
        e.subscribe = true;
      } else if (a == "publish") {
        e.publish = true;
      } else {
        t.error("allow", "unknown permission \"" + a + "\" (subscribe or publish)");
      }
    }
    e.anonymous = t.boolean("anonymous");
    if (e.anonymous && e.pattern.has_claims()) {
      t.error("anonymous", "a pattern with {claim} segments cannot be anonymous");
    }
    config::read_fields(t, extra);
    if (auto problem = config::channel_name_problem(extra.publish_channel); !problem.empty()) {
      t.error("publish_channel", std::move(problem));
    }
    if (auto os = t.map("on_subscribe")) {
      OnSubscribe on;
      config::read_fields(*os, on);
      on.params = read_params(*os, /*bare_is_claim=*/true);
      check_placeholders(*os, on.sql, on.params.size());
      extra.on_subscribe = std::move(on);
    }
    entries.push_back(std::move(e));
    hub.topics.push_back(std::move(extra));
  });
  hub.acl = auth::TopicAcl(std::move(entries));
}

void load_commands(config::MapReader& root, AccessConfig& hub) {
  auto commands = root.map("commands");
  if (!commands) return;
  for (const auto& name : commands->keys()) {
    config::MapReader c(commands->node(name), "commands.*", commands->key_path(name),
                        commands->ctx());
    if (!c.valid()) continue;
    CommandSpec spec;
    config::read_fields(c, spec);
    spec.params = read_params(c, /*bare_is_claim=*/false);
    config::check_fields(c, spec);
    check_placeholders(c, spec.sql, spec.params.size());
    if (spec.anonymous) {
      for (const auto& p : spec.params) {
        if (p.kind != ParamRef::Kind::Arg) {
          c.error("params", "an anonymous command cannot use " + p.source);
        }
      }
    }
    hub.commands.emplace(name, std::move(spec));
  }
}

void load_limits(config::MapReader& root, HubConfig& hub) {
  auto read = [&](config::MapReader& m) {
    config::read_fields(m, hub);
    config::check_fields(m, hub);
  };
  if (auto m = root.map("hub")) {
    read(*m);
  } else if (!root.has("hub")) {
    config::MapReader defaults(YAML::Node(YAML::NodeType::Map), "hub", "hub", root.ctx());
    read(defaults);
  }
}

}  // namespace

void load_access_config(config::MapReader& root, AccessConfig& out) {
  load_auth(root, out);
  load_topics(root, out);
  load_commands(root, out);
}

void load_hub_config(config::MapReader& root, HubConfig& out) {
  load_limits(root, out);
}

}  // namespace pgfanout::hub
