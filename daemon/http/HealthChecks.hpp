// HealthChecks: the named checks behind GET /healthz.
//
// A component registers a check once at start-up — a name and a function returning whether it is
// healthy with a short detail for people:
//
//   health.add("postgres", [&] { return HealthStatus{listener.healthy(), "..."}; });
//
// response() runs every check and answers 200 when all pass, 503 otherwise, with a JSON body that
// names each check: {"status":"ok","checks":{"postgres":{"ok":true,"detail":"..."}}}. Checks run
// on the event loop when /healthz is asked, so they must be cheap and must not block.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "http/HttpMessage.hpp"

namespace pgfanout::http {

struct HealthStatus {
  bool ok = false;
  std::string detail;
};

class HealthChecks {
 public:
  using Check = std::function<HealthStatus()>;

  void add(std::string name, Check check);

  struct Report {
    bool ok = true;
    std::vector<std::pair<std::string, HealthStatus>> checks;  // in registration order
    // The names of the failing checks, comma-separated ("" when healthy).
    std::string failing() const;
  };
  Report evaluate() const;

  // The /healthz response for `report`.
  static HttpResponse response(const Report& report);
  HttpResponse response() const { return response(evaluate()); }

 private:
  std::vector<std::pair<std::string, Check>> checks_;
};

}  // namespace pgfanout::http
