// vigil bench naive: the thread-per-camera loop (naive_loop.h) alone on a config.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "vigil/cli/commands.h"
#include "vigil/cli/config_loader.h"
#include "vigil/cli/naive_loop.h"
#include "vigil/core/process_stats.h"
#include "vigil_git_revision.h"

namespace vigil {

int bench_naive_command(const BenchNaiveOptions& options) {
  auto config = load_config_file(options.config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", config.error().message.c_str());
    return 2;
  }
  auto kind = parse_backend_kind(options.backend);
  if (!kind.ok()) {
    std::fprintf(stderr, "vigil: error: --backend: %s\n", kind.error().message.c_str());
    return 2;
  }
  auto r = run_naive_loop(*config, options.warmup_s, options.seconds, *kind);
  if (!r.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", r.error().message.c_str());
    return r.error().code == ErrorCode::invalid_argument || r.error().code == ErrorCode::not_found ? 2 : 1;
  }
  nlohmann::json out = {{"benchmark", "naive"},
                        {"config", options.config_path},
                        {"backend", r->backend},
                        {"seconds", r->seconds},
                        {"cameras", config->cameras.size()},
                        {"frames_per_s", r->frames_per_s},
                        {"inferred_per_s", r->inferred_per_s},
                        {"cpu_cores", r->cpu_cores},
                        {"threads", r->threads},
                        {"machine", machine_description()},
                        {"git_revision", VIGIL_GIT_REVISION}};
  std::printf("%s\n", options.json ? out.dump().c_str() : out.dump(2).c_str());
  return 0;
}

}  // namespace vigil
