// hub_bench: load for the WebSocket hub, and a minimal Beast broadcast server as a baseline.
//
//   hub_bench server PORT
//       A bare Beast WebSocket server: every client is subscribed; a client message "go M B"
//       broadcasts M messages of B bytes to all (one shared buffer per message, unbounded
//       queues, no JSON); "tick NS" broadcasts {"t":NS}; "to I NS" sends {"t":NS} to the client
//       that subscribed to "u:I". The least a hub can cost.
//   hub_bench load PORT N (daemon DSN | baseline) BURST BYTES RATE SECONDS SERVER_PID [TO_RATE]
//       Opens N WebSocket subscribers (topics "bench" and "u:<i>"), reports the server's RSS per
//       idle connection, then a broadcast burst of BURST messages (delivered messages/s), then
//       RATE broadcasts/s for SECONDS (commit -> frame latency percentiles), then TO_RATE
//       messages/s (default 1000) for SECONDS, each to one client in turn (the chat case: one
//       user's inbox among N connections). With `daemon`, messages are NOTIFYs sent through
//       libpq to DSN; with `baseline`, requests to the baseline server. Also reports the server's
//       RSS after the burst and, for the daemon, its event loop lag from /metrics: the worst
//       bucket of pgfanout_event_loop_lag_seconds reached in each phase, and the worst stall.
//
// One thread per process: the load process shares the machine with the server on purpose (the
// same for both servers), so ratios are the meaningful figures.
#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// VmRSS (or another field of /proc/PID/status, such as the peak VmHWM), in KiB.
long rss_kib(int pid, const std::string& field = "VmRSS:") {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(field.size()));
  }
  return -1;
}

// The daemon's pgfanout_event_loop_lag_seconds histogram (cumulative count per bound) and
// pgfanout_event_loop_lag_max_seconds, read from its /metrics.
struct LoopLag {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count), +Inf last
  double max_s = 0;
};

LoopLag scrape_loop_lag(const tcp::endpoint& ep) {
  LoopLag out;
  asio::io_context io;
  tcp::socket s(io);
  beast::error_code ec;
  s.connect(ep, ec);
  if (ec) return out;
  std::string req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  asio::write(s, asio::buffer(req), ec);
  std::string text;
  std::array<char, 65536> chunk{};
  for (;;) {
    std::size_t n = s.read_some(asio::buffer(chunk), ec);
    text.append(chunk.data(), n);
    if (ec) break;
  }
  std::istringstream in(text);
  std::string line;
  const std::string bucket = "pgfanout_event_loop_lag_seconds_bucket{le=\"";
  const std::string max = "pgfanout_event_loop_lag_max_seconds ";
  while (std::getline(in, line)) {
    if (line.rfind(bucket, 0) == 0) {
      auto quote = line.find('"', bucket.size());
      std::string le = line.substr(bucket.size(), quote - bucket.size());
      double bound = le == "+Inf" ? 1e300 : std::stod(le);
      out.buckets.emplace_back(bound, std::stod(line.substr(line.rfind(' ') + 1)));
    } else if (line.rfind(max, 0) == 0) {
      out.max_s = std::stod(line.substr(max.size()));
    }
  }
  return out;
}

// The bound of the highest bucket that gained a measurement between two scrapes, in ms: the
// worst lag of that interval lies at or below it (and above the bound before it).
std::string worst_between(const LoopLag& before, const LoopLag& after) {
  if (after.buckets.empty() || after.buckets.size() != before.buckets.size()) return "?";
  double total = after.buckets.back().second - before.buckets.back().second;
  for (std::size_t i = 0; i < after.buckets.size(); ++i) {
    if (after.buckets[i].second - before.buckets[i].second >= total) {
      char buf[32];
      if (after.buckets[i].first > 1e299) {
        std::snprintf(buf, sizeof buf, "> %g", i > 0 ? after.buckets[i - 1].first * 1e3 : 0.0);
      } else {
        std::snprintf(buf, sizeof buf, "<= %g", after.buckets[i].first * 1e3);
      }
      return buf;
    }
  }
  return "?";
}

// ---- baseline server

struct BaselineServer;

struct ServerSession : std::enable_shared_from_this<ServerSession> {
  websocket::stream<beast::tcp_stream> ws;
  beast::flat_buffer buffer;
  std::vector<std::shared_ptr<const std::string>> queue;
  BaselineServer& server;
  bool writing = false;
  ServerSession(tcp::socket s, BaselineServer& srv) : ws(std::move(s)), server(srv) {}
  void run();
  void read();
  void send(std::shared_ptr<const std::string> m) {
    queue.push_back(std::move(m));
    if (!writing) write();
  }
  void write() {
    writing = true;
    ws.async_write(asio::buffer(*queue.front()),
                   [self = shared_from_this()](beast::error_code ec, std::size_t) {
                     self->writing = false;
                     if (ec) return;
                     self->queue.erase(self->queue.begin());
                     if (!self->queue.empty()) self->write();
                   });
  }
};

struct BaselineServer {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::vector<std::weak_ptr<ServerSession>> sessions;
  std::vector<std::weak_ptr<ServerSession>> by_user;  // "u:I" subscriber at index I
  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket s) {
      if (!ec) std::make_shared<ServerSession>(std::move(s), *this)->run();
      accept();
    });
  }
  void broadcast(const std::shared_ptr<const std::string>& m) {
    for (auto& w : sessions) {
      if (auto s = w.lock()) s->send(m);
    }
  }
};

void ServerSession::run() {
  ws.async_accept([self = shared_from_this()](beast::error_code ec) {
    if (ec) return;
    self->ws.text(true);
    self->server.sessions.push_back(self);
    self->read();
  });
}

void ServerSession::read() {
  ws.async_read(buffer, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (ec) return;
    std::string msg = beast::buffers_to_string(self->buffer.data());
    self->buffer.consume(self->buffer.size());
    if (msg.rfind("go ", 0) == 0) {
      int m = 0, bytes = 0;
      std::sscanf(msg.c_str(), "go %d %d", &m, &bytes);
      for (int i = 0; i < m; ++i) {
        self->server.broadcast(std::make_shared<const std::string>(
            R"({"type":"event","topic":"bench","event":"tick","data":{"i":)" + std::to_string(i) +
            R"(,"pad":")" + std::string(static_cast<std::size_t>(bytes), 'x') + "\"}}"));
      }
    } else if (msg.rfind("to ", 0) == 0) {
      auto space = msg.find(' ', 3);
      std::size_t user = std::stoul(msg.substr(3, space - 3));
      auto& users = self->server.by_user;
      if (auto s = user < users.size() ? users[user].lock() : nullptr) {
        s->send(std::make_shared<const std::string>(
            R"({"type":"event","topic":"u:)" + std::to_string(user) +
            R"(","event":"tick","data":{"t":)" + msg.substr(space + 1) + "}}"));
      }
    } else if (msg.rfind("tick ", 0) == 0) {
      self->server.broadcast(std::make_shared<const std::string>(
          R"({"type":"event","topic":"bench","event":"tick","data":{"t":)" + msg.substr(5) + "}}"));
    } else {
      // A subscribe: remember who is "u:I", and acknowledge with the message's ref.
      auto u = msg.find(R"("topic":"u:)");
      if (u != std::string::npos) {
        std::size_t user = std::stoul(msg.substr(u + 11));
        auto& users = self->server.by_user;
        if (users.size() <= user) users.resize(user + 1);
        users[user] = self;
      }
      auto r = msg.find(R"("ref":)");
      std::string ref = r == std::string::npos ? "0" : msg.substr(r + 6, msg.find('}', r) - r - 6);
      self->send(std::make_shared<const std::string>(R"({"type":"ack","ref":)" + ref + "}"));
    }
    self->read();
  });
}

int run_server(unsigned short port) {
  BaselineServer s;
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
  s.acceptor.open(ep.protocol());
  s.acceptor.set_option(asio::socket_base::reuse_address(true));
  s.acceptor.bind(ep);
  s.acceptor.listen(4096);
  s.accept();
  std::cout << "baseline server on " << port << std::endl;
  s.io.run();
  return 0;
}

// ---- load

struct Load;

// After the handshake a client reads raw TCP and splits WebSocket frames itself (server frames
// are unmasked), so that the load process, not the server, is rarely the bottleneck.
struct Client : std::enable_shared_from_this<Client> {
  websocket::stream<beast::tcp_stream> ws;
  tcp::socket raw;
  std::array<char, 16384> chunk{};
  std::string pending;
  Load& load;
  int index;
  Client(asio::io_context& io, Load& l, int i) : ws(io), raw(io), load(l), index(i) {}
  void start(const tcp::endpoint& ep);
  void read();
  void frame(std::string_view text);
};

struct Load {
  asio::io_context io{1};
  tcp::endpoint ep;
  int want = 0;
  int started = 0;
  int ready = 0;
  int failed = 0;
  std::uint64_t events = 0;
  bool sample = false;
  std::vector<std::int64_t> latencies;
  std::vector<std::shared_ptr<Client>> clients;
  void launch() {
    while (started < want && started - ready - failed < 200) {
      auto c = std::make_shared<Client>(io, *this, started);
      clients.push_back(c);
      ++started;
      c->start(ep);
    }
  }
};

void Client::start(const tcp::endpoint& ep) {
  beast::get_lowest_layer(ws).async_connect(ep, [self = shared_from_this()](beast::error_code ec) {
    if (ec) {
      ++self->load.failed;
      return self->load.launch();
    }
    self->ws.async_handshake("127.0.0.1", "/ws", [self](beast::error_code ec2) {
      if (ec2) {
        ++self->load.failed;
        return self->load.launch();
      }
      self->raw = beast::get_lowest_layer(self->ws).release_socket();
      // Masked text frames, as clients must send.
      auto out = std::make_shared<std::string>();
      for (const std::string& sub :
           {std::string(R"({"type":"subscribe","topic":"bench","ref":1})"),
            R"({"type":"subscribe","topic":"u:)" + std::to_string(self->index) + R"(","ref":2})"}) {
        out->push_back(static_cast<char>(0x81));
        out->push_back(static_cast<char>(0x80 | sub.size()));
        out->append(4, '\0');  // mask key 0: the payload goes as it is
        out->append(sub);
      }
      asio::async_write(self->raw, asio::buffer(*out),
                        [self, out](beast::error_code ec3, std::size_t) {
                          if (ec3) {
                            ++self->load.failed;
                            return self->load.launch();
                          }
                          self->read();
                        });
    });
  });
}

void Client::frame(std::string_view text) {
  if (text.starts_with(R"({"type":"ack","ref":2)")) {
    ++load.ready;
    load.launch();
  } else if (text.starts_with(R"({"type":"event")")) {
    ++load.events;
    if (load.sample) {
      auto t = text.find(R"("t":)");
      if (t != std::string_view::npos) {
        std::int64_t sent = 0;
        std::from_chars(text.data() + t + 4, text.data() + text.size(), sent);
        load.latencies.push_back(now_ns() - sent);
      }
    }
  }
}

void Client::read() {
  raw.async_read_some(asio::buffer(chunk), [self = shared_from_this()](beast::error_code ec,
                                                                       std::size_t n) {
    if (ec) return;
    auto& p = self->pending;
    p.append(self->chunk.data(), n);
    std::size_t at = 0;
    while (p.size() - at >= 2) {
      auto b1 = static_cast<unsigned char>(p[at + 1]) & 0x7f;
      std::size_t head = 2;
      std::uint64_t len = b1;
      if (b1 == 126) {
        if (p.size() - at < 4) break;
        len = (static_cast<unsigned char>(p[at + 2]) << 8) | static_cast<unsigned char>(p[at + 3]);
        head = 4;
      } else if (b1 == 127) {
        if (p.size() - at < 10) break;
        len = 0;
        for (int k = 0; k < 8; ++k) len = (len << 8) | static_cast<unsigned char>(p[at + 2 + k]);
        head = 10;
      }
      if (p.size() - at < head + len) break;
      auto opcode = static_cast<unsigned char>(p[at]) & 0x0f;
      if (opcode == 1) self->frame(std::string_view(p).substr(at + head, len));
      at += head + len;
    }
    p.erase(0, at);
    self->read();
  });
}

// Sends `text` as one masked text frame (mask key 0), fire and forget.
void send_masked(tcp::socket& socket, const std::string& text) {
  auto out = std::make_shared<std::string>();
  out->push_back(static_cast<char>(0x81));
  if (text.size() < 126) {
    out->push_back(static_cast<char>(0x80 | text.size()));
  } else {
    out->push_back(static_cast<char>(0x80 | 126));
    out->push_back(static_cast<char>(text.size() >> 8));
    out->push_back(static_cast<char>(text.size() & 0xff));
  }
  out->append(4, '\0');
  out->append(text);
  asio::async_write(socket, asio::buffer(*out), [out](beast::error_code, std::size_t) {});
}

bool run_until(Load& l, const std::function<bool()>& done, std::chrono::seconds limit) {
  auto deadline = Clock::now() + limit;
  while (!done() && Clock::now() < deadline) {
    l.io.restart();
    l.io.run_for(std::chrono::milliseconds(5));
  }
  return done();
}

int run_load(int argc, char** argv) {
  if (argc < 11) {
    std::cerr << "usage: hub_bench load PORT N (daemon DSN|baseline -) BURST BYTES RATE SECONDS "
                 "SERVER_PID [TO_RATE]\n";
    return 2;
  }
  Load l;
  l.ep = tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                       static_cast<unsigned short>(std::stoi(argv[2])));
  l.want = std::stoi(argv[3]);
  bool daemon = std::string(argv[4]) == "daemon";
  std::string dsn = argv[5];
  int burst = std::stoi(argv[6]);
  int bytes = std::stoi(argv[7]);
  int rate = std::stoi(argv[8]);
  int seconds = std::stoi(argv[9]);
  int pid = std::stoi(argv[10]);
  int to_rate = argc > 11 ? std::stoi(argv[11]) : 1000;

  PGconn* pg = nullptr;
  if (daemon) {
    pg = PQconnectdb(dsn.c_str());
    if (PQstatus(pg) != CONNECTION_OK) {
      std::cerr << PQerrorMessage(pg);
      return 1;
    }
  }
  auto pg_exec = [&](const std::string& sql) {
    PGresult* r = PQexec(pg, sql.c_str());
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
      std::cerr << PQerrorMessage(pg);
    }
    PQclear(r);
  };

  std::vector<LoopLag> lags;  // the daemon's loop lag at the start and after each phase
  auto scrape = [&] {
    if (daemon) lags.push_back(scrape_loop_lag(l.ep));
  };
  scrape();
  long rss_before = rss_kib(pid);
  auto t_connect = Clock::now();
  l.launch();
  run_until(
      l, [&] { return l.ready + l.failed >= l.want; }, std::chrono::seconds(120));
  double connect_s = std::chrono::duration<double>(Clock::now() - t_connect).count();
  run_until(
      l, [] { return false; }, std::chrono::seconds(2));  // settle
  long rss_after = rss_kib(pid);
  scrape();
  std::printf("connections      %d ready, %d failed, in %.1f s\n", l.ready, l.failed, connect_s);
  std::printf("rss per idle conn %.2f KiB (server RSS %ld -> %ld KiB)\n",
              static_cast<double>(rss_after - rss_before) / std::max(1, l.ready), rss_before,
              rss_after);

  // Broadcast burst: BURST messages to every subscriber.
  std::uint64_t expected = static_cast<std::uint64_t>(burst) * static_cast<std::uint64_t>(l.ready);
  l.events = 0;
  auto t0 = Clock::now();
  std::thread sender;
  if (daemon) {
    sender = std::thread([&] {
      pg_exec("SELECT pg_notify('bench', json_build_object('i', i, 'pad', repeat('x', " +
              std::to_string(bytes) + "))::text) FROM generate_series(1, " + std::to_string(burst) +
              ") AS i");
    });
  } else {
    auto go =
        std::make_shared<std::string>("go " + std::to_string(burst) + " " + std::to_string(bytes));
    send_masked(l.clients.front()->raw, *go);
  }
  bool all = run_until(
      l, [&] { return l.events >= expected; }, std::chrono::seconds(120));
  double burst_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (sender.joinable()) sender.join();
  std::printf("burst            %d msgs x %d subscribers = %llu frames in %.3f s%s\n", burst,
              l.ready, static_cast<unsigned long long>(l.events), burst_s,
              all ? "" : " (INCOMPLETE)");
  std::printf("delivered/s      %.0f\n", static_cast<double>(l.events) / burst_s);
  run_until(
      l, [] { return false; }, std::chrono::seconds(1));
  std::printf("rss after burst  %ld KiB (peak %ld KiB)\n", rss_kib(pid), rss_kib(pid, "VmHWM:"));
  scrape();

  // Steady load: `per_second` messages/s carrying their send time, for SECONDS; message(i, ns)
  // sends one. Returns the sorted commit -> frame latencies.
  auto steady = [&](int per_second, const std::function<void(int, const std::string&)>& message) {
    l.sample = true;
    l.latencies.clear();
    l.latencies.reserve(static_cast<std::size_t>(per_second) * seconds * l.ready + 1024);
    std::atomic<bool> stop{false};
    std::thread ticker([&] {
      auto next = Clock::now();
      for (int i = 0; i < per_second * seconds && !stop; ++i) {
        std::this_thread::sleep_until(next);
        next += std::chrono::nanoseconds(1'000'000'000 / per_second);
        message(i, std::to_string(now_ns()));
      }
    });
    run_until(
        l, [] { return false; }, std::chrono::seconds(seconds + 2));
    stop = true;
    ticker.join();
    l.sample = false;
    std::sort(l.latencies.begin(), l.latencies.end());
    return std::move(l.latencies);
  };
  auto print = [](const char* label, const std::vector<std::int64_t>& lat) {
    auto pct = [&](double p) {
      if (lat.empty()) return 0.0;
      return static_cast<double>(
                 lat[std::min(lat.size() - 1, static_cast<std::size_t>(p * lat.size()))]) /
             1e6;
    };
    std::printf("%-16s p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", label, pct(0.5), pct(0.9),
                pct(0.99), pct(1.0));
  };
  auto baseline_send = [&](std::string text) {
    auto m = std::make_shared<std::string>(std::move(text));
    asio::post(l.io, [&l, m] { send_masked(l.clients.front()->raw, *m); });
  };

  // Broadcasts: every message to every subscriber.
  auto lat = steady(rate, [&](int, const std::string& ns) {
    if (daemon) {
      pg_exec("SELECT pg_notify('bench', '{\"t\":" + ns + "}')");
    } else {
      baseline_send("tick " + ns);
    }
  });
  std::printf("steady           %d msgs/s x %d subscribers for %d s: %zu frames\n", rate, l.ready,
              seconds, lat.size());
  print("latency ms", lat);
  scrape();

  // One subscriber each: a user's inbox among N connections, in turn.
  run_until(
      l, [] { return false; }, std::chrono::seconds(1));
  lat = steady(to_rate, [&](int i, const std::string& ns) {
    std::string user = std::to_string(i % std::max(1, l.ready));
    if (daemon) {
      pg_exec("SELECT pg_notify('bench_to', '{\"to\":" + user + ",\"t\":" + ns + "}')");
    } else {
      baseline_send("to " + user + " " + ns);
    }
  });
  std::printf("to one           %d msgs/s, each to 1 of %d subscribers, for %d s: %zu frames\n",
              to_rate, l.ready, seconds, lat.size());
  print("to-one latency ms", lat);
  scrape();
  if (daemon && lags.size() == 5) {
    std::printf("loop lag ms      connect %s  burst %s  steady %s  to-one %s\n",
                worst_between(lags[0], lags[1]).c_str(), worst_between(lags[1], lags[2]).c_str(),
                worst_between(lags[2], lags[3]).c_str(), worst_between(lags[3], lags[4]).c_str());
    std::printf("worst stall ms   %.2f\n", lags[4].max_s * 1e3);
  }
  if (pg != nullptr) PQfinish(pg);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "server") {
    return run_server(static_cast<unsigned short>(std::stoi(argv[2])));
  }
  if (argc >= 2 && std::string(argv[1]) == "load") return run_load(argc, argv);
  std::cerr << "usage: hub_bench server PORT | hub_bench load ...\n";
  return 2;
}
