// JWKS end to end with keys and tokens from a real library: npm's jose makes RS256, ES256 and
// EdDSA key pairs, two key sets (the second rotates the EC key) and tokens, good and bad
// (tests/browser/jwks/fixtures.mjs); the openssl CLI makes a CA of the test's own and the
// certificate of a node HTTPS server that serves the key set (tests/browser/jwks/server.mjs,
// which counts the fetches and can answer 500 or garbage). Checked: jose's tokens in-process
// against the verifier, then over WebSocket against the real daemon with auth.jwt.jwks_url and
// jwks_ca_file — rotation picked up on an unknown kid, rate-limited; a failing server keeps the
// last good set; a wrong CA refused and counted — and jwks_file read again on SIGHUP.
// Needs node (labelled browser, like the browser tests).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include "auth/Jwks.hpp"
#include "auth/Jwt.hpp"
#include "support/TestSupport.hpp"
#include "support/WsClient.hpp"

namespace pgfanout {
namespace {

using namespace std::chrono_literals;
using test::DaemonProcess;
using test::WsClient;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path + ".tmp") << text;
  std::filesystem::rename(path + ".tmp", path);  // the server never reads half a file
}

double sample(const std::string& metrics_text, const std::string& series) {
  auto at = metrics_text.find("\n" + series + " ");
  if (at == std::string::npos) return 0;
  return std::stod(metrics_text.substr(at + series.size() + 2));
}

// The node JWKS server, as a child process.
class JwksServer {
 public:
  explicit JwksServer(const std::string& dir) : dir_(dir) {
    std::filesystem::remove(dir + "/server.out");  // the previous server's port
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = std::fopen((dir + "/server.out").c_str(), "w");
      if (f != nullptr) {
        dup2(fileno(f), 1);
        dup2(fileno(f), 2);
      }
      execlp("node", "node", PGFANOUT_SOURCE_DIR "/tests/browser/jwks/server.mjs", dir.c_str(),
             static_cast<char*>(nullptr));
      _exit(127);
    }
    test::wait_until([&] { return read_file(dir + "/server.out").starts_with("listening "); });
    std::string out = read_file(dir + "/server.out");
    if (out.starts_with("listening ")) port = std::stoi(out.substr(10));
  }
  ~JwksServer() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  // GET requests served so far.
  int requests() const {
    std::string log = read_file(dir_ + "/requests.log");
    return static_cast<int>(std::count(log.begin(), log.end(), '\n'));
  }
  void mode(const std::string& m) { write_file(dir_ + "/mode", m); }
  void serve(const std::string& jwks_file) {
    write_file(dir_ + "/current.json", read_file(jwks_file));
  }

  int port = 0;

 private:
  std::string dir_;
  pid_t pid_ = -1;
};

class Jwks : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    dir = std::filesystem::path(test::write_temp_file("jwks.marker", "")).parent_path() / "jwks";
    std::filesystem::create_directories(dir);
    std::string cmd = PGFANOUT_SOURCE_DIR "/tests/browser/jwks/make-fixtures.sh '" + dir + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    auto parsed = boost::json::parse(read_file(dir + "/tokens.json")).as_object();
    for (const auto& [name, value] : parsed) tokens[name] = std::string(value.as_string());
    db = new test::ScratchDatabase("jwks");
  }
  static void TearDownTestSuite() { delete db; }

  // A daemon whose auth.jwt is `jwt` (YAML lines indented by four spaces).
  static std::unique_ptr<DaemonProcess> daemon(const std::string& jwt) {
    auto config = test::write_temp_file(
        "jwks.yaml", "postgres:\n  dsn: \"" + db->dsn() +
                         "\"\nhttp: {listen: 127.0.0.1:0}\n"
                         "auth:\n  jwt:\n    audience: chat\n" +
                         jwt +
                         "topics:\n  - pattern: \"user:{sub}\"\n"
                         "commands:\n  whoami:\n    sql: \"SELECT $1::text AS sub\"\n"
                         "    params: [$user]\n"
                         "rules:\n  - name: noop\n    channel: noop\n    actions:\n"
                         "      - log: \"noop\"\n");
    auto d = std::make_unique<DaemonProcess>(std::vector<std::string>{"run", "--config", config});
    EXPECT_TRUE(d->wait_for_output("ready")) << d->output();
    return d;
  }

  // The `sub` the daemon sees for `token` over WebSocket, or the HTTP status of the refusal.
  static std::string who(int port, const std::string& token) {
    WsClient c(port, "/ws", {{"Authorization", "Bearer " + token}});
    if (!c.open()) return "refused " + std::to_string(c.http_status());
    auto r = c.request(R"({"type":"call","command":"whoami"})").value_or("(no reply)");
    auto at = r.find(R"("sub":")");
    return at == std::string::npos ? r : r.substr(at + 7, r.find('"', at + 7) - at - 7);
  }

  static double metric(int port, const std::string& series) {
    return sample(test::http_get(port, "/metrics").body, series);
  }

  static std::string dir;
  static std::map<std::string, std::string> tokens;
  static test::ScratchDatabase* db;
};

std::string Jwks::dir;
std::map<std::string, std::string> Jwks::tokens;
test::ScratchDatabase* Jwks::db = nullptr;

TEST_F(Jwks, JoseTokensInProcess) {
  auto set = auth::parse_jwks(read_file(dir + "/jwks1.json"));
  ASSERT_TRUE(set.set) << set.error;
  EXPECT_TRUE(set.skipped.empty());
  auth::JwtOptions o;
  o.key_set = true;
  o.keys = set.set;
  o.audience = "chat";
  std::string error;
  auto v = auth::JwtVerifier::create(o, error);
  ASSERT_TRUE(v) << error;
  for (auto [name, kid, sub] : {std::tuple{"rs256", "rsa", "user-rs"},
                                {"es256", "ec", "user-ec"},
                                {"eddsa", "ed", "user-ed"}}) {
    SCOPED_TRACE(name);
    auto r = v->verify(tokens.at(name));
    EXPECT_TRUE(r.ok) << r.reason << ": " << r.message;
    EXPECT_EQ(r.kid, kid);
    EXPECT_EQ(r.claims["sub"], sub);
    EXPECT_EQ(r.claims["room"], "lobby");
  }
  for (auto [name, reason] : {std::pair{"expired", "expired"},
                              {"unknown_kid", "unknown_key"},
                              {"no_kid", "unknown_key"},
                              {"forged", "signature"},
                              {"rs256_as_ec", "algorithm"},
                              {"hs256_with_public_key", "algorithm"},
                              {"eddsa_as_rsa", "algorithm"},
                              {"none", "algorithm"},
                              {"rotated", "unknown_key"}}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(v->verify(tokens.at(name)).reason, reason);
  }
  auto rotated = auth::parse_jwks(read_file(dir + "/jwks2.json"));
  ASSERT_TRUE(rotated.set) << rotated.error;
  EXPECT_EQ(v->replace_keys(rotated.set), std::vector<std::string>{"ec"});
  EXPECT_TRUE(v->verify(tokens.at("rotated")).ok);
  EXPECT_EQ(v->verify(tokens.at("es256")).reason, "unknown_key");
}

TEST_F(Jwks, FetchedOverHttpsRotatedAndKeptWhenTheServerFails) {
  JwksServer server(dir);
  ASSERT_GT(server.port, 0);
  server.serve(dir + "/jwks1.json");
  server.mode("ok");
  auto d = daemon("    jwks_url: \"https://localhost:" + std::to_string(server.port) +
                  "/jwks.json\"\n    jwks_ca_file: \"" + dir +
                  "/ca.crt\"\n    jwks_min_refresh: 2s\n    jwks_refresh: 1h\n");
  int port = d->http_port();
  ASSERT_TRUE(test::wait_until([&] { return metric(port, "pgfanout_jwks_keys") == 3; }))
      << d->output();
  EXPECT_EQ(test::http_get(port, "/healthz").status, 200);
  EXPECT_EQ(who(port, tokens.at("rs256")), "user-rs");
  EXPECT_EQ(who(port, tokens.at("es256")), "user-ec");
  EXPECT_EQ(who(port, tokens.at("eddsa")), "user-ed");
  for (const char* bad : {"expired", "forged", "rs256_as_ec", "hs256_with_public_key",
                          "eddsa_as_rsa", "none", "no_kid"}) {
    EXPECT_EQ(who(port, tokens.at(bad)), "refused 401") << bad;
  }
  EXPECT_EQ(metric(port, R"(pgfanout_hub_auth_total{result="algorithm"})"), 4);

  // Rotation: the new kid is refused once, fetches the set again, and then gets in; the removed
  // kid is refused from then on.
  std::this_thread::sleep_for(2100ms);  // past jwks_min_refresh since the start-up fetch
  server.serve(dir + "/jwks2.json");
  int before = server.requests();
  EXPECT_EQ(who(port, tokens.at("rotated")), "refused 401");
  ASSERT_TRUE(test::wait_until([&] { return d->output_contains("removed: \"ec\""); }))
      << d->output();
  EXPECT_EQ(server.requests(), before + 1);
  EXPECT_EQ(who(port, tokens.at("rotated")), "user-ec2");
  EXPECT_EQ(who(port, tokens.at("es256")), "refused 401");
  // Unknown kids within jwks_min_refresh of that fetch start no other.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(who(port, tokens.at("unknown_kid")), "refused 401");
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(server.requests(), before + 1);
  EXPECT_GE(metric(port, R"(pgfanout_hub_auth_total{result="unknown_key"})"), 7);

  // A server answering 500, then garbage: counted, and the last good set stays.
  for (auto [mode, result] : {std::pair{"500", "status"}, {"garbage", "invalid"}}) {
    SCOPED_TRACE(mode);
    server.mode(mode);
    std::this_thread::sleep_for(2100ms);
    std::string series = std::string(R"(pgfanout_jwks_refresh_total{result=")") + result + "\"}";
    EXPECT_EQ(who(port, tokens.at("unknown_kid")), "refused 401");
    ASSERT_TRUE(test::wait_until([&] { return metric(port, series) == 1; })) << d->output();
    EXPECT_EQ(who(port, tokens.at("rotated")), "user-ec2");
    EXPECT_EQ(who(port, tokens.at("rs256")), "user-rs");
    EXPECT_EQ(metric(port, "pgfanout_jwks_keys"), 3);
  }
  EXPECT_TRUE(d->output_contains("keeping the last good set (3 key(s))")) << d->output();
  EXPECT_EQ(test::http_get(port, "/healthz").status, 200);  // it has keys
  EXPECT_EQ(metric(port, R"(pgfanout_jwks_refresh_total{result="ok"})"), 2);
}

TEST_F(Jwks, AServerTheCaDidNotSignIsRefused) {
  JwksServer server(dir);
  ASSERT_GT(server.port, 0);
  server.serve(dir + "/jwks1.json");
  server.mode("ok");
  auto d = daemon("    jwks_url: \"https://localhost:" + std::to_string(server.port) +
                  "/jwks.json\"\n    jwks_ca_file: \"" + dir + "/other-ca.crt\"\n");
  int port = d->http_port();
  ASSERT_TRUE(test::wait_until([&] {
    return metric(port, R"(pgfanout_jwks_refresh_total{result="tls"})") == 1;
  })) << d->output();
  EXPECT_TRUE(d->output_contains("certificate verify failed")) << d->output();
  EXPECT_EQ(who(port, tokens.at("rs256")), "refused 401");
  EXPECT_EQ(metric(port, R"(pgfanout_hub_auth_total{result="unknown_key"})"), 1);
  auto health = test::http_get(port, "/healthz");
  EXPECT_EQ(health.status, 503);
  EXPECT_NE(health.body.find(R"("jwks":{"ok":false,"detail":"no keys yet: tls handshake)"),
            std::string::npos)
      << health.body;
  EXPECT_EQ(metric(port, "pgfanout_jwks_keys"), 0);
}

TEST_F(Jwks, AFileIsReadAgainOnSighup) {
  std::string file = dir + "/file-keys.json";
  write_file(file, read_file(dir + "/jwks1.json"));
  auto d = daemon("    jwks_file: \"" + file + "\"\n");
  int port = d->http_port();
  EXPECT_EQ(who(port, tokens.at("eddsa")), "user-ed");
  EXPECT_EQ(who(port, tokens.at("rotated")), "refused 401");
  // Connections open across the reload: the one verified with the key that goes ("ec") is closed
  // with a reason; the one of a key that stays ("ed") keeps working.
  WsClient with_ec(port, "/ws", {{"Authorization", "Bearer " + tokens.at("es256")}});
  WsClient with_ed(port, "/ws", {{"Authorization", "Bearer " + tokens.at("eddsa")}});
  ASSERT_TRUE(with_ec.open() && with_ed.open());
  write_file(file, read_file(dir + "/jwks2.json"));
  d->signal(SIGHUP);
  ASSERT_TRUE(d->wait_for_output("removed: \"ec\"")) << d->output();
  while (with_ec.receive(5s)) {
  }
  EXPECT_TRUE(with_ec.closed());
  EXPECT_EQ(with_ec.close_code(), 1008);
  auto still = with_ed.request(R"({"type":"call","command":"whoami"})");
  ASSERT_TRUE(still) << d->output();
  EXPECT_NE(still->find("user-ed"), std::string::npos) << *still;
  EXPECT_EQ(metric(port, R"(pgfanout_hub_access_revoked_total{what="connection"})"), 1);
  EXPECT_EQ(who(port, tokens.at("rotated")), "user-ec2");
  EXPECT_EQ(who(port, tokens.at("es256")), "refused 401");
  write_file(file, "{}");  // a bad file fails the reload and keeps the keys
  d->signal(SIGHUP);
  ASSERT_TRUE(d->wait_for_output("reload failed")) << d->output();
  EXPECT_TRUE(d->output_contains("auth.jwt.jwks_file: " + file + ": not a JWKS")) << d->output();
  EXPECT_EQ(who(port, tokens.at("rotated")), "user-ec2");
}

}  // namespace
}  // namespace pgfanout
