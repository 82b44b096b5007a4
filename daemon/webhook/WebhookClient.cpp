#include "webhook/WebhookClient.hpp"

#include "tls/TlsClient.hpp"
#include "webhook/WebhookClientImpl.hpp"

namespace pgfanout::webhook {

std::shared_ptr<ssl::context> WebhookClient::Impl::ssl_context(const std::string& ca_file,
                                                               std::string& error) {
  if (auto it = ssl_contexts.find(ca_file); it != ssl_contexts.end()) return it->second;
  auto ctx = tls::make_tls_client_context({ca_file, {}, {}}, error);
  if (!ctx) {
    error = "tls: " + error;
    return nullptr;
  }
  ssl_contexts.emplace(ca_file, ctx);
  return ctx;
}

void WebhookClient::Impl::send(Job job) {
  if (closed) {
    asio::post(io, [done = std::move(job.done)]() mutable {
      AttemptResult r;
      r.error = "closed";
      if (done) done(std::move(r));
    });
    return;
  }
  auto key = job.attempt.endpoint.key();
  auto it = pools.find(key);
  if (it == pools.end()) {
    auto pool = std::make_unique<Pool>();
    pool->endpoint = job.attempt.endpoint;
    it = pools.emplace(key, std::move(pool)).first;
  }
  it->second->waiting.push_back(std::move(job));
  pump(*it->second);
}

void WebhookClient::Impl::pump(Pool& pool) {
  while (!pool.waiting.empty() && !closed) {
    std::shared_ptr<Connection> conn;
    auto now = SteadyClock::now();
    while (!pool.idle.empty()) {
      conn = std::move(pool.idle.back());
      pool.idle.pop_back();
      if (conn->fresh(now)) break;
      conn->close();
      conn.reset();
    }
    if (!conn) {
      if (pool.active >= opts.max_connections_per_endpoint) return;
      std::shared_ptr<ssl::context> ctx;
      if (pool.endpoint.tls) {
        std::string error;
        ctx = ssl_context(pool.endpoint.ca_file, error);
        if (!ctx) {
          Job job = std::move(pool.waiting.front());
          pool.waiting.pop_front();
          asio::post(io, [done = std::move(job.done), error]() mutable {
            AttemptResult r;
            r.error = error;
            if (done) done(std::move(r));
          });
          continue;
        }
      }
      conn = std::make_shared<Connection>(shared_from_this(), pool, std::move(ctx));
    }
    ++pool.active;
    pool.busy.insert(conn);
    Job job = std::move(pool.waiting.front());
    pool.waiting.pop_front();
    conn->start(std::move(job));
  }
}

void WebhookClient::Impl::finished(Pool& pool, const std::shared_ptr<Connection>& conn,
                                   bool reusable, Job job, AttemptResult&& result) {
  --pool.active;
  pool.busy.erase(conn);
  if (reusable && !closed) {
    pool.idle.push_back(conn);
  } else {
    conn->close();
  }
  pump(pool);
  if (job.done) job.done(std::move(result));
}

void WebhookClient::Impl::shutdown(bool notify) {
  closed = true;
  std::vector<Job> failed;
  for (auto& [_, pool] : pools) {
    for (auto& c : pool->idle) c->close();
    pool->idle.clear();
    for (auto& job : pool->waiting) failed.push_back(std::move(job));
    pool->waiting.clear();
    auto busy = pool->busy;
    for (const auto& c : busy) {
      if (notify) {
        c->close();  // the pending operation fails and reports
      } else {
        c->abandon();
      }
    }
  }
  if (!notify) return;
  for (auto& job : failed) {
    AttemptResult r;
    r.error = "closed";
    if (job.done) job.done(std::move(r));
  }
}

WebhookClient::WebhookClient(asio::io_context& io, Options options)
    : impl_(std::make_shared<Impl>(io, options)) {}

WebhookClient::~WebhookClient() {
  impl_->shutdown(false);
}

void WebhookClient::send(HttpAttempt attempt, Done done) {
  impl_->send(Job{std::move(attempt), std::move(done)});
}

std::size_t WebhookClient::in_flight() const {
  std::size_t n = 0;
  for (const auto& [_, pool] : impl_->pools) {
    n += static_cast<std::size_t>(pool->active) + pool->waiting.size();
  }
  return n;
}

std::size_t WebhookClient::open_connections() const {
  return impl_->open;
}

void WebhookClient::close() {
  impl_->shutdown(true);
}

}  // namespace pgfanout::webhook
