// TopicAcl: who may subscribe or publish to which topic, from the config's `topics:` list.
//
// Topics have one canonical spelling, checked before any pattern is looked at: segments of
// [A-Za-z0-9_.-] separated by ':', no empty segment, at most kMaxTopicLength bytes. Anything else
// (percent-encoding, '*', '/', spaces, non-ASCII look-alikes, a trailing ':') is `invalid_topic`,
// so one topic cannot be reached under two names. A pattern has the same segments, where a whole
// segment may instead be `{claim}` (equal to that claim of the verified token) or `*` (any one
// segment). Entries are tried in order and the first whose pattern matches decides; no matching
// entry means `forbidden` (deny by default). An entry without `anonymous: true` needs a verified
// token. Immutable after construction; any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "auth/Jwt.hpp"

namespace pgfanout::auth {

constexpr std::size_t kMaxTopicLength = 200;

// Whether `topic` is canonical; when not, `why` says what is wrong.
bool valid_topic(std::string_view topic, std::string* why = nullptr);

enum class TopicAccess { Subscribe, Publish };

struct TopicPattern {
  enum class Kind { Literal, Claim, Any };
  struct Segment {
    Kind kind;
    std::string text;  // the literal, or the claim name
  };
  std::string source;
  std::vector<Segment> segments;

  // Parses "user:{sub}", "room:*"; on error returns false and sets `error`.
  static bool parse(std::string_view text, TopicPattern& out, std::string& error);
  // `claims` is null for an anonymous client: then a {claim} segment never matches.
  bool matches(std::string_view topic, const Claims* claims) const;
  bool has_claims() const;
};

struct AclEntry {
  TopicPattern pattern;
  bool subscribe = false;
  bool publish = false;
  bool anonymous = false;
};

struct AclDecision {
  bool allowed = false;
  std::string code;  // invalid_topic, forbidden, unauthorized (when !allowed)
  std::string message;
  std::size_t entry = 0;  // index of the matching entry (when allowed)
};

class TopicAcl {
 public:
  TopicAcl() = default;
  explicit TopicAcl(std::vector<AclEntry> entries) : entries_(std::move(entries)) {}

  // `claims` is null for a client without a verified token.
  AclDecision check(std::string_view topic, TopicAccess access, const Claims* claims) const;
  const std::vector<AclEntry>& entries() const { return entries_; }

 private:
  std::vector<AclEntry> entries_;
};

}  // namespace pgfanout::auth
