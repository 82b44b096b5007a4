// HubSql: what the hub's SQL operations (commands, login, publish, on_subscribe, replay) share:
// rows as JSON typed by their columns, what a client may see of a failed statement, and claim
// lookup. Pure functions; any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "auth/Jwt.hpp"
#include "pg/PgConnection.hpp"

namespace pgfanout::hub {

// PostgreSQL's limit on a NOTIFY payload.
inline constexpr std::size_t kMaxNotifyPayload = 7999;

// One row as an object: numbers, booleans and json/jsonb columns typed, the rest strings.
boost::json::object row_object(const pg::PgResult& r, std::size_t row);

// What a client may see of a failed statement: the server's own words for errors about the data
// (invalid input, constraint violations, RAISE EXCEPTION in a function), nothing for the rest
// (missing functions, permissions, connection trouble), which is logged instead.
void client_error(const pg::PgResult& r, std::string& code, std::string& message);

// The claim `name` of a verified token, or nullptr (no token, or no such claim).
const std::string* claim(const auth::Claims* claims, std::string_view name);

inline bool has_nul(std::string_view s) {
  return s.find('\0') != std::string_view::npos;
}

}  // namespace pgfanout::hub
