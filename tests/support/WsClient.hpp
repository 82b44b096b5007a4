// Test clients for the hub: a blocking WebSocket client (Beast underneath, kept out of this
// header) and a raw HTTP stream reader for SSE and Hippie's multipart and poll endpoints.
// Each call runs the client's own io_context until it completes or times out.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pgfanout::test {

class WsClient {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;
  // Connects and upgrades. `receive_buffer` > 0 shrinks the socket's receive buffer (a slow
  // client fills up sooner). `max_segment` > 0 sets the TCP segment size the client announces:
  // on loopback (64 KiB segments) the server's send buffer grows to megabytes and hides a client
  // that never reads; small segments keep it at tens of kilobytes.
  explicit WsClient(int port, const std::string& target = "/ws", const Headers& headers = {},
                    int receive_buffer = 0, int max_segment = 0);
  // The same to `host` (an IPv4 address), e.g. a daemon in another network namespace.
  WsClient(const std::string& host, int port, const std::string& target = "/ws",
           const Headers& headers = {});
  ~WsClient();

  bool open() const;
  int http_status() const;  // of the upgrade response (101 when it worked)
  const std::string& http_body() const;
  const std::string& subprotocol() const;

  void send(const std::string& text);
  // The next text message, or nullopt on timeout / close.
  std::optional<std::string> receive(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Reads messages until one contains `needle`; returns it (skipped ones are kept in `skipped`).
  std::optional<std::string> receive_containing(
      const std::string& needle, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Sends `json` (an object's text without its closing brace gets `,"ref":N}`) and returns the
  // reply that carries that ref.
  std::optional<std::string> request(const std::string& json_object,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Whether the server closed the connection, and with which code (after a receive failed).
  bool closed() const;
  int close_code() const;

  std::vector<std::string> skipped;

 private:
  void connect(const std::string& host, int port, const std::string& target, const Headers& headers,
               int receive_buffer, int max_segment);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  int next_ref_ = 1;
};

// A raw HTTP request whose response is read incrementally (SSE, multipart, long polls).
class HttpStream {
 public:
  HttpStream(int port, const std::string& request_text);
  HttpStream(const std::string& host, int port, const std::string& request_text);
  ~HttpStream();
  // Reads until the received text (head included) contains `needle` or `timeout` passes.
  bool wait_for(const std::string& needle,
                std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Reads until the peer closes (or timeout); returns whether it closed.
  bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  const std::string& text() const { return text_; }
  int status() const;

 private:
  int fd_ = -1;
  std::string text_;
};

}  // namespace pgfanout::test
