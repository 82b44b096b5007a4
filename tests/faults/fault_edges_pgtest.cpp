// Fault scenario 8, bad input at the edges, table-driven: hostile HTTP requests, WebSocket
// frames, tokens, command arguments against a running daemon, and hostile YAML against
// `pgfanout check`. Each is answered with a clear error (and counted where a metric exists),
// and the daemon keeps serving: /healthz and a good subscribe work after every case.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>

#include <gtest/gtest.h>

#include "faults/FaultSupport.hpp"
#include "support/WsClient.hpp"

namespace pgfanout::test {
namespace {

using namespace std::chrono_literals;

// Sends `bytes` on a new connection and returns what came back until the peer closed (or 3 s).
std::string raw_exchange(int port, const std::string& bytes) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "";
  }
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

// Sum of the series of `family` whose labels contain `filter`.
double family_sum(const std::string& text, const std::string& family, const std::string& filter) {
  double sum = 0;
  std::size_t at = 0;
  while ((at = text.find("\n" + family + "{", at)) != std::string::npos) {
    auto end = text.find('\n', at + 1);
    std::string line = text.substr(at + 1, end - at - 1);
    at = end;
    if (line.find(filter) == std::string::npos) continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

struct EdgeCase {
  std::string name;
  // Sends the bad input; returns what the daemon answered (status line, close code, error).
  std::function<std::string(int port)> send;
  std::string expect;  // must occur in the answer
  // The metric that must grow ("" for YAML cases, which `pgfanout check` answers).
  std::string family;
  std::string filter;
};

TEST(FaultEdges, HostileInputIsAnsweredAndCountedAndTheDaemonKeepsServing) {
  ScratchDatabase db("fedges");
  std::string config = write_temp_file(
      "pgfanout.yaml",
      "postgres: {dsn: \"" + db.dsn() +
          "\"}\nhttp: {listen: 127.0.0.1:0, max_header_size: 8KiB}\n"
          "hub: {max_message_size: 4KiB}\n"
          "auth:\n  jwt:\n    secret: \"a-test-secret-of-at-least-32-bytes!!\"\n"
          "    audience: edges\n"
          "topics:\n  - pattern: pub\n    allow: [subscribe]\n    anonymous: true\n"
          "commands:\n  add:\n    sql: \"SELECT $1::int + $2::int AS sum\"\n"
          "    params: [a, b]\n    anonymous: true\n"
          "rules:\n  - name: r\n    channel: edges\n    actions:\n      - push: {topic: pub}\n");
  DaemonProcess daemon({"run", "--config", config});
  ASSERT_TRUE(daemon.wait_for_output("ready")) << daemon.output();
  int port = daemon.http_port();
  ASSERT_GT(port, 0);

  auto ws_then = [](int p, const std::function<void(WsClient&)>& act) {
    WsClient c(p);
    if (!c.open()) return "upgrade " + std::to_string(c.http_status());
    act(c);
    std::string got;
    while (auto m = c.receive(3s)) got += *m + "\n";
    if (c.closed()) got += "close " + std::to_string(c.close_code());
    return got;
  };
  std::vector<EdgeCase> cases = {
      {"http_garbage", [](int p) { return raw_exchange(p, "\x16\x03\x01garbage\x00\xff\r\n\r\n"); },
       "400", "", ""},
      {"http_oversized_headers",
       [](int p) {
         return raw_exchange(p, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                    std::string(20000, 'a') + "\r\n\r\n");
       },
       "431", "pgfanout_http_requests_total", "code=\"431\""},
      {"http_unknown_route",
       [](int p) {
         return raw_exchange(p, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
       },
       "404", "pgfanout_http_requests_total", "code=\"404\""},
      {"ws_oversized_frame",
       [&](int p) {
         return ws_then(p, [](WsClient& c) { c.send(std::string(8000, ' ') + "{}"); });
       },
       "close 1009", "pgfanout_subscribers_dropped_total", "reason=\"too_big\""},
      {"ws_invalid_utf8_text",
       [&](int p) {
         return ws_then(p, [](WsClient& c) { c.send("{\"type\":\"ping\",\"x\":\"\xff\xfe\"}"); });
       },
       "close 1007", "pgfanout_subscribers_dropped_total", "reason=\"protocol_error\""},
      {"ws_not_json",
       [&](int p) { return ws_then(p, [](WsClient& c) { c.send("\x01\x02 not json"); }); },
       "bad_message", "pgfanout_hub_client_errors_total", "code=\"bad_message\""},
      {"jwt_garbage",
       [](int p) {
         WsClient c(p, "/ws", {{"Authorization", "Bearer not.a.token"}});
         return "upgrade " + std::to_string(c.http_status());
       },
       "upgrade 401", "pgfanout_hub_auth_total", ""},
      {"jwt_alg_none",
       [](int p) {
         WsClient c(
             p, "/ws",
             {{"Authorization", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIiwiYXVkIjoiZWRnZXMifQ."}});
         return "upgrade " + std::to_string(c.http_status());
       },
       "upgrade 401", "pgfanout_hub_auth_total", ""},
      {"command_missing_argument",
       [&](int p) {
         WsClient c(p);
         auto r = c.request(R"({"type":"call","command":"add","args":{"a":1}})");
         return r.value_or("no answer");
       },
       "bad_args", "pgfanout_hub_commands_total", "bad_args"},
      {"command_wrong_type",
       [&](int p) {
         WsClient c(p);
         auto r = c.request(R"({"type":"call","command":"add","args":{"a":"x';--","b":2}})");
         return r.value_or("no answer");
       },
       "\"type\":\"error\"", "pgfanout_hub_commands_total", "command=\"add\""},
      {"command_unknown",
       [&](int p) {
         WsClient c(p);
         auto r = c.request(R"({"type":"call","command":"../../etc","args":{}})");
         return r.value_or("no answer");
       },
       "\"type\":\"error\"", "pgfanout_hub_commands_total", "command=\"(unknown)\""},
  };

  Figures f;
  f.scenario = "edges";
  for (const auto& ec : cases) {
    SCOPED_TRACE(ec.name);
    auto before = http_get(port, "/metrics").body;
    std::string answer = ec.send(port);
    ++f.written;
    EXPECT_NE(answer.find(ec.expect), std::string::npos) << ec.name << " answered: " << answer;
    if (!ec.family.empty()) {
      double grown = 0;
      wait_until(
          [&] {
            auto after = http_get(port, "/metrics").body;
            grown =
                family_sum(after, ec.family, ec.filter) - family_sum(before, ec.family, ec.filter);
            return grown > 0;
          },
          3s);
      EXPECT_GT(grown, 0) << ec.name << ": " << ec.family << " did not count it";
    }
    // Still serving.
    EXPECT_EQ(http_get(port, "/healthz").status, 200) << ec.name;
    WsClient good(port);
    auto ack = good.request(R"({"type":"subscribe","topic":"pub"})");
    EXPECT_TRUE(ack && ack->find("ack") != std::string::npos) << ec.name;
    if (answer.find(ec.expect) != std::string::npos && ack) ++f.acted;
  }

  // Hostile YAML: `check` reports it (exit 78, FILE:LINE:COL) instead of crashing.
  std::vector<std::pair<std::string, std::string>> yamls = {
      {"binary", std::string("\xff\xfe\x00\x01version: 1\n", 15)},
      {"tabs", "version: 1\nrules:\n\t- name: x\n"},
      {"deep_nesting", "version: 1\nrules: " + std::string(5000, '[') + "\n"},
      {"unclosed", "version: 1\npostgres: {dsn: \"x\"\n"},
      {"wrong_types", "version: [1]\nrules: 7\n"},
      {"hostile_channel",
       "version: 1\npostgres: {dsn: \"x\"}\nrules:\n  - name: r\n    "
       "channel: \"" +
           std::string(100, 'c') + "\"\n    actions:\n      - log: x\n"},
  };
  for (const auto& [name, text] : yamls) {
    SCOPED_TRACE(name);
    auto path = write_temp_file(name + ".yaml", text);
    auto [code, out] = run_pgfanout({"check", "--config", path});
    ++f.written;
    EXPECT_EQ(code, 78) << name << ": " << out;
    EXPECT_NE(out.find(path + ":"), std::string::npos) << name << ": " << out;
    if (code == 78) ++f.acted;
  }
  f.lost = f.written - f.acted;
  f.report();
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.output();
}

}  // namespace
}  // namespace pgfanout::test
