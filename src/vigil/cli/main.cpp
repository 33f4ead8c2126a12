// vigil: watches many video streams at once and turns them into tracked faces and people.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "vigil/cli/commands.h"
#include "vigil/core/paths.h"
#include "vigil/core/process_setup.h"

int main(int argc, char** argv) {
  vigil::configure_process();
  CLI::App app{"vigil: many video streams in, tracked faces out"};
  app.require_subcommand(1);

  vigil::RunOptions run;
  double duration = 0;
  auto* run_cmd = app.add_subcommand("run", "run the live engine on a config");
  run_cmd->add_option("-c,--config", run.config_path, "YAML config file")->required();
  run_cmd->add_option("-d,--duration", duration, "stop after this many seconds")->check(CLI::PositiveNumber);

  vigil::RunOptions ingest;
  double ingest_duration = 0;
  auto* ingest_cmd = app.add_subcommand("ingest", "run the live engine with its models on the cluster's workers (Redis)");
  ingest_cmd->add_option("-c,--config", ingest.config_path, "YAML config file")->required();
  ingest_cmd->add_option("--redis", ingest.redis_url, "redis://[:password@]host[:port][/db]")->required();
  ingest_cmd->add_option("--node", ingest.node, "this node's id in the cluster (default: HOST-PID)");
  ingest_cmd->add_option("-d,--duration", ingest_duration, "stop after this many seconds")->check(CLI::PositiveNumber);

  vigil::WorkerCommandOptions worker;
  double worker_duration = 0;
  auto* worker_cmd = app.add_subcommand("worker", "serve the config's models to ingest nodes through Redis Streams");
  worker_cmd->add_option("-c,--config", worker.config_path, "YAML config file (the cluster's one)")->required();
  worker_cmd->add_option("--redis", worker.redis_url, "redis://[:password@]host[:port][/db]")->required();
  worker_cmd->add_option("--name", worker.consumer, "this worker's name in the cluster (default: HOST-PID)");
  worker_cmd->add_option("--models", worker.models, "serve only these models of the config")->delimiter(',');
  worker_cmd->add_option("--threads", worker.threads, "serving threads, each with its own model instances (default: one per core)")
      ->check(CLI::Range(1, 256));
  worker_cmd->add_option("--inference-threads", worker.inference_threads,
                         "intra-op threads of each model instance (default: the config's threads.inference, else cores / threads)")
      ->check(CLI::Range(1, 256));
  worker_cmd->add_option("-d,--duration", worker_duration, "stop after this many seconds")->check(CLI::PositiveNumber);
  worker_cmd->add_option("--http", worker.http, "HOST:PORT of its /metrics and /healthz (port 0: any free one; off: none)")
      ->capture_default_str();

  vigil::ClusterStatusOptions cluster_status;
  auto* cluster_cmd = app.add_subcommand("cluster", "look at a cluster of ingest nodes and workers");
  cluster_cmd->require_subcommand(1);
  auto* cluster_status_cmd = cluster_cmd->add_subcommand("status", "processes, request streams (length, pending, lag), dead letters");
  cluster_status_cmd->add_option("--redis", cluster_status.redis_url, "redis://[:password@]host[:port][/db]")->required();
  cluster_status_cmd->add_option("--prefix", cluster_status.prefix, "the cluster's key prefix (cluster.prefix)")->capture_default_str();
  cluster_status_cmd->add_flag("--json", cluster_status.json, "print JSON");

  vigil::HarvestCommandOptions harvest;
  auto* harvest_cmd = app.add_subcommand("harvest", "one pass over recorded videos: faces, tracks, people, crops");
  harvest_cmd->add_option("inputs", harvest.inputs, "video files")->required();
  harvest_cmd->add_option("-o,--out", harvest.out_dir, "output folder")->required();
  harvest_cmd->add_option("-c,--config", harvest.config_path, "take the models from this config");
  harvest_cmd->add_option("--stride", harvest.stride, "detect every N-th frame")->check(CLI::PositiveNumber)->capture_default_str();
  harvest_cmd->add_option("--best-k", harvest.best_k, "faces embedded per track (the best)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  harvest_cmd->add_option("--every-s", harvest.every_s, "plus the best face of every this many seconds of a track (0: off)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  harvest_cmd->add_flag("--all-faces", harvest.all_faces, "embed every tracked face");
  harvest_cmd->add_option("--cluster-threshold", harvest.cluster_threshold,
                          "mean cosine for two tracks to be one person (default: the embedder's; face-api 0.96)")
      ->check(CLI::Range(-1.0, 1.0));
  harvest_cmd->add_option("--cpu-budget", harvest.cpu_budget, "cores the run may use (default: all)")
      ->check(CLI::Range(0.05, 4096.0));
  harvest_cmd->add_option("--gallery", harvest.gallery, "name tracks from DIR/<name>/*.jpg");
  harvest_cmd->add_option("--gallery-threshold", harvest.gallery_threshold,
                          "cosine a track needs to take a name (default: the embedder's; face-api 0.92)")
      ->check(CLI::Range(-1.0, 1.0));
  harvest_cmd->add_option("--gallery-margin", harvest.gallery_margin, "over the second-best name (default: the embedder's; face-api 0.02)")
      ->check(CLI::Range(0.0, 2.0));
  harvest_cmd->add_option("--upload", harvest.upload,
                          "send the outputs to s3://BUCKET/PREFIX (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, "
                          "AWS_ENDPOINT_URL from the environment)");
  harvest_cmd->add_option("--upload-concurrency", harvest.upload_concurrency, "transfers at once")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();

  auto* bench = app.add_subcommand("bench", "measure speed; prints JSON");
  bench->require_subcommand(1);
  vigil::BenchModelOptions model;
  model.model_path = vigil::data_dir() + "/models/blazeface_back_256_dyn.onnx";
  auto* bench_model = bench->add_subcommand(
      "model", "model-only speed: each backend x threads x batch on a prepared batch, in interleaved rounds");
  bench_model->add_option("-m,--model", model.model_path, "ONNX model (its input shape is read from the file)")
      ->capture_default_str();
  bench_model->add_option("--backend", model.backends,
                          "backends to compare (auto, opencv, xnnpack, onednn, onednn-bf16; comma-separate); auto prints "
                          "which backends refused the model and why")
      ->delimiter(',')
      ->check(CLI::IsMember({"auto", "opencv", "xnnpack", "onednn", "onednn-bf16"}));
  bench_model->add_option("-b,--batch", model.batches, "batch sizes to measure (repeat or comma-separate)")
      ->delimiter(',')
      ->check(CLI::Range(1, 1024));
  bench_model->add_option("-t,--threads", model.threads, "intra-op thread counts (0: all cores; comma-separate)")
      ->delimiter(',')
      ->check(CLI::Range(0, 256));
  bench_model->add_option("-r,--rounds", model.rounds, "rounds; figures are medians over rounds")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  bench_model->add_option("-s,--seconds", model.seconds, "seconds per setting and round")
      ->check(CLI::Range(0.05, 3600.0))
      ->capture_default_str();
  bench_model->add_flag("--json", model.json, "one-line JSON");

  vigil::BenchPipelineOptions pipeline;
  auto* bench_pipeline = bench->add_subcommand(
      "pipeline", "the engine on a config, in rounds interleaved with its model-only and decode-only references and "
                  "the naive thread-per-camera loop");
  bench_pipeline->add_option("-c,--config", pipeline.config_path, "YAML config (sinks are ignored)")->required();
  bench_pipeline->add_option("-s,--seconds", pipeline.seconds, "measured seconds")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  bench_pipeline->add_option("--warmup", pipeline.warmup_s, "seconds before measuring")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  bench_pipeline->add_option("--reference-seconds", pipeline.reference_s, "seconds for the model-only reference")
      ->check(CLI::Range(0.5, 600.0))
      ->capture_default_str();
  bench_pipeline->add_option("--track", pipeline.track, "tracking on every camera: on, off, or as the config says")
      ->check(CLI::IsMember({"on", "off", "config"}));
  bench_pipeline->add_option("-r,--repeat", pipeline.repeat, "rounds; figures are medians with their spread")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  bench_pipeline->add_option("--naive", pipeline.naive, "the naive loop's backend each round (opencv, xnnpack, onednn), or none")
      ->check(CLI::IsMember({"opencv", "xnnpack", "onednn", "none"}))
      ->capture_default_str();
  bench_pipeline->add_flag("--json", pipeline.json, "one-line JSON");

  vigil::BenchNaiveOptions naive;
  auto* bench_naive = bench->add_subcommand("naive", "the naive thread-per-camera loop alone on a config");
  bench_naive->add_option("-c,--config", naive.config_path, "YAML config")->required();
  bench_naive->add_option("-s,--seconds", naive.seconds, "measured seconds")
      ->check(CLI::Range(0.5, 86400.0))
      ->capture_default_str();
  bench_naive->add_option("--warmup", naive.warmup_s, "seconds before measuring")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  bench_naive->add_option("--backend", naive.backend, "the loop's model library (opencv, xnnpack, onednn)")
      ->check(CLI::IsMember({"opencv", "xnnpack", "onednn"}))
      ->capture_default_str();
  bench_naive->add_flag("--json", naive.json, "one-line JSON");

  auto* eval = app.add_subcommand("eval", "measure accuracy; prints JSON");
  eval->require_subcommand(1);
  vigil::EvalFacesOptions faces;
  const std::string data = vigil::data_dir();
  for (int i = 1; i <= 6; ++i) faces.photos.push_back(data + "/media/sample" + std::to_string(i) + ".jpg");
  faces.video = data + "/media/Megamind.avi";
  faces.detector_path = data + "/models/blazeface_back_256_dyn.onnx";
  faces.embedder_path = data + "/models/face_recognition_128.onnx";
  bool reference = false;
  auto* eval_faces = eval->add_subcommand("faces", "same- and different-person similarity of the face embedder, "
                                                   "and its agreement with face-api");
  eval_faces->add_option("--photo", faces.photos, "photos (faces in one photo are different people)")
      ->capture_default_str();
  eval_faces->add_option("--video", faces.video, "video with tracked faces ('' to skip)")->capture_default_str();
  eval_faces->add_option("--video-every", faces.video_every, "embed every N-th frame")->check(CLI::Range(1, 1000));
  eval_faces->add_option("--detector", faces.detector_path, "BlazeFace 256 ONNX")->capture_default_str();
  eval_faces->add_option("--embedder", faces.embedder_path,
                         "face descriptor ONNX, or 'face-api' / 'mobilefacenet' for the fetched models")
      ->capture_default_str();
  eval_faces->add_option("--chips-out", faces.chips_dir, "write the photos' aligned chips (raw RGB, the embedder's size) here");
  eval_faces->add_flag("--reference", reference, "also compare with face-api in Node (tools/faceapi_reference.cjs)");
  eval_faces->add_flag("--json", faces.json, "one-line JSON");

  vigil::EvalTrackOptions track;
  for (int i = 1; i <= 6; ++i) track.photos.push_back(data + "/media/sample" + std::to_string(i) + ".jpg");
  track.detector_path = faces.detector_path;
  auto* eval_track = eval->add_subcommand("track", "identity-keeping of detector + tracker: IDF1, MOTA, id switches");
  auto* scene_opt = eval_track->add_option("--scene", track.scene, "render a synthetic scene with ground truth")
                        ->check(CLI::IsMember({"crossings"}));
  auto* video_opt = eval_track->add_option("--video", track.video, "a video file to evaluate");
  eval_track->add_option("--gt", track.gt_path, "MOTChallenge ground truth for --video (frame,id,left,top,w,h,...)")
      ->needs(video_opt);
  scene_opt->excludes(video_opt);
  eval_track->add_option("--photo", track.photos, "the scene's faces (the largest per photo)")->capture_default_str();
  eval_track->add_option("--frames", track.frames, "scene length in frames (25 fps)")
      ->check(CLI::Range(10, 100000))
      ->capture_default_str();
  eval_track->add_option("--detector", track.detector_path, "BlazeFace ONNX")->capture_default_str();
  eval_track->add_option("--input-size", track.input_size, "detector input size")
      ->check(CLI::IsMember({128, 256}))
      ->capture_default_str();
  eval_track->add_option("--detect-every", track.detect_every, "run the detector on every N-th frame")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  eval_track->add_option("--iou", track.iou, "IoU for a track to match ground truth")
      ->check(CLI::Range(0.05, 0.95))
      ->capture_default_str();
  eval_track->add_option("--out", track.out_dir, "keep the rendered scene, its ground truth and tracks.txt here");
  eval_track->add_flag("--json", track.json, "one-line JSON");

  vigil::EvalPeopleOptions people;
  people.video = data + "/media/vtest.avi";
  people.model_path = data + "/models/human/movenet-multipose.onnx";
  auto* eval_people = eval->add_subcommand("people", "a people model + tracker on a video against OpenCV's HOG people detector");
  eval_people->add_option("--video", people.video, "a video of people")->capture_default_str();
  eval_people->add_option("--config", people.config_path, "take the first people or object model of this config");
  eval_people->add_option("--model", people.model_path, "MoveNet MultiPose ONNX (without --config)")->capture_default_str();
  eval_people->add_option("--hog-every", people.hog_every, "run HOG on every N-th frame")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  eval_people->add_option("--frames", people.max_frames, "only the first N frames (0: all)")->check(CLI::Range(0, 100000000));
  eval_people->add_option("--iou", people.iou, "IoU for a model box and a HOG box to be the same person")
      ->check(CLI::Range(0.05, 0.95))
      ->capture_default_str();
  eval_people->add_flag("--json", people.json, "one-line JSON");

  CLI11_PARSE(app, argc, argv);

  if (eval_track->parsed()) {
    if (track.scene.empty() && track.video.empty()) {
      std::fprintf(stderr, "vigil: error: eval track needs --scene crossings or --video FILE\n");
      return 2;
    }
    return vigil::eval_track_command(track);
  }

  if (eval_people->parsed()) return vigil::eval_people_command(people);

  if (eval_faces->parsed()) {
    if (faces.embedder_path == "face-api") faces.embedder_path = data + "/models/face_recognition_128.onnx";
    if (faces.embedder_path == "mobilefacenet") faces.embedder_path = data + "/models/human/mobilefacenet.onnx";
    if (reference) faces.reference_script = std::string(VIGIL_SOURCE_DIR) + "/tools/faceapi_reference.cjs";
    return vigil::eval_faces_command(faces);
  }

  if (bench_pipeline->parsed()) return vigil::bench_pipeline_command(pipeline);
  if (bench_naive->parsed()) return vigil::bench_naive_command(naive);
  if (harvest_cmd->parsed()) return vigil::harvest_command(harvest);

  if (run_cmd->parsed()) {
    if (duration > 0) run.duration_s = duration;
    return vigil::run_command(run);
  }
  if (ingest_cmd->parsed()) {
    if (ingest_duration > 0) ingest.duration_s = ingest_duration;
    return vigil::run_command(ingest);
  }
  if (cluster_status_cmd->parsed()) return vigil::cluster_status_command(cluster_status);
  if (worker_cmd->parsed()) {
    if (worker_duration > 0) worker.duration_s = worker_duration;
    return vigil::worker_command(worker);
  }
  if (bench_model->parsed()) {
    if (model.batches.empty()) model.batches = {1, 8};
    if (model.threads.empty()) model.threads = {0};
    if (model.backends.empty()) model.backends = {"opencv", "xnnpack"};
    model.model_path = vigil::expand_path(model.model_path);
    return vigil::bench_model_command(model);
  }
  return 2;
}
