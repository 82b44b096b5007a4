// SqlGateway: the hub's own PostgreSQL connections, for client commands, logins, on_subscribe
// queries, client publishes (pg_notify) and SSE resumes from the outbox.
//
// A few PgSessions (hub.pg_connections), each reconnecting with backoff on its own. run()
// sends a statement with bound text parameters to the least busy connected one, in a transaction
// of its own whose statement_timeout is set with SET LOCAL (so no timeout outlives its statement;
// a failed statement is rolled back), and hands over the result once that transaction has ended
// (a failure to commit is the statement's failure). When none is connected the
// call fails at once (the client gets an error; nothing waits without bound). The connections are
// separate from the listener's, so a slow command never delays LISTEN. Event loop thread only.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "pg/PgConfig.hpp"
#include "pg/PgConnection.hpp"

namespace boost::asio {
class io_context;
}

namespace pgfanout::hub {

class SqlGateway {
 public:
  SqlGateway(boost::asio::io_context& io, pg::PostgresConfig pg, int connections);
  ~SqlGateway();
  SqlGateway(const SqlGateway&) = delete;
  SqlGateway& operator=(const SqlGateway&) = delete;

  void start();
  void stop();
  void run(std::string sql, pg::PgConnection::Params params, std::chrono::milliseconds timeout,
           pg::PgConnection::QueryDone done);
  bool available() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgfanout::hub
