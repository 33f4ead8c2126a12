// vigil harvest: one pass over recorded videos, faces embedded in batches (harvest/harvester.h).
#include <unistd.h>

#include <cstdio>

#include "vigil/cli/commands.h"
#include "vigil/cli/config_loader.h"
#include "vigil/core/atomic_file.h"
#include "vigil/core/paths.h"
#include "vigil/harvest/harvester.h"

namespace vigil {

int harvest_command(const HarvestCommandOptions& o) {
  HarvestOptions options;
  options.inputs = o.inputs;
  options.out_dir = o.out_dir;
  options.stride = o.stride;
  options.select.best_k = o.best_k;
  options.select.every_s = o.every_s;
  options.select.all_faces = o.all_faces;
  options.cluster_threshold = o.cluster_threshold;
  options.cpu_budget = o.cpu_budget;
  options.gallery = o.gallery;
  options.gallery_threshold = o.gallery_threshold;
  options.gallery_margin = o.gallery_margin;
  if (!o.upload.empty()) {
    auto location = parse_s3_url(o.upload);
    auto s3 = location.ok() ? s3_config_from_environment() : Result<S3Config>(location.error());
    if (!s3.ok()) {
      std::fprintf(stderr, "vigil: error: %s\n", s3.error().message.c_str());
      return 2;
    }
    UploadTarget target;
    target.s3 = *s3;
    target.location = *location;
    target.concurrency = o.upload_concurrency;
    options.upload = target;
  }
  options.detector = ModelConfig::of_kind("blazeface");
  options.detector.settings.model_path = data_dir() + "/models/blazeface_back_256_dyn.onnx";
  options.detector.settings.input_size = 256;
  options.detector.settings.max_batch = 4;
  options.embedder.settings.model_path = data_dir() + "/models/face_recognition_128.onnx";
  if (!o.config_path.empty()) {  // the first face detector (any kind that finds faces) and embedder of a config
    auto config = load_config_file(o.config_path, ConfigUse::models);
    if (!config.ok()) {
      std::fprintf(stderr, "vigil: error: %s\n", config.error().message.c_str());
      return 2;
    }
    bool detector = false, embedder = false;
    for (const auto& [name, m] : config->models) {
      if (!detector && m.finds_faces()) options.detector = m, detector = true;
      if (!embedder && m.role() == ModelRole::face_embedder) options.embedder = m, embedder = true;
    }
    if (!detector || !embedder) {
      std::fprintf(stderr, "vigil: error: %s: harvest needs a face detector (blazeface or scrfd) and a face_embedder model\n", o.config_path.c_str());
      return 2;
    }
  }
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  const std::string progress_path = o.out_dir + "/progress.json";
  auto last_line = std::chrono::steady_clock::now() - std::chrono::hours(1);
  auto result = harvest(options, [&](const HarvestProgress& p) {
    static_cast<void>(write_file_atomically(progress_path, progress_json(p)));  // best effort; the run goes on
    if (tty) {
      std::fprintf(stderr, "\r%s\x1b[K", progress_bar(p, 120).c_str());
    } else if (std::chrono::steady_clock::now() - last_line > std::chrono::seconds(5)) {
      last_line = std::chrono::steady_clock::now();
      std::fprintf(stderr, "%s\n", progress_line(p).c_str());
    }
  });
  if (tty) std::fprintf(stderr, "\n");
  if (!result.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", result.error().message.c_str());
    const ErrorCode c = result.error().code;
    return c == ErrorCode::not_found || c == ErrorCode::invalid_argument || c == ErrorCode::data_loss ? 2 : 1;
  }
  const HarvestSummary& s = *result;
  for (const std::string& w : s.warnings) std::fprintf(stderr, "vigil: warning: gallery: %s\n", w.c_str());
  std::printf("vigil harvest: %llu frames (%llu sampled), %llu faces tracked, %llu embedded in %llu embedder calls "
              "(1 per %.1f faces), %llu tracks, %llu people, %.1f s, CPU %.2f cores; outputs in %s\n",
              static_cast<unsigned long long>(s.frames), static_cast<unsigned long long>(s.sampled),
              static_cast<unsigned long long>(s.faces_detected), static_cast<unsigned long long>(s.faces_embedded),
              static_cast<unsigned long long>(s.embedder_calls),
              s.embedder_calls ? static_cast<double>(s.faces_detected) / static_cast<double>(s.embedder_calls) : 0.0,
              static_cast<unsigned long long>(s.tracks), static_cast<unsigned long long>(s.people), s.seconds,
              s.seconds > 0 ? s.cpu_seconds / s.seconds : 0.0, o.out_dir.c_str());
  if (!s.upload_destination.empty()) {
    const UploadStats& u = s.upload;
    std::printf("vigil harvest: uploaded %llu of %llu files (%.1f MB) to %s, at most %d at once, %llu retries; "
                "%llu were there already\n",
                static_cast<unsigned long long>(u.uploaded), static_cast<unsigned long long>(u.files),
                static_cast<double>(u.bytes) / 1e6, s.upload_destination.c_str(), u.max_in_flight,
                static_cast<unsigned long long>(u.retries), static_cast<unsigned long long>(u.recorded + u.found));
  }
  if (s.resumed_frames > 0) {
    std::printf("vigil harvest: resumed: detections of %llu sampled frames and %llu embedder calls came from the journal\n",
                static_cast<unsigned long long>(s.resumed_frames), static_cast<unsigned long long>(s.resumed_embedder_calls));
  }
  return 0;
}

}  // namespace vigil
