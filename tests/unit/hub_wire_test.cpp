// The hub's write path on a loopback socket: frames encoded by Wire.hpp, queued on a QueuedStream
// under Beast's server-side websocket::stream, read by a Beast client. Checks the framing at every
// length boundary, the order of hub frames and Beast's own (ping, close), that a burst goes out in
// few gather writes whose handler memory is recycled, that a slow client's backlog is dropped
// without tearing a frame, and the SSE and multipart encodings.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "hub/HandlerMemory.hpp"
#include "hub/QueuedStream.hpp"
#include "hub/Wire.hpp"

namespace pgfanout::hub {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

// A connected pair: the hub's side (Beast over a QueuedStream) and a plain Beast client.
struct Pair {
  asio::io_context io;
  std::shared_ptr<int> owner = std::make_shared<int>(0);  // what a session would be
  std::unique_ptr<websocket::stream<QueuedStream>> server;
  websocket::stream<beast::tcp_stream> client{io};
  beast::error_code last_error;  // how the client's reading ended

  // `on_strand`: the server's socket runs on a strand of its own, as the daemon's sessions do.
  explicit Pair(int client_receive_buffer = 0, bool on_strand = false) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    if (client_receive_buffer > 0) {
      beast::get_lowest_layer(client).socket().open(tcp::v4());
      beast::get_lowest_layer(client).socket().set_option(
          asio::socket_base::receive_buffer_size(client_receive_buffer));
    }
    beast::get_lowest_layer(client).connect(acceptor.local_endpoint());
    tcp::socket s = on_strand ? acceptor.accept(asio::make_strand(io)) : acceptor.accept();
    if (client_receive_buffer > 0) {
      s.set_option(asio::socket_base::send_buffer_size(client_receive_buffer));
    }
    server = std::make_unique<websocket::stream<QueuedStream>>(beast::tcp_stream(std::move(s)));
    server->next_layer().set_owner(owner);
    int handshakes = 0;
    server->async_accept([&](beast::error_code ec) {
      EXPECT_FALSE(ec) << "accept: " << ec.message();
      ++handshakes;
    });
    client.async_handshake("127.0.0.1", "/ws", [&](beast::error_code ec) {
      EXPECT_FALSE(ec) << "handshake: " << ec.message();
      ++handshakes;
    });
    EXPECT_TRUE(run_until([&] { return handshakes == 2; }));
  }

  QueuedStream& queue() { return server->next_layer(); }

  // Runs handlers until `done` holds (false after 10 s: the test fails rather than hangs).
  bool run_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      if (io.stopped()) io.restart();
      io.run_one_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  // Reads messages until the server closes; returns them.
  std::vector<std::string> read_all() {
    std::vector<std::string> got;
    beast::flat_buffer buffer;
    bool done = false;
    std::function<void()> read = [&] {
      client.async_read(buffer, [&](beast::error_code ec, std::size_t) {
        if (ec) {
          done = true;
          last_error = ec;
          return;
        }
        got.push_back(beast::buffers_to_string(buffer.data()));
        buffer.consume(buffer.size());
        read();
      });
    };
    read();
    EXPECT_TRUE(run_until([&] { return done; }));
    return got;
  }
};

std::string body_of(std::size_t n, std::size_t i) {
  std::string s(n, 'a');
  for (std::size_t k = 0; k < n; ++k) s[k] = static_cast<char>('a' + (i + k) % 26);
  return s;
}

TEST(HubWire, WebSocketFramesAtEveryLengthBoundaryReachABeastClientInOrder) {
  Pair p;
  const std::vector<std::size_t> sizes = {0, 1, 125, 126, 127, 65535, 65536, 200000, 7};
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    p.queue().write(
        std::make_shared<const std::string>(websocket_text_frame(body_of(sizes[i], i))));
  }
  bool pinged = false;
  p.server->async_ping({}, [&](beast::error_code ec) { pinged = !ec; });
  p.queue().write(std::make_shared<const std::string>(websocket_text_frame("after the ping")));
  ASSERT_TRUE(p.run_until([&] { return pinged; }));
  bool closed = false;
  p.server->async_close(websocket::close_code::normal, [&](beast::error_code) { closed = true; });
  // Queued after Beast's close frame: must never reach the client.
  p.queue().write(std::make_shared<const std::string>(websocket_text_frame("after the close")));
  bool saw_ping = false;
  p.client.control_callback([&](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::ping) saw_ping = true;
  });

  auto got = p.read_all();
  ASSERT_EQ(got.size(), sizes.size() + 1);
  for (std::size_t i = 0; i < sizes.size(); ++i) EXPECT_EQ(got[i], body_of(sizes[i], i)) << i;
  EXPECT_EQ(got.back(), "after the ping");
  EXPECT_EQ(p.client.reason().code, websocket::close_code::normal);
  EXPECT_TRUE(saw_ping);
  ASSERT_TRUE(p.run_until([&] { return closed; }));
  EXPECT_EQ(p.queue().queued_bytes(), 0u);
}

TEST(HubWire, ABurstQueuedInOneTurnLeavesInOneGatherWrite) {
  Pair p;
  const std::size_t writes_before = p.queue().writes();
  auto shared = std::make_shared<const std::string>(websocket_text_frame("shared event"));
  for (int i = 0; i < 200; ++i) p.queue().write(shared);
  EXPECT_EQ(p.queue().queued_bytes(), 200 * shared->size());
  p.io.poll();
  ASSERT_TRUE(p.run_until([&] { return p.queue().queued_bytes() == 0; }));
  EXPECT_EQ(p.queue().writes() - writes_before, 1u);

  bool closed = false;
  p.server->async_close(websocket::close_code::normal, [&](beast::error_code) { closed = true; });
  auto got = p.read_all();
  ASSERT_EQ(got.size(), 200u);
  for (const auto& m : got) EXPECT_EQ(m, "shared event");
  ASSERT_TRUE(p.run_until([&] { return closed; }));
}

TEST(HubWire, WritesAfterTheFirstTakeTheirHandlerMemoryFromTheFreeLists) {
  Pair p(0, /*on_strand=*/true);
  auto frame = std::make_shared<const std::string>(websocket_text_frame("event"));
  auto one_write = [&] {
    p.queue().write(frame);
    ASSERT_TRUE(p.run_until([&] { return p.queue().queued_bytes() == 0; }));
  };
  one_write();
  const auto before = handler_memory::stats();
  const std::size_t writes_before = p.queue().writes();
  for (int i = 0; i < 20; ++i) one_write();
  const auto after = handler_memory::stats();
  EXPECT_EQ(p.queue().writes() - writes_before, 20u);
  EXPECT_EQ(after.fresh, before.fresh);
  // The flush's post each; the write itself went out at once, with no operation to allocate.
  EXPECT_GE(after.reused - before.reused, 20u) << "a post each";
}

TEST(HubWire, DroppingASlowClientsBacklogKeepsFramesWholeAndInOrder) {
  Pair p(4096);  // small socket buffers: the queue backs up quickly
  const std::size_t handshake = p.queue().writes();
  const std::size_t total = 2000;
  for (std::size_t i = 0; i < total; ++i) {
    p.queue().write(std::make_shared<const std::string>(
        websocket_text_frame(std::to_string(i) + body_of(500, i))));
  }
  // Let the first gather write fill the socket buffers; the client reads nothing yet.
  ASSERT_TRUE(p.run_until([&] { return p.queue().writes() > handshake; }));
  p.io.restart();
  for (int i = 0; i < 20; ++i) p.io.poll();
  ASSERT_GT(p.queue().queued_bytes(), 0u);
  const std::size_t before = p.queue().queued_bytes();
  p.queue().drop_unsent();
  EXPECT_LT(p.queue().queued_bytes(), before);
  bool closed = false;
  p.server->async_close(websocket::close_code::try_again_later,
                        [&](beast::error_code) { closed = true; });

  auto got = p.read_all();
  ASSERT_GT(got.size(), 0u) << p.last_error.message();
  ASSERT_LT(got.size(), total);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i], std::to_string(i) + body_of(500, i)) << i;
  }
  EXPECT_EQ(p.client.reason().code, websocket::close_code::try_again_later);
  ASSERT_TRUE(p.run_until([&] { return closed; }));
}

TEST(HubWire, AFailedWriteClosesTheSocketAndFailsBeastsPendingWrite) {
  Pair p;
  beast::get_lowest_layer(p.client).close();
  // More than the socket buffers hold, so the write is still going when the peer's reset arrives;
  // Beast's ping waits behind it.
  p.queue().write(std::make_shared<const std::string>(websocket_text_frame(body_of(16 << 20, 0))));
  beast::error_code ping_error;
  bool done = false;
  p.server->async_ping({}, [&](beast::error_code ec) {
    ping_error = ec;
    done = true;
  });
  ASSERT_TRUE(p.run_until([&] { return done; }));
  EXPECT_TRUE(ping_error);
  EXPECT_EQ(p.queue().queued_bytes(), 0u);
  EXPECT_FALSE(beast::get_lowest_layer(*p.server).socket().is_open());
  // Further writes are ignored, not queued.
  p.queue().write(std::make_shared<const std::string>(websocket_text_frame("late")));
  EXPECT_EQ(p.queue().queued_bytes(), 0u);
}

TEST(HubWire, SharedEncodingsAreMadeOncePerKind) {
  HubMessage m;
  m.topic = "t";
  m.frame = std::make_shared<const std::string>(R"({"type":"event","topic":"t","data":{"a":1}})");
  m.data = std::make_shared<const std::string>(R"({"a":1})");
  m.id = "42";
  const auto& ws = wire_bytes(m, Wire::WebSocketEvent);
  EXPECT_EQ(ws.get(), wire_bytes(m, Wire::WebSocketEvent).get());
  EXPECT_EQ(*ws, "\x81" + std::string(1, static_cast<char>(m.frame->size())) + *m.frame);
  EXPECT_EQ(*wire_bytes(m, Wire::WebSocketData), "\x81\x07" + *m.data);
  EXPECT_EQ(*wire_bytes(m, Wire::Sse), "id: 42\ndata: " + *m.frame + "\n\n");
  EXPECT_EQ(*wire_bytes(m, Wire::Multipart),
            "Content-Type: application/json\n\n" + *m.data + "\n--|||\n");
  EXPECT_EQ(sse_event("{}", ""), "data: {}\n\n");
  EXPECT_EQ(sse_event("{}", "0/16B3748"), "id: 0/16B3748\ndata: {}\n\n");
}

}  // namespace
}  // namespace pgfanout::hub
