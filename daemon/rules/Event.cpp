#include "rules/Event.hpp"

#include <boost/json.hpp>

namespace pgfanout::rules {

namespace json = boost::json;

ParsedPayload::~ParsedPayload() = default;

std::shared_ptr<const ParsedPayload> ParsedPayload::parse(std::string channel, std::string raw) {
  std::shared_ptr<ParsedPayload> p(new ParsedPayload());
  p->channel_ = std::move(channel);
  p->raw_ = std::move(raw);
  std::string_view text = p->raw_;
  // Only text that looks like a JSON object or array is parsed; anything else is a plain-text
  // payload, which is legitimate (pg_notify('chan', 'hello')).
  auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || (text[first] != '{' && text[first] != '[')) return p;

  // The value's nodes come from the payload's own arena, a block sized to the payload (freed
  // at once with it, with no walk over the nodes), and the parser's stacks are kept between
  // calls: a payload costs a few allocations, not one per member. Nothing copies the value out
  // (it is only read and serialized), so it never outlives the arena.
  static const json::parse_options opts = [] {
    json::parse_options o;
    o.max_depth = 64;
    return o;
  }();
  thread_local json::parser parser(json::storage_ptr(), opts);
  json::error_code ec;
  p->arena_ = std::make_unique<json::monotonic_resource>(text.size() * 2 + 256);
  parser.reset(json::storage_ptr(p->arena_.get()));
  parser.write(text, ec);
  if (ec) {
    parser.reset();
    p->arena_.reset();
    p->problem_ = valid_utf8(text) ? PayloadProblem::MalformedJson : PayloadProblem::InvalidUtf8;
    return p;
  }
  // Moved, not assigned: assigning to a value of the default storage would copy every node out
  // of the arena onto the heap (and free them one by one with the payload).
  p->json_ = std::make_unique<json::value>(parser.release());
  if (const auto* obj = p->json_->if_object()) {
    if (auto it = obj->find("rows"); it != obj->end() && it->value().is_array()) {
      for (const auto& row : it->value().get_array()) {
        if (row.is_object()) p->rows_.push_back(&row.get_object());
      }
    }
  }
  return p;
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    int n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++p;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are invalid.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    p += n + 1;
  }
  return true;
}

Event Event::synthetic(std::string channel) {
  return Event(ParsedPayload::parse(std::move(channel), std::string()), nullptr,
               std::chrono::steady_clock::now());
}

namespace {

const json::value* walk(const json::value* v, const std::vector<std::string>& path,
                        std::size_t from) {
  for (std::size_t i = from; i < path.size() && v != nullptr; ++i) {
    const auto* obj = v->if_object();
    if (obj == nullptr) return nullptr;
    auto it = obj->find(path[i]);
    v = it == obj->end() ? nullptr : &it->value();
  }
  return v;
}

const json::value* member(const json::object* o, std::string_view key) {
  if (o == nullptr) return nullptr;
  auto it = o->find(key);
  return it == o->end() ? nullptr : &it->value();
}

}  // namespace

const json::value* Event::find(const std::vector<std::string>& path, Side side) const {
  if (path.empty() || !payload_ || payload_->json() == nullptr) return nullptr;
  const json::object* top = payload_->json()->if_object();
  if (top == nullptr) return nullptr;

  auto top_level = [&](std::string_view key) -> const json::value* {
    if (const auto* v = member(row_, key)) return v;
    return member(top, key);
  };
  const std::string& first = path[0];
  if ((first == "new" || first == "old") && path.size() > 1) {
    return walk(top_level(first), path, 1);
  }
  if (const auto* v = top_level(first)) {
    if (const auto* found = walk(v, path, 1)) return found;
  }
  const char* order[2] = {"new", "old"};
  if (side == Side::Old) std::swap(order[0], order[1]);
  for (const char* s : order) {
    if (const auto* found = walk(top_level(s), path, 0)) return found;
  }
  return nullptr;
}

std::string_view Event::envelope_string(std::string_view key) const {
  if (!payload_ || payload_->json() == nullptr) return {};
  const json::object* top = payload_->json()->if_object();
  const json::value* v = member(top, key);
  if (v == nullptr || !v->is_string()) return {};
  const auto& s = v->get_string();
  return {s.data(), s.size()};
}

bool append_value_text(const json::value& v, std::string& out) {
  switch (v.kind()) {
    case json::kind::null:
      return false;
    case json::kind::string:
      out.append(v.get_string().data(), v.get_string().size());
      return true;
    case json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      return true;
    case json::kind::int64:
      out += std::to_string(v.get_int64());
      return true;
    case json::kind::uint64:
      out += std::to_string(v.get_uint64());
      return true;
    default:
      out += json::serialize(v);
      return true;
  }
}

}  // namespace pgfanout::rules
