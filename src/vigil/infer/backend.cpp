#include "vigil/infer/backend.h"

#include "vigil/infer/backend_threads.h"

namespace vigil {

std::string_view to_string(BackendKind kind) {
  switch (kind) {
    case BackendKind::automatic: return "auto";
    case BackendKind::opencv: return "opencv";
    case BackendKind::xnnpack: return "xnnpack";
  }
  return "auto";
}

Result<BackendKind> parse_backend_kind(std::string_view text) {
  for (const BackendKind kind : {BackendKind::automatic, BackendKind::opencv, BackendKind::xnnpack}) {
    if (text == to_string(kind)) return kind;
  }
  return Error{ErrorCode::invalid_argument, "unknown backend '" + std::string(text) + "' (auto, opencv or xnnpack)"};
}

void set_inference_threads(int threads) {
  set_opencv_threads(threads);
  set_xnnpack_threads(threads);
}

Result<std::unique_ptr<Backend>> create_backend(const BackendOptions& options) {
  switch (options.kind) {
    case BackendKind::opencv: return create_opencv_backend(options);
    case BackendKind::xnnpack: return create_xnnpack_backend(options);
    case BackendKind::automatic: break;
  }
  auto fast = create_xnnpack_backend(options);
  if (fast.ok() || fast.error().code == ErrorCode::not_found) return fast;
  return create_opencv_backend(options);
}

}  // namespace vigil
