#include "vigil/vision/nms.h"

#include <algorithm>

namespace vigil {

void non_max_suppression(std::vector<Detection>& candidates, float iou_threshold, NmsMode mode,
                         std::vector<Detection>& out, std::vector<unsigned char>& scratch) {
  out.clear();
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  scratch.assign(candidates.size(), 0);  // 1 = already in a cluster
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (scratch[i]) continue;
    const Detection& best = candidates[i];
    scratch[i] = 1;
    if (mode == NmsMode::hard) {
      for (std::size_t j = i + 1; j < candidates.size(); ++j) {
        if (!scratch[j] && iou(best.bbox, candidates[j].bbox) > iou_threshold) scratch[j] = 1;
      }
      out.push_back(best);
      continue;
    }
    Detection merged{};
    merged.score = best.score;
    merged.keypoint_count = best.keypoint_count;
    float total = 0;
    auto add = [&](const Detection& d) {
      const float w = d.score;
      total += w;
      merged.bbox.x1 += w * d.bbox.x1;
      merged.bbox.y1 += w * d.bbox.y1;
      merged.bbox.x2 += w * d.bbox.x2;
      merged.bbox.y2 += w * d.bbox.y2;
      for (int k = 0; k < merged.keypoint_count; ++k) {
        merged.keypoints[k].x += w * d.keypoints[k].x;
        merged.keypoints[k].y += w * d.keypoints[k].y;
      }
    };
    add(best);
    for (std::size_t j = i + 1; j < candidates.size(); ++j) {
      if (!scratch[j] && iou(best.bbox, candidates[j].bbox) > iou_threshold) {
        scratch[j] = 1;
        add(candidates[j]);
      }
    }
    merged.bbox = {merged.bbox.x1 / total, merged.bbox.y1 / total, merged.bbox.x2 / total, merged.bbox.y2 / total};
    for (int k = 0; k < merged.keypoint_count; ++k) {
      merged.keypoints[k].x /= total;
      merged.keypoints[k].y /= total;
    }
    out.push_back(merged);
  }
}

}  // namespace vigil
