#include "rules/Template.hpp"

#include <algorithm>

#include <boost/json/value.hpp>

namespace pgfanout::rules {

std::optional<Template> Template::parse(std::string_view text, std::string& error) {
  Template t;
  t.source_ = std::string(text);
  std::string literal;
  auto flush_literal = [&] {
    if (!literal.empty()) {
      t.parts_.push_back({Kind::Literal, std::move(literal), {}});
      literal.clear();
    }
  };
  std::size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == '{' && i + 1 < text.size() && text[i + 1] == '{') {
      literal += '{';
      i += 2;
      continue;
    }
    if (c == '}' && i + 1 < text.size() && text[i + 1] == '}') {
      literal += '}';
      i += 2;
      continue;
    }
    if (c == '}') {
      error = "unmatched \"}\" at offset " + std::to_string(i) + " (write }} for a literal brace)";
      return std::nullopt;
    }
    if (c != '{') {
      literal += c;
      ++i;
      continue;
    }
    std::size_t close = text.find('}', i + 1);
    if (close == std::string_view::npos) {
      error =
          "unterminated \"{\" at offset " + std::to_string(i) + " (write {{ for a literal brace)";
      return std::nullopt;
    }
    std::string_view name = text.substr(i + 1, close - i - 1);
    if (name.empty() || name.find('{') != std::string_view::npos) {
      error = "empty or nested placeholder at offset " + std::to_string(i);
      return std::nullopt;
    }
    flush_literal();
    Part part{Kind::Field, std::string(name), {}};
    if (name == "channel") {
      part.kind = Kind::Channel;
    } else if (name == "payload") {
      part.kind = Kind::Payload;
    } else {
      std::size_t start = 0;
      while (true) {
        auto dot = name.find('.', start);
        auto seg = name.substr(start, dot == std::string_view::npos ? dot : dot - start);
        if (seg.empty()) {
          error = "empty path segment in {" + std::string(name) + "}";
          return std::nullopt;
        }
        part.path.emplace_back(seg);
        if (dot == std::string_view::npos) break;
        start = dot + 1;
      }
      t.has_fields_ = true;
      bool explicit_side = part.path.size() > 1 && (part.path[0] == "new" || part.path[0] == "old");
      if (!explicit_side) t.side_dependent_ = true;
    }
    t.parts_.push_back(std::move(part));
    i = close + 1;
  }
  flush_literal();
  // A template naming both {new.x} and {old.x} renders the same on either side; one with bare
  // fields may not.
  return t;
}

std::vector<std::string> Template::old_row_columns() const {
  std::vector<std::string> out;
  for (const auto& p : parts_) {
    if (p.kind != Kind::Field || p.path.empty()) continue;
    if (p.path.size() > 1 && p.path[0] == "new") continue;
    const std::string& column = p.path.size() > 1 && p.path[0] == "old" ? p.path[1] : p.path[0];
    if (std::find(out.begin(), out.end(), column) == out.end()) out.push_back(column);
  }
  return out;
}

void append_glob_escaped(std::string_view value, std::string& out) {
  for (char c : value) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
}

void append_url_escaped(std::string_view value, std::string& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || u == '-' ||
        u == '.' || u == '_' || u == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
}

bool Template::render(const Event& event, std::string& out, Side side, Escape escape,
                      std::string* missing) const {
  std::string scratch;
  auto append = [&](std::string_view v) {
    if (escape == Escape::Glob) {
      append_glob_escaped(v, out);
    } else if (escape == Escape::Url) {
      append_url_escaped(v, out);
    } else {
      out.append(v);
    }
  };
  for (const auto& part : parts_) {
    switch (part.kind) {
      case Kind::Literal:
        out += part.text;
        break;
      case Kind::Channel:
        append(event.channel());
        break;
      case Kind::Payload:
        append(event.raw());
        break;
      case Kind::Field: {
        const boost::json::value* v = event.find(part.path, side);
        scratch.clear();
        if (v == nullptr || !append_value_text(*v, scratch)) {
          if (missing != nullptr) *missing = part.text;
          return false;
        }
        append(scratch);
        break;
      }
    }
  }
  return true;
}

}  // namespace pgfanout::rules
