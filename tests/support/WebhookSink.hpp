// WebhookSink: a local HTTP or HTTPS server for webhook tests.
//
// It listens on 127.0.0.1 (a free port), keeps connections alive, records every request, and
// answers each with what `respond` returns: a status with headers and body, or a misbehaviour
// (hang until the sink is destroyed or release() is called, close the connection mid-response).
// TestCa makes a throwaway certificate authority and server certificates with the openssl
// command. The sink runs a thread per connection and joins it once the connection has closed; its
// methods may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pgfanout::test {

// A CA and a server certificate signed by it, in a temporary directory.
struct TestCa {
  // `san` is the server certificate's subjectAltName, e.g. "DNS:localhost".
  explicit TestCa(const std::string& san = "DNS:localhost");
  std::string dir;
  std::string ca_cert;      // PEM of the CA: give it as ca_file
  std::string server_cert;  // PEM of the server certificate
  std::string server_key;
};

struct SinkRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  int connection = 0;  // which accepted connection carried it, from 1
  std::chrono::system_clock::time_point received;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct SinkReply {
  enum class Kind { Respond, Hang, CloseMidResponse };
  Kind kind = Kind::Respond;
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body = "ok";
  bool close = false;  // Connection: close
};

class WebhookSink {
 public:
  using Respond = std::function<SinkReply(const SinkRequest&)>;

  // HTTP; with `tls`, HTTPS with its certificate.
  // `bind`: the address it listens on (another network namespace reaches it on the host's).
  explicit WebhookSink(Respond respond = {}, const TestCa* tls = nullptr,
                       const std::string& bind = "127.0.0.1");
  ~WebhookSink();
  WebhookSink(const WebhookSink&) = delete;
  WebhookSink& operator=(const WebhookSink&) = delete;

  std::uint16_t port() const { return port_; }
  void set_respond(Respond respond);
  std::vector<SinkRequest> requests() const;
  std::size_t request_count() const;
  int connections_accepted() const { return accepted_.load(); }
  int max_concurrent() const { return max_concurrent_.load(); }
  // Lets hanging requests go (they then close without answering).
  void release();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  std::uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<int> max_concurrent_{0};
};

}  // namespace pgfanout::test
