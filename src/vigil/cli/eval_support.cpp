#include "vigil/cli/eval_support.h"

#include <cstdio>

#include "vigil/infer/backend.h"

namespace vigil {

int eval_fail(const std::string& message, int code) {
  std::fprintf(stderr, "vigil: error: %s\n", message.c_str());
  return code;
}

Result<std::unique_ptr<BlazeFace>> photo_face_detector(const std::string& model_path) {
  set_inference_threads(1);
  BlazeFaceConfig config;
  config.model_path = model_path;
  config.input_size = 256;
  config.max_batch = 1;
  config.score_threshold = 0.6f;
  return BlazeFace::create(config);
}

}  // namespace vigil
