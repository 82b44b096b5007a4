#include "http/HttpRouter.hpp"

#include <strings.h>

namespace pgfanout::http {

std::string_view HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && ::strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  }
  return {};
}

HttpResponse HttpResponse::text(unsigned status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::json(unsigned status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

void HttpRouter::add(std::string method, std::string path, HttpHandler handler) {
  routes_[{std::move(path), std::move(method)}] = std::move(handler);
}

void HttpRouter::add_upgrade(std::string path, UpgradeHandler handler) {
  upgrades_[std::move(path)] = std::move(handler);
}

void HttpRouter::set_fallback(HttpHandler handler) {
  fallback_ = std::move(handler);
}

void HttpRouter::add_takeover(std::string path, UpgradeHandler handler) {
  takeovers_[std::move(path)] = std::move(handler);
}

const UpgradeHandler* HttpRouter::takeover_for(std::string_view path) const {
  if (auto it = takeovers_.find(path); it != takeovers_.end()) return &it->second;
  for (const auto& [prefix, handler] : takeovers_) {
    if (prefix.ends_with('/') && path.size() > prefix.size() && path.starts_with(prefix)) {
      return &handler;
    }
  }
  return nullptr;
}

HttpResponse HttpRouter::handle(const HttpRequest& request) const {
  auto find = [&](const std::string& method) -> const HttpHandler* {
    auto it = routes_.find(std::pair<std::string, std::string>(request.path, method));
    return it == routes_.end() ? nullptr : &it->second;
  };
  if (const HttpHandler* h = find(request.method)) return (*h)(request);
  if (request.method == "HEAD") {
    if (const HttpHandler* h = find("GET")) {
      // The session sends the headers of the GET response (Content-Length included) and no body.
      return (*h)(request);
    }
  }
  std::string allow;
  for (auto it = routes_.lower_bound(std::pair<std::string, std::string>(request.path, ""));
       it != routes_.end() && it->first.first == request.path; ++it) {
    if (!allow.empty()) allow += ", ";
    allow += it->first.second;
    if (it->first.second == "GET") allow += ", HEAD";
  }
  if (allow.empty()) {
    if (fallback_ && (request.method == "GET" || request.method == "HEAD")) {
      return fallback_(request);
    }
    return HttpResponse::text(404, "not found\n");
  }
  auto r = HttpResponse::text(405, "method not allowed\n");
  r.headers.emplace_back("Allow", allow);
  return r;
}

const UpgradeHandler* HttpRouter::upgrade_for(std::string_view path) const {
  auto it = upgrades_.find(path);
  return it == upgrades_.end() ? nullptr : &it->second;
}

std::string_view HttpRouter::route_label(std::string_view path) const {
  auto it = routes_.lower_bound(std::pair<std::string, std::string>(std::string(path), ""));
  if (it != routes_.end() && it->first.first == path) return it->first.first;
  if (auto u = upgrades_.find(path); u != upgrades_.end()) return u->first;
  for (const auto& [prefix, handler] : takeovers_) {
    if (path == prefix || (prefix.ends_with('/') && path.starts_with(prefix))) return prefix;
  }
  return "other";
}

}  // namespace pgfanout::http
