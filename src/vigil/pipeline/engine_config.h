// EngineConfig: everything `vigil run` needs, as typed settings with defaults. The cli
// module fills it from YAML and validates it; the pipeline trusts it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "vigil/sink/jsonl_sink.h"
#include "vigil/source/source_config.h"
#include "vigil/vision/blazeface.h"

namespace vigil {

struct ModelConfig {
  std::string kind = "blazeface";  // the only family so far
  BlazeFaceConfig blazeface;
};

struct DetectConfig {
  std::string model;  // key into EngineConfig::models
  int every = 1;      // run detection on every N-th frame of the camera
};

struct CameraConfig {
  std::string id;
  SourceConfig source;
  DetectConfig detect;
};

struct SinkConfig {
  std::string type = "jsonl";
  JsonlSinkConfig jsonl;
};

struct EngineConfig {
  std::vector<CameraConfig> cameras;
  std::map<std::string, ModelConfig> models;
  std::vector<SinkConfig> sinks;
  int inference_threads = 2;    // intra-op threads of the inference library
  double status_interval_s = 5;  // one status line this often; 0: never
  std::string log_level = "info";
};

}  // namespace vigil
