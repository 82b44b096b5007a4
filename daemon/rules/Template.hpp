// Template: a string with {path} placeholders, parsed once when the config loads.
//
// `{id}`, `{new.username}`, `{loc.type}` are replaced by the value at that path in the event
// (see Event::find for the lookup order); `{channel}` is the channel and `{payload}` the raw
// payload. `{{` and `}}` write literal braces (Redis Cluster hash tags). A field that is absent or
// null makes render() return false and name the field: the caller skips the action for that event,
// so a literal "{id}" key is never produced. With Escape::Glob, substituted values have the Redis
// glob characters * ? [ ] \ escaped, so a payload value can never widen a key pattern. With
// Escape::Url, substituted values are percent-encoded (everything but RFC 3986 unreserved
// characters, `/` included), so a payload value stays inside one URL path segment.
// Immutable after parse; safe to share between threads.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rules/Event.hpp"

namespace pgfanout::rules {

class Template {
 public:
  enum class Escape { None, Glob, Url };

  // Parses `text`; on a syntax error returns nullopt and sets `error`.
  static std::optional<Template> parse(std::string_view text, std::string& error);

  // Appends the rendering to `out`. Returns false when a field is missing (its path is written
  // to `missing` when given); `out` then holds a partial rendering the caller must discard.
  bool render(const Event& event, std::string& out, Side side = Side::New,
              Escape escape = Escape::None, std::string* missing = nullptr) const;

  // Whether rendering can differ between Side::New and Side::Old (it has a field that is not
  // explicitly new./old. qualified, or has both).
  bool depends_on_side() const { return side_dependent_; }
  bool has_fields() const { return has_fields_; }
  // The columns a rendering with Side::Old can read from the old row: the first segment of each
  // unqualified field and the column of each `old.` field.
  std::vector<std::string> old_row_columns() const;
  const std::string& source() const { return source_; }

 private:
  enum class Kind { Literal, Field, Channel, Payload };
  struct Part {
    Kind kind;
    std::string text;               // literal text, or the field path as written
    std::vector<std::string> path;  // for Field
  };
  std::string source_;
  std::vector<Part> parts_;
  bool side_dependent_ = false;
  bool has_fields_ = false;
};

// Escapes the Redis glob metacharacters in `value` and appends it to `out`.
void append_glob_escaped(std::string_view value, std::string& out);
// Percent-encodes every byte of `value` except A-Z a-z 0-9 - . _ ~ and appends it to `out`.
void append_url_escaped(std::string_view value, std::string& out);

}  // namespace pgfanout::rules
