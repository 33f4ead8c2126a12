// Config loading: YAML to EngineConfig, validated in one place. Every error names the
// field's path, e.g. "cameras[1].source.url: required for type 'file'", and unknown keys
// are errors (a typo must not silently fall back to a default).
#pragma once

#include <string>

#include "vigil/core/status.h"
#include "vigil/pipeline/engine_config.h"

namespace vigil {

Result<EngineConfig> load_config_file(const std::string& path);
Result<EngineConfig> parse_config(const std::string& yaml_text, const std::string& origin = "config");
// One camera in the config's camera schema (YAML or JSON), its models looked up in `config`
// (what POST /api/v1/cameras takes).
Result<CameraConfig> parse_camera_config(const std::string& text, const EngineConfig& config,
                                         const std::string& origin = "camera");

}  // namespace vigil
