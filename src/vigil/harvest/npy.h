// NumPy's .npy format (version 1.0) for float32 matrices: what `vigil harvest` writes its
// embeddings as (numpy.load reads it), and reads back when it resumes.
//
// Threading: pure functions.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/core/status.h"

namespace vigil {

struct NpyMatrix {
  std::size_t rows = 0, cols = 0;
  std::vector<float> values;  // rows * cols, row-major
};

// The bytes of a little-endian float32 C-order rows x cols array. values.size() must be
// rows * cols.
std::string npy_bytes(std::span<const float> values, std::size_t rows, std::size_t cols);

// Parses what npy_bytes writes (and numpy.save writes for a 2-D '<f4' C-order array).
// Errors: data_loss for a truncated or malformed file, invalid_argument for another dtype,
// order or rank.
Result<NpyMatrix> parse_npy(std::string_view bytes);

}  // namespace vigil
