// The face harvest a user writes without vigil, for comparison with `vigil harvest`
// (bench/harvest_throughput.sh): read every frame with cv::VideoCapture (BGR), detect faces
// (the same BlazeFace, batch 1), embed each detected face on its own (the same face-api
// ResNet, one model call per face), write each face's crop as a JPEG and a JSON line as it
// goes. The model library keeps its default threads (all cores), as a user's would.
//
// usage: vigil_naive_harvest VIDEO OUT_DIR [--max-frames N]   (prints one JSON line)
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <string>

#include "vigil/core/paths.h"
#include "vigil/core/process_stats.h"
#include "vigil/infer/backend.h"
#include "vigil/vision/blazeface.h"
#include "vigil/vision/face_embedder.h"

int main(int argc, char** argv) {
  using namespace vigil;
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s VIDEO OUT_DIR [--max-frames N]\n", argv[0]);
    return 2;
  }
  const std::string video = argv[1], out = argv[2];
  long max_frames = -1;
  if (argc >= 5 && std::strcmp(argv[3], "--max-frames") == 0) max_frames = std::stol(argv[4]);
  ::mkdir(out.c_str(), 0755);
  ::mkdir((out + "/crops").c_str(), 0755);

  set_inference_threads(hardware_cores());  // the library's default
  BlazeFaceConfig dc;
  dc.model_path = data_dir() + "/models/blazeface_back_256_dyn.onnx";
  dc.input_size = 256;
  dc.max_batch = 1;
  FaceEmbedderConfig ec;
  ec.model_path = data_dir() + "/models/face_recognition_128.onnx";
  ec.max_batch = 1;
  auto detector = BlazeFace::create(dc);
  auto embedder = FaceEmbedder::create(ec);
  if (!detector.ok() || !embedder.ok()) {
    std::fprintf(stderr, "naive_harvest: cannot load the models\n");
    return 1;
  }
  cv::VideoCapture capture(video, cv::CAP_FFMPEG);
  if (!capture.isOpened()) {
    std::fprintf(stderr, "naive_harvest: cannot open %s\n", video.c_str());
    return 2;
  }
  std::ofstream faces_out(out + "/faces.jsonl");
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = process_cpu_seconds();
  cv::Mat bgr;
  std::vector<Detections> detections;
  std::vector<Embedding> embeddings;
  std::vector<FaceQuality> qualities;
  long frames = 0, faces = 0, calls = 0;
  int threads = 0;
  while ((max_frames < 0 || frames < max_frames) && capture.read(bgr)) {
    Image image;
    image.format = PixelFormat::bgr24;
    image.width = bgr.cols;
    image.height = bgr.rows;
    image.planes[0] = {bgr.data, static_cast<int>(bgr.step)};
    const Image* images[] = {&image};
    if (!(*detector)->detect(images, detections).ok()) return 1;
    for (const Detection& d : detections[0]) {
      const FaceInput face{&image, &d};
      if (!(*embedder)->embed({&face, 1}, embeddings, qualities).ok()) return 1;  // one call per face
      ++calls;
      const cv::Rect box(cv::Point(static_cast<int>(d.bbox.x1), static_cast<int>(d.bbox.y1)),
                         cv::Point(static_cast<int>(d.bbox.x2), static_cast<int>(d.bbox.y2)));
      const cv::Rect clipped = box & cv::Rect(0, 0, bgr.cols, bgr.rows);
      if (!clipped.empty()) cv::imwrite(out + "/crops/" + std::to_string(faces) + ".jpg", bgr(clipped));
      nlohmann::json line = {{"face", faces}, {"frame", frames}, {"quality", qualities[0].value()}};
      line["embedding"] = std::vector<float>(embeddings[0].begin(), embeddings[0].end());
      faces_out << line.dump() << "\n";
      ++faces;
    }
    ++frames;
    if (frames % 500 == 0) threads = std::max(threads, process_thread_count());
  }
  faces_out.close();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = process_cpu_seconds() - cpu_start;
  const nlohmann::json result = {{"benchmark", "naive_harvest"},
                                 {"video", video},
                                 {"frames", frames},
                                 {"faces", faces},
                                 {"embedder_calls", calls},
                                 {"seconds", seconds},
                                 {"frames_per_s", frames / seconds},
                                 {"faces_per_s", faces / seconds},
                                 {"cpu_cores", cpu / seconds},
                                 {"threads", threads}};
  std::printf("%s\n", result.dump().c_str());
  return 0;
}
