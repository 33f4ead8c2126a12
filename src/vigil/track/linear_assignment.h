// LinearAssignment: the exact minimum-cost matching of rows (tracks) to columns
// (detections) with a cost limit, as ByteTrack uses it (there via lapjv with
// `extend_cost=True, cost_limit=thresh`).
//
// A pair may match only when its cost is below the limit; the matching minimises the sum of
// (cost - limit) over matched pairs, which is what lapjv's extended square matrix
// minimises (every unmatched row or column costs limit / 2). Solved by shortest augmenting
// paths with row and column potentials (the augmentation phase of Jonker-Volgenant, 1987),
// O(n^2 m) for n = min(rows, cols), on costs clipped to the limit: a row "assigned" at the
// limit is unmatched.
//
// Threading: one caller at a time; the instance keeps its workspace so that steady-state
// calls allocate nothing.
#pragma once

#include <span>
#include <vector>

namespace vigil {

class LinearAssignment {
 public:
  // cost: rows x cols, row-major. On return row_to_col[r] is the matched column or -1, and
  // col_to_row[c] the matched row or -1. Returns the sum of the matched pairs' costs.
  double solve(std::span<const float> cost, int rows, int cols, float cost_limit, std::vector<int>& row_to_col,
               std::vector<int>& col_to_row);

 private:
  std::vector<double> u_, v_, min_slack_;
  std::vector<int> match_, way_;
  std::vector<unsigned char> used_;
};

}  // namespace vigil
