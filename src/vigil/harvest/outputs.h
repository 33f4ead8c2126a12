// HarvestOutputs: the harvest's sinks. In: the tracking stage's tracks, embedded faces and
// embeddings once every input is scanned. Out: the files of harvest/harvester.h (faces.jsonl,
// crops, tracks.jsonl, thumbs, embeddings.npy, identities.json, vigil.db, then manifest.json),
// each written whole under a temporary name and renamed, and the list of what was written
// (for the upload, in that order).
//
// Who a track is: a gallery name when the track's descriptor (the mean of its best faces'
// embeddings) matches one by threshold and margin, else an anonymous person-N from
// average-linkage clustering of the tracks no name took.
//
// Threading: one thread (the harvest's).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/core/status.h"
#include "vigil/harvest/face_tracks.h"
#include "vigil/harvest/harvester.h"
#include "vigil/harvest/upload.h"
#include "vigil/identity/identity.h"

namespace vigil {

// What a harvest is: the journal's header (`text`: every input, model and setting that
// changes what the models give) and the parts of it the manifest names. Made once, by
// harvest_fingerprint.
struct HarvestFingerprint {
  struct File {
    std::string path;
    std::string sha256;
  };
  std::vector<File> inputs;
  std::string detector_sha256;
  std::string embedder_sha256;
  std::string text;
};

// What makes a journal this run's (made before any model runs; reads every input and model).
Result<HarvestFingerprint> harvest_fingerprint(const HarvestOptions& options);

// Who a track is.
struct Who {
  std::string label;       // the gallery name, or person-N
  bool known = false;      // a gallery name
  std::string best_match;  // with a gallery: the closest name (taken or not)
  float similarity = 0;    // to best_match
  float margin = 0;        // over the second-closest name (1 when there is none)
};

class HarvestOutputs {
 public:
  // `fingerprint` names the inputs and models in the manifest and the run in vigil.db.
  // `gallery` may be null. `embedder_model` and `embedder_dim` say which descriptor the
  // outputs hold (FaceEmbedder::family_name() and dim()). The options' thresholds are set.
  HarvestOutputs(const HarvestOptions& options, HarvestFingerprint fingerprint, const Gallery* gallery,
                 std::string embedder_model, std::size_t embedder_dim);

  // Every output but the manifest; sets summary.tracks and summary.people.
  Status write(const FaceTracks& tracks, HarvestSummary& summary);
  // manifest.json, kept as it is when only its timings and what was resumed differ.
  Status write_manifest(const HarvestSummary& summary);
  const std::vector<UploadFile>& written() const { return written_; }

  // Who each track is (in the order given).
  std::vector<Who> identify(const FaceTracks& faces, const std::vector<const TrackRecord*>& tracks) const;

 private:
  using Thumbs = std::vector<std::shared_ptr<const std::vector<std::uint8_t>>>;
  Embedding descriptor(const FaceTracks& faces, const TrackRecord& t) const;
  Status write_faces(const FaceTracks& faces, std::string& text);
  Status write_tracks(const std::vector<const TrackRecord*>& tracks, const std::vector<Who>& who, std::string& text,
                      std::string& identities, Thumbs& thumbs, HarvestSummary& summary);
  Status write_store(const std::vector<const TrackRecord*>& tracks, const std::vector<Who>& who, const Thumbs& thumbs);
  Status write_output(const std::string& name, std::string_view bytes, const char* content_type);
  std::vector<std::uint8_t> chip_image(const KeptFace& f, const char* extension, std::vector<int> params) const;

  const HarvestOptions& options_;
  const HarvestFingerprint fingerprint_;
  const std::string run_;  // the run's name in vigil.db: harvest- and the header's SHA-256
  const Gallery* gallery_;
  const std::string embedder_model_;
  const std::size_t embedder_dim_;
  int chip_size_ = 0;
  std::map<std::uint64_t, const KeptFace*> face_by_id_;  // embedded faces
  std::vector<UploadFile> written_;                      // every output, in the order written
};

}  // namespace vigil
