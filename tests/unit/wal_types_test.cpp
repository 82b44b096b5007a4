// The WAL source's conversion of text values into the JSON to_jsonb gives (pg/WalTypes.hpp).
#include <gtest/gtest.h>

#include <string>

#include "pg/WalTypes.hpp"

using namespace pgfanout::pg;

namespace {

std::string json(const TypeCatalog& c, TypeOid type, std::string_view text) {
  std::string out;
  c.append_json(type, text, out);
  return out;
}

}  // namespace

TEST(WalTypes, NumbersPrintAsJsonbNumeric) {
  EXPECT_EQ(*normalize_json_number("42"), "42");
  EXPECT_EQ(*normalize_json_number("-0"), "0");
  EXPECT_EQ(*normalize_json_number("1e+20"), "100000000000000000000");
  EXPECT_EQ(*normalize_json_number("1.5e-05"), "0.000015");
  EXPECT_EQ(*normalize_json_number("1.50"), "1.50");
  EXPECT_EQ(*normalize_json_number("1.50e1"), "15.0");
  EXPECT_EQ(*normalize_json_number("-1.25E2"), "-125");
  EXPECT_EQ(*normalize_json_number("0.000"), "0.000");
  EXPECT_EQ(*normalize_json_number("-0.0"), "0.0");
  EXPECT_EQ(*normalize_json_number("123.456e-2"), "1.23456");
  EXPECT_FALSE(normalize_json_number("NaN"));
  EXPECT_FALSE(normalize_json_number("01"));
  EXPECT_FALSE(normalize_json_number("1."));
  EXPECT_FALSE(normalize_json_number("+1"));
  EXPECT_FALSE(normalize_json_number("1e"));

  TypeCatalog c;
  EXPECT_EQ(json(c, 701, "1e+20"), "100000000000000000000");
  EXPECT_EQ(json(c, 701, "NaN"), "\"NaN\"");
  EXPECT_EQ(json(c, 700, "-Infinity"), "\"-Infinity\"");
  EXPECT_EQ(json(c, 1700, "Infinity"), "\"Infinity\"");
  EXPECT_EQ(json(c, 1700, "3.14159"), "3.14159");
  EXPECT_EQ(json(c, 20, "-9223372036854775808"), "-9223372036854775808");
}

TEST(WalTypes, BoolTextUuidBytea) {
  TypeCatalog c;
  EXPECT_EQ(json(c, 16, "t"), "true");
  EXPECT_EQ(json(c, 16, "f"), "false");
  EXPECT_EQ(json(c, 25, "a \"q\" \\ \n\t\x01 é"), "\"a \\\"q\\\" \\\\ \\n\\t\\u0001 é\"");
  EXPECT_EQ(json(c, 2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"");
  EXPECT_EQ(json(c, 17, "\\x0102ff"), "\"\\\\x0102ff\"");
}

TEST(WalTypes, JsonIsNormalizedAsJsonb) {
  EXPECT_EQ(*normalize_json(R"({"b":[1,2],  "a" : 1, "aa":{}, "a":2})"),
            R"({"a": 2, "b": [1, 2], "aa": {}})");
  EXPECT_EQ(*normalize_json(R"( [ 1.0e2 , "\u00e9\ud83d\ude00\/" , null, true ,false, [] ])"),
            "[100, \"é😀/\", null, true, false, []]");
  EXPECT_EQ(*normalize_json(R"("\u001f")"), R"("\u001f")");
  EXPECT_FALSE(normalize_json(R"("\u0000")"));
  EXPECT_FALSE(normalize_json(R"({"a":1,})"));
  EXPECT_FALSE(normalize_json("[1] x"));
  EXPECT_FALSE(normalize_json(std::string(5000, '[')));
  TypeCatalog c;
  EXPECT_EQ(json(c, 114, R"({"z":1,"y":"x"})"), R"({"y": "x", "z": 1})");
  EXPECT_EQ(json(c, 3802, R"({"a": 1})"), R"({"a": 1})");
}

TEST(WalTypes, TimestampsInToJsonbForm) {
  TypeCatalog c;
  EXPECT_EQ(json(c, 1184, "2026-11-30 14:42:03.123+00"), "\"2026-11-30T14:42:03.123+00:00\"");
  EXPECT_EQ(json(c, 1184, "2026-11-30 14:42:03+05:30"), "\"2026-11-30T14:42:03+05:30\"");
  EXPECT_EQ(json(c, 1184, "1850-01-01 00:00:00+00:53:28"), "\"1850-01-01T00:00:00+00:53:28\"");
  EXPECT_EQ(json(c, 1184, "0044-03-15 12:00:00-02 BC"), "\"0044-03-15T12:00:00-02:00 BC\"");
  EXPECT_EQ(json(c, 1184, "infinity"), "\"infinity\"");
  EXPECT_EQ(json(c, 1114, "2026-11-30 14:42:03.5"), "\"2026-11-30T14:42:03.5\"");
  EXPECT_EQ(json(c, 1082, "2026-11-30"), "\"2026-11-30\"");
}

TEST(WalTypes, ArraysAreTypedNestedAndQuoted) {
  TypeCatalog c;
  EXPECT_EQ(json(c, 1007, "{1,2,NULL,4}"), "[1, 2, null, 4]");
  EXPECT_EQ(json(c, 1007, "{}"), "[]");
  EXPECT_EQ(json(c, 1007, "{{1,2},{3,4}}"), "[[1, 2], [3, 4]]");
  EXPECT_EQ(json(c, 1007, "[0:1]={5,6}"), "[5, 6]");
  EXPECT_EQ(json(c, 1009, R"({a,"b c","say \"hi\"","NULL",NULL,"back\\slash"})"),
            R"(["a", "b c", "say \"hi\"", "NULL", null, "back\\slash"])");
  EXPECT_EQ(json(c, 1022, "{1e+20,NaN}"), "[100000000000000000000, \"NaN\"]");
  EXPECT_EQ(json(c, 3807, R"({"{\"a\": 1}"})"), R"([{"a": 1}])");
  EXPECT_EQ(json(c, 199, R"({"{\"b\":1,\"a\":2}"})"), R"([{"a": 2, "b": 1}])");
  EXPECT_EQ(json(c, 1000, "{t,f}"), "[true, false]");
  EXPECT_EQ(json(c, 1185, R"({"2026-01-01 00:00:00+00"})"), R"(["2026-01-01T00:00:00+00:00"])");
  // Malformed: the text as a string, marked.
  std::string out;
  EXPECT_EQ(c.append_json(1007, "{1,2", out), Conversion::AsText);
  EXPECT_EQ(out, "\"{1,2\"");
}

TEST(WalTypes, CatalogRowsDomainsAndCasts) {
  TypeCatalog c;
  EXPECT_EQ(c.missing({23, 16500, 1007}), (std::vector<TypeOid>{16500}));
  // A domain over int4, an enum, a json-cast type, an array of the domain.
  ASSERT_TRUE(c.add_row({"16500", "23", "int4", "0", ",", "f", "f"}));
  ASSERT_TRUE(c.add_row({"16501", "16501", "mood", "0", ",", "f", "f"}));
  ASSERT_TRUE(c.add_row({"16502", "16502", "geometry", "0", ":", "f", "t"}));
  ASSERT_TRUE(c.add_row({"16503", "16503", "_posint", "16500", ",", "f", "f"}));
  ASSERT_TRUE(c.add_row({"16504", "16504", "pair", "0", ",", "t", "f"}));
  EXPECT_FALSE(c.add_row({"x", "1", "n", "0", ",", "f", "f"}));
  EXPECT_FALSE(c.add_row({"1"}));
  EXPECT_TRUE(c.missing({16500, 16501, 16503}).empty());
  EXPECT_EQ(json(c, 16500, "7"), "7");
  EXPECT_EQ(json(c, 16501, "happy"), "\"happy\"");
  EXPECT_EQ(json(c, 16503, "{1,2}"), "[1, 2]");
  std::string out;
  EXPECT_EQ(c.append_json(16502, "0101000020E6", out), Conversion::AsText);
  EXPECT_EQ(out, "\"0101000020E6\"");
  out.clear();
  EXPECT_EQ(c.append_json(16504, "(1,2)", out), Conversion::AsText);
  out.clear();
  EXPECT_EQ(c.append_json(99999, "x", out), Conversion::AsText);
  EXPECT_EQ(out, "\"x\"");
}
