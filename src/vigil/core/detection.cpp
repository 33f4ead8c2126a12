#include "vigil/core/detection.h"

#include "vigil/core/tracked_object.h"

#include <algorithm>

namespace vigil {

float iou(const BBox& a, const BBox& b) {
  const BBox inter{std::max(a.x1, b.x1), std::max(a.y1, b.y1), std::min(a.x2, b.x2), std::min(a.y2, b.y2)};
  const float i = inter.area();
  const float u = a.area() + b.area() - i;
  return u > 0 ? i / u : 0.0f;
}

const char* to_string(TrackEventKind kind) {
  switch (kind) {
    case TrackEventKind::started: return "started";
    case TrackEventKind::lost: return "lost";
    case TrackEventKind::refound: return "refound";
    case TrackEventKind::removed: return "removed";
  }
  return "unknown";
}

}  // namespace vigil
