// The vigil subcommands. Each returns the process exit code: 0 success, 1 a runtime
// failure (a camera, model or sink failed), 2 bad usage or config.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace vigil {

struct RunOptions {
  std::string config_path;
  std::optional<double> duration_s;
  // `vigil ingest`: the models run on workers reached through this Redis (redis://...).
  std::string redis_url;
  std::string node;  // the node's id in the cluster (default: HOST-PID)
};
// `vigil run`, and `vigil ingest` when options.redis_url is set.
int run_command(const RunOptions& options);

// `vigil worker`: serves the config's models (or those named) to ingest nodes through Redis.
struct WorkerCommandOptions {
  std::string config_path;
  std::string redis_url;
  std::string consumer;             // the worker's name in the cluster (default: HOST-PID)
  std::vector<std::string> models;  // empty: every model of the config
  std::optional<double> duration_s;
  int threads = 0;  // serving threads, each its own consumer (NAME/i) and model instances; 0: one per core
  int inference_threads = 0;  // intra-op threads of each model instance; 0: the config's, else cores / threads
  std::string http = "127.0.0.1:0";  // where /metrics and /healthz are served ("off": nowhere; port 0: any free one)
};
int worker_command(const WorkerCommandOptions& options);

// `vigil cluster status`: the cluster's processes, streams and dead letters.
struct ClusterStatusOptions {
  std::string redis_url;
  std::string prefix = "vigil";
  bool json = false;
};
int cluster_status_command(const ClusterStatusOptions& options);

// HOST-PID: a process's default name in a cluster.
std::string default_cluster_name();

struct BenchModelOptions {
  std::string model_path;
  std::vector<int> batches{1, 8};
  std::vector<int> threads{0};                  // intra-op threads; 0: all cores
  std::vector<std::string> backends{"opencv", "xnnpack"};
  int rounds = 3;                               // every setting once per round, interleaved
  double seconds = 2;                           // per setting and round
  bool json = false;
};
int bench_model_command(const BenchModelOptions& options);

struct BenchPipelineOptions {
  std::string config_path;
  double seconds = 20;      // measured window
  double warmup_s = 3;      // engine running, not measured
  double reference_s = 3;   // model-only reference
  std::string track = "config";  // "on" or "off" overrides every camera's track setting
  int repeat = 3;                // rounds; figures are medians over rounds
  std::string naive = "opencv";  // the naive loop's backend each round, or "none"
  bool json = false;
};
int bench_pipeline_command(const BenchPipelineOptions& options);

struct BenchNaiveOptions {
  std::string config_path;
  double seconds = 20;
  double warmup_s = 3;
  std::string backend = "opencv";
  bool json = false;
};
int bench_naive_command(const BenchNaiveOptions& options);

struct EvalFacesOptions {
  std::vector<std::string> photos;     // faces per photo are different people
  std::string video;                   // tracked faces (empty: skip)
  int video_every = 5;                 // detect and embed every N-th frame of the video
  float min_eye_px = 16;               // smaller faces are left out
  std::string detector_path;           // BlazeFace 256, dynamic batch
  std::string embedder_path;           // face descriptor ONNX
  std::string reference_script;        // tools/faceapi_reference.cjs (empty: no reference check)
  std::string chips_dir;               // write the photos' aligned chips here (raw RGB, 150x150)
  bool json = false;
};
int eval_faces_command(const EvalFacesOptions& options);

struct EvalTrackOptions {
  std::string scene;                   // "crossings": render and evaluate the synthetic scene
  std::vector<std::string> photos;     // the scene's faces (one per photo)
  int frames = 300;                    // scene length (25 fps)
  std::string video;                   // or a user's video
  std::string gt_path;                 // its MOTChallenge ground truth (empty: main-face mode)
  std::string detector_path;           // BlazeFace ONNX (dynamic batch)
  int input_size = 256;
  float score_threshold = 0.5f;
  int detect_every = 1;
  float iou = 0.5f;                    // a track matches ground truth at this IoU
  float cut_threshold = 15.0f;         // main-face mode: mean luma change (0-255) that marks a cut
  std::string out_dir;                 // keep the scene, its ground truth and tracks.txt here
  bool json = false;
};
int eval_track_command(const EvalTrackOptions& options);

struct EvalPeopleOptions {
  std::string video;        // pedestrians (default: opencv-doc's vtest.avi)
  std::string config_path;  // the first people or object model of this config (else the fetched MoveNet)
  std::string model_path;   // MoveNet MultiPose ONNX when there is no config
  int hog_every = 5;        // OpenCV's HOG people detector on every N-th frame
  int max_frames = 0;       // stop after this many frames (0: the whole video)
  float iou = 0.3f;         // a model box and a HOG box are the same person at this IoU
  bool json = false;
};
int eval_people_command(const EvalPeopleOptions& options);

struct HarvestCommandOptions {
  std::vector<std::string> inputs;
  std::string out_dir;
  std::string config_path;   // models from a config (else the fetched BlazeFace 256 and face-api descriptor)
  int stride = 1;
  int best_k = 3;
  double every_s = 10;
  bool all_faces = false;
  std::optional<float> cluster_threshold;  // unset: the embedder's
  double cpu_budget = 0;     // cores; 0: all
  std::string gallery;       // DIR/<name>/*.jpg
  std::optional<float> gallery_threshold;
  std::optional<float> gallery_margin;
  std::string upload;        // s3://BUCKET/PREFIX ("" : no upload); endpoint and keys from the environment
  int upload_concurrency = 2;
};
int harvest_command(const HarvestCommandOptions& options);

}  // namespace vigil
