// MotEvaluator: how well a tracker's output matches ground truth, in the two measures the
// MOT benchmarks report.
//
//   CLEAR MOT (Bernardin & Stiefelhagen, 2008): per frame, ground-truth objects are matched
//   to hypotheses with IoU >= iou_threshold; a match from the previous frame is kept while
//   it still holds, the rest is the minimum-cost matching on 1 - IoU. An id switch is a
//   ground-truth object matched to a different hypothesis than the last time it was
//   matched. MOTA = 1 - (FN + FP + IDSW) / GT; MOTP = mean IoU of the matches.
//   IDF1 (Ristani et al., 2016): one global matching of ground-truth ids to hypothesis ids
//   that maximises the frames in which they coincide (IDTP); IDF1 = 2 IDTP / (GT + HYP).
//
// Ground truth marked `ignore` (MOTChallenge's "consider" flag 0, or an object hidden
// behind another) is not counted: a hypothesis on it is neither a hit nor a false positive.
//
//   MotEvaluator eval;
//   for (each frame) eval.add_frame(gt_boxes, hypotheses);
//   MotSummary s = eval.summary();
//
// Threading: one caller at a time. Not a hot path (evaluation only).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "vigil/core/detection.h"
#include "vigil/core/status.h"
#include "vigil/track/linear_assignment.h"

namespace vigil {

struct MotBox {
  std::uint64_t id = 0;
  BBox box;
  bool ignore = false;  // ground truth only: not counted either way
};

struct MotSummary {
  std::uint64_t frames = 0;
  std::uint64_t gt = 0;          // ground-truth boxes counted (not ignored)
  std::uint64_t hypotheses = 0;  // hypothesis boxes counted (not on ignored ground truth)
  std::uint64_t matches = 0;
  std::uint64_t false_positives = 0;
  std::uint64_t misses = 0;
  std::uint64_t id_switches = 0;
  std::uint64_t gt_ids = 0;
  std::uint64_t hypothesis_ids = 0;
  std::uint64_t idtp = 0;
  double mota = 0;
  double motp = 0;  // mean IoU of matched pairs
  double idf1 = 0;
  double idp = 0;   // IDTP / hypotheses
  double idr = 0;   // IDTP / ground truth
};

class MotEvaluator {
 public:
  explicit MotEvaluator(float iou_threshold = 0.5f) : iou_threshold_(iou_threshold) {}

  // One frame: its ground truth and the tracker's boxes (ids unique per object).
  void add_frame(std::span<const MotBox> gt, std::span<const MotBox> hypotheses);
  MotSummary summary();

 private:
  float iou_threshold_;
  std::uint64_t frames_ = 0, gt_ = 0, hyp_ = 0, matches_ = 0, fp_ = 0, fn_ = 0, switches_ = 0;
  double iou_sum_ = 0;
  std::map<std::uint64_t, std::uint64_t> last_match_;  // gt id -> hypothesis id
  std::map<std::uint64_t, std::uint64_t> gt_count_, hyp_count_;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> overlap_;  // (gt, hyp) -> frames
  LinearAssignment assignment_;
};

// Ground truth (or tracker output) in MOTChallenge text form, frames numbered from 1:
//   frame, id, left, top, width, height[, consider[, class[, visibility]]]
// A `consider` of 0 marks the box as ignored. Blank lines and lines starting with '#' are
// skipped; anything else malformed fails with the line number.
using MotSequence = std::map<std::int64_t, std::vector<MotBox>>;
Result<MotSequence> read_mot_file(const std::string& path);

}  // namespace vigil
