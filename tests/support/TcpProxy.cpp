#include "support/TcpProxy.hpp"

#include <array>
#include <atomic>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <boost/asio.hpp>

namespace pgfanout::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

struct Link;

// One direction of a proxied connection.
struct Pump : std::enable_shared_from_this<Pump> {
  Pump(tcp::socket& from_, tcp::socket& to_, std::shared_ptr<Link> link_)
      : from(from_), to(to_), link(std::move(link_)) {}
  void start();
  void on_read(boost::system::error_code ec, std::size_t n);
  void resume();
  tcp::socket& from;
  tcp::socket& to;
  std::shared_ptr<Link> link;
  std::array<char, 16384> buf{};
  std::size_t held = 0;
  bool waiting = false;
};

}  // namespace

struct TcpProxy::Impl : std::enable_shared_from_this<TcpProxy::Impl> {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  tcp::endpoint target;
  std::thread thread;
  std::atomic<bool> frozen{false};
  std::atomic<bool> refusing{false};
  std::atomic<int> accepted{0};
  std::set<std::shared_ptr<Link>> links;  // touched only on the proxy thread
  std::vector<std::shared_ptr<Pump>> parked;

  void accept();
};

namespace {

struct Link : std::enable_shared_from_this<Link> {
  explicit Link(asio::io_context& io, TcpProxy::Impl* owner_)
      : client(io), server(io), owner(owner_) {}
  void close() {
    boost::system::error_code ec;
    client.close(ec);
    server.close(ec);
  }
  tcp::socket client;
  tcp::socket server;
  TcpProxy::Impl* owner;
};

void Pump::start() {
  auto self = shared_from_this();
  from.async_read_some(asio::buffer(buf), [self](boost::system::error_code ec, std::size_t n) {
    self->on_read(ec, n);
  });
}

void Pump::on_read(boost::system::error_code ec, std::size_t n) {
  if (ec) {
    link->close();
    link->owner->links.erase(link);
    return;
  }
  held = n;
  if (link->owner->frozen) {
    waiting = true;
    link->owner->parked.push_back(shared_from_this());
    return;
  }
  resume();
}

void Pump::resume() {
  waiting = false;
  auto self = shared_from_this();
  asio::async_write(to, asio::buffer(buf.data(), held),
                    [self](boost::system::error_code ec, std::size_t) {
                      if (ec) {
                        self->link->close();
                        self->link->owner->links.erase(self->link);
                        return;
                      }
                      self->start();
                    });
}

}  // namespace

void TcpProxy::Impl::accept() {
  auto link = std::make_shared<Link>(io, this);
  acceptor.async_accept(link->client, [this, link](boost::system::error_code ec) {
    if (ec) return;
    if (refusing) {
      link->close();
      accept();
      return;
    }
    ++accepted;
    links.insert(link);
    link->server.async_connect(target, [this, link](boost::system::error_code ec2) {
      if (ec2) {
        link->close();
        links.erase(link);
        return;
      }
      std::make_shared<Pump>(link->client, link->server, link)->start();
      std::make_shared<Pump>(link->server, link->client, link)->start();
    });
    accept();
  });
}

TcpProxy::TcpProxy(std::string target_host, std::uint16_t target_port)
    : impl_(std::make_shared<Impl>()) {
  impl_->target = tcp::endpoint(asio::ip::make_address(target_host), target_port);
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  impl_->accept();
  impl_->thread = std::thread([impl = impl_] { impl->io.run(); });
}

TcpProxy::~TcpProxy() {
  asio::post(impl_->io, [impl = impl_] {
    boost::system::error_code ec;
    impl->acceptor.close(ec);
    for (const auto& l : impl->links) l->close();
    impl->links.clear();
    impl->parked.clear();
    impl->io.stop();
  });
  impl_->thread.join();
}

std::uint16_t TcpProxy::port() const {
  return impl_->acceptor.local_endpoint().port();
}

void TcpProxy::freeze() {
  impl_->frozen = true;
}

void TcpProxy::cut() {
  impl_->refusing = true;
  std::promise<void> done;
  auto f = done.get_future();
  asio::post(impl_->io, [impl = impl_, &done] {
    for (const auto& l : impl->links) l->close();
    impl->links.clear();
    impl->parked.clear();
    done.set_value();
  });
  f.wait();
}

void TcpProxy::restore() {
  impl_->refusing = false;
  impl_->frozen = false;
  asio::post(impl_->io, [impl = impl_] {
    auto parked = std::move(impl->parked);
    impl->parked.clear();
    for (auto& p : parked) p->resume();
  });
}

int TcpProxy::connections_accepted() const {
  return impl_->accepted;
}

}  // namespace pgfanout::test
