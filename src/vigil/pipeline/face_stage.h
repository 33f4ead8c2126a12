// The face stage of the live engine, without the scheduling: which faces of a detected
// frame to embed, what the embeddings say about who its tracks are, and the gallery.
//
// Tracked cameras embed a track's face when the track is new and again only when its face
// quality improves (IdentityConfig: min_gain, at most max_embeddings per track), so the
// embedder runs far less often than the detector. Untracked cameras embed every face and
// match it against the gallery alone.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vigil/core/frame_result.h"
#include "vigil/core/status.h"
#include "vigil/identity/identity.h"
#include "vigil/vision/detector.h"
#include "vigil/vision/face_embedder.h"

namespace vigil {

struct FaceJob {
  int detection = -1;          // index into the result's detections
  std::uint64_t track_id = 0;  // 0: untracked camera
};

// Faces of this result worth embedding now (cleared first). identities may be null
// (untracked camera: every detection with keypoints).
void select_faces(const FrameResult& result, const TrackIdentities* identities, std::vector<FaceJob>& jobs);

// Fills result.faces from the embeddings of jobs, updates the tracks' identities and
// appends the tracks whose identity changed to `changed` (indices into result.faces).
void apply_faces(FrameResult& result, const std::vector<FaceJob>& jobs, std::span<const Embedding> embeddings,
                 std::span<const FaceQuality> qualities, TrackIdentities* identities, const Gallery* gallery,
                 AnonymousClusters* clusters, const IdentityConfig& config, std::vector<std::size_t>& changed);

// Copies each track's identity so far onto result.tracks; forgets removed tracks.
void label_tracks(FrameResult& result, TrackIdentities& identities);

// A gallery from DIR/<name>/*.{jpg,jpeg,png}: the largest face of each photo, embedded.
// invalid_argument when DIR is missing or holds no face at all; photos without a face are
// skipped with a warning in `warnings`.
// A gallery path that is not a directory is an error before any model loads.
Status check_gallery_dir(const std::string& dir);
Result<Gallery> load_gallery(const std::string& dir, Detector& detector, FaceEmbedder& embedder,
                             std::vector<std::string>& warnings);

}  // namespace vigil
