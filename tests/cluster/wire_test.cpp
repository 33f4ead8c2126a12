// The wire format of remote model calls: model inputs made from 8-bit pixels travel as a
// palette at a quarter of the size and arrive bit for bit; anything else travels as float32;
// damaged bytes are refused.
#include "vigil/cluster/wire.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

namespace vigil {
namespace {

Tensor pixels(float mul, float add, int n) {
  Tensor t({n, 64, 64, 3});
  std::mt19937 rng(7);
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<float>(rng() % 256) * mul + add;
  return t;
}

bool same_bits(const float* a, const float* b, std::size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

TEST(WireTest, PixelInputsTravelAsAPaletteAndArriveBitForBit) {
  for (auto [mul, add] : {std::pair{1.0f / 127.5f, -1.0f}, {1.0f / 255.0f, 0.0f}, {1.0f / 128.0f, -127.5f / 128.0f}, {1.0f, 0.0f}}) {
    const Tensor in = pixels(mul, add, 3);
    Tensor out;
    for (int i = 0; i < 3; ++i) {
      std::string bytes;
      encode_item(in, i, bytes);
      EXPECT_LT(bytes.size(), in.item_size() * sizeof(float) / 3) << "not paletted for mul " << mul;
      ASSERT_TRUE(decode_item(bytes, out, i, 3).ok());
    }
    ASSERT_EQ(out.shape(), in.shape());
    EXPECT_TRUE(same_bits(in.data(), out.data(), in.size()));
  }
}

TEST(WireTest, OtherValuesTravelAsFloat32Unchanged) {
  Tensor in({2, 896, 16});
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0, 10);
  for (std::size_t i = 0; i < in.size(); ++i) in.data()[i] = normal(rng);
  Tensor out;
  for (int i = 0; i < 2; ++i) {
    std::string bytes;
    encode_item(in, i, bytes);
    EXPECT_GE(bytes.size(), in.item_size() * sizeof(float));
    ASSERT_TRUE(decode_item(bytes, out, i, 2).ok());
  }
  EXPECT_TRUE(same_bits(in.data(), out.data(), in.size()));
}

TEST(WireTest, DamagedOrMismatchedItemsAreRefused) {
  const Tensor in = pixels(1.0f / 255.0f, 0.0f, 1);
  std::string bytes;
  encode_item(in, 0, bytes);
  Tensor out;
  for (const std::string& bad : {std::string(), std::string("VT1"), bytes.substr(0, bytes.size() - 1), bytes + "x", "XX" + bytes.substr(2)}) {
    Tensor t;
    Status s = decode_item(bad, t, 0, 1);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::data_loss);
  }
  std::string huge = bytes;
  const std::int64_t dim = std::int64_t{1} << 40;
  std::memcpy(huge.data() + 5 + 8, &dim, sizeof dim);
  EXPECT_FALSE(item_shape(huge).ok());
  Tensor other({1, 32, 32, 3});
  EXPECT_EQ(decode_item(bytes, other, 0, 1).error().code, ErrorCode::data_loss);
}

TEST(WireTest, KeysCarryAHashTagPerModelShardAndNode) {
  EXPECT_EQ(request_stream("vigil", "faces", 3), "vigil:{faces.3}:req");
  EXPECT_EQ(reply_stream("vigil", "node-a"), "vigil:{node-a}:reply");
  EXPECT_EQ(dead_letter_stream("vigil", "faces"), "vigil:{faces}:dead");
}

}  // namespace
}  // namespace vigil
