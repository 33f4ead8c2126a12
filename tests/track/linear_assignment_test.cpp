#include "vigil/track/linear_assignment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

namespace vigil {
namespace {

// The best achievable sum of (cost - limit) over pairs with cost < limit, by enumerating
// every injective map of the smaller side into the larger one (rows, cols <= 6).
double brute_force_gain(const std::vector<float>& cost, int rows, int cols, float limit) {
  const bool transposed = rows > cols;
  const int n = transposed ? cols : rows;
  const int m = transposed ? rows : cols;
  std::vector<int> perm(static_cast<std::size_t>(m));
  std::iota(perm.begin(), perm.end(), 0);
  double best = 0;
  do {
    double gain = 0;
    for (int i = 0; i < n; ++i) {
      const int j = perm[static_cast<std::size_t>(i)];
      const float c = transposed ? cost[static_cast<std::size_t>(j * cols + i)] : cost[static_cast<std::size_t>(i * cols + j)];
      if (c < limit) gain += c - limit;
    }
    best = std::min(best, gain);
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best;
}

TEST(LinearAssignmentTest, MatchesBruteForceOnRandomMatrices) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> size(0, 6);
  std::uniform_real_distribution<float> value(0.0f, 1.0f);
  LinearAssignment solver;
  std::vector<int> row_to_col, col_to_row;
  for (int trial = 0; trial < 2000; ++trial) {
    const int rows = size(rng), cols = size(rng);
    const float limit = trial % 3 == 0 ? 2.0f : value(rng);  // sometimes no limit at all
    std::vector<float> cost(static_cast<std::size_t>(rows * cols));
    for (auto& c : cost) c = trial % 5 == 0 ? std::round(value(rng) * 4) / 4 : value(rng);  // ties too
    solver.solve(cost, rows, cols, limit, row_to_col, col_to_row);

    double gain = 0;
    int matched = 0;
    for (int r = 0; r < rows; ++r) {
      const int c = row_to_col[static_cast<std::size_t>(r)];
      if (c < 0) continue;
      ++matched;
      ASSERT_EQ(col_to_row[static_cast<std::size_t>(c)], r);
      const float v = cost[static_cast<std::size_t>(r * cols + c)];
      ASSERT_LT(v, limit) << "a pair at or over the limit was matched";
      gain += v - limit;
    }
    ASSERT_EQ(matched, std::count_if(col_to_row.begin(), col_to_row.end(), [](int r) { return r >= 0; }));
    ASSERT_NEAR(gain, brute_force_gain(cost, rows, cols, limit), 1e-4) << "trial " << trial << " " << rows << "x" << cols;
  }
}

TEST(LinearAssignmentTest, PrefersTheGlobalOptimumOverGreedy) {
  // Greedy would take (0,0) at 0.1 and leave row 1 with 0.9; the optimum is 0.2 + 0.2.
  const std::vector<float> cost = {0.1f, 0.2f, 0.2f, 0.9f};
  LinearAssignment solver;
  std::vector<int> row_to_col, col_to_row;
  EXPECT_NEAR(solver.solve(cost, 2, 2, 1.0f, row_to_col, col_to_row), 0.4, 1e-6);
  EXPECT_EQ(row_to_col, (std::vector<int>{1, 0}));
}

TEST(LinearAssignmentTest, LeavesEverythingUnmatchedWhenAllCostsReachTheLimit) {
  const std::vector<float> cost = {0.8f, 0.9f, 1.0f};
  LinearAssignment solver;
  std::vector<int> row_to_col, col_to_row;
  EXPECT_EQ(solver.solve(cost, 1, 3, 0.8f, row_to_col, col_to_row), 0.0);
  EXPECT_EQ(row_to_col, (std::vector<int>{-1}));
  EXPECT_EQ(col_to_row, (std::vector<int>{-1, -1, -1}));
}

TEST(LinearAssignmentTest, HandlesEmptySides) {
  LinearAssignment solver;
  std::vector<int> row_to_col, col_to_row;
  EXPECT_EQ(solver.solve({}, 0, 4, 1.0f, row_to_col, col_to_row), 0.0);
  EXPECT_TRUE(row_to_col.empty());
  EXPECT_EQ(col_to_row.size(), 4u);
  EXPECT_EQ(solver.solve({}, 3, 0, 1.0f, row_to_col, col_to_row), 0.0);
  EXPECT_EQ(row_to_col, (std::vector<int>{-1, -1, -1}));
}

}  // namespace
}  // namespace vigil
