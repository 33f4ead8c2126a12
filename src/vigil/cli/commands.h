// The vigil subcommands. Each returns the process exit code: 0 success, 1 a runtime
// failure (a camera, model or sink failed), 2 bad usage or config.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace vigil {

struct RunOptions {
  std::string config_path;
  std::optional<double> duration_s;
};
int run_command(const RunOptions& options);

struct BenchModelOptions {
  std::string model_path;
  int input_size = 256;
  std::vector<int> batches{1, 8};
  double seconds = 5;
  int threads = 0;  // 0: all cores
  bool json = false;
};
int bench_model_command(const BenchModelOptions& options);

}  // namespace vigil
