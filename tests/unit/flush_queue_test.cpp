// FlushQueue: streams with frames queued in one handler are flushed kBatch per handler, and work
// posted meanwhile runs between the batches rather than after all of them; every stream's bytes
// arrive whole.
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>

#include "hub/FlushQueue.hpp"
#include "hub/QueuedStream.hpp"

namespace pgfanout::hub {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

TEST(FlushQueue, ABroadcastIsFlushedInBatchesWithOtherWorkInBetween) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::size_t n = 2 * FlushQueue::kBatch + 10;
  auto owner = std::make_shared<int>(0);
  std::vector<tcp::socket> clients;
  std::vector<std::unique_ptr<QueuedStream>> streams;
  for (std::size_t i = 0; i < n; ++i) {
    clients.emplace_back(io).connect(acceptor.local_endpoint());
    streams.push_back(std::make_unique<QueuedStream>(boost::beast::tcp_stream(acceptor.accept())));
    streams.back()->set_owner(owner);
  }
  auto& queue = asio::use_service<FlushQueue>(io);
  const std::size_t batches_before = queue.batches();

  auto frame = std::make_shared<const std::string>("broadcast");
  std::size_t flushed_when_other_work_ran = 0;
  asio::post(io, [&] {
    for (auto& s : streams) s->write(frame);
    asio::post(io, [&] {
      for (auto& s : streams) flushed_when_other_work_ran += s->writes();
    });
  });
  io.run();

  EXPECT_EQ(queue.batches() - batches_before, 3u);
  EXPECT_EQ(flushed_when_other_work_ran, FlushQueue::kBatch);
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(streams[i]->writes(), 1u);
    EXPECT_EQ(streams[i]->queued_bytes(), 0u);
    std::string got(frame->size(), '\0');
    asio::read(clients[i], asio::buffer(got));
    EXPECT_EQ(got, *frame);
  }
}

}  // namespace
}  // namespace pgfanout::hub
