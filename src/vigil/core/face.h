// Faces and identities as results carry them: a face descriptor (embedding) and who the
// face belongs to. They live in core so that results, sinks and the event bus can carry
// them without depending on vision/ or identity/.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace vigil {

// A face descriptor: 128-D (face-api's / dlib's ResNet) or up to 512-D (ArcFace). Fixed
// capacity, so a result's faces need no allocation per face.
inline constexpr std::size_t kMaxEmbeddingDim = 512;

class Embedding {
 public:
  Embedding() = default;
  explicit Embedding(std::size_t dim) : dim_(dim < kMaxEmbeddingDim ? dim : kMaxEmbeddingDim) {}  // zeros

  std::size_t size() const { return dim_; }
  bool empty() const { return dim_ == 0; }
  float& operator[](std::size_t i) { return values_[i]; }
  float operator[](std::size_t i) const { return values_[i]; }
  float* begin() { return values_.data(); }
  float* end() { return values_.data() + dim_; }
  const float* begin() const { return values_.data(); }
  const float* end() const { return values_.data() + dim_; }

 private:
  std::array<float, kMaxEmbeddingDim> values_{};
  std::size_t dim_ = 0;
};

// Dot product: the cosine similarity of two L2-normalised embeddings; 0 when their
// dimensions differ (descriptors of different models are not comparable).
float cosine(const Embedding& a, const Embedding& b);
// sum += e; an empty sum takes e's dimension first.
void accumulate(Embedding& sum, const Embedding& e);
// Normalises in place to unit length; a zero vector stays zero.
void l2_normalise(Embedding& e);
inline Embedding l2_normalised(Embedding e) {
  l2_normalise(e);
  return e;
}

// Who a track is: a gallery name, or an anonymous id from online clustering ("anon-3").
struct Identity {
  std::string name;        // empty: not identified yet
  bool known = false;      // a gallery name (else anonymous)
  float similarity = 0;    // cosine to the matched name (or cluster)
  float margin = 0;        // to the second-best name (known) or 0
  bool empty() const { return name.empty(); }
};

// One face embedded in this frame: which detection and track, its quality and identity.
struct FaceResult {
  int detection = -1;          // index into FrameResult::detections
  std::uint64_t track_id = 0;  // 0 when the camera is not tracked
  float quality = 0;           // score x size x sharpness x frontalness
  Embedding embedding{};       // L2-normalised
  Identity identity;
};

}  // namespace vigil
