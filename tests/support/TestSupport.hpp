// Helpers shared by the tests: the servers the harness started, a blocking libpq session, a
// throwaway database, running an io_context until a condition holds, and running the pgfanout
// binary as a child process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <libpq-fe.h>

namespace boost::asio {
class io_context;
}

namespace pgfanout::test {

// The value of an environment variable the harness exports; fails the test when it is missing.
std::string harness_env(const char* name);
std::string test_dsn();  // PGFANOUT_TEST_DSN

// A blocking libpq connection for test set-up and checks.
class BlockingPg {
 public:
  explicit BlockingPg(const std::string& dsn);
  ~BlockingPg();
  BlockingPg(const BlockingPg&) = delete;
  BlockingPg& operator=(const BlockingPg&) = delete;

  // Runs `sql` (may hold several statements); fails the test on error.
  void exec(const std::string& sql);
  // Runs `sql` and returns the error message, or "" when it succeeded.
  std::string try_exec(const std::string& sql);
  // First column of the first row, or nullopt for no rows / NULL.
  std::optional<std::string> value(const std::string& sql,
                                   const std::vector<std::string>& params = {});
  void notify(const std::string& channel, const std::string& payload);
  PGconn* raw() { return conn_; }

 private:
  PGconn* conn_ = nullptr;
};

// Creates a fresh database for one test and drops it afterwards.
class ScratchDatabase {
 public:
  explicit ScratchDatabase(const std::string& prefix = "t");
  ~ScratchDatabase();
  const std::string& dsn() const { return dsn_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::string dsn_;
};

// Runs `io` until `done()` is true or `timeout` passes; returns done().
bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Polls `done()` every 20 ms until it holds or `timeout` passes; returns done().
bool wait_until(const std::function<bool()>& done,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Writes `text` to a new file under a temporary directory and returns its path.
std::string write_temp_file(const std::string& name, const std::string& text);

// A blocking HTTP/1.1 request to 127.0.0.1:`port` (Connection: close). `status` is 0 when the
// connection failed.
struct HttpReply {
  int status = 0;
  std::string headers;  // the status line and headers, as received
  std::string body;
};
HttpReply http_request(int port, const std::string& method, const std::string& target,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));
// The same to `host` (an IPv4 address), e.g. a daemon in another network namespace.
HttpReply http_request(const std::string& host, int port, const std::string& method,
                       const std::string& target,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));
inline HttpReply http_get(int port, const std::string& target) {
  return http_request(port, "GET", target);
}

// The pgfanout binary as a child process, stdout and stderr captured in a file.
class DaemonProcess {
 public:
  // An `env` value equal to this is replaced by the child's own pid (for WATCHDOG_PID).
  static constexpr const char* kChildPid = "<child pid>";

  // `wrapper`: a command that runs the binary, e.g. {"ip", "netns", "exec", "NAME"} (it must exec
  // it in place, so that pid() is the daemon's).
  DaemonProcess(std::vector<std::string> args, std::map<std::string, std::string> env = {},
                std::vector<std::string> wrapper = {});
  ~DaemonProcess();
  void signal(int sig);
  // Waits for exit; returns the exit code, or -1 on timeout, 128+N when killed by signal N.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  std::string output() const;
  bool output_contains(const std::string& text) const;
  // Waits until the output contains `text`.
  bool wait_for_output(const std::string& text,
                       std::chrono::milliseconds timeout = std::chrono::seconds(15)) const;
  // The port of "HTTP listening on HOST:PORT" in the output, waiting for it; 0 if it never came.
  int http_port(std::chrono::milliseconds timeout = std::chrono::seconds(15)) const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  bool exited_ = false;
  int status_ = 0;
};

// The value of one series of the daemon's /metrics on `port` (e.g.
// `pgfanout_reloads_total{result="ok"}`), or -1 when it is not there.
double metric_sample(int port, const std::string& series);
// Writes `text` to the config file `path`, sends SIGHUP and waits (up to 10 s) until
// pgfanout_reloads_total{result="ok"} says the reload was applied; false when it never was.
bool reload_config(DaemonProcess& daemon, int port, const std::string& path,
                   const std::string& text);

// Runs the pgfanout binary to completion; returns {exit code, stdout+stderr}.
std::pair<int, std::string> run_pgfanout(const std::vector<std::string>& args,
                                         const std::map<std::string, std::string>& env = {});

}  // namespace pgfanout::test
