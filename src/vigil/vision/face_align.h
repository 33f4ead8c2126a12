// Face alignment: a similarity transform (rotation, uniform scale, translation) from a
// detector's eye, nose and mouth keypoints to the embedder's template, and the aligned chip
// sampled straight from the frame's planes (no full-frame RGB).
//
// The template is dlib's face chip (the embedder is dlib's ResNet): its mean face with 25%
// padding on each side, in a 150x150 chip: eye centres at (47.6, 46.6) and (100.5, 46.6),
// nose tip at (74.0, 76.6), mouth centre at (74.0, 105.0). The transform is the least-squares
// fit (Umeyama) of the four BlazeFace points to them.
//
// Threading: FaceAligner is one caller at a time (owns its scratch); the functions are pure.
#pragma once

#include <array>
#include <span>
#include <utility>
#include <vector>

#include "vigil/core/detection.h"
#include "vigil/core/frame.h"
#include "vigil/core/status.h"

namespace vigil {

// x' = a*x - b*y + tx, y' = b*x + a*y + ty (a = s*cos, b = s*sin).
struct Similarity {
  float a = 1, b = 0, tx = 0, ty = 0;
  Point2 apply(Point2 p) const { return {a * p.x - b * p.y + tx, b * p.x + a * p.y + ty}; }
  float scale() const;
  Similarity inverse() const;
};

// Least-squares similarity mapping src[i] to dst[i] (Umeyama 1991, without reflection).
// Needs at least two distinct points; returns the identity otherwise.
Similarity fit_similarity(std::span<const Point2> src, std::span<const Point2> dst);

inline constexpr int kFaceChipSize = 150;
// Template points for BlazeFace's first four keypoints (right eye, left eye, nose, mouth).
const std::array<Point2, 4>& face_chip_template();

// Where an embedder expects the face: a square chip and the four keypoints' places in it.
struct FaceTemplate {
  int size = kFaceChipSize;
  std::array<Point2, 4> points{};  // right eye, left eye, nose tip, mouth centre
  float face_width = 100;          // the box's width in chip pixels when there are no keypoints
};
// dlib's chip (face-api's ResNet): 150x150, the points above.
const FaceTemplate& dlib_face_template();
// InsightFace's ArcFace chip: 112x112, its 5-point template (arcface_dst) with the mouth
// corners' midpoint as the mouth centre.
const FaceTemplate& arcface_face_template();

// Frame-to-chip transform for a detection with at least four keypoints; from the box
// (centred, face filling the template's face width) when it has none.
Similarity face_chip_transform(const Detection& detection, const FaceTemplate& face = dlib_face_template());

// Face quality in [0, 1] for choosing which face of a track to embed:
// score x size x sharpness x frontalness, each in [0, 1].
struct FaceQuality {
  float score = 0;
  float size = 0;        // min(1, eye distance / 40 px)
  float sharpness = 0;   // variance of the chip's Laplacian, saturating
  float frontal = 0;     // nose centred between the eyes, eyes level
  float value() const { return score * size * sharpness * frontal; }
};
FaceQuality face_quality_from_keypoints(const Detection& detection);

class FaceAligner {
 public:
  // Writes the aligned chip as RGB floats in 0..255, NHWC (face.size x face.size x 3), into
  // dst, and returns the quality with sharpness measured on the chip's luma.
  FaceQuality align(const Image& image, const Detection& detection, float* dst,
                    const FaceTemplate& face = dlib_face_template());
  // The same quality as align's, bit for bit, without making the chip: only the luma of the
  // chip's centre is sampled (about a tenth of the work), for deciding whether a face is
  // worth aligning.
  FaceQuality measure(const Image& image, const Detection& detection, const FaceTemplate& face = dlib_face_template());

 private:
  void sample_chip(const Image& image, const Similarity& to_frame, int chip_size, std::pair<int, int> span, float* dst);
  static std::pair<int, int> centre(int chip_size);
  float sharpness(int chip_size) const;

  std::vector<float> luma_;  // the chip's luma, for sharpness; kept between calls
};

// A square thumbnail of the face in `box` (with a margin), `size` pixels a side, as JPEG:
// what the event store keeps for an identity. Errors: invalid_argument for an empty box or
// image.
Status face_thumbnail_jpeg(const Image& image, const BBox& box, int size, std::vector<std::uint8_t>& out);

// Builds OpenCV's table of image codecs (what imread and imencode look up) now. OpenCV builds
// it on first use behind a function-local static whose check is in uninstrumented code, so
// ThreadSanitizer takes two threads' first uses for a race; the engine calls this before it
// starts any thread, which orders every later use after the table is built.
void prepare_image_codecs();

}  // namespace vigil
