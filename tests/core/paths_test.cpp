#include "vigil/core/paths.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace vigil {
namespace {

// Sets an environment variable for one test and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(PathsTest, ExpandsVigilDataAndEnvironment) {
  ScopedEnv data("VIGIL_DATA", "/data/v");
  ScopedEnv dir("VIGIL_TEST_DIR", "/x");
  ScopedEnv unset("UNSET_VIGIL_VARIABLE", nullptr);
  EXPECT_EQ(expand_path("${VIGIL_DATA}/models/a.onnx"), "/data/v/models/a.onnx");
  EXPECT_EQ(expand_path("${VIGIL_TEST_DIR}/y"), "/x/y");
  EXPECT_EQ(expand_path("plain/path"), "plain/path");
  EXPECT_EQ(expand_path("${UNSET_VIGIL_VARIABLE}z"), "z");
  EXPECT_EQ(expand_path("${unterminated"), "${unterminated");
}

TEST(PathsTest, DataDirDefaultsToTheUserCache) {
  ScopedEnv data("VIGIL_DATA", nullptr);
  ScopedEnv home("HOME", "/home/u");
  EXPECT_EQ(expand_path("~/a"), "/home/u/a");
  EXPECT_EQ(data_dir(), "/home/u/.cache/vigil");
}

}  // namespace
}  // namespace vigil
