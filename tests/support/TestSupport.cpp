#include "support/TestSupport.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

namespace pgfanout::test {

std::string harness_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    ADD_FAILURE() << name
                  << " is not set: run integration tests through tests/harness/with-servers.sh "
                     "(make test)";
    return {};
  }
  return v;
}

std::string test_dsn() {
  return harness_env("PGFANOUT_TEST_DSN");
}

BlockingPg::BlockingPg(const std::string& dsn) {
  conn_ = PQconnectdb(dsn.c_str());
  if (PQstatus(conn_) != CONNECTION_OK) {
    ADD_FAILURE() << "cannot connect to " << dsn << ": " << PQerrorMessage(conn_);
  }
}

BlockingPg::~BlockingPg() {
  PQfinish(conn_);
}

std::string BlockingPg::try_exec(const std::string& sql) {
  PGresult* r = PQexec(conn_, sql.c_str());
  auto st = PQresultStatus(r);
  std::string err;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    err = PQresultErrorMessage(r);
    if (err.empty()) err = PQerrorMessage(conn_);
    if (err.empty()) err = "error";
  }
  PQclear(r);
  return err;
}

void BlockingPg::exec(const std::string& sql) {
  auto err = try_exec(sql);
  EXPECT_EQ(err, "") << "SQL failed: " << sql;
}

std::optional<std::string> BlockingPg::value(const std::string& sql,
                                             const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  PGresult* r = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, 0);
  std::optional<std::string> out;
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    ADD_FAILURE() << "query failed: " << sql << ": " << PQresultErrorMessage(r);
  } else if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
    out = PQgetvalue(r, 0, 0);
  }
  PQclear(r);
  return out;
}

void BlockingPg::notify(const std::string& channel, const std::string& payload) {
  value("SELECT pg_notify($1, $2)::text", {channel, payload});
}

ScratchDatabase::ScratchDatabase(const std::string& prefix) {
  std::random_device rd;
  name_ =
      "pgfanout_" + prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(rd() % 100000);
  BlockingPg admin(test_dsn());
  admin.exec("CREATE DATABASE " + name_);
  dsn_ = test_dsn() + " dbname=" + name_;
}

ScratchDatabase::~ScratchDatabase() {
  BlockingPg admin(test_dsn());
  // A database with a replication slot cannot be dropped: end the slots' streams, drop them.
  for (int attempt = 0; attempt < 50; ++attempt) {
    admin.try_exec(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
        "WHERE database = '" +
        name_ + "' AND active_pid IS NOT NULL");
    admin.try_exec(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
        "WHERE database = '" +
        name_ + "' AND NOT active");
    if (admin.value("SELECT count(*) FROM pg_replication_slots WHERE database = '" + name_ + "'") ==
        "0") {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  admin.try_exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
}

bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(10));
    if (io.stopped()) io.restart();
  }
  return done();
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

std::string write_temp_file(const std::string& name, const std::string& text) {
  char dir[] = "/tmp/pgfanout-test.XXXXXX";
  if (mkdtemp(dir) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
    return {};
  }
  std::string path = std::string(dir) + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

DaemonProcess::DaemonProcess(std::vector<std::string> args, std::map<std::string, std::string> env,
                             std::vector<std::string> wrapper) {
  log_path_ = write_temp_file("daemon.log", "");
  pid_ = fork();
  if (pid_ == 0) {
    FILE* f = std::fopen(log_path_.c_str(), "w");
    if (f != nullptr) {
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
    }
    for (const auto& [k, v] : env) {
      setenv(k.c_str(), v == kChildPid ? std::to_string(getpid()).c_str() : v.c_str(), 1);
    }
    std::vector<char*> argv;
    std::string bin = PGFANOUT_BINARY;
    for (auto& w : wrapper) argv.push_back(w.data());
    argv.push_back(bin.data());
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (wrapper.empty()) {
      execv(bin.c_str(), argv.data());
    } else {
      execvp(argv[0], argv.data());
    }
    _exit(127);
  }
}

DaemonProcess::~DaemonProcess() {
  if (!exited_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
  }
}

double metric_sample(int port, const std::string& series) {
  std::string text = http_get(port, "/metrics").body;
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

bool reload_config(DaemonProcess& daemon, int port, const std::string& path,
                   const std::string& text) {
  const std::string ok = R"(pgfanout_reloads_total{result="ok"})";
  double before = metric_sample(port, ok);
  std::ofstream(path) << text;
  daemon.signal(SIGHUP);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (metric_sample(port, ok) <= before) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

void DaemonProcess::signal(int sig) {
  if (!exited_) kill(pid_, sig);
}

int DaemonProcess::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!exited_) {
    pid_t r = waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (WIFEXITED(status_)) return WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
  return -1;
}

std::string DaemonProcess::output() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool DaemonProcess::output_contains(const std::string& text) const {
  return output().find(text) != std::string::npos;
}

bool DaemonProcess::wait_for_output(const std::string& text,
                                    std::chrono::milliseconds timeout) const {
  return wait_until([&] { return output_contains(text); }, timeout);
}

int DaemonProcess::http_port(std::chrono::milliseconds timeout) const {
  const std::string marker = "HTTP listening on ";
  if (!wait_for_output(marker, timeout)) return 0;
  auto out = output();
  auto at = out.find(marker) + marker.size();
  auto end = out.find_first_of("\r\n", at);
  auto address = out.substr(at, end - at);
  return std::atoi(address.substr(address.rfind(':') + 1).c_str());
}

HttpReply http_request(int port, const std::string& method, const std::string& target,
                       std::chrono::milliseconds timeout) {
  return http_request("127.0.0.1", port, method, target, timeout);
}

HttpReply http_request(const std::string& host, int port, const std::string& method,
                       const std::string& target, std::chrono::milliseconds timeout) {
  HttpReply reply;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return reply;
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return reply;
  }
  std::string req =
      method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return reply;
  }
  std::string raw;
  char buf[8192];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) raw.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  auto split = raw.find("\r\n\r\n");
  if (raw.size() < 12 || split == std::string::npos) return reply;
  reply.status = std::atoi(raw.substr(9, 3).c_str());
  reply.headers = raw.substr(0, split);
  reply.body = raw.substr(split + 4);
  return reply;
}

std::pair<int, std::string> run_pgfanout(const std::vector<std::string>& args,
                                         const std::map<std::string, std::string>& env) {
  DaemonProcess p(args, env);
  int code = p.wait(std::chrono::seconds(60));
  return {code, p.output()};
}

}  // namespace pgfanout::test
