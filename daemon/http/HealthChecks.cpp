#include "http/HealthChecks.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace pgfanout::http {

void HealthChecks::add(std::string name, Check check) {
  checks_.emplace_back(std::move(name), std::move(check));
}

std::string HealthChecks::Report::failing() const {
  std::string out;
  for (const auto& [name, status] : checks) {
    if (status.ok) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

HealthChecks::Report HealthChecks::evaluate() const {
  Report report;
  for (const auto& [name, check] : checks_) {
    HealthStatus status = check();
    report.ok = report.ok && status.ok;
    report.checks.emplace_back(name, std::move(status));
  }
  return report;
}

HttpResponse HealthChecks::response(const Report& report) {
  boost::json::object checks;
  for (const auto& [name, status] : report.checks) {
    checks[name] = boost::json::object{{"ok", status.ok}, {"detail", status.detail}};
  }
  boost::json::object body{{"status", report.ok ? "ok" : "unhealthy"},
                           {"checks", std::move(checks)}};
  auto r = HttpResponse::json(report.ok ? 200 : 503, boost::json::serialize(body) + "\n");
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

}  // namespace pgfanout::http
