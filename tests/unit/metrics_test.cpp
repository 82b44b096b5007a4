// Metrics registry and its Prometheus text output.
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "metrics/Metrics.hpp"

namespace pgfanout {
namespace {

TEST(Metrics, CountersGaugesHistogramsRender) {
  Metrics m;
  m.counter("pgfanout_x_total", "X things", {{"rule", "a\"b\\c\nd"}}).inc(3);
  m.gauge("pgfanout_depth", "Depth").set(-2);
  auto& h = m.histogram("pgfanout_lat_seconds", "Latency", {}, {0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  std::string text = m.render();
  EXPECT_NE(text.find("# TYPE pgfanout_x_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("pgfanout_x_total{rule=\"a\\\"b\\\\c\\nd\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("pgfanout_depth -2\n"), std::string::npos);
  EXPECT_NE(text.find("pgfanout_lat_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("pgfanout_lat_seconds_bucket{le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("pgfanout_lat_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("pgfanout_lat_seconds_count 3\n"), std::string::npos);
  EXPECT_EQ(m.value("pgfanout_x_total", {{"rule", "a\"b\\c\nd"}}), 3);
}

TEST(Metrics, EverySampleLineParses) {
  Metrics m;
  m.counter("pgfanout_a_total", "A", {{"k", "v"}}).inc();
  m.histogram("pgfanout_b_seconds", "B").observe(0.002);
  std::istringstream in(m.render());
  std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? [-+0-9.eInf]+$)");
  std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*$)");
  std::string line;
  int samples = 0;
  while (std::getline(in, line)) {
    if (line.starts_with("#")) {
      EXPECT_TRUE(std::regex_match(line, comment)) << line;
    } else {
      EXPECT_TRUE(std::regex_match(line, sample)) << line;
      ++samples;
    }
  }
  EXPECT_GT(samples, 5);
}

TEST(Metrics, SameNameDifferentTypeIsABug) {
  Metrics m;
  m.counter("pgfanout_c_total", "C");
  EXPECT_THROW(m.gauge("pgfanout_c_total", "C"), std::logic_error);
}

TEST(CounterFamily, EachSetOfValuesIsOneCounterRegisteredOnFirstUse) {
  Metrics m;
  CounterFamily f(m, "pgfanout_f_total", "F", {"command", "result"}, {{"target", "main"}});
  EXPECT_EQ(m.render().find("pgfanout_f_total"), std::string::npos) << "nothing before first use";
  Counter& ok = f.with({"get", "ok"});
  ok.inc();
  EXPECT_EQ(&f.with({"get", "ok"}), &ok);
  f.with({"get", "failed"}).inc(2);
  EXPECT_NE(&f.with({"get", "failed"}), &ok);
  // The same counter as a lookup by labels finds.
  EXPECT_EQ(&m.counter("pgfanout_f_total", "F",
                       {{"target", "main"}, {"command", "get"}, {"result", "ok"}}),
            &ok);
  std::string text = m.render();
  EXPECT_NE(text.find("pgfanout_f_total{target=\"main\",command=\"get\",result=\"ok\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("pgfanout_f_total{target=\"main\",command=\"get\",result=\"failed\"} 2\n"),
            std::string::npos)
      << text;
}

TEST(CounterFamily, ValuesThatConcatenateAlikeStayApart) {
  Metrics m;
  CounterFamily f(m, "pgfanout_g_total", "G", {"a", "b"});
  f.with({"ab", "c"}).inc();
  f.with({"a", "bc"}).inc(5);
  EXPECT_EQ(m.value("pgfanout_g_total", {{"a", "ab"}, {"b", "c"}}), 1);
  EXPECT_EQ(m.value("pgfanout_g_total", {{"a", "a"}, {"b", "bc"}}), 5);
}

TEST(CounterFamily, TheWrongNumberOfValuesIsABug) {
  Metrics m;
  CounterFamily f(m, "pgfanout_h_total", "H", {"reason"});
  EXPECT_THROW(f.with({"a", "b"}), std::logic_error);
}

}  // namespace
}  // namespace pgfanout
