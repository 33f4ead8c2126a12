#include "vigil/http/router.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace vigil {
namespace {

bool digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

RouteHandler says(std::string text) {
  return [text](const HttpRequest&, const RouteParams& params, HttpResponse& response) {
    response.body = text + "|" + params["id"];
    return Status{};
  };
}

std::vector<ParamRule> rules() { return {{"id", digits, "invalid id"}}; }

HttpResponse request(const Router& router, const std::string& method, const std::string& path,
                     const std::string& authorization = "") {
  HttpRequest q;
  q.method = method;
  q.path = path;
  if (!authorization.empty()) q.headers["authorization"] = authorization;
  HttpResponse r;
  router.dispatch(q, r);
  return r;
}

std::string error_of(const HttpResponse& r) { return nlohmann::json::parse(r.body)["error"].get<std::string>(); }

std::string header_of(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

Router things(const std::string& token = "") {
  auto router = Router::create({{kGet | kHead, "/things", Access::open, says("list")},
                                {kPost, "/things", Access::admin, says("add")},
                                {kGet, "/things/{id}", Access::open, says("show")},
                                {kDelete, "/things/{id}", Access::admin, says("remove")},
                                {kGet, "/things/{id}/photo.jpg", Access::open, says("photo")},
                                {kGet, "/", Access::open, says("root")}},
                               rules(), token);
  EXPECT_TRUE(router.ok()) << router.error().message;
  return std::move(router).value();
}

TEST(RouterTest, ARequestReachesTheRouteOfItsPathAndMethodWithItsParameters) {
  const Router router = things();
  EXPECT_EQ(request(router, "GET", "/things").body, "list|");
  EXPECT_EQ(request(router, "HEAD", "/things").body, "list|");
  EXPECT_EQ(request(router, "GET", "/things/").body, "list|") << "one trailing slash is the same path";
  EXPECT_EQ(request(router, "POST", "/things").body, "add|");
  EXPECT_EQ(request(router, "GET", "/things/42").body, "show|42");
  EXPECT_EQ(request(router, "DELETE", "/things/42").body, "remove|42");
  EXPECT_EQ(request(router, "GET", "/things/7/photo.jpg").body, "photo|7");
  EXPECT_EQ(request(router, "GET", "/").body, "root|");
}

TEST(RouterTest, NoPatternIs404AWrongMethodIs405WithAllow) {
  const Router router = things();
  for (const char* path : {"/nothing", "/things/42/other", "/things//photo.jpg", "//things", "/things/42/photo.jpg/x"}) {
    const HttpResponse r = request(router, "GET", path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(error_of(r), "no such resource");
  }
  const HttpResponse put = request(router, "PUT", "/things/42");
  EXPECT_EQ(put.status, 405);
  EXPECT_EQ(header_of(put, "Allow"), "GET, DELETE");
  EXPECT_EQ(header_of(request(router, "OPTIONS", "/things"), "Allow"), "GET, HEAD, POST");
  EXPECT_EQ(request(router, "HEAD", "/things/1/photo.jpg").status, 405) << "HEAD is taken only where declared";
}

TEST(RouterTest, AnInvalidParameterIs400BeforeTheHandlerRuns) {
  const Router router = things();
  for (const char* path : {"/things/abc", "/things/..", "/things/%2e%2e/photo.jpg"}) {
    const HttpResponse r = request(router, "GET", path);
    EXPECT_EQ(r.status, 400) << path;
    EXPECT_EQ(error_of(r), "invalid id");
  }
}

TEST(RouterTest, AdminRoutesNeedTheTokenWhenOneIsSet) {
  const Router open = things();
  EXPECT_EQ(request(open, "DELETE", "/things/1").status, 200);
  const Router guarded = things("s3cret");
  const HttpResponse none = request(guarded, "DELETE", "/things/1");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(header_of(none, "WWW-Authenticate"), "Bearer");
  EXPECT_EQ(request(guarded, "DELETE", "/things/1", "Bearer wrong").status, 401);
  EXPECT_EQ(request(guarded, "DELETE", "/things/1", "Bearer s3cre").status, 401);
  EXPECT_EQ(request(guarded, "DELETE", "/things/1", "Bearer s3cret!").status, 401);
  EXPECT_EQ(request(guarded, "DELETE", "/things/1", "Basic s3cret").status, 401);
  EXPECT_EQ(request(guarded, "DELETE", "/things/1", "Bearer s3cret").status, 200);
  EXPECT_EQ(request(guarded, "GET", "/things/1").status, 200) << "open routes stay open";
}

TEST(RouterTest, AHandlersErrorCodeSetsTheStatus) {
  const auto fails_with = [](ErrorCode code) {
    return [code](const HttpRequest&, const RouteParams&, HttpResponse&) { return Status(code, "why"); };
  };
  const std::vector<std::pair<ErrorCode, int>> expected = {
      {ErrorCode::invalid_argument, 400}, {ErrorCode::failed_precondition, 400}, {ErrorCode::not_found, 404},
      {ErrorCode::already_exists, 409},   {ErrorCode::resource_exhausted, 429},  {ErrorCode::unimplemented, 501},
      {ErrorCode::unavailable, 503},      {ErrorCode::cancelled, 503},           {ErrorCode::deadline_exceeded, 504},
      {ErrorCode::data_loss, 500},        {ErrorCode::internal, 500}};
  for (const auto& [code, status] : expected) {
    auto router = Router::create({{kGet, "/x", Access::open, fails_with(code)}}, {}, "");
    ASSERT_TRUE(router.ok());
    const HttpResponse r = request(*router, "GET", "/x");
    EXPECT_EQ(r.status, status) << to_string(code);
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_EQ(error_of(r), "why");
  }
}

TEST(RouterTest, ATableThatDoesNotHoldIsRefusedAtStart) {
  const auto refused = [](std::vector<Route> routes) {
    auto router = Router::create(std::move(routes), rules(), "");
    return router.ok() ? std::string() : router.error().message;
  };
  const RouteHandler h = says("");
  EXPECT_NE(refused({{kGet, "/a/{id}", Access::open, h}, {kGet, "/a/new", Access::open, h}}).find("takes the same requests as"),
            std::string::npos);
  EXPECT_NE(refused({{kGet, "/a/{id}", Access::open, h}, {kGet | kPost, "/a/{id}", Access::open, h}}), "");
  EXPECT_EQ(refused({{kGet, "/a/{id}", Access::open, h}, {kPost, "/a/new", Access::open, h}}), "") << "other methods may share a path";
  EXPECT_NE(refused({{kGet, "/a/{who}", Access::open, h}}).find("no rule for parameter {who}"), std::string::npos);
  EXPECT_NE(refused({{kGet, "a", Access::open, h}}), "");
  EXPECT_NE(refused({{kGet, "/a//b", Access::open, h}}), "");
  EXPECT_NE(refused({{kGet, "/a/x{id}", Access::open, h}}), "");
  EXPECT_NE(refused({{kGet, "/a/{id}/{id}", Access::open, h}}), "");
  EXPECT_NE(refused({{0, "/a", Access::open, h}}), "");
  EXPECT_NE(refused({{kGet, "/a", Access::open, nullptr}}), "");
}

}  // namespace
}  // namespace vigil
