#include "vigil/infer/tensor.h"

namespace vigil {

void Tensor::reshape(std::span<const std::int64_t> shape) {
  shape_.assign(shape.begin(), shape.end());
  std::size_t n = 1;
  for (auto d : shape_) n *= static_cast<std::size_t>(d < 0 ? 0 : d);
  size_ = shape_.empty() ? 0 : n;
  // Slack after the last element: vectorised kernels (XNNPACK reads up to 16 bytes past an
  // input's end) never touch memory the tensor does not own.
  if (data_.size() < size_ + kSlack) data_.resize(size_ + kSlack);
}

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (std::size_t i = 0; i < shape_.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape_[i]);
  }
  return s + "]";
}

}  // namespace vigil
