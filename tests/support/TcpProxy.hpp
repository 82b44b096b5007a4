// TcpProxy: a loopback TCP proxy for fault tests, between the daemon and a server.
//
// It listens on 127.0.0.1 (a free port) and forwards every connection to the target. freeze()
// stops moving bytes in both directions while keeping connections open, like a network path
// that silently drops packets (TCP would retransmit them later): restore() moves them on.
// cut() closes every connection and refuses new ones until restore(). The proxy runs on its own
// thread; its methods may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace pgfanout::test {

class TcpProxy {
 public:
  TcpProxy(std::string target_host, std::uint16_t target_port);
  ~TcpProxy();
  std::uint16_t port() const;
  void freeze();
  void cut();
  void restore();
  int connections_accepted() const;

  struct Impl;  // public so the connection helpers in the .cpp can name it

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace pgfanout::test
