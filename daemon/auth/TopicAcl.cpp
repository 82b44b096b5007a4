#include "auth/TopicAcl.hpp"

namespace pgfanout::auth {

namespace {

bool segment_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

template <typename Fn>
void split_segments(std::string_view text, Fn&& fn) {
  std::size_t start = 0;
  while (true) {
    auto colon = text.find(':', start);
    fn(text.substr(start, colon == std::string_view::npos ? colon : colon - start));
    if (colon == std::string_view::npos) return;
    start = colon + 1;
  }
}

}  // namespace

bool valid_topic(std::string_view topic, std::string* why) {
  auto fail = [&](const char* m) {
    if (why != nullptr) *why = m;
    return false;
  };
  if (topic.empty()) return fail("topic is empty");
  if (topic.size() > kMaxTopicLength) return fail("topic is too long");
  bool ok = true;
  const char* problem = nullptr;
  split_segments(topic, [&](std::string_view seg) {
    if (!ok) return;
    if (seg.empty()) {
      ok = false;
      problem = "topic has an empty segment";
      return;
    }
    for (char c : seg) {
      if (!segment_char(c)) {
        ok = false;
        problem = "topic may only hold A-Z a-z 0-9 _ . - and ':' between segments";
        return;
      }
    }
  });
  return ok ? true : fail(problem);
}

bool TopicPattern::parse(std::string_view text, TopicPattern& out, std::string& error) {
  out = TopicPattern{};
  out.source = std::string(text);
  if (text.empty() || text.size() > kMaxTopicLength) {
    error = "a topic pattern must be 1 to 200 characters";
    return false;
  }
  bool ok = true;
  split_segments(text, [&](std::string_view seg) {
    if (!ok) return;
    if (seg == "*") {
      out.segments.push_back({Kind::Any, {}});
      return;
    }
    if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}') {
      std::string_view name = seg.substr(1, seg.size() - 2);
      for (char c : name) {
        if (!segment_char(c) || c == '.') {
          ok = false;
          error = "bad claim name in segment \"" + std::string(seg) + "\"";
          return;
        }
      }
      out.segments.push_back({Kind::Claim, std::string(name)});
      return;
    }
    if (seg.empty()) {
      ok = false;
      error = "empty segment in topic pattern";
      return;
    }
    for (char c : seg) {
      if (!segment_char(c)) {
        ok = false;
        error = "segment \"" + std::string(seg) +
                "\" must be a literal of A-Z a-z 0-9 _ . -, a whole {claim}, or *";
        return;
      }
    }
    out.segments.push_back({Kind::Literal, std::string(seg)});
  });
  return ok;
}

bool TopicPattern::has_claims() const {
  for (const auto& s : segments) {
    if (s.kind == Kind::Claim) return true;
  }
  return false;
}

bool TopicPattern::matches(std::string_view topic, const Claims* claims) const {
  std::size_t i = 0;
  bool ok = true;
  split_segments(topic, [&](std::string_view seg) {
    if (!ok) return;
    if (i >= segments.size()) {
      ok = false;
      return;
    }
    const Segment& s = segments[i++];
    switch (s.kind) {
      case Kind::Any:
        break;
      case Kind::Literal:
        ok = seg == s.text;
        break;
      case Kind::Claim: {
        if (claims == nullptr) {
          ok = false;
          break;
        }
        auto it = claims->find(s.text);
        // A claim that is not itself a canonical segment can never be matched.
        ok = it != claims->end() && !it->second.empty() && it->second == seg;
        break;
      }
    }
  });
  return ok && i == segments.size();
}

AclDecision TopicAcl::check(std::string_view topic, TopicAccess access,
                            const Claims* claims) const {
  AclDecision d;
  std::string why;
  if (!valid_topic(topic, &why)) {
    d.code = "invalid_topic";
    d.message = why;
    return d;
  }
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const AclEntry& e = entries_[i];
    if (!e.pattern.matches(topic, claims)) continue;
    if (claims == nullptr && !e.anonymous) {
      d.code = "unauthorized";
      d.message = "log in first";
      return d;
    }
    bool allowed = access == TopicAccess::Subscribe ? e.subscribe : e.publish;
    if (!allowed) {
      d.code = "forbidden";
      d.message = access == TopicAccess::Subscribe ? "subscribing to this topic is not allowed"
                                                   : "publishing to this topic is not allowed";
      return d;
    }
    d.allowed = true;
    d.entry = i;
    return d;
  }
  d.code = "forbidden";
  d.message = "no access to this topic";
  return d;
}

}  // namespace pgfanout::auth
