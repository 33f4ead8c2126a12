#include "vigil/infer/backend.h"

#include <spdlog/spdlog.h>

#include "vigil/core/mutex.h"
#include "vigil/infer/backend_threads.h"

namespace vigil {

std::string_view to_string(BackendKind kind) {
  switch (kind) {
    case BackendKind::automatic: return "auto";
    case BackendKind::opencv: return "opencv";
    case BackendKind::xnnpack: return "xnnpack";
    case BackendKind::onednn: return "onednn";
    case BackendKind::remote: return "remote";
  }
  return "auto";
}

std::string_view to_string(Precision precision) { return precision == Precision::bf16 ? "bf16" : "fp32"; }

Result<Precision> parse_precision(std::string_view text) {
  if (text == "fp32") return Precision::fp32;
  if (text == "bf16") return Precision::bf16;
  return Error{ErrorCode::invalid_argument, "unknown precision '" + std::string(text) + "' (fp32 or bf16)"};
}

Result<BackendKind> parse_backend_kind(std::string_view text) {
  for (const BackendKind kind : {BackendKind::automatic, BackendKind::opencv, BackendKind::xnnpack, BackendKind::onednn}) {
    if (text == to_string(kind)) return kind;
  }
  return Error{ErrorCode::invalid_argument, "unknown backend '" + std::string(text) + "' (auto, opencv, xnnpack or onednn)"};
}

void set_inference_threads(int threads) {
  set_opencv_threads(threads);
  set_xnnpack_threads(threads);
  set_onednn_threads(threads);
}

namespace {

Mutex remote_factory_mutex;
BackendFactory remote_factory GUARDED_BY(remote_factory_mutex);

Result<std::unique_ptr<Backend>> create_remote_backend(const BackendOptions& options) {
  BackendFactory factory;
  {
    MutexLock lock(remote_factory_mutex);
    factory = remote_factory;
  }
  if (!factory) return Error{ErrorCode::failed_precondition, "backend remote: this process has no remote to send model calls to"};
  return factory(options);
}

}  // namespace

void set_remote_backend_factory(BackendFactory factory) {
  MutexLock lock(remote_factory_mutex);
  remote_factory = std::move(factory);
}

Result<std::unique_ptr<Backend>> create_backend(const BackendOptions& options) {
  if (options.precision != Precision::fp32 && options.kind != BackendKind::automatic && options.kind != BackendKind::onednn &&
      options.kind != BackendKind::remote) {
    return Error{ErrorCode::invalid_argument, "precision " + std::string(to_string(options.precision)) + " needs backend onednn, not " +
                                                  std::string(to_string(options.kind))};
  }
  switch (options.kind) {
    case BackendKind::opencv: return create_opencv_backend(options);
    case BackendKind::xnnpack: return create_xnnpack_backend(options);
    case BackendKind::onednn: return create_onednn_backend(options);
    case BackendKind::remote: return create_remote_backend(options);
    case BackendKind::automatic: break;
  }
  // oneDNN where it runs the whole graph on optimised kernels, else XNNPACK, else OpenCV DNN;
  // each refusal is logged with the operator or shape that refused it.
  BackendOptions onednn_options = options;
  onednn_options.refuse_reference_kernels = options.precision == Precision::fp32;
  const auto refused = [&](const char* name, const Error& why) {
    spdlog::debug("backend auto: {} refused {}", name, why.message);
    if (options.refusals != nullptr) options.refusals->push_back(std::string(name) + ": " + why.message);
  };
  auto onednn = create_onednn_backend(onednn_options);
  if (onednn.ok() || onednn.error().code == ErrorCode::not_found || options.precision != Precision::fp32) return onednn;
  refused("onednn", onednn.error());
  auto xnnpack = create_xnnpack_backend(options);
  if (xnnpack.ok()) return xnnpack;
  refused("xnnpack", xnnpack.error());
  return create_opencv_backend(options);
}

}  // namespace vigil
