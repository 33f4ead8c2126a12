#include "vigil/cluster/wire.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

namespace vigil {

namespace {

constexpr std::string_view kMagic = "VT1";
constexpr std::size_t kPalette = 256;

struct Scale {
  float mul;
  float add;
};
// The pre-processing scales of vision/letterbox.h and the face embedders (0..255 as it is).
constexpr std::array<Scale, 4> kScales = {{{1.0f / 127.5f, -1.0f}, {1.0f / 255.0f, 0.0f}, {1.0f / 128.0f, -127.5f / 128.0f}, {1.0f, 0.0f}}};

void put_bytes(std::string& out, const void* p, std::size_t n) { out.append(static_cast<const char*>(p), n); }

// Fills `palette` and `index` when every value is palette[index]; false at the first value
// that is not.
bool palettise(const float* v, std::size_t n, Scale s, std::array<float, kPalette>& palette, std::array<bool, kPalette>& used,
               std::string& index) {
  used.fill(false);
  palette.fill(0.0f);
  index.resize(n);
  const float inv = 1.0f / s.mul;
  for (std::size_t i = 0; i < n; ++i) {
    const float u = std::nearbyint((v[i] - s.add) * inv);
    if (!(u >= 0.0f && u <= 255.0f)) return false;
    const auto k = static_cast<std::size_t>(u);
    if (!used[k]) {
      used[k] = true;
      palette[k] = v[i];
    } else if (std::memcmp(&palette[k], &v[i], sizeof(float)) != 0) {
      return false;
    }
    index[i] = static_cast<char>(k);
  }
  return true;
}

}  // namespace

void encode_item(const Tensor& tensor, std::int64_t n, std::string& out) {
  const std::size_t count = tensor.item_size();
  const float* v = tensor.item(n);
  out.append(kMagic);
  const auto rank = static_cast<std::uint8_t>(tensor.rank());
  thread_local std::array<float, kPalette> palette;
  thread_local std::array<bool, kPalette> used;
  thread_local std::string index;
  bool paletted = false;
  for (const Scale& s : kScales) {
    if (count >= kPalette * 4 && palettise(v, count, s, palette, used, index)) {
      paletted = true;
      break;
    }
  }
  out.push_back(paletted ? 'p' : 'f');
  out.push_back(static_cast<char>(rank));
  const std::int64_t one = 1;
  put_bytes(out, &one, sizeof one);
  for (std::size_t d = 1; d < tensor.rank(); ++d) put_bytes(out, &tensor.shape()[d], sizeof(std::int64_t));
  if (paletted) {
    put_bytes(out, palette.data(), kPalette * sizeof(float));
    out.append(index);
  } else {
    put_bytes(out, v, count * sizeof(float));
  }
}

Result<std::vector<std::int64_t>> item_shape(std::string_view bytes) {
  const auto bad = Error{ErrorCode::data_loss, "not a tensor item"};
  if (bytes.size() < 5 || bytes.substr(0, 3) != kMagic || (bytes[3] != 'p' && bytes[3] != 'f')) return bad;
  const auto rank = static_cast<std::uint8_t>(bytes[4]);
  if (rank < 1 || rank > 8 || bytes.size() < 5 + rank * sizeof(std::int64_t)) return bad;
  std::vector<std::int64_t> shape(rank);
  std::memcpy(shape.data(), bytes.data() + 5, rank * sizeof(std::int64_t));
  std::int64_t count = 1;
  for (std::int64_t d : shape) {
    if (d < 0 || d > (1 << 28)) return bad;
    count *= d;
    if (count > (std::int64_t{1} << 30)) return bad;
  }
  if (shape[0] != 1) return bad;
  const std::size_t body = bytes.size() - 5 - rank * sizeof(std::int64_t);
  const auto n = static_cast<std::size_t>(count);
  if (body != (bytes[3] == 'p' ? kPalette * sizeof(float) + n : n * sizeof(float))) return bad;
  return shape;
}

Status decode_item(std::string_view bytes, Tensor& tensor, std::int64_t n, std::int64_t count) {
  auto shape = item_shape(bytes);
  if (!shape.ok()) return shape.error();
  if (tensor.rank() == 0) {
    (*shape)[0] = count;
    tensor.reshape(*shape);
  } else if (tensor.rank() != shape->size() || !std::equal(shape->begin() + 1, shape->end(), tensor.shape().begin() + 1)) {
    return Error{ErrorCode::data_loss, "tensor item of another shape than the batch's"};
  }
  if (n < 0 || n >= tensor.dim(0)) return Error{ErrorCode::internal, "tensor item outside the batch"};
  const std::size_t items = tensor.item_size();
  const char* body = bytes.data() + 5 + shape->size() * sizeof(std::int64_t);
  float* dst = tensor.item(n);
  if (bytes[3] == 'f') {
    std::memcpy(dst, body, items * sizeof(float));
    return {};
  }
  float palette[kPalette];
  std::memcpy(palette, body, sizeof palette);
  const auto* index = reinterpret_cast<const std::uint8_t*>(body + sizeof palette);
  for (std::size_t i = 0; i < items; ++i) dst[i] = palette[index[i]];
  return {};
}

std::string request_stream(std::string_view prefix, std::string_view model, int shard) {
  return std::string(prefix) + ":{" + std::string(model) + "." + std::to_string(shard) + "}:req";
}
std::string reply_stream(std::string_view prefix, std::string_view node) {
  return std::string(prefix) + ":{" + std::string(node) + "}:reply";
}
std::string dead_letter_stream(std::string_view prefix, std::string_view model) {
  return std::string(prefix) + ":{" + std::string(model) + "}:dead";
}

}  // namespace vigil
