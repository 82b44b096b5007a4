// Notification and Event: what the listener hands to the router, and what actions see.
//
// A Notification is one NOTIFY as received (or one outbox row). Its payload is parsed once into a
// shared, immutable ParsedPayload: a JSON value when the payload is JSON, otherwise plain text.
// An Event is a light view on a ParsedPayload; for a per-statement notification carrying
// `"rows": [...]` there is one Event per row, so that templates and filters see each row as if it
// were a row-level notification. Events are cheap to copy; the payload is shared.
//
// Field lookup (templates, `when.fields`): a dotted path whose first segment is `new` or `old` is
// explicit; any other path is looked up at the top level (the row first, then the envelope), then
// under `new`, then under `old` (or old before new for Side::Old).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pg/EventSource.hpp"

namespace boost::json {
class value;
class monotonic_resource;
class object;
}  // namespace boost::json

namespace pgfanout::rules {

// What the sources hand over (pg/EventSource.hpp).
using Notification = pg::Notification;

enum class PayloadProblem { None, MalformedJson, InvalidUtf8 };

class ParsedPayload {
 public:
  static std::shared_ptr<const ParsedPayload> parse(std::string channel, std::string raw);
  ~ParsedPayload();

  const std::string& channel() const { return channel_; }
  const std::string& raw() const { return raw_; }
  // The JSON value, or nullptr when the payload is plain text. It lives in the payload's arena,
  // which is not thread-safe and dies with the payload: read it, serialize it, but a copy meant
  // to outlive the payload or to be changed must name its own storage
  // (`boost::json::value(v, boost::json::storage_ptr())`), or it lands in the same arena.
  const boost::json::value* json() const { return json_.get(); }
  // The rows of a per-statement notification, or nullptr.
  const std::vector<const boost::json::object*>* rows() const {
    return rows_.empty() ? nullptr : &rows_;
  }
  PayloadProblem problem() const { return problem_; }

 private:
  ParsedPayload() = default;
  std::string channel_;
  std::string raw_;
  // The value's nodes live in this arena (declared first: it outlives them), so the value is
  // freed at once rather than node by node.
  std::unique_ptr<boost::json::monotonic_resource> arena_;
  std::unique_ptr<boost::json::value> json_;
  std::vector<const boost::json::object*> rows_;
  PayloadProblem problem_ = PayloadProblem::None;
};

enum class Side { New, Old };

// Where an event can be found again: its pgfanout.outbox id, or its WAL position (LSN) when it
// came from the WAL source; neither for a NOTIFY.
struct EventPosition {
  std::optional<std::int64_t> outbox_id;
  std::optional<std::uint64_t> lsn;
  std::uint64_t outbox_txid = 0;  // with outbox_id: the outbox's order is (txid, id)

  EventPosition() = default;
  EventPosition(std::nullopt_t) {}
  EventPosition(std::int64_t id) : outbox_id(id) {}
  EventPosition(std::optional<std::int64_t> id) : outbox_id(id) {}
  EventPosition(std::optional<std::int64_t> id, std::optional<std::uint64_t> wal,
                std::uint64_t txid = 0)
      : outbox_id(id), lsn(wal), outbox_txid(txid) {}
};

class Event {
 public:
  Event() = default;
  Event(std::shared_ptr<const ParsedPayload> payload, const boost::json::object* row,
        std::chrono::steady_clock::time_point received, EventPosition position = {})
      : payload_(std::move(payload)), row_(row), received_(received), position_(position) {}

  // A payload-less event for on_reconnect / on_gap actions: only {channel} renders.
  static Event synthetic(std::string channel);

  const std::shared_ptr<const ParsedPayload>& payload() const { return payload_; }
  const std::string& channel() const { return payload_->channel(); }
  const std::string& raw() const { return payload_->raw(); }
  std::chrono::steady_clock::time_point received() const { return received_; }
  std::optional<std::int64_t> outbox_id() const { return position_.outbox_id; }
  std::optional<std::uint64_t> lsn() const { return position_.lsn; }
  std::uint64_t outbox_txid() const { return position_.outbox_txid; }

  // The value at a path split into segments; nullptr when absent or when the payload is not JSON.
  const boost::json::value* find(const std::vector<std::string>& path, Side side = Side::New) const;
  // The top-level string field `op`, `table`, `schema`; empty when absent.
  std::string_view envelope_string(std::string_view key) const;

 private:
  std::shared_ptr<const ParsedPayload> payload_;
  const boost::json::object* row_ = nullptr;
  std::chrono::steady_clock::time_point received_{};
  EventPosition position_;
};

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view s);

// Appends a JSON value as template text: strings raw, numbers and booleans as JSON, objects and
// arrays as compact JSON. Returns false for null.
bool append_value_text(const boost::json::value& v, std::string& out);

}  // namespace pgfanout::rules
