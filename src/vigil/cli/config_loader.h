// Config loading: YAML to EngineConfig, validated in one place. Every error names the
// field's path, e.g. "cameras[1].source.url: required for type 'file'", and unknown keys
// are errors (a typo must not silently fall back to a default).
#pragma once

#include <string>

#include "vigil/core/status.h"
#include "vigil/pipeline/engine_config.h"

namespace vigil {

// What a config is loaded for: the engine (cameras required), or only its models (the
// harvest's --config; cameras may be there, and are checked, but need not be).
enum class ConfigUse { engine, models };

// "HOST:PORT" or "[IPv6]:PORT" (port 0..65535; 0: any free one) -> host, port.
Result<std::pair<std::string, int>> parse_listen_address(const std::string& listen);

Result<EngineConfig> load_config_file(const std::string& path, ConfigUse use = ConfigUse::engine);
Result<EngineConfig> parse_config(const std::string& yaml_text, const std::string& origin = "config", ConfigUse use = ConfigUse::engine);
// One camera in the config's camera schema (YAML or JSON), its models looked up in `config`
// (what POST /api/v1/cameras takes).
Result<CameraConfig> parse_camera_config(const std::string& text, const EngineConfig& config,
                                         const std::string& origin = "camera");

}  // namespace vigil
