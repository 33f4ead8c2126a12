// Tensor: a dense float32 array with a shape, owning its memory.
//
// Batches are built in place (pre-processing writes straight into a Tensor) and reused from
// call to call: reshape() keeps capacity, so steady-state inference allocates nothing here.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

namespace vigil {

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::vector<std::int64_t> shape) { reshape(shape); }

  // Sets the shape; grows the buffer if needed (contents are then unspecified).
  void reshape(std::span<const std::int64_t> shape);
  void reshape(std::initializer_list<std::int64_t> shape) { reshape(std::span(shape.begin(), shape.size())); }

  const std::vector<std::int64_t>& shape() const { return shape_; }
  std::int64_t dim(std::size_t i) const { return shape_.at(i); }
  std::size_t rank() const { return shape_.size(); }
  std::size_t size() const { return size_; }  // element count
  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  // Elements of item n along the first axis.
  std::size_t item_size() const { return shape_.empty() || shape_[0] == 0 ? 0 : size_ / shape_[0]; }
  float* item(std::int64_t n) { return data() + n * item_size(); }
  const float* item(std::int64_t n) const { return data() + n * item_size(); }

  std::string shape_string() const;  // "[8,256,256,3]"

  static constexpr std::size_t kSlack = 16;  // floats allocated past the end

 private:
  std::vector<std::int64_t> shape_;
  std::size_t size_ = 0;
  std::vector<float> data_;
};

}  // namespace vigil
