// The one rule for the PostgreSQL channel names a config gives (rules[].channel, watch[].channel,
// topics[].publish_channel): what LISTEN and pg_notify can use, minus the daemon's own prefix.
#pragma once

#include <string>
#include <string_view>

namespace pgfanout::config {

// Why `channel` cannot be a channel name, or "" when it can.
inline std::string channel_name_problem(std::string_view channel) {
  if (channel.empty()) return "a channel cannot be empty";
  if (channel.size() > 63) return "channel names are at most 63 bytes (PostgreSQL's NAMEDATALEN)";
  if (channel.find('\0') != std::string_view::npos) {
    return "a channel cannot contain a NUL byte (PostgreSQL names cannot)";
  }
  if (channel.starts_with("pgfanout.")) return "channels starting with \"pgfanout.\" are reserved";
  return "";
}

}  // namespace pgfanout::config
