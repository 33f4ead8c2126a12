#include "vigil/pipeline/stage_spec.h"

#include <fmt/format.h>

namespace vigil {

std::string_view to_string(StageKind kind) {
  switch (kind) {
    case StageKind::capture: return "capture";
    case StageKind::detect: return "detect";
    case StageKind::track: return "track";
    case StageKind::select: return "select";
    case StageKind::embed: return "embed";
    case StageKind::deliver: return "deliver";
  }
  return "?";
}

namespace {

void append_parts(std::string& out, std::uint32_t adds) {
  static constexpr std::pair<std::uint32_t, std::string_view> kParts[] = {
      {kDetections, "detections"}, {kTracks, "tracks"}, {kPredictedTracks, "predicted tracks"},
      {kFaces, "faces"},           {kIdentities, "identities"}};
  for (const auto& [bit, name] : kParts) {
    if (adds & bit) fmt::format_to(std::back_inserter(out), " +{}", name);
  }
}

}  // namespace

std::string describe(const std::vector<StageSpec>& chain) {
  std::string out;
  for (const StageSpec& s : chain) {
    if (!out.empty()) {
      if (s.input) {
        fmt::format_to(std::back_inserter(out), " -[{} {}]-> ", to_string(s.input->overflow), s.input->capacity);
      } else {
        out += " -> ";
      }
    }
    out += to_string(s.kind);
    if (!s.name.empty()) fmt::format_to(std::back_inserter(out), " {}", s.name);
    if (s.batch || s.adds) {
      std::string inside;
      if (s.run > 0) {
        fmt::format_to(std::back_inserter(inside), "runs of {}{}", s.run, s.adds ? ";" : "");
      } else if (s.batch) {
        fmt::format_to(std::back_inserter(inside), "batch<={}, {:g} ms{}", s.batch->max_batch,
                       static_cast<double>(s.batch->max_delay.count()) / 1000.0, s.adds ? ";" : "");
      }
      append_parts(inside, s.adds);  // " +part" each
      fmt::format_to(std::back_inserter(out), " ({})", s.batch ? inside : inside.substr(1));
    }
  }
  return out;
}

}  // namespace vigil
