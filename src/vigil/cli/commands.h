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

struct BenchPipelineOptions {
  std::string config_path;
  double seconds = 20;      // measured window
  double warmup_s = 3;      // engine running, not measured
  double reference_s = 3;   // model-only reference
  std::string track = "config";  // "on" or "off" overrides every camera's track setting
  bool json = false;
};
int bench_pipeline_command(const BenchPipelineOptions& options);

}  // namespace vigil
