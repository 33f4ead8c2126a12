#include "vigil/vision/face_embedder.h"

#include <algorithm>

namespace vigil {

FaceEmbedder::FaceEmbedder(FaceEmbedderConfig config, std::unique_ptr<Backend> backend)
    : config_(std::move(config)), backend_(std::move(backend)) {}

Result<std::unique_ptr<FaceEmbedder>> FaceEmbedder::create(const FaceEmbedderConfig& config) {
  auto backend = create_backend({config.model_path, {}, config.backend});
  if (!backend.ok()) return backend.error();
  return create(config, std::move(backend).value());
}

Result<std::unique_ptr<FaceEmbedder>> FaceEmbedder::create(const FaceEmbedderConfig& config,
                                                           std::unique_ptr<Backend> backend) {
  if (config.max_batch < 1) return Error{ErrorCode::invalid_argument, "max_batch must be at least 1"};
  std::unique_ptr<FaceEmbedder> embedder(new FaceEmbedder(config, std::move(backend)));
  VIGIL_RETURN_IF_ERROR(embedder->check_model());
  return embedder;
}

Status FaceEmbedder::check_model() {
  // Two grey chips through the model: a wrong file or a batch-1 export fails here, at start.
  const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(config_.max_batch), 2);
  input_.reshape({static_cast<std::int64_t>(n), kFaceChipSize, kFaceChipSize, 3});
  std::fill(input_.data(), input_.data() + input_.size(), 128.0f);
  std::vector<Embedding> out(n);
  const std::string what = config_.model_path + ": not a 150x150 face descriptor model with " +
                           std::to_string(kEmbeddingDim) + "-D output";
  Status status = run(n, out.data());
  calls_ = items_ = 0;
  if (!status.ok()) return Error{ErrorCode::invalid_argument, what + " (" + status.error().message + ")"};
  return {};
}

Status FaceEmbedder::run(std::size_t count, Embedding* out) {
  VIGIL_RETURN_IF_ERROR(backend_->infer(input_, outputs_));
  ++calls_;
  items_ += count;
  if (outputs_.size() != 1 || outputs_[0].rank() != 2 || outputs_[0].dim(0) != static_cast<std::int64_t>(count) ||
      outputs_[0].dim(1) != kEmbeddingDim) {
    return Error{ErrorCode::invalid_argument, "embedder output has shape " +
                                                  (outputs_.empty() ? std::string("[]") : outputs_[0].shape_string()) +
                                                  " for a batch of " + std::to_string(count)};
  }
  for (std::size_t i = 0; i < count; ++i) {
    const float* v = outputs_[0].item(static_cast<std::int64_t>(i));
    std::copy(v, v + kEmbeddingDim, out[i].begin());
    l2_normalise(out[i]);
  }
  return {};
}

Status FaceEmbedder::embed(std::span<const FaceInput> faces, std::vector<Embedding>& embeddings,
                           std::vector<FaceQuality>& qualities) {
  embeddings.resize(faces.size());
  qualities.resize(faces.size());
  const auto max_batch = static_cast<std::size_t>(config_.max_batch);
  for (std::size_t start = 0; start < faces.size(); start += max_batch) {
    const std::size_t n = std::min(max_batch, faces.size() - start);
    input_.reshape({static_cast<std::int64_t>(n), kFaceChipSize, kFaceChipSize, 3});
    for (std::size_t i = 0; i < n; ++i) {
      const FaceInput& face = faces[start + i];
      if (face.image == nullptr || face.detection == nullptr || face.image->empty()) {
        return Error{ErrorCode::invalid_argument, "embed: face " + std::to_string(start + i) + " has no image"};
      }
      qualities[start + i] = aligner_.align(*face.image, *face.detection, input_.item(static_cast<std::int64_t>(i)));
    }
    VIGIL_RETURN_IF_ERROR(run(n, embeddings.data() + start));
  }
  return {};
}

Status FaceEmbedder::embed_chips(std::span<const float> chips, std::size_t count, std::vector<Embedding>& embeddings) {
  const std::size_t chip_floats = static_cast<std::size_t>(kFaceChipSize) * kFaceChipSize * 3;
  if (chips.size() != count * chip_floats) {
    return Error{ErrorCode::invalid_argument, "embed_chips: expected " + std::to_string(count) + " chips of 150x150x3"};
  }
  embeddings.resize(count);
  const auto max_batch = static_cast<std::size_t>(config_.max_batch);
  for (std::size_t start = 0; start < count; start += max_batch) {
    const std::size_t n = std::min(max_batch, count - start);
    input_.reshape({static_cast<std::int64_t>(n), kFaceChipSize, kFaceChipSize, 3});
    std::copy(chips.begin() + static_cast<std::ptrdiff_t>(start * chip_floats),
              chips.begin() + static_cast<std::ptrdiff_t>((start + n) * chip_floats), input_.data());
    VIGIL_RETURN_IF_ERROR(run(n, embeddings.data() + start));
  }
  return {};
}

}  // namespace vigil
