#include "vigil/cli/naive_loop.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <thread>

#include "vigil/core/process_stats.h"
#include "vigil/source/synthetic_source.h"
#include "vigil/vision/blazeface.h"
#include "vigil/vision/movenet.h"

namespace vigil {

namespace {

using SteadyClock = std::chrono::steady_clock;

struct Counters {
  std::atomic<std::int64_t> frames{0}, inferred{0}, faces{0};
};

// What a naive user's post-processing costs: count anchors over the threshold.
int count_over(const std::vector<Tensor>& outs, float threshold) {
  const float logit = std::log(threshold / (1 - threshold));
  int n = 0;
  for (std::size_t i = 0; i < 2 && i < outs.size(); ++i) {
    const float* p = outs[i].data();
    for (std::size_t k = 0; k < outs[i].size(); ++k) n += p[k] > logit;
  }
  return n;
}

// MoveNet the naive way: the frame letterboxed into the square input (aspect kept, black
// bars), RGB pixels as floats, batch 1; people counted as centre-heatmap cells over the
// threshold (cheaper than the model's own decoding, which the engine runs).
void movenet_infer(const cv::Mat& image, const ModelSettings& model, Backend& net, Tensor& input, std::vector<Tensor>& outs,
                   cv::Mat& scaled, cv::Mat& rgb, Counters& counters) {
  const int size = model.input_size;
  const double scale = std::min(static_cast<double>(size) / image.cols, static_cast<double>(size) / image.rows);
  const int w = std::max(1, static_cast<int>(image.cols * scale)), h = std::max(1, static_cast<int>(image.rows * scale));
  cv::resize(image, scaled, cv::Size(w, h), 0, 0, cv::INTER_LINEAR);
  cv::copyMakeBorder(scaled, rgb, 0, size - h, 0, size - w, cv::BORDER_CONSTANT);
  cv::cvtColor(rgb, rgb, cv::COLOR_BGR2RGB);
  cv::Mat nhwc(size, size, CV_32FC3, input.data());
  rgb.convertTo(nhwc, CV_32FC3);
  if (!net.infer(input, outs).ok() || outs.empty()) return;
  int n = 0;
  const float* centre = outs[0].data();
  for (std::size_t k = 0; k < outs[0].size(); ++k) n += centre[k] > model.score_threshold;
  counters.faces += n;
  ++counters.inferred;
}

void camera_thread(const CameraConfig& camera, const ModelConfig& model_config, Backend& net, const std::atomic<bool>& stop,
                   Counters& counters) {
  ModelSettings model = model_config.settings;
  if (model.input_size <= 0) model.input_size = 256;  // MoveNet's file's, as fetch_models.sh converts it
  const int size = model.input_size;
  Tensor input({1, size, size, 3});
  std::vector<Tensor> outs;
  cv::Mat bgr, scaled, rgb;
  const bool movenet = model_config.kind == "movenet";
  auto infer = [&](const cv::Mat& image) {
    if (movenet) return movenet_infer(image, model, net, input, outs, scaled, rgb, counters);
    cv::Mat blob = cv::dnn::blobFromImage(image, 1.0 / 127.5, cv::Size(size, size), cv::Scalar(127.5, 127.5, 127.5),
                                          /*swapRB=*/true, /*crop=*/false);
    // The model takes NHWC: the naive user transposes the NCHW blob.
    const int dims[] = {1, size, size, 3};
    cv::Mat nhwc(4, dims, CV_32F, input.data());
    cv::transposeND(blob, {0, 2, 3, 1}, nhwc);
    if (!net.infer(input, outs).ok()) return;
    counters.faces += count_over(outs, model.score_threshold);
    ++counters.inferred;
  };
  if (camera.source.type == SourceType::synthetic) {
    auto source = SyntheticSource::open(camera.source, camera.id);
    if (!source.ok()) return;
    const int every = camera.detect.fps > 0 ? std::max(1, static_cast<int>(std::lround(camera.source.fps / camera.detect.fps)))
                                            : camera.detect.every;
    std::int64_t n = 0;
    while (!stop) {
      auto frame = (*source)->read();
      if (!frame.ok() || !*frame) return;
      const Image& img = (*frame)->image;
      // A naive pipeline gets BGR: convert the whole frame (planes are contiguous here).
      cv::Mat i420(img.height * 3 / 2, img.width, CV_8UC1, const_cast<std::uint8_t*>(img.planes[0].data));
      cv::cvtColor(i420, bgr, cv::COLOR_YUV2BGR_I420);
      ++counters.frames;
      if (n++ % every == 0) infer(bgr);
    }
    return;
  }
  cv::VideoCapture capture(camera.source.url, cv::CAP_FFMPEG);
  std::int64_t n = 0;
  while (!stop && capture.isOpened()) {
    if (!capture.read(bgr)) {
      if (!camera.source.loop) return;
      capture.set(cv::CAP_PROP_POS_FRAMES, 0);  // loop the file
      continue;
    }
    ++counters.frames;
    if (n++ % std::max(1, camera.detect.every) == 0) infer(bgr);
  }
}

}  // namespace

Result<NaiveResult> run_naive_loop(const EngineConfig& config, double warmup_s, double seconds, BackendKind backend) {
  set_inference_threads(hardware_cores());  // the library's default
  std::vector<std::unique_ptr<Backend>> nets;
  std::vector<const ModelConfig*> models;
  for (const auto& camera : config.cameras) {
    const auto found = config.models.find(camera.detect.model);
    if (found == config.models.end() || (found->second.kind != "blazeface" && found->second.kind != "movenet")) {
      return Error{ErrorCode::invalid_argument, "camera " + camera.id + ": the naive loop runs BlazeFace and MoveNet models ('" +
                                                    camera.detect.model + "' is neither)"};
    }
    const ModelConfig& model = found->second;
    const bool movenet = model.kind == "movenet";
    auto net = create_backend({model.settings.model_path, movenet ? MoveNet::output_names() : blazeface_output_names(), backend});
    if (!net.ok()) return net.error();
    nets.push_back(std::move(net).value());
    models.push_back(&model);
  }
  std::atomic<bool> stop{false};
  Counters counters;
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < config.cameras.size(); ++i) {
    threads.emplace_back([&, i] { camera_thread(config.cameras[i], *models[i], *nets[i], stop, counters); });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup_s));
  const std::int64_t frames0 = counters.frames, inferred0 = counters.inferred;
  const double cpu0 = process_cpu_seconds();
  const auto t0 = SteadyClock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  NaiveResult r;
  r.seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  r.cpu_cores = (process_cpu_seconds() - cpu0) / r.seconds;
  r.frames_per_s = static_cast<double>(counters.frames - frames0) / r.seconds;
  r.inferred_per_s = static_cast<double>(counters.inferred - inferred0) / r.seconds;
  r.threads = process_thread_count();
  r.backend = nets.empty() ? std::string() : nets[0]->name();
  stop = true;
  for (auto& t : threads) t.join();
  return r;
}

}  // namespace vigil
