// The HTTP server in-process: listen-address parsing, the route table, limits and timeouts,
// keep-alive, the connection cap, the take-over hook, and a clear error when the port is taken.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "http/HealthChecks.hpp"
#include "http/HttpRouter.hpp"
#include "http/HttpServer.hpp"
#include "http/HttpUpgrade.hpp"
#include "http/ListenAddress.hpp"
#include "metrics/Metrics.hpp"
#include "support/TestSupport.hpp"

namespace pgfanout::http {
namespace {

using namespace std::chrono_literals;

TEST(ListenAddress, Forms) {
  struct Case {
    const char* text;
    const char* host;  // nullptr: an error containing `error`
    int port;
    const char* error;
  };
  const Case cases[] = {
      {"127.0.0.1:8080", "127.0.0.1", 8080, nullptr},
      {"0.0.0.0:80", "0.0.0.0", 80, nullptr},
      {"localhost:9000", "127.0.0.1", 9000, nullptr},
      {"[::1]:8080", "::1", 8080, nullptr},
      {"[::]:0", "::", 0, nullptr},
      {"127.0.0.1:65535", "127.0.0.1", 65535, nullptr},
      {"127.0.0.1", nullptr, 0, "expected HOST:PORT"},
      {"::1:8080", nullptr, 0, "needs brackets"},
      {"[::1]8080", nullptr, 0, "missing \":PORT\""},
      {"[::1:8080", nullptr, 0, "missing \"]\""},
      {"[nope]:1", nullptr, 0, "not an IPv6 address"},
      {"example.com:80", nullptr, 0, "not an IP address"},
      {":8080", nullptr, 0, "missing host"},
      {"127.0.0.1:http", nullptr, 0, "not a number"},
      {"127.0.0.1:65536", nullptr, 0, "out of range"},
      {"127.0.0.1:", nullptr, 0, "not a number"},
  };
  for (const auto& c : cases) {
    std::string error;
    auto a = parse_listen_address(c.text, error);
    if (c.host != nullptr) {
      ASSERT_TRUE(a) << c.text << ": " << error;
      EXPECT_EQ(a->host, c.host) << c.text;
      EXPECT_EQ(a->port, c.port) << c.text;
    } else {
      EXPECT_FALSE(a) << c.text;
      EXPECT_NE(error.find(c.error), std::string::npos) << c.text << ": " << error;
    }
  }
  EXPECT_EQ((ListenAddress{"::1", 80}).to_string(), "[::1]:80");
  EXPECT_EQ((ListenAddress{"127.0.0.1", 80}).to_string(), "127.0.0.1:80");
}

TEST(HttpRouter, NotFoundMethodNotAllowedAndHead) {
  HttpRouter r;
  r.add("GET", "/a", [](const HttpRequest&) { return HttpResponse::text(200, "a"); });
  r.add("POST", "/a", [](const HttpRequest& q) { return HttpResponse::text(201, q.body); });
  HttpRequest q;
  q.method = "GET";
  q.path = "/a";
  EXPECT_EQ(r.handle(q).body, "a");
  q.method = "HEAD";
  EXPECT_EQ(r.handle(q).status, 200u);
  q.method = "DELETE";
  auto res = r.handle(q);
  EXPECT_EQ(res.status, 405u);
  ASSERT_EQ(res.headers.size(), 1u);
  EXPECT_EQ(res.headers[0].second, "GET, HEAD, POST");
  q.path = "/b";
  EXPECT_EQ(r.handle(q).status, 404u);
  EXPECT_EQ(r.route_label("/a"), "/a");
  EXPECT_EQ(r.route_label("/secret/123"), "other");
}

TEST(HealthChecks, AllMustPassAndEachIsNamed) {
  HealthChecks h;
  bool pg = true;
  h.add("postgres", [&] { return HealthStatus{pg, pg ? "listening" : "disconnected"}; });
  h.add("redis", [] { return HealthStatus{true, "connected \"ok\""}; });
  auto r = h.response();
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body,
            "{\"status\":\"ok\",\"checks\":{\"postgres\":{\"ok\":true,\"detail\":\"listening\"},"
            "\"redis\":{\"ok\":true,\"detail\":\"connected \\\"ok\\\"\"}}}\n");
  pg = false;
  auto report = h.evaluate();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.failing(), "postgres");
  r = h.response();
  EXPECT_EQ(r.status, 503u);
  EXPECT_NE(r.body.find("{\"status\":\"unhealthy\",\"checks\":{\"postgres\":{\"ok\":false,"
                        "\"detail\":\"disconnected\"}"),
            std::string::npos)
      << r.body;
}

// A server on 127.0.0.1:0 whose io_context runs on a thread of its own; the test thread is the
// client.
struct ServerFixture : ::testing::Test {
  void start(http::HttpConfig cfg = {}) {
    cfg.address = ListenAddress{"127.0.0.1", 0};
    router.add("GET", "/hello", [](const HttpRequest& q) {
      return HttpResponse::text(200, "hello " + q.query + "\n");
    });
    router.add("POST", "/echo",
               [](const HttpRequest& q) { return HttpResponse::text(200, q.body); });
    router.add_upgrade("/stream", [this](UpgradeRequest&& u) {
      upgraded = std::string(u.request.target());
      std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: hi\n\n";
      boost::asio::write(u.stream.socket(), boost::asio::buffer(reply));
      boost::system::error_code ignored;
      u.stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    });
    server = std::make_unique<HttpServer>(io, router, metrics);
    std::string error;
    ASSERT_TRUE(server->start(cfg, error)) << error;
    port = server->local_address().port;
    thread = std::thread([this] { io.run(); });
  }
  void TearDown() override {
    if (thread.joinable()) {
      boost::asio::post(io, [this] {
        server->stop_accepting();
        server->close_connections();
      });
      std::this_thread::sleep_for(50ms);
      io.stop();
      thread.join();
    }
    server.reset();
  }
  // Sends raw bytes on a new connection and returns everything received until the server
  // closes it (or `timeout`).
  std::string raw(const std::string& bytes, std::chrono::milliseconds timeout = 3s) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return out;
  }

  boost::asio::io_context io{1};
  Metrics metrics;
  HttpRouter router;
  std::unique_ptr<HttpServer> server;
  std::thread thread;
  std::uint16_t port = 0;
  std::string upgraded;
};

TEST_F(ServerFixture, AnswersAndCountsRequests) {
  start();
  auto r = test::http_get(port, "/hello?x=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello x=1\n");
  EXPECT_NE(r.headers.find("Server: pgfanout/"), std::string::npos);
  EXPECT_EQ(test::http_get(port, "/nothing").status, 404);
  EXPECT_EQ(test::http_request(port, "DELETE", "/hello").status, 405);
  auto head = test::http_request(port, "HEAD", "/hello");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_NE(head.headers.find("Content-Length: 7"), std::string::npos) << head.headers;
  EXPECT_TRUE(test::wait_until([&] {
    return metrics.value("pgfanout_http_requests_total", {{"route", "/hello"}, {"code", "200"}}) ==
           2;  // GET and HEAD
  }));
  EXPECT_EQ(metrics.value("pgfanout_http_requests_total", {{"route", "other"}, {"code", "404"}}),
            1);
}

TEST_F(ServerFixture, KeepAliveServesPipelinedRequestsInOrder) {
  start();
  auto out =
      raw("GET /hello?a HTTP/1.1\r\nHost: x\r\n\r\n"
          "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"
          "GET /hello?c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  auto a = out.find("hello a");
  auto b = out.find("body");
  auto c = out.find("hello c");
  ASSERT_NE(a, std::string::npos) << out;
  ASSERT_NE(b, std::string::npos) << out;
  ASSERT_NE(c, std::string::npos) << out;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST_F(ServerFixture, LimitsGive431And413AndGarbage400) {
  http::HttpConfig cfg;
  cfg.max_header_bytes = 1024;
  cfg.max_body_bytes = 16;
  start(cfg);
  auto big_header =
      raw("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n");
  EXPECT_TRUE(big_header.starts_with("HTTP/1.1 431")) << big_header.substr(0, 80);
  auto big_body =
      raw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'b'));
  EXPECT_TRUE(big_body.starts_with("HTTP/1.1 413")) << big_body.substr(0, 80);
  auto garbage = raw("HELLO\x01 / nonsense\r\n\r\n");
  EXPECT_TRUE(garbage.starts_with("HTTP/1.1 400")) << garbage.substr(0, 80);
}

TEST_F(ServerFixture, SlowClientIsDisconnectedAfterTheReadTimeout) {
  http::HttpConfig cfg;
  cfg.read_timeout = 300ms;
  start(cfg);
  auto t0 = std::chrono::steady_clock::now();
  auto out = raw("GET /hello HTTP/1.1\r\n", 5s);  // never finishes its headers
  EXPECT_EQ(out, "");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

TEST_F(ServerFixture, ConnectionsBeyondTheCapAreClosed) {
  http::HttpConfig cfg;
  cfg.max_connections = 1;
  start(cfg);
  int idle = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(idle, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_TRUE(test::wait_until([&] { return server->connection_count() == 1; }));
  EXPECT_EQ(test::http_get(port, "/hello").status, 0);
  EXPECT_TRUE(test::wait_until(
      [&] { return metrics.value("pgfanout_http_connections_rejected_total") == 1; }));
  ::close(idle);
  EXPECT_TRUE(test::wait_until([&] { return test::http_get(port, "/hello").status == 200; }));
}

TEST_F(ServerFixture, TakeOverPathGetsTheConnection) {
  start();
  auto out = raw("GET /stream?topic=a HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
  EXPECT_NE(out.find("data: hi"), std::string::npos) << out;
  EXPECT_EQ(upgraded, "/stream?topic=a");
}

TEST(HttpServer, PortInUseIsAClearError) {
  boost::asio::io_context io;
  Metrics metrics;
  HttpRouter router;
  HttpServer first(io, router, metrics);
  http::HttpConfig cfg;
  cfg.address = ListenAddress{"127.0.0.1", 0};
  std::string error;
  ASSERT_TRUE(first.start(cfg, error)) << error;
  cfg.address.port = first.local_address().port;
  HttpServer second(io, router, metrics);
  EXPECT_FALSE(second.start(cfg, error));
  EXPECT_NE(error.find("cannot bind 127.0.0.1:" + std::to_string(cfg.address.port) +
                       " (http.listen): Address already in use"),
            std::string::npos)
      << error;
}

TEST(HttpServer, ListensOnIPv6Loopback) {
  boost::asio::io_context io;
  Metrics metrics;
  HttpRouter router;
  HttpServer server(io, router, metrics);
  http::HttpConfig cfg;
  cfg.address = ListenAddress{"::1", 0};
  std::string error;
  if (!server.start(cfg, error)) GTEST_SKIP() << "no IPv6 loopback here: " << error;
  EXPECT_EQ(server.local_address().host, "::1");
  EXPECT_NE(server.local_address().port, 0);
}

}  // namespace
}  // namespace pgfanout::http
