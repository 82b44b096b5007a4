// The in-process set-up of the Redis action tests: a config loaded from YAML text, a router and a
// RedisEvictor on the test's io_context, the Redis kinds routed to the evictor, and every on_gap
// recorded before the router runs it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "app/Config.hpp"
#include "cache/RedisEvictor.hpp"
#include "metrics/Metrics.hpp"
#include "rules/Router.hpp"
#include "rules/RuleSet.hpp"

namespace pgfanout::test {

struct RedisRouting {
  // Loads `text` (a whole config) and starts the evictor; config stays null (and the test has
  // failed) when the text has errors.
  void start(boost::asio::io_context& io, Metrics& metrics, const std::string& text) {
    auto result = app::load_config_text(text, "test.yaml");
    for (const auto& e : result.errors) ADD_FAILURE() << e.to_string();
    if (!result.config) return;
    config = result.config;
    router = std::make_unique<rules::Router>(metrics);
    evictor = std::make_unique<redis::RedisEvictor>(io, metrics, config->redis,
                                                    [this](const std::string& rule) {
                                                      gaps.push_back(rule);
                                                      router->run_on_gap(rule);
                                                    });
    for (const char* kind : {"evict", "evict_pattern", "publish"}) {
      router->add_executor(kind, *evictor);
    }
  }
  // After the test added executors of its own.
  void run() {
    router->set_rules(config->rules);
    evictor->start();
  }

  std::shared_ptr<const app::Config> config;
  std::unique_ptr<rules::Router> router;
  std::unique_ptr<redis::RedisEvictor> evictor;
  std::vector<std::string> gaps;
};

}  // namespace pgfanout::test
