#include "vigil/source/source.h"

#include "vigil/source/ffmpeg_source.h"
#include "vigil/source/synthetic_source.h"

namespace vigil {

Result<std::unique_ptr<Source>> open_source(const SourceConfig& config, const std::string& camera_id) {
  if (config.type == SourceType::synthetic) {
    auto source = SyntheticSource::open(config, camera_id);
    if (!source.ok()) return source.error();
    return std::unique_ptr<Source>(std::move(source).value());
  }
  auto source = FfmpegSource::open(config, camera_id);
  if (!source.ok()) return source.error();
  return std::unique_ptr<Source>(std::move(source).value());
}

}  // namespace vigil
