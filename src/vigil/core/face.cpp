#include "vigil/core/face.h"

#include <cmath>

namespace vigil {

float cosine(const Embedding& a, const Embedding& b) {
  if (a.size() != b.size()) return 0;
  float dot = 0;
  for (std::size_t i = 0; i < a.size(); ++i) dot += a[i] * b[i];
  return dot;
}

void accumulate(Embedding& sum, const Embedding& e) {
  if (sum.empty()) sum = Embedding(e.size());
  if (sum.size() != e.size()) return;
  for (std::size_t i = 0; i < e.size(); ++i) sum[i] += e[i];
}

void l2_normalise(Embedding& e) {
  double sum = 0;
  for (float v : e) sum += static_cast<double>(v) * v;
  if (sum <= 0) return;
  const auto inv = static_cast<float>(1.0 / std::sqrt(sum));
  for (float& v : e) v *= inv;
}

}  // namespace vigil
