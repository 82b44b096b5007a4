// Config loading: table-driven error cases with exact positions, env expansion, secrets from
// files, defaults, hostile YAML (tabs, duplicate keys, wrong types) and a very large rules file.
#include <fstream>
#include <map>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <gtest/gtest.h>

#include "app/Config.hpp"
#include "config/ConfigSchema.hpp"
#include "config/EnvExpand.hpp"
#include "config/YamlReader.hpp"
#include "rules/RuleSet.hpp"
#include "support/TestSupport.hpp"

namespace pgfanout::config {
namespace {

using app::Config;
using app::load_config;
using app::load_config_text;
using app::LoadResult;

EnvLookup fake_env(std::map<std::string, std::string> vars) {
  return [vars](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

LoadResult load(const std::string& text, std::map<std::string, std::string> env = {}) {
  return load_config_text(text, "test.yaml", fake_env(std::move(env)));
}

std::vector<std::string> messages(const LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.to_string());
  return out;
}

const char* kValid = R"(version: 1
postgres:
  dsn: host=db port=5432 dbname=app
rules:
  - name: profile
    channel: users_changed
    when: {op: [UPDATE, DELETE]}
    actions:
      - log: "user {id}"
)";

TEST(ConfigLoader, ValidConfigLoadsWithDefaults) {
  auto r = load(kValid);
  ASSERT_TRUE(r.config) << ::testing::PrintToString(messages(r));
  EXPECT_EQ(r.config->postgres.dsn, "host=db port=5432 dbname=app");
  EXPECT_EQ(r.config->postgres.heartbeat_interval, std::chrono::seconds(5));
  EXPECT_EQ(r.config->postgres.reconnect_min, std::chrono::milliseconds(100));
  EXPECT_EQ(r.config->postgres.reconnect_max, std::chrono::seconds(30));
  EXPECT_EQ(r.config->log_level, "info");
  EXPECT_FALSE(r.config->consumer.empty());
  ASSERT_EQ(r.config->rules->rules().size(), 1u);
  const auto& rule = *r.config->rules->rules()[0];
  EXPECT_EQ(rule.name, "profile");
  EXPECT_EQ(rule.when.ops, (std::vector<std::string>{"UPDATE", "DELETE"}));
  EXPECT_EQ(r.config->rules->channels(), std::vector<std::string>{"users_changed"});
}

struct ErrorCase {
  const char* name;
  const char* yaml;
  std::vector<std::string> expected;  // every error, in order, exactly
};

class ConfigErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrors, ReportsEveryErrorWithPosition) {
  const auto& c = GetParam();
  auto r = load(c.yaml);
  EXPECT_FALSE(r.config);
  EXPECT_EQ(messages(r), c.expected);
}

const ErrorCase kErrorCases[] = {
    {"unknown_top_level_key_with_hint",
     "postgres: {dsn: host=x}\nrulez: []\nrules: [{name: a, channel: c, actions: [{log: x}]}]\n",
     {"test.yaml:2:1: unknown key \"rulez\" (did you mean \"rules\"?)"}},
    {"unknown_nested_key_with_hint",
     "postgres:\n  dsn: host=x\n  heartbeat_intervl: 5s\nrules: [{name: a, channel: c, actions: "
     "[{log: "
     "x}]}]\n",
     {"test.yaml:3:3: postgres: unknown key \"heartbeat_intervl\" (did you mean "
      "\"heartbeat_interval\"?)"}},
    {"missing_rules_and_postgres",
     "version: 1\n",
     {"test.yaml:1:1: postgres: \"postgres\" is required",
      "test.yaml:1:1: rules: \"rules\" is required"}},
    {"wrong_types",
     "version: two\npostgres:\n  dsn: [a, b]\n  heartbeat_interval: 5\nrules:\n  - name: a\n    "
     "channel: c\n    durable: yes\n    actions: [{log: x}]\n",
     {"test.yaml:1:10: version: expected an integer, found \"two\"",
      "test.yaml:3:8: postgres.dsn: expected a string, found a list",
      "test.yaml:4:23: postgres.heartbeat_interval: expected a duration such as 500ms, 5s, 2m or "
      "1h, found \"5\"",
      "test.yaml:8:14: rules[0].durable: expected true or false, found \"yes\""}},
    {"duplicate_keys",
     "postgres: {dsn: host=x}\nrules:\n  - name: a\n    channel: c\n    name: b\n    actions: "
     "[{log: "
     "x}]\n",
     {"test.yaml:5:5: rules[0].name: duplicate key \"name\""}},
    {"duplicate_rule_names_and_bad_channel",
     "postgres: {dsn: host=x}\nrules:\n  - {name: a, channel: c, actions: [{log: x}]}\n  - {name: "
     "a, "
     "channel: pgfanout.x, actions: [{log: x}]}\n",
     {"test.yaml:4:12: rules[1].name: duplicate rule name \"a\"",
      "test.yaml:4:24: rules[1].channel: channels starting with \"pgfanout.\" are reserved"}},
    {"bad_template_and_unknown_action",
     "postgres: {dsn: host=x}\nrules:\n  - name: a\n    channel: c\n    actions:\n      - log: "
     "\"{id\"\n      - evcit: [x]\n",
     {"test.yaml:6:14: rules[0].actions[0].log: bad template: unterminated \"{\" at offset 0 "
      "(write {{ for a literal brace)",
      "test.yaml:7:9: rules[0].actions[1]: unknown key \"evcit\" (did you mean \"evict\"?)"}},
    {"modifier_that_does_not_apply",
     "postgres: {dsn: host=x}\nrules:\n  - name: a\n    channel: c\n    actions:\n      - log: x\n"
     "        again_after: 1s\n        target: cache\n",
     {"test.yaml:7:22: rules[0].actions[0].again_after: \"again_after\" does not apply to a log "
      "action",
      "test.yaml:8:17: rules[0].actions[0].target: \"target\" does not apply to a log action"}},
    {"missing_env_var",
     "postgres: {dsn: \"${PG_DSN}\"}\nrules: [{name: a, channel: c, actions: [{log: x}]}]\n",
     {"test.yaml:1:17: postgres.dsn: environment variable PG_DSN is not set (use "
      "${PG_DSN:-default} to give a default)"}},
    {"tab_indentation",
     "postgres:\n\tdsn: host=x\n",
     {"test.yaml:2:5: YAML syntax error: illegal map value (tabs cannot indent YAML; use spaces)"}},
    {"not_a_mapping",
     "- a\n- b\n",
     {"test.yaml:1:1: a config file must be a YAML mapping with at least postgres: and rules:"}},
    {"bad_when_op_and_empty_actions",
     "postgres: {dsn: host=x}\nrules:\n  - name: a\n    channel: c\n    when: {op: [UPSERT]}\n    "
     "actions: []\n",
     {"test.yaml:5:16: rules[0].when.op: unknown op \"UPSERT\" (INSERT, UPDATE, DELETE or "
      "TRUNCATE)",
      "test.yaml:6:14: rules[0].actions: a rule needs at least one action"}},
    {"heartbeat_timeout_not_longer",
     "postgres: {dsn: host=x, heartbeat_interval: 10s, heartbeat_timeout: 5s}\nrules: [{name: a, "
     "channel: c, actions: [{log: x}]}]\n",
     {"test.yaml:1:69: postgres.heartbeat_timeout: must be longer than heartbeat_interval"}},
};

INSTANTIATE_TEST_SUITE_P(Table, ConfigErrors, ::testing::ValuesIn(kErrorCases),
                         [](const auto& p) { return std::string(p.param.name); });

TEST(ConfigLoader, InvalidDsnIsReported) {
  auto r = load(
      "postgres: {dsn: \"host=x bogus=1\"}\nrules: [{name: a, channel: c, actions: [{log: x}]}]\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 1);
  EXPECT_NE(
      r.errors[0].message.find("invalid connection string: invalid connection option \"bogus\""),
      std::string::npos)
      << r.errors[0].message;
}

TEST(ConfigLoader, EnvDefaultsExpand) {
  auto r = load(
      "postgres: {dsn: \"${PG_DSN:-host=fallback}\"}\nrules: [{name: a, channel: \"${CH}\", "
      "actions: [{log: x}]}]\n",
      {{"CH", "orders_changed"}});
  ASSERT_TRUE(r.config) << ::testing::PrintToString(messages(r));
  EXPECT_EQ(r.config->postgres.dsn, "host=fallback");
  EXPECT_EQ(r.config->rules->channels(), std::vector<std::string>{"orders_changed"});
}

TEST(ConfigLoader, EnvCannotInjectStructure) {
  // The value is expanded after parsing, so YAML syntax in a variable stays a plain string.
  auto r =
      load("postgres: {dsn: host=x}\nrules: [{name: a, channel: \"${V}\", actions: [{log: x}]}]\n",
           {{"V", "x}\nrules: []"}});
  ASSERT_TRUE(r.config) << ::testing::PrintToString(messages(r));
  EXPECT_EQ(r.config->rules->channels(), std::vector<std::string>{"x}\nrules: []"});
}

TEST(ConfigLoader, SecretFromFile) {
  auto secret = test::write_temp_file("pw", "s3cret\n");
  auto r = load("postgres:\n  dsn: host=x\n  password_file: " + secret +
                "\nrules: [{name: a, channel: c, actions: [{log: x}]}]\n");
  ASSERT_TRUE(r.config) << ::testing::PrintToString(messages(r));
  EXPECT_EQ(r.config->postgres.password, "s3cret");
}

TEST(ConfigLoader, SecretFileMissingAndBothGiven) {
  auto r = load(
      "postgres:\n  dsn: host=x\n  password: a\n  password_file: /nonexistent/pw\nrules: [{name: "
      "a, channel: c, actions: [{log: x}]}]\n");
  EXPECT_EQ(messages(r), std::vector<std::string>{
                             "test.yaml:4:18: postgres.password_file: give either \"password\" or "
                             "\"password_file\", not both"});
  r = load(
      "postgres:\n  dsn: host=x\n  password_file: /nonexistent/pw\nrules: [{name: a, channel: c, "
      "actions: [{log: x}]}]\n");
  EXPECT_EQ(messages(r), std::vector<std::string>{"test.yaml:3:18: postgres.password_file: cannot "
                                                  "read secret file \"/nonexistent/pw\""});
}

// Writes the private or the public half of `key` to a PEM file; returns its path.
std::string pem_file(EVP_PKEY* key, bool private_half) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (private_half) {
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  } else {
    PEM_write_bio_PUBKEY(bio, key);
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return test::write_temp_file(private_half ? "private.pem" : "public.pem", text);
}

TEST(ConfigLoader, LoginSigningKeyMatchesTheJwtAlgorithmAndKey) {
  EVP_PKEY* ec = EVP_EC_gen("P-256");
  EVP_PKEY* other_ec = EVP_EC_gen("P-256");
  EVP_PKEY* rsa = EVP_RSA_gen(2048);
  const std::string ec_public = pem_file(ec, false), ec_private = pem_file(ec, true),
                    other_private = pem_file(other_ec, true), rsa_private = pem_file(rsa, true);
  EVP_PKEY_free(ec);
  EVP_PKEY_free(other_ec);
  EVP_PKEY_free(rsa);
  auto with = [](const std::string& jwt, const std::string& login_key) {
    return load(
        "postgres: {dsn: host=x}\nrules: [{name: a, channel: c, actions: [{log: x}]}]\n"
        "auth:\n  jwt: {" +
        jwt + "}\n  login:\n    sql: \"SELECT 1 AS user_id WHERE $1 = $2\"\n" +
        (login_key.empty() ? "" : "    private_key_file: " + login_key + "\n"));
  };
  auto error_of = [](const LoadResult& r) {
    return r.errors.size() == 1 ? r.errors[0].to_string() : ::testing::PrintToString(messages(r));
  };
  const std::string es256 = "algorithm: ES256, public_key_file: " + ec_public;
  auto ok = with(es256, ec_private);
  ASSERT_TRUE(ok.config) << ::testing::PrintToString(messages(ok));
  EXPECT_NE(ok.config->access.login->private_key_pem.find("PRIVATE KEY"), std::string::npos);

  EXPECT_NE(error_of(with(es256, ""))
                .find("auth.login.private_key_file: RS256, ES256 and EdDSA logins "
                      "need the private key of auth.jwt.public_key_file"),
            std::string::npos);
  EXPECT_NE(error_of(with(es256, other_private))
                .find("auth.login.private_key_file: does not match auth.jwt.public_key_file"),
            std::string::npos);
  EXPECT_NE(error_of(with(es256, rsa_private))
                .find("not a PEM private key usable for ES256 (EC on curve P-256)"),
            std::string::npos);
  EXPECT_NE(error_of(with(es256, "/nonexistent/key.pem")).find("cannot read /nonexistent/key.pem"),
            std::string::npos);
  EXPECT_NE(error_of(with("secret: 0123456789abcdef0123456789abcdef-secret", ec_private))
                .find("HS256 tokens are signed with auth.jwt.secret"),
            std::string::npos);
  auto hs256 = with("secret: 0123456789abcdef0123456789abcdef-secret", "");
  EXPECT_TRUE(hs256.config) << ::testing::PrintToString(messages(hs256));
}

TEST(ConfigLoader, NonSecretKeysDoNotTakeFiles) {
  auto r = load(
      "postgres:\n  dsn: host=x\n  connect_timeout_file: /x\nrules: [{name: a, channel: c, "
      "actions: [{log: x}]}]\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].message.find("unknown key \"connect_timeout_file\""), std::string::npos);
}

TEST(ConfigLoader, WatchEntries) {
  auto r = load(
      "postgres: {dsn: host=x}\nwatch:\n  - table: public.users\n    columns: [id, username]\n    "
      "ops: [insert, UPDATE]\n    durable: true\nrules: [{name: a, channel: c, actions: [{log: "
      "x}]}]\n");
  ASSERT_TRUE(r.config) << ::testing::PrintToString(messages(r));
  ASSERT_EQ(r.config->watch.size(), 1u);
  const auto& w = r.config->watch[0];
  EXPECT_EQ(w.table, "public.users");
  EXPECT_EQ(w.columns, (std::vector<std::string>{"id", "username"}));
  EXPECT_EQ(w.ops, (std::vector<std::string>{"INSERT", "UPDATE"}));
  EXPECT_TRUE(w.durable);
  EXPECT_FALSE(w.per_statement);
}

TEST(ConfigLoader, WatchDefaultOpsAreAllThree) {
  auto r = load(
      "postgres: {dsn: host=x}\nwatch: [{table: t}]\nrules: [{name: a, channel: c, actions: [{log: "
      "x}]}]\n");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->watch[0].ops, (std::vector<std::string>{"INSERT", "UPDATE", "DELETE"}));
}

TEST(ConfigLoader, WalSectionAndViaWal) {
  const std::string rules = "rules: [{name: a, channel: c, actions: [{log: x}]}]\n";
  // Without a wal: section and without `via: wal`, the WAL source does not run.
  auto off = load("postgres: {dsn: host=x}\nwatch: [{table: t}]\n" + rules);
  ASSERT_TRUE(off.config);
  EXPECT_FALSE(off.config->wal.enabled);
  EXPECT_EQ(off.config->watch[0].via, "notify");
  // `via: wal` turns it on with the default names.
  auto on = load("postgres: {dsn: host=x}\nwatch: [{table: t, via: wal}]\n" + rules);
  ASSERT_TRUE(on.config) << ::testing::PrintToString(messages(on));
  EXPECT_TRUE(on.config->wal.enabled);
  EXPECT_EQ(on.config->wal.slot, "pgfanout");
  EXPECT_EQ(on.config->wal.publication, "pgfanout");
  auto named = load("postgres: {dsn: host=x}\nwal: {slot: app_1, publication: Pub}\n" + rules);
  ASSERT_TRUE(named.config);
  EXPECT_TRUE(named.config->wal.enabled);
  EXPECT_EQ(named.config->wal.slot, "app_1");
  EXPECT_EQ(named.config->wal.publication, "Pub");
}

TEST(ConfigLoader, WalErrorsArePositioned) {
  const std::string rules = "rules: [{name: a, channel: c, actions: [{log: x}]}]\n";
  struct Case {
    std::string yaml, message;
  } cases[] = {
      {"wal: {slot: Bad-Name}\n", "test.yaml:2:13: wal.slot: a slot name is 1 to 63"},
      {"watch: [{table: t, via: kafka}]\n",
       "test.yaml:2:25: watch[0].via: unknown source \"kafka\""},
      {"watch: [{table: t, via: wal, durable: true}]\n",
       "watch[0].durable: applies to `via: notify` only"},
      {"watch: [{table: t, via: wal, per_statement: true}]\n",
       "watch[0].per_statement: applies to `via: notify` only"},
  };
  for (const auto& c : cases) {
    auto r = load("postgres: {dsn: host=x}\n" + c.yaml + rules);
    ASSERT_FALSE(r.config) << c.yaml;
    ASSERT_EQ(r.errors.size(), 1u) << ::testing::PrintToString(messages(r));
    EXPECT_NE(r.errors[0].to_string().find(c.message), std::string::npos)
        << r.errors[0].to_string();
  }
}

TEST(ConfigLoader, FiftyThousandLineRulesFile) {
  std::string text = "postgres: {dsn: host=x}\nrules:\n";
  int lines = 2;
  int n = 0;
  while (lines < 50'000) {
    text += "  - name: rule" + std::to_string(n) + "\n    channel: ch" + std::to_string(n % 500) +
            "\n    when: {op: [UPDATE]}\n    actions:\n      - log: \"row {id} of {table}\"\n";
    lines += 5;
    ++n;
  }
  auto r = load(text);
  ASSERT_TRUE(r.config) << ::testing::PrintToString(messages(r));
  EXPECT_EQ(r.config->rules->rules().size(), static_cast<std::size_t>(n));
  EXPECT_EQ(r.config->rules->channels().size(), 500u);
}

TEST(ConfigLoader, AliasesThatShareAnActionListLoad) {
  auto r = load(
      "postgres: {dsn: host=x}\nrules:\n"
      "  - {name: a, channel: a, actions: &acts [{log: \"{id}\"}, {log: x}]}\n"
      "  - {name: b, channel: b, actions: *acts}\n");
  ASSERT_TRUE(r.config) << ::testing::PrintToString(messages(r));
  EXPECT_EQ(r.config->rules->rules().size(), 2u);
}

TEST(ConfigLoader, AliasBombIsRefusedWithItsPosition) {
  // 300^3 evict keys through aliases, in 6 KB: minutes and gigabytes if the reader walked them.
  auto list = [](const std::string& item) {
    std::string l = "[";
    for (int i = 0; i < 300; ++i) l += std::string(i ? "," : "") + item;
    return l + "]";
  };
  std::string text = "postgres: {dsn: host=x}\nx-keys: &keys " + list("k") +
                     "\nx-act: &act {evict: *keys}\nx-acts: &acts " + list("*act") +
                     "\nrules: " + list("{name: r, channel: c, actions: *acts}") + "\n";
  auto started = std::chrono::steady_clock::now();
  auto r = load(text);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  ASSERT_EQ(r.errors.size(), 1u) << ::testing::PrintToString(messages(r));
  EXPECT_NE(r.errors[0].message.find("through YAML aliases"), std::string::npos);
  EXPECT_GE(r.errors[0].line, 1);
  // A self-referencing alias expands forever: refused the same way.
  auto self = load("postgres: {dsn: host=x}\nrules: &r\n  - {name: r, channel: c, actions: *r}\n");
  ASSERT_EQ(self.errors.size(), 1u) << ::testing::PrintToString(messages(self));
  EXPECT_NE(self.errors[0].message.find("through YAML aliases"), std::string::npos);
}

TEST(ConfigLoader, ChannelWithANulByteIsRefused) {
  auto r = load(
      "postgres: {dsn: host=x}\nrules:\n  - {name: r, channel: \"a\\0b\", actions: [{log: x}]}\n");
  ASSERT_EQ(r.errors.size(), 1u) << ::testing::PrintToString(messages(r));
  EXPECT_NE(r.errors[0].message.find("NUL"), std::string::npos);
}

// Every key that names a PostgreSQL channel follows the rules[].channel rule.
TEST(ConfigLoader, WatchChannelThatPostgresCannotUseIsRefused) {
  const std::string head =
      "postgres: {dsn: host=x}\nrules: [{name: a, channel: c, actions: "
      "[{log: x}]}]\nwatch:\n  - table: t\n    channel: ";
  const std::pair<std::string, std::string> cases[] = {
      {"\"a\\0b\"", "NUL"},
      {"\"" + std::string(64, 'w') + "\"", "at most 63 bytes"},
      {"\"\"", "cannot be empty"},
      {"pgfanout.mine", "reserved"},
  };
  for (const auto& [value, why] : cases) {
    SCOPED_TRACE(value);
    auto r = load(head + value + "\n");
    EXPECT_FALSE(r.config);
    ASSERT_EQ(r.errors.size(), 1u) << ::testing::PrintToString(messages(r));
    EXPECT_EQ(r.errors[0].path, "watch[0].channel");
    EXPECT_NE(r.errors[0].message.find(why), std::string::npos) << r.errors[0].message;
  }
  // Names that need quoting are fine, and so is the default (<table>_changed).
  auto quoted = load(head + "\"Mixed Case; \\\"quoted\\\"\"\n  - table: u\n");
  EXPECT_TRUE(quoted.config) << ::testing::PrintToString(messages(quoted));
}

TEST(ConfigLoader, PublishChannelThatPostgresCannotUseIsRefused) {
  const std::string head =
      "postgres: {dsn: host=x}\nrules: [{name: a, channel: c, actions: [{log: x}]}]\n"
      "topics:\n  - pattern: chat\n    allow: [subscribe, publish]\n    publish_channel: ";
  const std::pair<std::string, std::string> cases[] = {
      {"\"a\\0b\"", "NUL"},
      {"\"" + std::string(64, 'p') + "\"", "at most 63 bytes"},
      {"\"\"", "cannot be empty"},
      {"pgfanout.publish", "reserved"},
  };
  for (const auto& [value, why] : cases) {
    SCOPED_TRACE(value);
    auto r = load(head + value + "\n");
    EXPECT_FALSE(r.config);
    ASSERT_EQ(r.errors.size(), 1u) << ::testing::PrintToString(messages(r));
    EXPECT_EQ(r.errors[0].path, "topics[0].publish_channel");
    EXPECT_NE(r.errors[0].message.find(why), std::string::npos) << r.errors[0].message;
  }
  auto fine = load(head + "\"Chat Publishes\"\n");
  EXPECT_TRUE(fine.config) << ::testing::PrintToString(messages(fine));
}

TEST(ConfigLoader, ErrorsInLargeFileKeepTheirLine) {
  std::string text = "postgres: {dsn: host=x}\nrules:\n";
  for (int i = 0; i < 1000; ++i) {
    text += "  - {name: r" + std::to_string(i) + ", channel: c, actions: [{log: x}]}\n";
  }
  text += "  - {name: bad, channel: c, actions: [{log: x}], oops: 1}\n";
  auto r = load(text);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 1003);
  EXPECT_EQ(r.errors[0].column, 50);
}

TEST(ConfigLoader, MissingFile) {
  auto r = load_config("/nonexistent/pgfanout.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(), "/nonexistent/pgfanout.yaml:1:1: cannot open config file");
}

// ---- env expansion

TEST(EnvExpand, Cases) {
  auto env = fake_env({{"A", "1"}, {"EMPTY", ""}});
  EXPECT_EQ(expand_env("x${A}y", env).value, "x1y");
  EXPECT_EQ(expand_env("${EMPTY:-d}", env).value, "d");
  EXPECT_EQ(expand_env("${NOPE:-d:e}", env).value, "d:e");
  EXPECT_EQ(expand_env("$${A}", env).value, "${A}");
  EXPECT_EQ(expand_env("$1 and $", env).value, "$1 and $");
  EXPECT_EQ(expand_env("{id}", env).value, "{id}");
  EXPECT_NE(expand_env("${NOPE}", env).error.find("NOPE is not set"), std::string::npos);
  EXPECT_NE(expand_env("${A", env).error.find("unterminated"), std::string::npos);
  EXPECT_NE(expand_env("${1X}", env).error.find("invalid environment variable name"),
            std::string::npos);
}

TEST(Units, DurationsAndSizes) {
  EXPECT_EQ(parse_duration("500ms"), std::chrono::milliseconds(500));
  EXPECT_EQ(parse_duration("1.5s"), std::chrono::milliseconds(1500));
  EXPECT_EQ(parse_duration("2m"), std::chrono::minutes(2));
  EXPECT_EQ(parse_duration("1h"), std::chrono::hours(1));
  EXPECT_FALSE(parse_duration("5"));
  EXPECT_FALSE(parse_duration("ms"));
  EXPECT_FALSE(parse_duration("-1s"));
  EXPECT_EQ(parse_size("8000"), 8000u);
  EXPECT_EQ(parse_size("64KiB"), 65536u);
  EXPECT_EQ(parse_size("1MB"), 1000000u);
  EXPECT_FALSE(parse_size("1 MB"));
  EXPECT_FALSE(parse_size("99999999999999999999GiB"));
}

// ---- schema and its generated reference

TEST(ConfigSchema, EveryKeyHasADescriptionAndAParent) {
  for (const auto& k : app::config_schema().keys()) {
    EXPECT_FALSE(k.description.empty()) << k.path;
    std::string path(k.path);
    auto dot = path.rfind('.');
    if (dot == std::string::npos) continue;
    std::string parent = path.substr(0, dot);
    if (parent.ends_with("[]")) parent.resize(parent.size() - 2);
    EXPECT_NE(app::config_schema().find(parent), nullptr) << "parent of " << k.path;
  }
}

TEST(ConfigSchema, DocsConfigurationMdIsGeneratedFromTheSchema) {
  std::ifstream in(std::string(PGFANOUT_SOURCE_DIR) + "/docs/configuration.md");
  ASSERT_TRUE(in) << "docs/configuration.md is missing: run `make docs`";
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_EQ(s.str(), app::config_schema().reference_markdown())
      << "docs/configuration.md is out of date: run `make docs`";
}

}  // namespace
}  // namespace pgfanout::config
