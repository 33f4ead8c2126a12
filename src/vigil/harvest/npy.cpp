#include "vigil/harvest/npy.h"

#include <bit>
#include <cstdint>
#include <cstring>

namespace vigil {

namespace {

constexpr std::string_view kMagic = "\x93NUMPY";

}  // namespace

std::string npy_bytes(std::span<const float> values, std::size_t rows, std::size_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                       std::to_string(cols) + "), }";
  // magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64,
  // ending in a newline.
  const std::size_t unpadded = kMagic.size() + 4 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out(kMagic);
  out += '\x01';
  out += '\x00';
  const auto length = static_cast<std::uint16_t>(header.size());
  out += static_cast<char>(length & 0xff);
  out += static_cast<char>(length >> 8);
  out += header;
  const std::size_t start = out.size();
  out.resize(start + values.size() * sizeof(float));
  static_assert(std::endian::native == std::endian::little, "npy_bytes writes the machine's floats as '<f4'");
  if (!values.empty()) std::memcpy(out.data() + start, values.data(), values.size() * sizeof(float));
  return out;
}

Result<NpyMatrix> parse_npy(std::string_view bytes) {
  if (bytes.size() < 10 || bytes.substr(0, kMagic.size()) != kMagic) return Error{ErrorCode::data_loss, "not a .npy file"};
  if (bytes[6] != '\x01') return Error{ErrorCode::invalid_argument, ".npy version other than 1.0"};
  const std::size_t length = static_cast<unsigned char>(bytes[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
  if (bytes.size() < 10 + length) return Error{ErrorCode::data_loss, ".npy header cut off"};
  const std::string header(bytes.substr(10, length));
  if (header.find("'descr': '<f4'") == std::string::npos) return Error{ErrorCode::invalid_argument, ".npy dtype is not '<f4'"};
  if (header.find("'fortran_order': False") == std::string::npos) {
    return Error{ErrorCode::invalid_argument, ".npy array is not in C order"};
  }
  // 'shape': (ROWS, COLS) — parsed by hand (std::regex trips GCC 12's warnings under ASan).
  const std::string key = "'shape': (";
  const std::size_t at = header.find(key);
  if (at == std::string::npos) return Error{ErrorCode::invalid_argument, ".npy array is not 2-D"};
  std::size_t pos = at + key.size();
  const auto number = [&](std::size_t& out) {
    const std::size_t start = pos;
    out = 0;
    while (pos < header.size() && header[pos] >= '0' && header[pos] <= '9' && pos - start < 18) {
      out = out * 10 + static_cast<std::size_t>(header[pos] - '0');
      ++pos;
    }
    return pos > start && !(pos < header.size() && header[pos] >= '0' && header[pos] <= '9');
  };
  NpyMatrix m;
  if (!number(m.rows) || header.compare(pos, 2, ", ") != 0) return Error{ErrorCode::invalid_argument, ".npy array is not 2-D"};
  pos += 2;
  if (!number(m.cols) || header.compare(pos, 1, ")") != 0) return Error{ErrorCode::invalid_argument, ".npy array is not 2-D"};
  const std::size_t data = bytes.size() - 10 - length;
  if (m.cols != 0 && m.rows > data / sizeof(float) / m.cols) return Error{ErrorCode::data_loss, ".npy data cut off"};
  if (data != m.rows * m.cols * sizeof(float)) return Error{ErrorCode::data_loss, ".npy data size does not match its shape"};
  m.values.resize(m.rows * m.cols);
  if (data > 0) std::memcpy(m.values.data(), bytes.data() + 10 + length, data);
  return m;
}

}  // namespace vigil
