// The trigger-generator SQL (sql/triggers/*.sql in file-name order), embedded at build time.
#pragma once

#include <string_view>

namespace pgfanout::pg {

std::string_view trigger_sql();

}  // namespace pgfanout::pg
