#include "vigil/track/linear_assignment.h"

#include <algorithm>
#include <limits>

namespace vigil {

double LinearAssignment::solve(std::span<const float> cost, int rows, int cols, float cost_limit,
                               std::vector<int>& row_to_col, std::vector<int>& col_to_row) {
  row_to_col.assign(static_cast<std::size_t>(std::max(rows, 0)), -1);
  col_to_row.assign(static_cast<std::size_t>(std::max(cols, 0)), -1);
  if (rows <= 0 || cols <= 0) return 0;

  // The algorithm wants n <= m: run on the transpose when there are more rows than columns.
  const bool transposed = rows > cols;
  const int n = transposed ? cols : rows;
  const int m = transposed ? rows : cols;
  auto clipped = [&](int i, int j) -> double {  // 0-based, in the (n x m) orientation
    const float c = transposed ? cost[static_cast<std::size_t>(j) * cols + i] : cost[static_cast<std::size_t>(i) * cols + j];
    return std::min(c, cost_limit);
  };

  constexpr double kInf = std::numeric_limits<double>::infinity();
  const auto m1 = static_cast<std::size_t>(m + 1);
  u_.assign(static_cast<std::size_t>(n + 1), 0.0);
  v_.assign(m1, 0.0);
  match_.assign(m1, 0);  // match_[j]: row (1-based) assigned to column j; column 0 is virtual
  way_.assign(m1, 0);
  for (int i = 1; i <= n; ++i) {
    match_[0] = i;
    int j0 = 0;
    min_slack_.assign(m1, kInf);
    used_.assign(m1, 0);
    // Grow a shortest-path tree from row i until it reaches a free column.
    do {
      used_[j0] = 1;
      const int i0 = match_[j0];
      double delta = kInf;
      int j1 = 0;
      for (int j = 1; j <= m; ++j) {
        if (used_[j]) continue;
        const double slack = clipped(i0 - 1, j - 1) - u_[i0] - v_[j];
        if (slack < min_slack_[j]) {
          min_slack_[j] = slack;
          way_[j] = j0;
        }
        if (min_slack_[j] < delta) {
          delta = min_slack_[j];
          j1 = j;
        }
      }
      for (int j = 0; j <= m; ++j) {
        if (used_[j]) {
          u_[match_[j]] += delta;
          v_[j] -= delta;
        } else {
          min_slack_[j] -= delta;
        }
      }
      j0 = j1;
    } while (match_[j0] != 0);
    // Flip the path.
    do {
      const int j1 = way_[j0];
      match_[j0] = match_[j1];
      j0 = j1;
    } while (j0 != 0);
  }

  double total = 0;
  for (int j = 1; j <= m; ++j) {
    const int i = match_[j];
    if (i == 0) continue;
    const int r = transposed ? j - 1 : i - 1;
    const int c = transposed ? i - 1 : j - 1;
    const float value = cost[static_cast<std::size_t>(r) * cols + c];
    if (!(value < cost_limit)) continue;  // assigned at the limit: unmatched
    row_to_col[r] = c;
    col_to_row[c] = r;
    total += value;
  }
  return total;
}

}  // namespace vigil
