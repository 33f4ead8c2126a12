#include "vigil/harvest/npy.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/test_support.h"
#include "vigil/core/atomic_file.h"

namespace vigil {
namespace {

std::vector<float> ramp(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) * 0.25f - 3.0f;
  return v;
}

TEST(NpyTest, RoundTripsAndHasNumpysLayout) {
  const std::vector<float> values = ramp(3 * 128);
  const std::string bytes = npy_bytes(values, 3, 128);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const std::size_t header = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  EXPECT_EQ((10 + header) % 64, 0u) << "the data starts 64-byte aligned";
  EXPECT_EQ(bytes[10 + header - 1], '\n');
  EXPECT_EQ(bytes.size(), 10 + header + values.size() * 4);
  auto parsed = parse_npy(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->rows, 3u);
  EXPECT_EQ(parsed->cols, 128u);
  EXPECT_EQ(parsed->values, values);
  auto empty = parse_npy(npy_bytes({}, 0, 128));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->rows, 0u);
  EXPECT_EQ(empty->cols, 128u);
}

// NumPy itself (Debian's python3-numpy, installed by setup) reads what we write, and we read
// what it writes.
TEST(NpyTest, NumpyReadsOursAndWeReadNumpys) {
  test::TempDir dir;
  const std::string ours = dir.file("ours.npy");
  ASSERT_TRUE(write_file_atomically(ours, npy_bytes(ramp(2 * 5), 2, 5)).ok());
  std::string printed;
  ASSERT_EQ(test::run_command("/usr/bin/python3 -c \"import numpy; a = numpy.load('" + ours +
                                  "'); print(a.dtype, a.shape, a[1, 4]); numpy.save('" + dir.file("theirs.npy") +
                                  "', numpy.arange(12, dtype='<f4').reshape(4, 3) / 2)\" 2>&1",
                              &printed),
            0)
      << printed;
  EXPECT_EQ(printed, "float32 (2, 5) -0.75\n");  // 9 * 0.25 - 3
  std::ifstream in(dir.file("theirs.npy"), std::ios::binary);
  std::stringstream theirs;
  theirs << in.rdbuf();
  auto parsed = parse_npy(theirs.str());
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->rows, 4u);
  EXPECT_EQ(parsed->cols, 3u);
  EXPECT_FLOAT_EQ(parsed->values[11], 5.5f);
}

TEST(NpyTest, DamagedOrForeignFilesAreErrors) {
  const std::string good = npy_bytes(ramp(4 * 4), 4, 4);
  EXPECT_EQ(parse_npy("").error().code, ErrorCode::data_loss);
  EXPECT_EQ(parse_npy("hello, world").error().code, ErrorCode::data_loss);
  EXPECT_EQ(parse_npy(good.substr(0, 40)).error().code, ErrorCode::data_loss) << "header cut off";
  EXPECT_EQ(parse_npy(good.substr(0, good.size() - 4)).error().code, ErrorCode::data_loss) << "data cut off";
  std::string other = good;
  other.replace(other.find("<f4"), 3, "<f8");
  EXPECT_EQ(parse_npy(other).error().code, ErrorCode::invalid_argument);
  std::string huge = good;
  huge.replace(huge.find("(4, 4)"), 6, "(99999999999999999, 4)");
  auto too_big = parse_npy(huge);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.error().code, ErrorCode::data_loss);
}

TEST(AtomicFileTest, ReplacesWholeAndLeavesNothingOnError) {
  test::TempDir dir;
  const std::string path = dir.file("manifest.json");
  ASSERT_TRUE(write_file_atomically(path, "first").ok());
  ASSERT_TRUE(write_file_atomically(path, "second, longer").ok());
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "second, longer");
  const Status missing_folder = write_file_atomically(dir.file("no/such/folder/x.json"), "x");
  ASSERT_FALSE(missing_folder.ok());
  EXPECT_EQ(missing_folder.error().code, ErrorCode::unavailable);
  EXPECT_NE(missing_folder.error().message.find("no/such/folder/x.json"), std::string::npos) << missing_folder.error().message;
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) files += entry.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 1u) << "no temporaries left behind";
  // A temporary left by a killed writer is cleaned up.
  std::ofstream(dir.file(".vigil-tmp-1-0-manifest.json")) << "half";
  remove_stale_temporaries(dir.path());
  EXPECT_FALSE(std::filesystem::exists(dir.file(".vigil-tmp-1-0-manifest.json")));
  EXPECT_TRUE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace vigil
