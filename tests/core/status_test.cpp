#include "vigil/core/status.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include <memory>

namespace vigil {
namespace {

Result<int> half(int n) {
  if (n % 2) return Error{ErrorCode::invalid_argument, "odd"};
  return n / 2;
}

Status quarter_into(int n, int& out) {
  auto h = half(n);
  VIGIL_RETURN_IF_ERROR(h);
  auto q = half(*h);
  VIGIL_RETURN_IF_ERROR(q);
  out = *q;
  return {};
}

TEST(StatusTest, DefaultIsOk) { EXPECT_TRUE(Status{}.ok()); }

TEST(StatusTest, ErrorKeepsCodeAndMessage) {
  Status s(ErrorCode::unavailable, "stream dropped");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::unavailable);
  EXPECT_EQ(s.error().describe(), "unavailable: stream dropped");
}

TEST(ResultTest, HoldsValueOrError) {
  EXPECT_EQ(*half(8), 4);
  EXPECT_FALSE(half(3).ok());
  EXPECT_EQ(half(3).error().code, ErrorCode::invalid_argument);
}

TEST(ResultTest, MoveOnlyValue) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(5));
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 5);
}

TEST(ResultTest, ReturnIfErrorPropagatesFirstError) {
  int out = 0;
  EXPECT_TRUE(quarter_into(8, out).ok());
  EXPECT_EQ(out, 2);
  Status s = quarter_into(6, out);  // 6 -> 3 -> odd
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "odd");
}

TEST(ResultTest, WithContextPrefixesMessage) {
  Error e = with_context(Error{ErrorCode::not_found, "no such file"}, "camera lobby");
  EXPECT_EQ(e.code, ErrorCode::not_found);
  EXPECT_EQ(e.message, "camera lobby: no such file");
}

TEST(GuardedCallTest, WhatACallThrowsBecomesAnInternalError) {
  const Status thrown = guarded_call([]() -> Status { throw std::runtime_error("model exploded"); });
  ASSERT_FALSE(thrown.ok());
  EXPECT_EQ(thrown.error().code, ErrorCode::internal);
  EXPECT_EQ(thrown.error().message, "exception: model exploded");
  const Result<int> other = guarded_call([]() -> Result<int> { throw 7; });
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().message, "unknown exception");
  EXPECT_EQ(*guarded_call([]() -> Result<int> { return 5; }), 5);
  EXPECT_EQ(guarded_call([]() -> Status { return Error{ErrorCode::not_found, "x"}; }).error().code, ErrorCode::not_found);
}

}  // namespace
}  // namespace vigil
