// Faces and identities as results carry them: a face descriptor (embedding) and who the
// face belongs to. They live in core so that results, sinks and the event bus can carry
// them without depending on vision/ or identity/.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace vigil {

// Face descriptor dimension (face-api's / dlib's ResNet). Fixed so a result's faces need no
// allocation per face.
inline constexpr int kEmbeddingDim = 128;
using Embedding = std::array<float, kEmbeddingDim>;

// Dot product: the cosine similarity of two L2-normalised embeddings.
float cosine(const Embedding& a, const Embedding& b);
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
