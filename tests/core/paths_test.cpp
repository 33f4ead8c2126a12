#include "vigil/core/paths.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace vigil {
namespace {

TEST(PathsTest, ExpandsVigilDataAndEnvironment) {
  setenv("VIGIL_DATA", "/data/v", 1);
  setenv("VIGIL_TEST_DIR", "/x", 1);
  EXPECT_EQ(expand_path("${VIGIL_DATA}/models/a.onnx"), "/data/v/models/a.onnx");
  EXPECT_EQ(expand_path("${VIGIL_TEST_DIR}/y"), "/x/y");
  EXPECT_EQ(expand_path("plain/path"), "plain/path");
  EXPECT_EQ(expand_path("${UNSET_VIGIL_VARIABLE}z"), "z");
  unsetenv("VIGIL_DATA");
}

TEST(PathsTest, ExpandsHome) {
  setenv("HOME", "/home/u", 1);
  EXPECT_EQ(expand_path("~/a"), "/home/u/a");
  EXPECT_EQ(data_dir(), "/home/u/.cache/vigil");
}

}  // namespace
}  // namespace vigil
