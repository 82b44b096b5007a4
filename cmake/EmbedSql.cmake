# Writes OUT: a C++ file holding the trigger-generator SQL files (DIR/*.sql, in name order) as
# one string.
file(GLOB FILES "${DIR}/*.sql")
list(SORT FILES)
set(body "")
foreach(f IN LISTS FILES)
  file(READ "${f}" text)
  get_filename_component(name "${f}" NAME)
  string(APPEND body "-- ---- ${name} ----\n${text}\n")
endforeach()
file(WRITE "${OUT}.tmp"
  "// Generated from sql/triggers by cmake/EmbedSql.cmake. Do not edit.\n"
  "#include \"pg/SqlBundle.hpp\"\n"
  "namespace pgfanout::pg {\n"
  "std::string_view trigger_sql() {\n"
  "  static const char text[] = R\"pgfanout_sql(${body})pgfanout_sql\";\n"
  "  return {text, sizeof(text) - 1};\n"
  "}\n"
  "}  // namespace pgfanout::pg\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
