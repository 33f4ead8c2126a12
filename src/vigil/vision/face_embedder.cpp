#include "vigil/vision/face_embedder.h"

#include <algorithm>

#include "vigil/infer/onnx_model.h"

namespace vigil {

namespace {

constexpr std::size_t kDlibDim = 128;

}  // namespace

FaceEmbedder::FaceEmbedder(FaceEmbedderConfig config, std::unique_ptr<Backend> backend, Family family, std::size_t dim)
    : config_(std::move(config)), backend_(std::move(backend)), family_(family), dim_(dim) {}

const FaceTemplate& FaceEmbedder::face_template() const {
  return family_ == Family::dlib ? dlib_face_template() : arcface_face_template();
}

const char* FaceEmbedder::family_name() const {
  switch (family_) {
    case Family::dlib: return "face-api";
    case Family::arcface: return "arcface";
    case Family::mobilefacenet: return "mobilefacenet";
  }
  return "?";
}

FaceEmbedder::Matching FaceEmbedder::matching() const {
  if (family_ == Family::mobilefacenet) return {0.995f, 0.995f, 0.005f};
  return {0.96f, 0.92f, 0.02f};
}

Result<std::unique_ptr<FaceEmbedder>> FaceEmbedder::create(const FaceEmbedderConfig& config) {
  if (config.max_batch < 1) return Error{ErrorCode::invalid_argument, "max_batch must be at least 1"};
  auto model = read_onnx_model(config.model_path);
  if (!model.ok()) return model.error();
  const auto& in = model->inputs[0].dims;
  const auto& out = model->outputs[0].dims;
  const bool dlib = in.size() == 4 && in[1] == 150 && in[2] == 150 && in[3] == 3;
  const bool arcface = in.size() == 4 && in[1] == 3 && in[2] == 112 && in[3] == 112;
  const bool mobilefacenet = in.size() == 4 && in[1] == 112 && in[2] == 112 && in[3] == 3;
  const std::int64_t dim = out.size() == 2 ? out[1] : -1;
  const bool free_dim = arcface || mobilefacenet;
  if (model->inputs.size() != 1 || model->outputs.size() != 1 || (!dlib && !free_dim) || out.size() != 2 ||
      (dlib && dim != static_cast<std::int64_t>(kDlibDim)) ||
      (free_dim && (dim <= 0 || dim > static_cast<std::int64_t>(kMaxEmbeddingDim)))) {
    return Error{ErrorCode::invalid_argument,
                 config.model_path + ": not a face embedder: expected 1 input [N,150,150,3] and 1 output [N,128] (face-api's "
                                     "ResNet), 1 input [N,3,112,112] and 1 output [N,D<=512] (ArcFace) or 1 input "
                                     "[N,112,112,3] and 1 output [N,D<=512] (MobileFaceNet); the file has " +
                     signature_string(*model)};
  }
  auto backend = create_backend({config.model_path, {}, config.backend, 0, config.precision, false, config.threads});
  if (!backend.ok()) return backend.error();
  std::unique_ptr<FaceEmbedder> embedder(new FaceEmbedder(config, std::move(backend).value(),
                                                          arcface         ? Family::arcface
                                                          : mobilefacenet ? Family::mobilefacenet
                                                                          : Family::dlib,
                                                          static_cast<std::size_t>(dim)));
  VIGIL_RETURN_IF_ERROR(embedder->check_model());
  return embedder;
}

Result<std::unique_ptr<FaceEmbedder>> FaceEmbedder::create(const FaceEmbedderConfig& config,
                                                           std::unique_ptr<Backend> backend) {
  if (config.max_batch < 1) return Error{ErrorCode::invalid_argument, "max_batch must be at least 1"};
  std::unique_ptr<FaceEmbedder> embedder(new FaceEmbedder(config, std::move(backend), Family::dlib, kDlibDim));
  VIGIL_RETURN_IF_ERROR(embedder->check_model());
  return embedder;
}

Status FaceEmbedder::check_model() {
  // Two grey chips through the model: a wrong file or a batch-1 export fails here, at start.
  const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(config_.max_batch), 2);
  const int size = face_template().size;
  chips_.reshape({static_cast<std::int64_t>(n), size, size, 3});
  std::fill(chips_.data(), chips_.data() + chips_.size(), 128.0f);
  std::vector<Embedding> out(n);
  const std::string what = config_.model_path + ": not a " + std::to_string(size) + "x" + std::to_string(size) +
                           " face descriptor model with " + std::to_string(dim_) + "-D output";
  Status status = run(n, out.data());
  calls_ = items_ = 0;
  if (!status.ok()) return Error{ErrorCode::invalid_argument, what + " (" + status.error().message + ")"};
  return {};
}

Tensor& FaceEmbedder::model_input(std::size_t count) {
  if (family_ == Family::dlib) return chips_;
  if (family_ == Family::mobilefacenet) {
    // NHWC, BGR in 0..255: the graph has no normalisation of its own, and of the orders and
    // ranges tried (RGB or BGR; 0..1, -1..1, 0..255) this one separates people best (eval faces).
    input_.reshape(chips_.shape());
    const float* src = chips_.data();
    float* dst = input_.data();
    for (std::size_t p = 0, n = chips_.size() / 3; p < n; ++p) {
      dst[3 * p] = src[3 * p + 2];
      dst[3 * p + 1] = src[3 * p + 1];
      dst[3 * p + 2] = src[3 * p];
    }
    return input_;
  }
  const int size = face_template().size;
  input_.reshape({static_cast<std::int64_t>(count), 3, size, size});
  const std::size_t plane = static_cast<std::size_t>(size) * static_cast<std::size_t>(size);
  for (std::size_t i = 0; i < count; ++i) {
    const float* src = chips_.item(static_cast<std::int64_t>(i));
    float* dst = input_.item(static_cast<std::int64_t>(i));
    for (std::size_t p = 0; p < plane; ++p) {
      for (std::size_t c = 0; c < 3; ++c) dst[c * plane + p] = (src[3 * p + c] - 127.5f) / 127.5f;
    }
  }
  return input_;
}

Status FaceEmbedder::run(std::size_t count, Embedding* out) {
  VIGIL_RETURN_IF_ERROR(backend_->infer(model_input(count), outputs_));
  ++calls_;
  items_ += count;
  if (outputs_.size() != 1 || outputs_[0].rank() != 2 || outputs_[0].dim(0) != static_cast<std::int64_t>(count) ||
      outputs_[0].dim(1) != static_cast<std::int64_t>(dim_)) {
    return Error{ErrorCode::invalid_argument, "embedder output has shape " +
                                                  (outputs_.empty() ? std::string("[]") : outputs_[0].shape_string()) +
                                                  " for a batch of " + std::to_string(count)};
  }
  for (std::size_t i = 0; i < count; ++i) {
    const float* v = outputs_[0].item(static_cast<std::int64_t>(i));
    out[i] = Embedding(dim_);
    std::copy(v, v + dim_, out[i].begin());
    l2_normalise(out[i]);
  }
  return {};
}

Status FaceEmbedder::embed(std::span<const FaceInput> faces, std::vector<Embedding>& embeddings,
                           std::vector<FaceQuality>& qualities) {
  embeddings.resize(faces.size());
  qualities.resize(faces.size());
  const auto max_batch = static_cast<std::size_t>(config_.max_batch);
  const FaceTemplate& face_shape = face_template();
  for (std::size_t start = 0; start < faces.size(); start += max_batch) {
    const std::size_t n = std::min(max_batch, faces.size() - start);
    chips_.reshape({static_cast<std::int64_t>(n), face_shape.size, face_shape.size, 3});
    for (std::size_t i = 0; i < n; ++i) {
      const FaceInput& face = faces[start + i];
      if (face.image == nullptr || face.detection == nullptr || face.image->empty()) {
        return Error{ErrorCode::invalid_argument, "embed: face " + std::to_string(start + i) + " has no image"};
      }
      qualities[start + i] = aligner_.align(*face.image, *face.detection, chips_.item(static_cast<std::int64_t>(i)), face_shape);
    }
    VIGIL_RETURN_IF_ERROR(run(n, embeddings.data() + start));
  }
  return {};
}

Status FaceEmbedder::embed_chips(std::span<const float> chips, std::size_t count, std::vector<Embedding>& embeddings) {
  const int size = face_template().size;
  const std::size_t chip_floats = static_cast<std::size_t>(size) * static_cast<std::size_t>(size) * 3;
  if (chips.size() != count * chip_floats) {
    return Error{ErrorCode::invalid_argument, "embed_chips: expected " + std::to_string(count) + " chips of " +
                                                  std::to_string(size) + "x" + std::to_string(size) + "x3"};
  }
  embeddings.resize(count);
  const auto max_batch = static_cast<std::size_t>(config_.max_batch);
  for (std::size_t start = 0; start < count; start += max_batch) {
    const std::size_t n = std::min(max_batch, count - start);
    chips_.reshape({static_cast<std::int64_t>(n), size, size, 3});
    std::copy(chips.begin() + static_cast<std::ptrdiff_t>(start * chip_floats),
              chips.begin() + static_cast<std::ptrdiff_t>((start + n) * chip_floats), chips_.data());
    VIGIL_RETURN_IF_ERROR(run(n, embeddings.data() + start));
  }
  return {};
}

}  // namespace vigil
