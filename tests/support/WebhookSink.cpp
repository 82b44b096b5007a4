#include "support/WebhookSink.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "support/TestSupport.hpp"

namespace pgfanout::test {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

TestCa::TestCa(const std::string& san) {
  char tmpl[] = "/tmp/pgfanout-ca.XXXXXX";
  dir = mkdtemp(tmpl);
  ca_cert = dir + "/ca.pem";
  server_cert = dir + "/server.pem";
  server_key = dir + "/server.key";
  std::string ext = dir + "/ext.cnf";
  std::ofstream(ext) << "subjectAltName=" << san << "\n";
  std::string cmd =
      "cd " + dir +
      " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
      "-subj /CN=pgfanout-test-ca 2>/dev/null"
      " && openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
      "-subj /CN=pgfanout-test-server 2>/dev/null"
      " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
      "-out server.pem -days 2 -extfile ext.cnf 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl failed: " + cmd);
}

struct WebhookSink::Impl {
  WebhookSink* owner = nullptr;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::optional<ssl::context> tls;
  mutable std::mutex mutex;
  std::condition_variable released_cv;
  bool released = false;
  bool stopping = false;
  Respond respond;
  std::vector<SinkRequest> requests;
  std::set<int> open_fds;
  // Connection threads by connection number; a thread that has finished puts its number in
  // `finished`, and the accept loop joins those before it accepts the next connection, so a
  // client that reconnects thousands of times a second does not pile up finished threads.
  std::map<int, std::thread> threads;
  std::vector<int> finished;
  std::thread accept_thread;
  int concurrent = 0;

  void accept_loop() {
    int n = 0;
    while (true) {
      boost::system::error_code ec;
      tcp::socket socket(io);
      acceptor.accept(socket, ec);
      reap();
      if (ec) return;
      std::lock_guard lock(mutex);
      if (stopping) return;
      open_fds.insert(socket.native_handle());
      ++n;
      owner->accepted_.fetch_add(1);
      // Started under the lock: serve() takes it first, so the thread is in `threads` before it
      // can report itself finished.
      threads.emplace(
          n, std::thread([this, s = std::move(socket), n]() mutable { serve(std::move(s), n); }));
    }
  }

  // Joins the connection threads that have finished.
  void reap() {
    std::vector<std::thread> done;
    {
      std::lock_guard lock(mutex);
      for (int conn : finished) {
        auto it = threads.find(conn);
        if (it == threads.end()) continue;
        done.push_back(std::move(it->second));
        threads.erase(it);
      }
      finished.clear();
    }
    for (auto& t : done) t.join();
  }

  template <typename Stream>
  void session(Stream& stream, int conn) {
    boost::beast::flat_buffer buffer;
    while (true) {
      http::request<http::string_body> req;
      boost::system::error_code ec;
      http::read(stream, buffer, req, ec);
      if (ec) return;
      SinkRequest r;
      r.method = std::string(req.method_string());
      r.target = std::string(req.target());
      for (const auto& f : req) {
        std::string name(f.name_string());
        std::transform(name.begin(), name.end(), name.begin(), ::tolower);
        r.headers[name] = std::string(f.value());
      }
      r.body = req.body();
      r.connection = conn;
      r.received = std::chrono::system_clock::now();
      SinkReply reply;
      {
        std::unique_lock lock(mutex);
        requests.push_back(r);
        auto fn = respond;
        lock.unlock();
        if (fn) reply = fn(r);
      }
      if (reply.kind == SinkReply::Kind::Hang) {
        std::unique_lock lock(mutex);
        released_cv.wait(lock, [&] { return released || stopping; });
        return;
      }
      if (reply.kind == SinkReply::Kind::CloseMidResponse) {
        std::string partial = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial";
        asio::write(stream, asio::buffer(partial), ec);
        return;
      }
      http::response<http::string_body> res{static_cast<http::status>(reply.status), 11};
      for (const auto& [k, v] : reply.headers) res.set(k, v);
      res.body() = reply.body;
      res.keep_alive(!reply.close && req.keep_alive());
      res.prepare_payload();
      http::write(stream, res, ec);
      if (ec || !res.keep_alive()) return;
    }
  }

  void serve(tcp::socket socket, int conn) {
    {
      std::lock_guard lock(mutex);
      owner->max_concurrent_.store(std::max(owner->max_concurrent_.load(), ++concurrent));
    }
    int fd = socket.native_handle();
    // The connection stops counting before it is closed: the client may open the next one as soon
    // as it sees this one end.
    auto leave = [&] {
      std::lock_guard lock(mutex);
      --concurrent;
    };
    boost::system::error_code ec;
    if (tls) {
      ssl::stream<tcp::socket> stream(std::move(socket), *tls);
      stream.handshake(ssl::stream_base::server, ec);
      if (!ec) session(stream, conn);
      leave();
      stream.lowest_layer().close(ec);
    } else {
      session(socket, conn);
      leave();
      socket.close(ec);
    }
    std::lock_guard lock(mutex);
    open_fds.erase(fd);
    finished.push_back(conn);
  }
};

WebhookSink::WebhookSink(Respond respond, const TestCa* tls, const std::string& bind)
    : impl_(std::make_shared<Impl>()) {
  impl_->owner = this;
  impl_->respond = std::move(respond);
  if (tls != nullptr) {
    impl_->tls.emplace(ssl::context::tls_server);
    impl_->tls->use_certificate_chain_file(tls->server_cert);
    impl_->tls->use_private_key_file(tls->server_key, ssl::context::pem);
  }
  tcp::endpoint ep(asio::ip::make_address(bind), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  port_ = impl_->acceptor.local_endpoint().port();
  impl_->accept_thread = std::thread([impl = impl_.get()] { impl->accept_loop(); });
}

WebhookSink::~WebhookSink() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
    for (int fd : impl_->open_fds) ::shutdown(fd, SHUT_RDWR);
  }
  impl_->released_cv.notify_all();
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  impl_->accept_thread.join();
  // No new thread starts now; the remaining ones end once their sockets are shut down.
  for (auto& [_, t] : impl_->threads) t.join();
}

void WebhookSink::set_respond(Respond respond) {
  std::lock_guard lock(impl_->mutex);
  impl_->respond = std::move(respond);
}

std::vector<SinkRequest> WebhookSink::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->requests;
}

std::size_t WebhookSink::request_count() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->requests.size();
}

void WebhookSink::release() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->released = true;
  }
  impl_->released_cv.notify_all();
}

}  // namespace pgfanout::test
