// Fault scenario 8, bad input at the edges, table-driven: hostile HTTP requests, WebSocket
// frames (a message fragmented forever among them), tokens, command arguments, SSE and Hippie
// requests against a running daemon; NOTIFYs on channels whose names need quoting; and hostile
// YAML (alias bombs among them) against `pgfanout check` and a reload. Each is answered with a
// clear error (or, for the channels, delivered) and counted, and the daemon keeps serving:
// /healthz and a good subscribe work after every case.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <functional>

#include <gtest/gtest.h>

#include "faults/FaultSupport.hpp"
#include "support/WsClient.hpp"

namespace pgfanout::test {
namespace {

using namespace std::chrono_literals;

// A TCP connection to 127.0.0.1:`port` whose reads time out after 3 s; -1 when it failed.
int connect_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Reads until the peer closes (or 3 s without data).
std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// Sends `bytes` on a new connection and returns what came back until the peer closed (or 3 s).
std::string raw_exchange(int port, const std::string& bytes) {
  int fd = connect_loopback(port);
  if (fd < 0) return "";
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string out = read_all(fd);
  ::close(fd);
  return out;
}

// A masked client WebSocket frame.
std::string client_frame(unsigned opcode, bool fin, const std::string& payload) {
  std::string f;
  f += static_cast<char>((fin ? 0x80 : 0) | opcode);
  const std::size_t n = payload.size();
  if (n < 126) {
    f += static_cast<char>(0x80 | n);
  } else {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>((n >> 8) & 0xff);
    f += static_cast<char>(n & 0xff);
  }
  const char mask[4] = {0x11, 0x22, 0x33, 0x44};
  f.append(mask, 4);
  for (std::size_t i = 0; i < n; ++i) f += static_cast<char>(payload[i] ^ mask[i % 4]);
  return f;
}

// Opens /ws on a raw socket, starts a text message and sends continuation frames without FIN
// (`chunk` bytes each, `pause` apart) until the server stops taking them or `max_bytes` went out.
// Returns what the server answered: "close <code>" from its close frame, or what it sent instead.
std::string fragment_forever(int port, std::size_t chunk, std::size_t max_bytes,
                             std::chrono::milliseconds pause = std::chrono::milliseconds(1)) {
  int fd = connect_loopback(port);
  if (fd < 0) return "no connection";
  std::string upgrade =
      "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  ::send(fd, upgrade.data(), upgrade.size(), MSG_NOSIGNAL);
  std::string head;
  char c = 0;
  while (head.find("\r\n\r\n") == std::string::npos && ::recv(fd, &c, 1, 0) == 1) head += c;
  if (head.find(" 101 ") == std::string::npos) {
    ::close(fd);
    return "upgrade refused: " + head;
  }
  std::string piece(chunk, ' ');
  std::size_t sent = 0;
  for (unsigned opcode = 1; sent < max_bytes; opcode = 0) {  // text, then continuations
    auto f = client_frame(opcode, /*fin=*/false, piece);
    if (::send(fd, f.data(), f.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(f.size())) break;
    sent += chunk;
    std::this_thread::sleep_for(pause);
  }
  std::string got = read_all(fd);
  ::close(fd);
  // A close frame: 0x88, its length, then the code in network order.
  auto at = got.find('\x88');
  if (at != std::string::npos && at + 3 < got.size()) {
    int code =
        (static_cast<unsigned char>(got[at + 2]) << 8) | static_cast<unsigned char>(got[at + 3]);
    return "close " + std::to_string(code) + " after " + std::to_string(sent) + " bytes";
  }
  return "no close frame after " + std::to_string(sent) + " bytes: " + got;
}

// `text` as a YAML double-quoted scalar.
std::string yaml_quoted(const std::string& text) {
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '\\' || ch == '"') out += '\\';
    out += ch;
  }
  return out + "\"";
}

// `text` as a Prometheus label value.
std::string prom_label(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '\\' || ch == '"') out += '\\';
    out += ch;
  }
  return out;
}

// An alias bomb: `levels` anchored lists, each holding `width` aliases of the one before, so a
// file of a few kilobytes stands for width^levels strings; `leaf` is where the last one goes.
std::string alias_bomb(int width, int levels, const std::string& leaf) {
  std::string text = "version: 1\npostgres: {dsn: \"host=127.0.0.1\"}\n";
  text += "x-l0: &l0 [";
  for (int i = 0; i < width; ++i) text += std::string(i ? "," : "") + "\"lol\"";
  text += "]\n";
  for (int l = 1; l < levels; ++l) {
    text += "x-l" + std::to_string(l) + ": &l" + std::to_string(l) + " [";
    for (int i = 0; i < width; ++i)
      text += std::string(i ? "," : "") + "*l" + std::to_string(l - 1);
    text += "]\n";
  }
  return text + leaf + "*l" + std::to_string(levels - 1) + "\n";
}

// The same width^3 expansion where the config reader walks all of it: rules whose actions
// evict lists of keys, all through aliases.
std::string rule_bomb(int width) {
  auto list = [&](const std::string& item) {
    std::string l = "[";
    for (int i = 0; i < width; ++i) l += std::string(i ? "," : "") + item;
    return l + "]";
  };
  return "version: 1\npostgres: {dsn: \"host=127.0.0.1\"}\n"
         "x-keys: &keys " +
         list("\"k{id}\"") +
         "\n"
         "x-act: &act {evict: *keys}\n"
         "x-acts: &acts " +
         list("*act") +
         "\n"
         "x-rule: &rule {name: r, channel: c, actions: *acts}\n"
         "rules: " +
         list("*rule") + "\n";
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

// Channel names a LISTEN must quote. The last is PostgreSQL's longest (NAMEDATALEN - 1 bytes).
const std::vector<std::string>& hostile_channels() {
  static const std::vector<std::string> channels = {
      "MixedCase_Channel", "with spaces in it", "quo\"te's \"x\"",    "semi;colon; DROP TABLE x;--",
      "back\\slash\\n",    "ünïcödé канал",     std::string(63, 'L'),
  };
  return channels;
}

TEST(FaultEdges, HostileInputIsAnsweredAndCountedAndTheDaemonKeepsServing) {
  ScratchDatabase db("fedges");
  std::string channel_rules;
  for (std::size_t i = 0; i < hostile_channels().size(); ++i) {
    channel_rules += "  - name: ch" + std::to_string(i) +
                     "\n    channel: " + yaml_quoted(hostile_channels()[i]) +
                     "\n    actions:\n      - push: {topic: chan}\n";
  }
  std::string config_text =
      "postgres: {dsn: \"" + db.dsn() +
      "\"}\nhttp: {listen: 127.0.0.1:0, max_header_size: 8KiB, max_body_size: 16KiB}\n"
      "hub: {max_message_size: 4KiB, max_subscriptions: 10, max_connections: 64, "
      "hippie_ping: 2s, message_timeout: 1s}\n"
      "auth:\n  jwt:\n    secret: \"a-test-secret-of-at-least-32-bytes!!\"\n"
      "    audience: edges\n"
      "topics:\n  - pattern: pub\n    allow: [subscribe]\n    anonymous: true\n"
      "  - pattern: chan\n    allow: [subscribe]\n    anonymous: true\n"
      "  - pattern: hpub\n    allow: [subscribe, publish]\n    anonymous: true\n"
      "commands:\n  add:\n    sql: \"SELECT $1::int + $2::int AS sum\"\n"
      "    params: [a, b]\n    anonymous: true\n"
      "rules:\n  - name: r\n    channel: edges\n    actions:\n      - push: {topic: pub}\n" +
      channel_rules;
  std::string config = write_temp_file("pgfanout.yaml", config_text);
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
  // NOTIFYs `sql` (with `payload` as $1) and returns the chan message carrying the payload.
  auto notify_through = [&](const std::string& sql, const std::string& payload) {
    WsClient c(port);
    auto ack = c.request(R"({"type":"subscribe","topic":"chan"})");
    if (!ack || ack->find("ack") == std::string::npos) return std::string("subscribe failed");
    BlockingPg s(db.dsn());
    s.value(sql, {payload});
    auto m = c.receive_containing(payload, 5s);
    return m.value_or("nothing received");
  };
  // An SSE or Hippie request on a raw connection.
  auto get = [](int p, const std::string& target, const std::string& more_headers = "") {
    return raw_exchange(p, "GET " + target +
                               " HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n" +
                               more_headers + "Connection: close\r\n\r\n");
  };
  auto post = [](int p, const std::string& target, const std::string& body) {
    return raw_exchange(p, "POST " + target +
                               " HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/x-www-form-urlencoded\r\n"
                               "Content-Length: " +
                               std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
                               body);
  };
  std::string many_topics;
  for (int i = 0; i < 11; ++i)
    many_topics += (i ? "&" : "?") + std::string("topic=t") + std::to_string(i);

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
      // Under the size limit but never finished: hub.message_timeout (1s here) ends it.
      {"ws_fragments_dripped",
       [](int p) { return fragment_forever(p, 16, 2000, std::chrono::milliseconds(50)); },
       "close 1008", "pgfanout_subscribers_dropped_total", "reason=\"message_timeout\""},
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
      {"ws_fragmented_forever", [](int p) { return fragment_forever(p, 512, 1 << 20); },
       "close 1009", "pgfanout_subscribers_dropped_total", "reason=\"too_big\""},
      {"sse_bad_topic_encoding", [&](int p) { return get(p, "/events?topic=%ZZ%00%ff%2"); },
       "\"type\":\"error\"", "pgfanout_hub_connections_rejected_total", ""},
      {"sse_huge_query_string",
       [&](int p) { return get(p, "/events?topic=pub&x=" + std::string(20000, 'q')); }, "431",
       "pgfanout_http_requests_total", "code=\"431\""},
      {"sse_topics_beyond_subscription_limit",
       [&](int p) { return get(p, "/events" + many_topics); }, "too_many_subscriptions",
       "pgfanout_hub_connections_rejected_total", "reason=\"too_many_subscriptions\""},
      {"sse_garbage_last_event_id",
       [&](int p) {
         HttpStream s(p,
                      "GET /events?topic=pub HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                      "Last-Event-ID: 12abc';DROP--\r\n\r\n");
         s.wait_for("resync", 3s);
         return s.text();
       },
       "\"type\":\"resync\"", "pgfanout_hub_client_errors_total", "code=\"bad_last_event_id\""},
      {"sse_wrong_method",
       [](int p) {
         return raw_exchange(p, "DELETE /events?topic=pub HTTP/1.1\r\nHost: x\r\n\r\n");
       },
       "405", "pgfanout_hub_connections_rejected_total", "reason=\"method_not_allowed\""},
      {"hippie_ws_bad_channel_encoding",
       [](int p) {
         WsClient c(p, "/_hippie/ws/%ff%00%ZZ");
         return "upgrade " + std::to_string(c.http_status()) + " " + c.http_body();
       },
       "\"type\":\"error\"", "pgfanout_hub_connections_rejected_total", ""},
      {"hippie_poll_bad_channel_encoding",
       [&](int p) {
         return get(p, "/_hippie/poll/%ff%00?client_id=%00%ff" + std::string(500, 'z'));
       },
       "invalid_topic", "pgfanout_hub_connections_rejected_total", "reason=\"invalid_topic\""},
      {"hippie_poll_very_long_client_id",
       [&](int p) { return get(p, "/_hippie/poll/pub?client_id=" + std::string(6000, 'a')); },
       "bad_request", "pgfanout_hub_connections_rejected_total", "reason=\"bad_request\""},
      {"hippie_poll_non_ascii_client_id",
       [&](int p) {
         return get(p, "/_hippie/poll/pub?client_id=%C3%BC%D0%BA%E2%82%AC" + std::string(25, 'a'));
       },
       "bad_request", "pgfanout_hub_connections_rejected_total", "reason=\"bad_request\""},
      {"hippie_poll_control_characters_in_client_id",
       [&](int p) {
         auto a = get(p, "/_hippie/poll/pub?client_id=%00%0d%0aSet-Cookie:%20x%1b%5b");
         return a.find("\r\nSet-Cookie") == std::string::npos ? a : "header injected: " + a;
       },
       "bad_request", "pgfanout_hub_connections_rejected_total", "reason=\"bad_request\""},
      // Made-up ids of the right form: each would open a pipe. Pipes whose id never comes back are
      // held to half of hub.max_connections (32 here) and expire after one hippie_ping.
      {"hippie_poll_made_up_client_ids",
       [&](int p) {
         int opened = 0, refused = 0;
         for (int i = 0; i < 100; ++i) {
           char id[33];
           std::snprintf(id, sizeof id, "%032x", 0xfeed00u + static_cast<unsigned>(i));
           auto a = get(p, std::string("/_hippie/poll/pub?client_id=") + id);
           if (a.find("set_client_id") != std::string::npos) ++opened;
           if (a.find(" 503 ") != std::string::npos) ++refused;
         }
         auto scraped = http_get(p, "/metrics").body;
         auto at = scraped.find("\npgfanout_subscribers ");
         double held = at == std::string::npos ? -1 : std::stod(scraped.substr(at + 22));
         // They expire one ping (2 s) after they opened, swept every ping: gone within 4 s, and
         // then a new client gets a pipe.
         std::string last;
         int probes = 0;
         auto started = std::chrono::steady_clock::now();
         bool expired = wait_until(
             [&] {  // wait_until calls it once more at the end: probe only until one got a pipe
               if (last.find("set_client_id") != std::string::npos) return true;
               ++probes;
               last = get(p, "/_hippie/poll/pub");
               return last.find("set_client_id") != std::string::npos;
             },
             10s);
         auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - started);
         return "opened " + std::to_string(opened) + ", refused " + std::to_string(refused) +
                (refused > 0 && held >= 0 && held <= 32 ? ", capped" : ", not capped") +
                (expired ? ", a new pipe once they expired"
                         : ", no pipe after " + std::to_string(waited.count()) + " ms and " +
                               std::to_string(probes) + " probes; last answer: " + last);
       },
       "capped, a new pipe once they expired", "pgfanout_hub_connections_rejected_total",
       "reason=\"limit\""},
      {"hippie_pub_not_json",
       [&](int p) { return post(p, "/_hippie/pub/hpub", "message=%7Bnot+json"); }, "bad_message",
       "pgfanout_hub_client_errors_total", "code=\"bad_message\""},
      {"hippie_pub_oversized_body",
       [&](int p) { return post(p, "/_hippie/pub/hpub", "message=" + std::string(40000, '1')); },
       "413", "pgfanout_http_requests_total", "code=\"413\""},
      {"hippie_pub_wrong_method",
       [](int p) { return raw_exchange(p, "GET /_hippie/pub/hpub HTTP/1.1\r\nHost: x\r\n\r\n"); },
       "405", "pgfanout_hub_connections_rejected_total", "reason=\"method_not_allowed\""},
  };
  // Channels that need quoting are LISTENed and delivered; the 63-byte one also when the NOTIFY
  // names it longer (PostgreSQL truncates the identifier).
  for (std::size_t i = 0; i < hostile_channels().size(); ++i) {
    const std::string& ch = hostile_channels()[i];
    std::string marker = "m" + std::to_string(i) + "-" + std::to_string(::getpid());
    cases.push_back({"channel_" + std::to_string(i),
                     [&, ch, marker](int) {
                       BlockingPg s(db.dsn());
                       std::string quoted = s.value("SELECT quote_literal($1)", {ch}).value_or("");
                       return notify_through("SELECT pg_notify(" + quoted + ", $1)",
                                             R"({"m":")" + marker + "\"}");
                     },
                     marker, "pgfanout_notifications_total", "channel=\"" + prom_label(ch) + "\""});
  }
  cases.push_back({"channel_truncated_by_postgres",
                   [&](int) {
                     // NOTIFY takes no parameter: the payload is a literal.
                     BlockingPg s(db.dsn());
                     WsClient c(port);
                     c.request(R"({"type":"subscribe","topic":"chan"})");
                     s.exec("NOTIFY \"" + std::string(70, 'L') + "\", '{\"m\":\"truncated\"}'");
                     return c.receive_containing("truncated", 5s).value_or("nothing received");
                   },
                   "truncated", "pgfanout_notifications_total",
                   "channel=\"" + std::string(63, 'L') + "\""});
  cases.push_back({"channel_no_rule_names",
                   [&](int) {
                     WsClient c(port);
                     c.request(R"({"type":"subscribe","topic":"chan"})");
                     auto before = http_get(port, "/metrics").body;
                     BlockingPg s(db.dsn());
                     s.notify("nobody_listens_here", R"({"m":"nobody"})");
                     s.notify("MIXEDCASE_CHANNEL", R"({"m":"nobody"})");  // not MixedCase_Channel
                     auto got = c.receive(1500ms);
                     auto after = http_get(port, "/metrics").body;
                     bool unchanged =
                         family_sum(after, "pgfanout_notifications_total", "nobody") == 0 &&
                         family_sum(after, "pgfanout_notifications_total", "MIXEDCASE") == 0 &&
                         family_sum(after, "pgfanout_notifications_unrouted_total", "") ==
                             family_sum(before, "pgfanout_notifications_unrouted_total", "");
                     return std::string(got ? "received " + *got : "nothing received") +
                            (unchanged ? ", counts unchanged" : ", counts changed");
                   },
                   "nothing received, counts unchanged", "", ""});

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

  // The refusals counter says what it counts: requests (Hippie polls, publishes) as well.
  EXPECT_NE(http_get(port, "/metrics")
                .body.find("# HELP pgfanout_hub_connections_rejected_total Hub connections and "
                           "requests refused"),
            std::string::npos);

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
      {"channel_with_nul",
       "version: 1\npostgres: {dsn: \"x\"}\nrules:\n  - name: r\n    channel: \"a\\0b\"\n"
       "    actions:\n      - log: x\n"},
      // "Billion laughs": 9^9 strings in under 1 KB, under an unknown key and as a rule's actions.
      {"billion_laughs", alias_bomb(9, 9, "lol: ")},
      {"billion_laughs_as_actions",
       alias_bomb(9, 9, "rules:\n  - name: r\n    channel: c\n    actions: ")},
      // 300^3 evict keys the reader would turn into rules (minutes and gigabytes before).
      {"alias_bomb_read_as_rules", rule_bomb(300)},
      {"self_referencing_alias",
       "version: 1\npostgres: {dsn: \"x\"}\nrules: &r\n  - name: r\n"
       "    channel: c\n    actions: *r\n    when: *r\n"},
  };
  const std::string bomb_error = "through YAML aliases";
  for (const auto& [name, text] : yamls) {
    SCOPED_TRACE(name);
    auto path = write_temp_file(name + ".yaml", text);
    auto started = std::chrono::steady_clock::now();
    auto [code, out] = run_pgfanout({"check", "--config", path});
    auto took = std::chrono::steady_clock::now() - started;
    ++f.written;
    EXPECT_EQ(code, 78) << name << ": " << out;
    EXPECT_NE(out.find(path + ":"), std::string::npos) << name << ": " << out;
    EXPECT_LT(took, 5s) << name;
    if (name.find("laughs") != std::string::npos || name.find("bomb") != std::string::npos) {
      EXPECT_NE(out.find(bomb_error), std::string::npos) << name << ": " << out;
    }
    if (code == 78) ++f.acted;
  }

  // The alias bomb as a reload: refused in bounded time, counted, the old config kept.
  {
    SCOPED_TRACE("reload_alias_bomb");
    auto before = http_get(port, "/metrics").body;
    std::ofstream(config, std::ios::trunc) << rule_bomb(300);
    auto started = std::chrono::steady_clock::now();
    daemon.signal(SIGHUP);
    ++f.written;
    bool refused = wait_until(
        [&] {
          return family_sum(http_get(port, "/metrics").body, "pgfanout_reloads_total",
                            "result=\"failed\"") >
                 family_sum(before, "pgfanout_reloads_total", "result=\"failed\"");
        },
        10s);
    EXPECT_TRUE(refused) << daemon.output();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
    EXPECT_TRUE(daemon.output_contains(bomb_error)) << daemon.output();
    EXPECT_EQ(http_get(port, "/healthz").status, 200);
    auto answer = notify_through("SELECT pg_notify('MixedCase_Channel', $1)", R"({"m":"kept"})");
    EXPECT_NE(answer.find("kept"), std::string::npos) << "old rules not kept: " << answer;
    if (refused && answer.find("kept") != std::string::npos) ++f.acted;
  }
  f.lost = f.written - f.acted;
  f.report();
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.output();
}

}  // namespace
}  // namespace pgfanout::test
