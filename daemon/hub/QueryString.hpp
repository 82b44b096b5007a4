// Query strings and form bodies: percent-decoding and the values of one name.
// Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pgfanout::hub {

// Decodes %XX escapes (and '+' as a space when `plus_is_space`). A malformed escape is kept
// as it is, so it fails the topic syntax check instead of being guessed at.
std::string percent_decode(std::string_view text, bool plus_is_space = false);

// The decoded values of `name` in "a=1&b=2&a=3" (query strings use plus_is_space as well, like
// browsers' URLSearchParams).
std::vector<std::string> form_values(std::string_view query, std::string_view name);

}  // namespace pgfanout::hub
