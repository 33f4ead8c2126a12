// Harvester: one pass over recorded videos that turns them into faces, tracks and people:
// what `vigil harvest` runs.
//
// Each input is decoded once, in order, never seeking, by the live engine in offline mode
// (harvest/scan.h): every `stride`-th frame is sampled, sampled frames are detected in runs
// of the detector's max_batch, every sampled frame updates ByteTrack (all tracks end at a
// shot cut), and each tracked face is scored by the engine's per-track face policy
// (pipeline/best_faces.h): a FaceSelector keeps the best faces of each track, aligned, and
// when the track ends they are embedded with the other tracks' in batches on the engine's
// workers, so the embedder runs about once per max_batch kept faces, not once per detected
// face. The harvest keeps the records (harvest/face_tracks.h). At the end, tracks are grouped
// into people: a gallery name where one matches, else average-linkage clustering of the
// tracks' descriptors (the mean of each track's best faces).
//
// Outputs (in out_dir, each written whole under its final name):
//   faces.jsonl      one line per embedded face: face id, track id, input, frame, ts, bbox,
//                    keypoints, quality, row (in embeddings.npy)
//   embeddings.npy   float32 N x D, L2-normalised, row i = the face with "row": i
//   tracks.jsonl     one line per track with faces: id, input, first/last frame and ts, faces
//                    detected and embedded, best face, person
//   identities.json  people: anonymous ids ("person-1", ... in order of first appearance),
//                    their tracks and faces
//   crops/FACE.png   the aligned face that was embedded (lossless: embedding it again gives
//                    the same row)
//   thumbs/TRACK.jpg the track's best face
//   manifest.json    inputs and models with their SHA-256, settings, counts, timings, CPU
//   vigil.db         the same tracks and identities as events in the live engine's store
//   harvest.journal  the models' outputs so far (harvest/checkpoint.h): killed at any moment,
//                    the same command continues from its last record and ends with the same
//                    outputs; another command on the same folder is refused. Also what was
//                    uploaded.
// manifest.json describes the run that first wrote it: a rerun that finds the same manifest
// but for its timings keeps the file as it is.
//
// With an upload target, the bucket is checked before anything else, and once the outputs are
// written they are uploaded (harvest/upload.h): every output but the journal and
// progress.json, the manifest last, so that a manifest in the bucket means a whole harvest.
// Objects an earlier run of the same harvest uploaded are not sent again.
//
// Threading: the engine decodes, detects, tracks, selects and embeds faces on its own threads
// and hands each result and each batch of embedded faces to the caller's thread in the order
// it made them, so the outputs do not depend on the number of workers; the caller's thread
// keeps the records and writes; the progress callback is called on the caller's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "vigil/core/status.h"
#include "vigil/pipeline/face_selector.h"
#include "vigil/harvest/progress.h"
#include "vigil/harvest/upload.h"
#include "vigil/pipeline/engine_config.h"
#include "vigil/vision/face_embedder.h"

namespace vigil {

struct HarvestOptions {
  std::vector<std::string> inputs;
  std::string out_dir;
  // A face detector (a kind whose role is face_detector: blazeface, scrfd, or one registered
  // since): its keypoints align the faces it finds.
  ModelConfig detector;
  ModelConfig embedder = ModelConfig::of_kind("face_embedder");
  int stride = 1;                 // sample every N-th decoded frame
  FaceSelectorConfig select;
  // Mean cosine for two tracks' clusters to merge; unset: the embedder's
  // (FaceEmbedder::matching(); for face-api's descriptor, measured here: the same person's
  // tracks 0.974 and up, different people's 0.942 and below, so 0.96).
  std::optional<float> cluster_threshold;
  int track_buffer = 30;          // sampled frames a lost track may come back within
  double shot_cut_threshold = 12;  // mean luma change that ends every track (ShotCutDetector); 0: off
  // Cores the whole run may use (0: all): one model worker per whole core (at least 1, each
  // with its own models on one intra-op thread), and model calls paced so that process CPU
  // stays under it (CpuGovernor).
  double cpu_budget = 0;
  // DIR/<name>/*.{jpg,jpeg,png}: tracks whose descriptor matches a name by gallery_threshold
  // (cosine) and gallery_margin (over the second-best name) get that name; the others are
  // clustered into person-N. Empty: anonymous people only. Unset thresholds: the embedder's.
  std::string gallery;
  std::optional<float> gallery_threshold;
  std::optional<float> gallery_margin;
  std::optional<UploadTarget> upload;  // where the outputs go once written (none: nowhere)
};

struct HarvestSummary {
  std::uint64_t frames = 0;          // decoded
  std::uint64_t sampled = 0;         // detected
  std::uint64_t faces_detected = 0;  // tracked faces offered to the selector
  std::uint64_t faces_embedded = 0;
  std::uint64_t embedder_calls = 0;
  std::uint64_t shot_cuts = 0;       // where every track ended (ShotCutDetector)
  std::uint64_t tracks = 0;          // with at least one embedded face
  std::uint64_t people = 0;
  double cpu_budget = 0;                     // cores, as applied
  int model_workers = 0;                     // threads running model calls (one intra-op thread each)
  std::uint64_t resumed_frames = 0;          // sampled frames whose detections came from the journal
  std::uint64_t resumed_embedder_calls = 0;  // embedder calls taken from the journal
  double seconds = 0;
  double cpu_seconds = 0;
  std::vector<std::string> warnings;         // gallery photos skipped, with why
  std::string upload_destination;            // "s3://BUCKET/PREFIX/" ("" without an upload)
  UploadStats upload;
};

using HarvestProgressFn = std::function<void(const HarvestProgress&)>;

// Errors: not_found / invalid_argument / data_loss for an input that is missing, not a video
// or broken (named in the message), unavailable for an out_dir that cannot be written,
// the models' errors, and the upload's (harvest/upload.h): an unreachable storage, a missing
// bucket or refused keys before any work, a failed transfer after the outputs are written
// (the same command then uploads what is missing).
Result<HarvestSummary> harvest(const HarvestOptions& options, const HarvestProgressFn& progress = {});

}  // namespace vigil
