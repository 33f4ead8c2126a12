// Non-maximum suppression as MediaPipe does it for BlazeFace ("weighted" NMS).
//
// Candidates are taken in descending score order. Each round, the best remaining candidate
// and every remaining candidate overlapping it by more than iou_threshold form a cluster;
// the cluster becomes one detection whose box and keypoints are the score-weighted mean of
// its members and whose score is the best member's. Plain (hard) NMS keeps the best member
// as it is. Both are deterministic for equal input.
#pragma once

#include <span>
#include <vector>

#include "vigil/core/detection.h"

namespace vigil {

enum class NmsMode { hard, weighted };

// Reduces `candidates` (modified: sorted) into `out` (cleared first). `scratch` is reused
// between calls so steady-state calls do not allocate.
void non_max_suppression(std::vector<Detection>& candidates, float iou_threshold, NmsMode mode,
                         std::vector<Detection>& out, std::vector<unsigned char>& scratch);

}  // namespace vigil
