// The loop a user writes without vigil, for comparison: one thread per camera that reads a
// frame, converts it to BGR, resizes it to the model input (cv::dnn::blobFromImage), runs
// its own cv::dnn::Net at batch 1, and repeats. Files are read with cv::VideoCapture;
// live synthetic cameras are read at their frame rate and detection runs on every N-th
// frame (N = camera fps / detect fps, every third for 15 fps at 5 fps).
//
//   build/release/bench/vigil_naive_loop --config bench/configs/files4.yaml --seconds 20
// Prints one JSON object. bench/compare_naive.sh runs it beside `vigil bench pipeline`.
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <thread>

#include "vigil/cli/config_loader.h"
#include "vigil/core/process_setup.h"
#include "vigil/core/process_stats.h"
#include "vigil/source/synthetic_source.h"
#include "vigil/vision/blazeface.h"

namespace {

using SteadyClock = std::chrono::steady_clock;

struct Counters {
  std::atomic<std::int64_t> frames{0}, inferred{0}, faces{0};
};

// What a naive user's post-processing costs: count anchors over the threshold.
int count_over(const std::vector<cv::Mat>& outs, float threshold) {
  const float logit = std::log(threshold / (1 - threshold));
  int n = 0;
  for (int i = 0; i < 2; ++i) {
    const float* p = outs[static_cast<std::size_t>(i)].ptr<float>();
    for (std::size_t k = 0; k < outs[static_cast<std::size_t>(i)].total(); ++k) n += p[k] > logit;
  }
  return n;
}

void camera_thread(const vigil::CameraConfig& camera, const vigil::ModelConfig& model, const std::atomic<bool>& stop,
                   Counters& counters) {
  cv::dnn::Net net = cv::dnn::readNetFromONNX(model.blazeface.model_path);
  const int size = model.blazeface.input_size;
  std::vector<cv::Mat> outs;
  cv::Mat bgr;
  auto infer = [&](const cv::Mat& image) {
    cv::Mat blob = cv::dnn::blobFromImage(image, 1.0 / 127.5, cv::Size(size, size), cv::Scalar(127.5, 127.5, 127.5),
                                          /*swapRB=*/true, /*crop=*/false);
    // The model takes NHWC: the naive user transposes the NCHW blob.
    cv::Mat nhwc;
    cv::transposeND(blob, {0, 2, 3, 1}, nhwc);
    net.setInput(nhwc);
    net.forward(outs, vigil::blazeface_output_names());
    counters.faces += count_over(outs, model.blazeface.score_threshold);
    ++counters.inferred;
  };
  if (camera.source.type == vigil::SourceType::synthetic) {
    auto source = vigil::SyntheticSource::open(camera.source, camera.id);
    if (!source.ok()) return;
    const int every = camera.detect.fps > 0 ? std::max(1, static_cast<int>(std::lround(camera.source.fps / camera.detect.fps)))
                                            : camera.detect.every;
    std::int64_t n = 0;
    while (!stop) {
      auto frame = (*source)->read();
      if (!frame.ok() || !*frame) return;
      const vigil::Image& img = (*frame)->image;
      // A naive pipeline gets BGR: convert the whole frame (planes are contiguous here).
      cv::Mat i420(img.height * 3 / 2, img.width, CV_8UC1, const_cast<std::uint8_t*>(img.planes[0].data));
      cv::cvtColor(i420, bgr, cv::COLOR_YUV2BGR_I420);
      ++counters.frames;
      if (n++ % every == 0) infer(bgr);
    }
    return;
  }
  cv::VideoCapture capture(camera.source.url, cv::CAP_FFMPEG);
  while (!stop && capture.isOpened()) {
    if (!capture.read(bgr)) {
      capture.set(cv::CAP_PROP_POS_FRAMES, 0);  // loop the file
      continue;
    }
    ++counters.frames;
    if ((counters.frames % std::max(1, camera.detect.every)) == 0) infer(bgr);
  }
}

}  // namespace

int main(int argc, char** argv) {
  vigil::configure_process();
  CLI::App app{"the naive thread-per-camera loop, for comparison with vigil"};
  std::string config_path;
  double seconds = 20, warmup = 3;
  app.add_option("-c,--config", config_path)->required();
  app.add_option("-s,--seconds", seconds);
  app.add_option("--warmup", warmup);
  CLI11_PARSE(app, argc, argv);
  auto config = vigil::load_config_file(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "error: %s\n", config.error().message.c_str());
    return 2;
  }
  const vigil::ModelConfig& model = config->models.begin()->second;
  std::atomic<bool> stop{false};
  Counters counters;
  std::vector<std::thread> threads;
  for (const auto& camera : config->cameras) {
    threads.emplace_back([&, camera] { camera_thread(camera, model, stop, counters); });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
  const std::int64_t frames0 = counters.frames, inferred0 = counters.inferred;
  const double cpu0 = vigil::process_cpu_seconds();
  const auto t0 = SteadyClock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const double wall = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  const double cpu = (vigil::process_cpu_seconds() - cpu0) / wall;
  const std::int64_t frames = counters.frames - frames0, inferred = counters.inferred - inferred0;
  const int threads_running = vigil::process_thread_count();
  stop = true;
  for (auto& t : threads) t.join();
  nlohmann::json out = {{"benchmark", "naive"},
                        {"config", config_path},
                        {"seconds", wall},
                        {"cameras", config->cameras.size()},
                        {"frames_per_s", static_cast<double>(frames) / wall},
                        {"inferred_per_s", static_cast<double>(inferred) / wall},
                        {"cpu_cores", cpu},
                        {"threads", threads_running},
                        {"opencv_threads", cv::getNumThreads()},
                        {"machine", vigil::machine_description()}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
