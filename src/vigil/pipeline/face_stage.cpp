#include "vigil/pipeline/face_stage.h"

#include <algorithm>
#include <filesystem>

#include "vigil/source/image_file.h"
#include "vigil/vision/face_align.h"

namespace vigil {

void select_faces(const FrameResult& result, const TrackIdentities* identities, std::vector<FaceJob>& jobs) {
  jobs.clear();
  if (!result.detected) return;
  if (identities == nullptr) {
    for (std::size_t i = 0; i < result.detections.size(); ++i) jobs.push_back({static_cast<int>(i), 0});
    return;
  }
  for (const TrackedObject& t : result.tracks) {
    if (t.predicted || t.detection < 0) continue;
    const Detection& d = result.detections[static_cast<std::size_t>(t.detection)];
    if (identities->wants(t.track_id, face_quality_from_keypoints(d).value() + 1e-6f)) {
      jobs.push_back({t.detection, t.track_id});
    }
  }
}

void apply_faces(FrameResult& result, const std::vector<FaceJob>& jobs, std::span<const Embedding> embeddings,
                 std::span<const FaceQuality> qualities, TrackIdentities* identities, const Gallery* gallery,
                 AnonymousClusters* clusters, const IdentityConfig& config, std::vector<std::size_t>& changed) {
  result.faces.clear();
  changed.clear();
  for (std::size_t i = 0; i < jobs.size() && i < embeddings.size(); ++i) {
    FaceResult face;
    face.detection = jobs[i].detection;
    face.track_id = jobs[i].track_id;
    face.quality = qualities[i].value();
    face.embedding = embeddings[i];
    if (identities != nullptr && face.track_id != 0) {
      if (identities->update(face.track_id, face.quality, face.embedding, gallery, clusters, face.identity)) {
        changed.push_back(result.faces.size());
      }
    } else if (gallery != nullptr) {
      face.identity = gallery->match(face.embedding, config.threshold, config.margin);
    }
    result.faces.push_back(std::move(face));
  }
}

void label_tracks(FrameResult& result, TrackIdentities& identities) {
  for (TrackedObject& t : result.tracks) {
    const Identity* id = identities.find(t.track_id);
    if (id != nullptr) {
      t.identity = *id;
    } else {
      t.identity = Identity{};
    }
  }
  for (const TrackEvent& e : result.track_events) {
    if (e.kind == TrackEventKind::removed) identities.forget(e.track_id);
  }
}

Status check_gallery_dir(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return Error{ErrorCode::invalid_argument, "gallery " + dir + ": not a directory"};
  return {};
}

Result<Gallery> load_gallery(const std::string& dir, Detector& detector, FaceEmbedder& embedder,
                             std::vector<std::string>& warnings) {
  namespace fs = std::filesystem;
  std::error_code ec;
  VIGIL_RETURN_IF_ERROR(check_gallery_dir(dir));
  std::vector<fs::path> people;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory()) people.push_back(entry.path());
  }
  std::sort(people.begin(), people.end());
  Gallery gallery;
  std::vector<Detections> found;
  std::vector<Embedding> embeddings;
  std::vector<FaceQuality> qualities;
  for (const fs::path& person : people) {
    const std::string name = person.filename().string();
    std::vector<fs::path> photos;
    for (const auto& entry : fs::directory_iterator(person, ec)) {
      std::string ext = entry.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (entry.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png")) photos.push_back(entry.path());
    }
    std::sort(photos.begin(), photos.end());
    for (const fs::path& photo : photos) {
      auto image = read_image_file(photo.string());
      if (!image.ok()) {
        warnings.push_back(image.error().message);
        continue;
      }
      const Image* p = &image->image;
      if (Status s = detector.detect(std::span(&p, 1), found); !s.ok()) return with_context(s.error(), "gallery " + photo.string());
      if (found.empty() || found[0].empty()) {
        warnings.push_back(photo.string() + ": no face found");
        continue;
      }
      const Detection& largest = *std::max_element(found[0].begin(), found[0].end(), [](const Detection& a, const Detection& b) {
        return a.bbox.area() < b.bbox.area();
      });
      const FaceInput face{p, &largest};
      if (Status s = embedder.embed(std::span(&face, 1), embeddings, qualities); !s.ok()) {
        return with_context(s.error(), "gallery " + photo.string());
      }
      gallery.add(name, embeddings[0]);
    }
  }
  if (gallery.embeddings() == 0) return Error{ErrorCode::invalid_argument, "gallery " + dir + ": no face found in any photo"};
  return gallery;
}

}  // namespace vigil
