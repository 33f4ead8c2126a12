#include "vigil/track/mot_metrics.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace vigil {

void MotEvaluator::add_frame(std::span<const MotBox> gt, std::span<const MotBox> hypotheses) {
  ++frames_;
  std::vector<int> counted_gt;
  for (int g = 0; g < static_cast<int>(gt.size()); ++g) {
    if (!gt[g].ignore) counted_gt.push_back(g);
  }
  std::vector<int> gt_to_hyp(gt.size(), -1), hyp_to_gt(hypotheses.size(), -1);

  // Matches that still hold keep their pairing.
  for (int g : counted_gt) {
    const auto last = last_match_.find(gt[g].id);
    if (last == last_match_.end()) continue;
    for (int h = 0; h < static_cast<int>(hypotheses.size()); ++h) {
      if (hypotheses[h].id == last->second && hyp_to_gt[h] < 0 && iou(gt[g].box, hypotheses[h].box) >= iou_threshold_) {
        gt_to_hyp[g] = h;
        hyp_to_gt[h] = g;
        break;
      }
    }
  }
  // The rest: minimum-cost matching on 1 - IoU.
  std::vector<int> rows, cols;
  for (int g : counted_gt) {
    if (gt_to_hyp[g] < 0) rows.push_back(g);
  }
  for (int h = 0; h < static_cast<int>(hypotheses.size()); ++h) {
    if (hyp_to_gt[h] < 0) cols.push_back(h);
  }
  if (!rows.empty() && !cols.empty()) {
    std::vector<float> cost(rows.size() * cols.size());
    for (std::size_t r = 0; r < rows.size(); ++r) {
      for (std::size_t c = 0; c < cols.size(); ++c) {
        cost[r * cols.size() + c] = 1.0f - iou(gt[rows[r]].box, hypotheses[cols[c]].box);
      }
    }
    std::vector<int> row_to_col, col_to_row;
    assignment_.solve(cost, static_cast<int>(rows.size()), static_cast<int>(cols.size()), 1.0f - iou_threshold_ + 1e-6f,
                      row_to_col, col_to_row);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      if (row_to_col[r] < 0) continue;
      const int g = rows[r];
      const int h = cols[static_cast<std::size_t>(row_to_col[r])];
      gt_to_hyp[g] = h;
      hyp_to_gt[h] = g;
      const auto last = last_match_.find(gt[g].id);
      if (last != last_match_.end() && last->second != hypotheses[h].id) ++switches_;
      last_match_[gt[g].id] = hypotheses[h].id;
    }
  }

  // Count. Unmatched hypotheses on ignored ground truth do not count at all.
  std::vector<bool> counted_hyp(hypotheses.size(), true);
  for (int h = 0; h < static_cast<int>(hypotheses.size()); ++h) {
    if (hyp_to_gt[h] >= 0) continue;
    for (const MotBox& g : gt) {
      if (g.ignore && iou(g.box, hypotheses[h].box) >= iou_threshold_) {
        counted_hyp[h] = false;
        break;
      }
    }
  }
  for (int g : counted_gt) {
    ++gt_;
    ++gt_count_[gt[g].id];
    if (gt_to_hyp[g] >= 0) {
      ++matches_;
      iou_sum_ += iou(gt[g].box, hypotheses[gt_to_hyp[g]].box);
    } else {
      ++fn_;
    }
  }
  for (int h = 0; h < static_cast<int>(hypotheses.size()); ++h) {
    if (!counted_hyp[h]) continue;
    ++hyp_;
    ++hyp_count_[hypotheses[h].id];
    if (hyp_to_gt[h] < 0) ++fp_;
    for (int g : counted_gt) {
      if (iou(gt[g].box, hypotheses[h].box) >= iou_threshold_) ++overlap_[{gt[g].id, hypotheses[h].id}];
    }
  }
}

MotSummary MotEvaluator::summary() {
  MotSummary s;
  s.frames = frames_;
  s.gt = gt_;
  s.hypotheses = hyp_;
  s.matches = matches_;
  s.false_positives = fp_;
  s.misses = fn_;
  s.id_switches = switches_;
  s.gt_ids = gt_count_.size();
  s.hypothesis_ids = hyp_count_.size();
  s.mota = gt_ > 0 ? 1.0 - static_cast<double>(fn_ + fp_ + switches_) / static_cast<double>(gt_) : 0.0;
  s.motp = matches_ > 0 ? iou_sum_ / static_cast<double>(matches_) : 0.0;

  // IDF1: the id matching that maximises coinciding frames (costs -frames, limit 0).
  std::map<std::uint64_t, int> gt_index, hyp_index;
  for (const auto& [id, n] : gt_count_) gt_index.emplace(id, static_cast<int>(gt_index.size()));
  for (const auto& [id, n] : hyp_count_) hyp_index.emplace(id, static_cast<int>(hyp_index.size()));
  if (!gt_index.empty() && !hyp_index.empty()) {
    const std::size_t cols = hyp_index.size();
    std::vector<float> cost(gt_index.size() * cols, 0.0f);
    for (const auto& [pair, n] : overlap_) {
      cost[static_cast<std::size_t>(gt_index[pair.first]) * cols + static_cast<std::size_t>(hyp_index[pair.second])] =
          -static_cast<float>(n);
    }
    std::vector<int> row_to_col, col_to_row;
    const double total = assignment_.solve(cost, static_cast<int>(gt_index.size()), static_cast<int>(cols), 0.0f,
                                           row_to_col, col_to_row);
    s.idtp = static_cast<std::uint64_t>(-total + 0.5);
  }
  if (gt_ + hyp_ > 0) s.idf1 = 2.0 * static_cast<double>(s.idtp) / static_cast<double>(gt_ + hyp_);
  if (hyp_ > 0) s.idp = static_cast<double>(s.idtp) / static_cast<double>(hyp_);
  if (gt_ > 0) s.idr = static_cast<double>(s.idtp) / static_cast<double>(gt_);
  return s;
}

Result<MotSequence> read_mot_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{ErrorCode::not_found, "cannot open ground truth file " + path};
  MotSequence sequence;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    std::replace(line.begin(), line.end(), ',', ' ');
    std::istringstream fields(line);
    double values[9] = {};
    int count = 0;
    bool numeric = true;
    for (std::string token; fields >> token;) {
      char* end = nullptr;
      const double v = std::strtod(token.c_str(), &end);
      if (end == token.c_str() || *end != '\0') numeric = false;
      if (count < 9) values[count] = v;
      ++count;
    }
    if (!numeric || count < 6 || values[0] < 1 || values[1] < 0 || values[4] <= 0 || values[5] <= 0) {
      return Error{ErrorCode::invalid_argument,
                   path + ":" + std::to_string(number) +
                       ": expected 'frame,id,left,top,width,height[,consider,...]' with frame >= 1 and a positive size"};
    }
    MotBox box;
    box.id = static_cast<std::uint64_t>(values[1]);
    box.box = BBox{static_cast<float>(values[2]), static_cast<float>(values[3]), static_cast<float>(values[2] + values[4]),
                   static_cast<float>(values[3] + values[5])};
    box.ignore = count >= 7 && values[6] == 0;
    sequence[static_cast<std::int64_t>(values[0])].push_back(box);
  }
  if (in.bad()) return Error{ErrorCode::data_loss, "cannot read ground truth file " + path};
  return sequence;
}

}  // namespace vigil
