#include "vigil/http/router.h"

#include <algorithm>

namespace vigil {

namespace {

constexpr std::pair<Method, std::string_view> kMethods[] = {
    {kGet, "GET"}, {kHead, "HEAD"}, {kPost, "POST"}, {kDelete, "DELETE"}, {kPut, "PUT"}, {kPatch, "PATCH"}};

// "/a/b/" -> {"a", "b"}; "/" -> {}. Empty segments ("/a//b") stay, and fit no pattern.
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> segments;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.empty()) return segments;
  for (;;) {
    const std::size_t slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

// Constant-time comparison: the token must not leak through timing.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % std::max<std::size_t>(1, b.size())]);
  return diff == 0;
}

}  // namespace

unsigned method_bit(std::string_view method) {
  for (const auto& [bit, name] : kMethods) {
    if (method == name) return bit;
  }
  return 0;
}

std::string method_list(unsigned methods) {
  std::string out;
  for (const auto& [bit, name] : kMethods) {
    if (methods & bit) out += (out.empty() ? "" : ", ") + std::string(name);
  }
  return out;
}

const std::string& RouteParams::operator[](std::string_view name) const {
  static const std::string kNone;
  for (const auto& [key, value] : values_) {
    if (key == name) return value;
  }
  return kNone;
}

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument:
    case ErrorCode::failed_precondition: return 400;
    case ErrorCode::not_found: return 404;
    case ErrorCode::already_exists: return 409;
    case ErrorCode::resource_exhausted: return 429;
    case ErrorCode::unimplemented: return 501;
    case ErrorCode::unavailable:
    case ErrorCode::cancelled: return 503;
    case ErrorCode::deadline_exceeded: return 504;
    case ErrorCode::data_loss:
    case ErrorCode::internal: return 500;
  }
  return 500;
}

void error_response(HttpResponse& response, const Error& error) {
  json_error(response, http_status(error.code), error.message);
  if (error.code == ErrorCode::resource_exhausted) response.headers.emplace_back("Retry-After", "1");
}

Result<Router> Router::create(std::vector<Route> routes, std::vector<ParamRule> rules, std::string admin_token) {
  Router router;
  router.rules_ = std::move(rules);
  for (const Route& route : routes) {
    const std::string where = "route " + method_list(route.methods) + " " + route.pattern;
    if (route.methods == 0 || !route.handler) return Error{ErrorCode::invalid_argument, where + ": no method or no handler"};
    if (route.pattern.empty() || route.pattern.front() != '/') {
      return Error{ErrorCode::invalid_argument, where + ": a pattern starts with '/'"};
    }
    std::vector<Segment> pattern;
    for (std::string_view text : split_path(route.pattern)) {
      Segment segment{std::string(text), -1};
      if (text.empty()) return Error{ErrorCode::invalid_argument, where + ": an empty segment"};
      const bool opens = text.front() == '{', closes = text.back() == '}';
      if (opens != closes || text.find_first_of("{}", 1) < text.size() - 1) {
        return Error{ErrorCode::invalid_argument, where + ": a parameter is a whole segment, {name}"};
      }
      if (opens) {
        segment.text = std::string(text.substr(1, text.size() - 2));
        const auto rule = std::find_if(router.rules_.begin(), router.rules_.end(), [&](const ParamRule& r) { return r.name == segment.text; });
        if (rule == router.rules_.end()) return Error{ErrorCode::invalid_argument, where + ": no rule for parameter {" + segment.text + "}"};
        segment.rule = static_cast<int>(rule - router.rules_.begin());
        for (const Segment& before : pattern) {
          if (before.rule >= 0 && before.text == segment.text) {
            return Error{ErrorCode::invalid_argument, where + ": parameter {" + segment.text + "} twice"};
          }
        }
      }
      pattern.push_back(std::move(segment));
    }
    // Two routes may not both take one path and method: no order of rules decides a request.
    for (std::size_t other = 0; other < router.routes_.size(); ++other) {
      const std::vector<Segment>& theirs = router.patterns_[other];
      if ((router.routes_[other].methods & route.methods) == 0 || theirs.size() != pattern.size()) continue;
      bool overlap = true;
      for (std::size_t i = 0; i < pattern.size() && overlap; ++i) {
        overlap = pattern[i].rule >= 0 || theirs[i].rule >= 0 || pattern[i].text == theirs[i].text;
      }
      if (overlap) {
        return Error{ErrorCode::invalid_argument, where + ": takes the same requests as route " +
                                                      method_list(router.routes_[other].methods) + " " + router.routes_[other].pattern};
      }
    }
    router.patterns_.push_back(std::move(pattern));
    router.routes_.push_back(route);
  }
  router.admin_token_ = std::move(admin_token);
  return router;
}

bool Router::fits(std::size_t route, const std::vector<std::string_view>& path, RouteParams& params, int& bad_rule) const {
  const std::vector<Segment>& pattern = patterns_[route];
  if (pattern.size() != path.size()) return false;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (pattern[i].rule < 0 ? pattern[i].text != path[i] : path[i].empty()) return false;
  }
  params.clear();
  bad_rule = -1;
  for (std::size_t i = 0; i < path.size(); ++i) {
    const int rule = pattern[i].rule;
    if (rule < 0) continue;
    if (bad_rule < 0 && !rules_[static_cast<std::size_t>(rule)].valid(path[i])) bad_rule = rule;
    params.add(pattern[i].text, std::string(path[i]));
  }
  return true;
}

bool Router::authorised(const HttpRequest& request) const {
  if (admin_token_.empty()) return true;
  const std::string header = request.header("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  return header.rfind(kBearer, 0) == 0 && same_secret(std::string_view(header).substr(kBearer.size()), admin_token_);
}

void Router::dispatch(const HttpRequest& request, HttpResponse& response) const {
  const std::vector<std::string_view> path = split_path(request.path);
  const unsigned method = method_bit(request.method);
  RouteParams params;
  int bad_rule = -1;
  unsigned allowed = 0;
  for (std::size_t r = 0; r < routes_.size(); ++r) {
    if (!fits(r, path, params, bad_rule)) continue;
    const Route& route = routes_[r];
    if ((route.methods & method) == 0) {
      allowed |= route.methods;
      continue;
    }
    if (bad_rule >= 0) return json_error(response, 400, rules_[static_cast<std::size_t>(bad_rule)].error);
    if (route.access == Access::admin && !authorised(request)) {
      json_error(response, 401, "missing or wrong bearer token");
      response.headers.emplace_back("WWW-Authenticate", "Bearer");
      return;
    }
    if (Status status = route.handler(request, params, response); !status.ok()) error_response(response, status.error());
    return;
  }
  if (allowed == 0) return json_error(response, 404, "no such resource");
  json_error(response, 405, "method not allowed");
  response.headers.emplace_back("Allow", method_list(allowed));
}

}  // namespace vigil
