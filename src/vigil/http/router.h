// Router: the API's one table of routes ({methods, pattern, access, handler}), checked when
// the server starts, and the one mapping from error codes to HTTP statuses.
//
//   Router::create({
//       {kGet | kHead, "/api/v1/cameras/{camera}", Access::open, show_camera},
//       {kDelete,      "/api/v1/cameras/{camera}", Access::admin, remove_camera}},
//     {{"camera", valid_camera_id, "invalid camera id"}}, token);
//
// A pattern is a path of literal segments and {parameter} segments; each parameter names a
// rule (what a valid value looks like, and the error when it is not). The table is refused
// at start-up when a pattern is malformed, names a parameter without a rule, or can match
// the same path and method as another route (so no order of rules decides a request).
//
// dispatch() answers, in this order: 404 when no pattern fits the path; 405 with Allow when
// no route of that path takes the method; 400 when a parameter is not valid (before anything
// is looked up with it); 401 when the route needs the admin token (set and not given as
// "Authorization: Bearer TOKEN", compared in constant time); else the handler. A
// handler translates between HTTP and the engine: it reads the request, calls, and writes
// the response; an error it returns becomes {"error": message} with http_status(code).
//
// Threading: immutable once created; dispatch() is called from any polling thread at once.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vigil/core/status.h"
#include "vigil/http/http_server.h"

namespace vigil {

enum Method : unsigned {
  kGet = 1u << 0,
  kHead = 1u << 1,
  kPost = 1u << 2,
  kDelete = 1u << 3,
  kPut = 1u << 4,
  kPatch = 1u << 5,
};
// The bit of a request's method; 0 for one no route can declare (OPTIONS, TRACE, ...).
unsigned method_bit(std::string_view method);
// "GET, HEAD" for kGet | kHead.
std::string method_list(unsigned methods);

enum class Access {
  open,   // anyone who can reach the port
  admin,  // the token, when one is set
};

// A path's parameters by name, as matched (already checked against their rules).
class RouteParams {
 public:
  const std::string& operator[](std::string_view name) const;
  void clear() { values_.clear(); }
  void add(std::string_view name, std::string value) { values_.emplace_back(std::string(name), std::move(value)); }

 private:
  std::vector<std::pair<std::string, std::string>> values_;
};

using RouteHandler = std::function<Status(const HttpRequest&, const RouteParams&, HttpResponse&)>;

struct Route {
  unsigned methods = 0;  // Method bits
  std::string pattern;   // "/api/v1/cameras/{camera}/snapshot.jpg"
  Access access = Access::open;
  RouteHandler handler;
};

struct ParamRule {
  std::string name;
  std::function<bool(std::string_view)> valid;
  std::string error;  // the 400's message when a value is not valid
};

// The HTTP status for an error code: invalid_argument and failed_precondition 400, not_found
// 404, already_exists 409, resource_exhausted 429, unimplemented 501, unavailable and
// cancelled 503, deadline_exceeded 504, data_loss and internal 500.
int http_status(ErrorCode code);

// {"error": message} with http_status(error.code).
void error_response(HttpResponse& response, const Error& error);

class Router {
 public:
  // invalid_argument naming the route when the table does not hold (see above).
  static Result<Router> create(std::vector<Route> routes, std::vector<ParamRule> rules, std::string admin_token);
  Router() = default;  // no routes: every path is 404

  void dispatch(const HttpRequest& request, HttpResponse& response) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  struct Segment {
    std::string text;      // a literal, or the parameter's name
    int rule = -1;         // index into rules_ for a parameter; -1 for a literal
  };
  // Whether the path's segments fit the route's pattern; params gets the parameters (checked
  // or not: bad_rule is the first parameter whose value its rule refuses, else -1).
  bool fits(std::size_t route, const std::vector<std::string_view>& path, RouteParams& params, int& bad_rule) const;
  bool authorised(const HttpRequest& request) const;

  std::vector<Route> routes_;
  std::vector<std::vector<Segment>> patterns_;  // [route]
  std::vector<ParamRule> rules_;
  std::string admin_token_;
};

}  // namespace vigil
