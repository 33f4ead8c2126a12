#include "vigil/vision/movenet.h"

#include <algorithm>
#include <cmath>

#include "vigil/infer/onnx_model.h"
#include "vigil/vision/nchw_input.h"

namespace vigil {

namespace {

constexpr float kPeakTolerance = 1.0132789611816406e-06f;  // the graph's |centre - maxpool| bound
constexpr float kSpread = 0.300048828125f;                 // weights exp(-d^2 / (kSpread * grid))

}  // namespace

const std::vector<std::string>& MoveNet::output_names() {
  static const std::vector<std::string> names = {"center", "box_scale", "box_offset", "kpt_regress", "kpt_heatmap", "kpt_offset"};
  return names;
}

MoveNet::MoveNet(MoveNetConfig config, std::unique_ptr<Backend> backend, int size)
    : config_(std::move(config)), backend_(std::move(backend)), size_(size) {}

Result<std::unique_ptr<MoveNet>> MoveNet::create(const MoveNetConfig& config) {
  if (config.max_batch < 1) return Error{ErrorCode::invalid_argument, "max_batch must be at least 1"};
  if (!(config.score_threshold > 0 && config.score_threshold < 1)) {
    return Error{ErrorCode::invalid_argument, "score_threshold must be in (0, 1)"};
  }
  const std::string not_movenet = config.model_path + ": not a MoveNet MultiPose model converted by tools/tfjs_graph_onnx.py";
  auto model = read_onnx_model(config.model_path);
  if (!model.ok()) return model.error();
  const auto& in = model->inputs.empty() ? std::vector<std::int64_t>{} : model->inputs[0].dims;
  if (model->inputs.size() != 1 || in.size() != 4 || in[3] != 3 || in[1] <= 0 || in[1] != in[2] || in[1] % 32 != 0) {
    return Error{ErrorCode::invalid_argument,
                 not_movenet + ": expected 1 input [N,S,S,3] with S a multiple of 32; the file has " + signature_string(*model)};
  }
  const int size = static_cast<int>(in[1]);
  if (config.input_size != 0 && config.input_size != size) {
    return Error{ErrorCode::invalid_argument, not_movenet + ": input_size " + std::to_string(config.input_size) +
                                                  " does not match the file's " + std::to_string(size) +
                                                  " (convert it again with --size)"};
  }
  for (const std::string& name : output_names()) {
    if (std::none_of(model->outputs.begin(), model->outputs.end(), [&](const auto& o) { return o.name == name; })) {
      return Error{ErrorCode::invalid_argument, not_movenet + ": no output '" + name + "'; the file has " + signature_string(*model)};
    }
  }
  auto backend = create_backend({config.model_path, output_names(), config.backend, 0, config.precision, false, config.threads});
  if (!backend.ok()) return backend.error();
  std::unique_ptr<MoveNet> net(new MoveNet(config, std::move(backend).value(), size));
  // One blank image: the outputs must have the shapes decode() reads.
  net->input_.reshape({1, size, size, 3});
  std::fill(net->input_.data(), net->input_.data() + net->input_.size(), 0.0f);
  if (Status s = net->backend_->infer(net->input_, net->outputs_); !s.ok()) {
    return Error{ErrorCode::invalid_argument, not_movenet + " (" + s.error().message + ")"};
  }
  const std::int64_t grid = size / 4;
  const std::int64_t channels[] = {1, 2, 2, 2 * kKeypoints, kKeypoints, 2 * kKeypoints};
  for (std::size_t i = 0; i < output_names().size(); ++i) {
    const Tensor& t = net->outputs_.at(i);
    if (t.rank() != 4 || t.dim(0) != 1 || t.dim(1) != channels[i] || t.dim(2) != grid || t.dim(3) != grid) {
      return Error{ErrorCode::invalid_argument, not_movenet + ": output '" + output_names()[i] + "' is " + t.shape_string() +
                                                    ", expected [1," + std::to_string(channels[i]) + "," +
                                                    std::to_string(grid) + "," + std::to_string(grid) + "]"};
    }
  }
  return net;
}

void MoveNet::decode_people(const std::vector<Tensor>& outputs, int item, std::array<MoveNetPerson, kPeople>& people) {
  const int g = static_cast<int>(outputs[0].dim(2));
  const auto cells = static_cast<std::size_t>(g) * static_cast<std::size_t>(g);
  const auto plane = [&](int output, int channel) { return outputs[static_cast<std::size_t>(output)].item(item) + channel * cells; };
  const float* center = plane(0, 0);

  // Centres that are the maximum of their 5x5 neighbourhood, then the 6 highest (ties: the
  // lower index first, as TopK).
  peaks_.resize(cells);
  for (int y = 0; y < g; ++y) {
    for (int x = 0; x < g; ++x) {
      float m = center[static_cast<std::size_t>(y * g + x)];
      for (int yy = std::max(0, y - 2); yy <= std::min(g - 1, y + 2); ++yy) {
        for (int xx = std::max(0, x - 2); xx <= std::min(g - 1, x + 2); ++xx) m = std::max(m, center[static_cast<std::size_t>(yy * g + xx)]);
      }
      const float c = center[static_cast<std::size_t>(y * g + x)];
      peaks_[static_cast<std::size_t>(y * g + x)] = std::fabs(c - m) < kPeakTolerance ? c : 0.0f;
    }
  }
  std::array<std::pair<float, int>, kPeople> top;
  top.fill({-1.0f, 0});
  for (std::size_t i = 0; i < cells; ++i) {
    const float v = peaks_[i];
    if (!(v > top[kPeople - 1].first)) continue;
    int at = kPeople - 1;
    while (at > 0 && v > top[static_cast<std::size_t>(at - 1)].first) {
      top[static_cast<std::size_t>(at)] = top[static_cast<std::size_t>(at - 1)];
      --at;
    }
    top[static_cast<std::size_t>(at)] = {v, static_cast<int>(i)};
  }

  // Boxes (in cells, clipped to the grid) and regressed keypoints of every person first: a
  // keypoint's score looks at all people.
  const float gf = static_cast<float>(g);
  std::array<std::array<float, 4>, kPeople> box{};
  std::array<std::array<float, kKeypoints>, kPeople> ry{}, rx{};
  for (int p = 0; p < kPeople; ++p) {
    const int idx = top[static_cast<std::size_t>(p)].second;
    const std::size_t at = static_cast<std::size_t>(idx);
    const float y = static_cast<float>(idx / g), x = static_cast<float>(idx % g);
    const float h = std::max(plane(1, 0)[at], 0.0f), w = std::max(plane(1, 1)[at], 0.0f);
    const float cy = y + plane(2, 0)[at], cx = x + plane(2, 1)[at];
    auto& b = box[static_cast<std::size_t>(p)];
    b = {cy - h * 0.5f, cx - w * 0.5f, cy + h * 0.5f, cx + w * 0.5f};
    for (float& v : b) v = std::max(std::min(v, gf), 0.0f);
    for (int k = 0; k < kKeypoints; ++k) {
      ry[static_cast<std::size_t>(p)][static_cast<std::size_t>(k)] = y + plane(3, 2 * k)[at];
      rx[static_cast<std::size_t>(p)][static_cast<std::size_t>(k)] = x + plane(3, 2 * k + 1)[at];
    }
  }
  const float spread = gf * kSpread;
  const auto weighted = [&](int p, int k, int cy, int cx) {
    const auto& b = box[static_cast<std::size_t>(p)];
    const float fy = static_cast<float>(cy), fx = static_cast<float>(cx);
    if (!(fy >= b[0] && fy < b[2] && fx >= b[1] && fx < b[3])) return 0.0f;
    const float dy = fy - ry[static_cast<std::size_t>(p)][static_cast<std::size_t>(k)];
    const float dx = fx - rx[static_cast<std::size_t>(p)][static_cast<std::size_t>(k)];
    return plane(4, k)[static_cast<std::size_t>(cy * g + cx)] * std::exp(-(dy * dy + dx * dx) / spread);
  };
  const float to_unit = 4.0f / static_cast<float>(size_);
  for (int p = 0; p < kPeople; ++p) {
    MoveNetPerson& person = people[static_cast<std::size_t>(p)];
    const auto& b = box[static_cast<std::size_t>(p)];
    const int y0 = static_cast<int>(std::ceil(b[0])), y1 = static_cast<int>(std::ceil(b[2]));
    const int x0 = static_cast<int>(std::ceil(b[1])), x1 = static_cast<int>(std::ceil(b[3]));
    int valid = 0;
    float sum = 0;
    const float centre_score = top[static_cast<std::size_t>(p)].first;
    for (int k = 0; k < kKeypoints; ++k) {
      // The cell with the highest weighted heatmap (0 outside the box; the first such cell).
      float best = 0;
      int by = 0, bx = 0;
      for (int cy = y0; cy < y1; ++cy) {
        for (int cx = x0; cx < x1; ++cx) {
          const float v = weighted(p, k, cy, cx);
          if (v > best) best = v, by = cy, bx = cx;
        }
      }
      float score = 0;
      for (int q = 0; q < kPeople; ++q) score = std::max(score, weighted(q, k, by, bx));
      const std::size_t at = static_cast<std::size_t>(by * g + bx);
      person.y[static_cast<std::size_t>(k)] = (static_cast<float>(by) + plane(5, 2 * k)[at]) * to_unit;
      person.x[static_cast<std::size_t>(k)] = (static_cast<float>(bx) + plane(5, 2 * k + 1)[at]) * to_unit;
      person.score[static_cast<std::size_t>(k)] = score;
      if (score > kKeypointThreshold) {
        ++valid;
        sum += centre_score * score;
      }
    }
    person.person_score = (1.0f / static_cast<float>(std::max(valid, 1))) * sum;
    const auto unit = [&](float v) { return std::clamp(v * 4.0f / static_cast<float>(size_), 0.0f, 1.0f); };
    person.ymin = unit(b[0]);
    person.xmin = unit(b[1]);
    person.ymax = unit(b[2]);
    person.xmax = unit(b[3]);
  }
}

Status MoveNet::detect(std::span<const Image* const> images, std::vector<Detections>& results) {
  results.resize(images.size());
  const auto max_batch = static_cast<std::size_t>(config_.max_batch);
  const float s = static_cast<float>(size_);
  for (std::size_t start = 0; start < images.size(); start += max_batch) {
    const std::size_t n = std::min(max_batch, images.size() - start);
    input_.reshape({static_cast<std::int64_t>(n), size_, size_, 3});
    transforms_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const Image& image = *images[start + i];
      if (image.width <= 0 || image.height <= 0) return Error{ErrorCode::invalid_argument, "MoveNet: an empty image"};
      transforms_[i] = letterbox_rgb(image, size_, InputRange::pixels, input_.item(static_cast<std::int64_t>(i)), scratch_);
    }
    VIGIL_RETURN_IF_ERROR(backend_->infer(input_, outputs_));
    if (outputs_.size() != output_names().size() || outputs_[0].dim(0) != static_cast<std::int64_t>(n)) {
      return Error{ErrorCode::internal, config_.model_path + ": " + std::to_string(outputs_.size()) + " outputs for a batch of " +
                                            std::to_string(n)};
    }
    for (std::size_t i = 0; i < n; ++i) {
      const Image& image = *images[start + i];
      decode_people(outputs_, static_cast<int>(i), people_);
      Detections& out = results[start + i];
      out.clear();
      for (const MoveNetPerson& person : people_) {
        if (!(person.person_score > config_.score_threshold)) continue;
        Detection d;
        d.score = person.person_score;
        d.class_id = kPersonClass;
        d.bbox = {person.xmin * s, person.ymin * s, person.xmax * s, person.ymax * s};
        d.keypoint_count = kKeypoints;
        for (int k = 0; k < kKeypoints; ++k) {
          d.keypoints[static_cast<std::size_t>(k)] = {person.x[static_cast<std::size_t>(k)] * s, person.y[static_cast<std::size_t>(k)] * s};
          d.keypoint_scores[static_cast<std::size_t>(k)] = person.score[static_cast<std::size_t>(k)];
        }
        detection_to_frame(d, transforms_[i], image.width, image.height);
        out.push_back(d);
      }
    }
  }
  return {};
}

}  // namespace vigil
