// vigil harvest over the real Megamind.avi with the fetched BlazeFace and face-api models.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <algorithm>

#include "support/test_support.h"
#include "vigil/harvest/npy.h"

namespace vigil {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::vector<json> jsonl(const std::string& path) {
  std::vector<json> out;
  for (const std::string& line : test::read_lines(path)) out.push_back(json::parse(line));
  return out;
}

std::size_t files_in(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

std::string harvest(const std::string& args, int* status) {
  std::string output;
  *status = test::run_command(test::vigil_binary() + " harvest " + args + " 2>&1", &output);
  return output;
}

TEST(HarvestCommandTest, MegamindFacesAreEmbeddedInBatchesAndTheOutputsAgree) {
  test::TempDir dir;
  const std::string out = dir.file("out");
  int status = 0;
  const std::string printed = harvest(test::data_file("media/Megamind.avi") + " --out " + out, &status);
  ASSERT_EQ(status, 0) << printed;
  EXPECT_NE(printed.find("vigil harvest: 270 frames"), std::string::npos) << printed;

  const json manifest = json::parse(test::read_file(out + "/manifest.json"));
  const json counts = manifest["counts"];
  const std::uint64_t detected = counts["faces_detected"], embedded = counts["faces_embedded"], calls = counts["embedder_calls"];
  EXPECT_EQ(counts["frames"], 270);
  ASSERT_GT(detected, 200u) << "a face in nearly every frame";
  ASSERT_GT(embedded, 0u);
  EXPECT_LE(calls * 16, detected) << "at most one embedder call per 16 detected faces";
  EXPECT_LT(embedded, detected / 4) << "the best faces of each track, not all";

  // faces.jsonl, embeddings.npy and crops/ describe the same faces.
  const std::vector<json> faces = jsonl(out + "/faces.jsonl");
  ASSERT_EQ(faces.size(), embedded);
  auto matrix = parse_npy(test::read_file(out + "/embeddings.npy"));
  ASSERT_TRUE(matrix.ok()) << matrix.error().message;
  ASSERT_EQ(matrix->rows, embedded);
  EXPECT_EQ(matrix->cols, 128u);
  for (std::size_t r = 0; r < matrix->rows; ++r) {
    double norm = 0;
    for (std::size_t c = 0; c < matrix->cols; ++c) norm += matrix->values[r * matrix->cols + c] * matrix->values[r * matrix->cols + c];
    EXPECT_NEAR(norm, 1.0, 1e-4) << "row " << r << " is L2-normalised";
  }
  std::set<std::uint64_t> rows, track_ids;
  for (const json& f : faces) {
    rows.insert(f["row"].get<std::uint64_t>());
    EXPECT_TRUE(fs::exists(out + "/crops/" + std::to_string(f["face_id"].get<std::uint64_t>()) + ".png")) << f.dump();
    EXPECT_EQ(f["bbox"].size(), 4u);
    EXPECT_EQ(f["keypoints"].size(), 6u) << "BlazeFace's six points";
  }
  EXPECT_EQ(rows.size(), faces.size());
  EXPECT_EQ(*rows.rbegin(), faces.size() - 1);
  EXPECT_EQ(files_in(out + "/crops"), faces.size());

  // Every track with faces has a thumbnail and a person; every person lists its tracks.
  const std::vector<json> tracks = jsonl(out + "/tracks.jsonl");
  ASSERT_GE(tracks.size(), 4u);
  EXPECT_EQ(files_in(out + "/thumbs"), tracks.size());
  for (const json& t : tracks) track_ids.insert(t["track_id"].get<std::uint64_t>());
  std::set<std::uint64_t> in_people;
  const json people = json::parse(test::read_file(out + "/identities.json"))["people"];
  ASSERT_GE(people.size(), 1u);
  EXPECT_EQ(people[0]["id"], "person-1");
  for (const json& p : people) {
    for (const json& t : p["tracks"]) EXPECT_TRUE(in_people.insert(t.get<std::uint64_t>()).second) << "a track in two people";
  }
  EXPECT_EQ(in_people, track_ids);

  // vigil.db holds the same tracks as the live engine's events: started, identity, removed.
  std::string db;
  ASSERT_EQ(test::run_command("sqlite3 " + out + "/vigil.db \"SELECT type, COUNT(*) FROM events GROUP BY type ORDER BY type;"
                              " SELECT COUNT(*) FROM faces;\"",
                              &db),
            0)
      << db;
  const std::string n = std::to_string(tracks.size());
  EXPECT_EQ(db, "identity_matched|" + n + "\ntrack_removed|" + n + "\ntrack_started|" + n + "\n" + n + "\n");
  std::string detail;
  ASSERT_EQ(test::run_command("sqlite3 " + out + "/vigil.db \"SELECT detail FROM events WHERE type = 'identity_matched'"
                              " AND track_id = 1;\"",
                              &detail),
            0);
  EXPECT_EQ(detail, tracks[0]["person"].get<std::string>() + "\n");

  // progress.json says where it ended.
  const json progress = json::parse(test::read_file(out + "/progress.json"));
  EXPECT_EQ(progress["frames_done"], 270);
  EXPECT_EQ(progress["frames_total"], 270);
  EXPECT_EQ(progress["eta_s"], 0.0);
  EXPECT_GE(progress["embedder_calls"], 1);

  // The same command again gives the same bytes.
  const std::string again = dir.file("again");
  ASSERT_EQ((harvest(test::data_file("media/Megamind.avi") + " --out " + again, &status), status), 0);
  for (const char* name : {"faces.jsonl", "tracks.jsonl", "identities.json", "embeddings.npy"}) {
    EXPECT_EQ(test::read_file(out + "/" + name), test::read_file(again + "/" + name)) << name;
  }

  // --all-faces embeds every tracked face, still in batches.
  const std::string all = dir.file("all");
  ASSERT_EQ((harvest(test::data_file("media/Megamind.avi") + " --all-faces --out " + all, &status), status), 0);
  const json all_counts = json::parse(test::read_file(all + "/manifest.json"))["counts"];
  EXPECT_EQ(all_counts["faces_embedded"], detected);
  EXPECT_LE(all_counts["embedder_calls"].get<std::uint64_t>(), (detected + 15) / 16);
  // ... and finds the same people: each track's descriptor is its best faces either way.
  std::map<std::uint64_t, std::string> person, all_person;
  for (const json& t : tracks) person[t["track_id"]] = t["person"];
  for (const json& t : jsonl(all + "/tracks.jsonl")) all_person[t["track_id"]] = t["person"];
  EXPECT_EQ(all_person, person);
  // Megamind's five shots (tracks end at each cut): the same woman in 1 and 4, a blurred face
  // behind her in 2, the same man in 3 and 5.
  ASSERT_EQ(tracks.size(), 5u);
  EXPECT_EQ(person[1], person[4]);
  EXPECT_EQ(person[3], person[5]);
  EXPECT_EQ(people.size(), 3u);
  EXPECT_EQ(manifest["counts"]["shot_cuts"], 4);
}

TEST(HarvestCommandTest, ACpuBudgetOfOneCoreHoldsThroughout) {
  test::TempDir dir;
  const std::string out = dir.file("out");
  const auto started = std::chrono::steady_clock::now();
  test::ChildProcess run({test::vigil_binary(), "harvest", test::data_file("media/Megamind.avi"), "--out", out, "--cpu-budget",
                          "1", "--all-faces"},
                         dir.file("log"));
  ASSERT_TRUE(run.started());
  std::vector<double> cpu_percent;  // progress.json's figure, each time it changed
  double last_elapsed = -1;
  int status = 0;
  while (!run.exited(&status)) {
    const std::string text = test::read_file(out + "/progress.json");  // whole or absent: it is replaced atomically
    if (!text.empty()) {
      const json p = json::parse(text);
      if (p["elapsed_s"].get<double>() != last_elapsed) {
        last_elapsed = p["elapsed_s"];
        cpu_percent.push_back(p["cpu_percent"]);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling the file
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << test::read_file(dir.file("log"));
  const json final_progress = json::parse(test::read_file(out + "/progress.json"));
  cpu_percent.push_back(final_progress["cpu_percent"]);
  EXPECT_GE(cpu_percent.size(), 2u);
  for (double c : cpu_percent) EXPECT_LE(c, 105.0) << "progress.json's CPU over its window";
  const rusage& used = run.usage();
  const double cpu = static_cast<double>(used.ru_utime.tv_sec + used.ru_stime.tv_sec) +
                     static_cast<double>(used.ru_utime.tv_usec + used.ru_stime.tv_usec) / 1e6;
  EXPECT_LE(cpu / wall, 1.05) << "getrusage: " << cpu << " s of CPU in " << wall << " s";
  EXPECT_GT(cpu, 1.0) << "it did the work (seconds of CPU whatever else the machine runs)";
  const json manifest = json::parse(test::read_file(out + "/manifest.json"));
  EXPECT_EQ(manifest["settings"]["cpu_budget"], 1.0);
  EXPECT_EQ(manifest["settings"]["model_workers"], 1);
}

// A disk that fills up mid-run: a clear one-line error, a non-zero exit, no half file under a
// final name, and once there is room the same command finishes with the outputs of a run
// that never failed. The disk is a small tmpfs (root, as CI runs); where mounting is not
// allowed, a file size limit (ulimit -f, SIGXFSZ ignored) makes the writes fail instead.
TEST(HarvestCommandTest, AFullDiskIsAClearErrorAndTheRunResumesOnceThereIsRoom) {
  test::TempDir dir;
  const std::string video = test::data_file("media/Megamind.avi");
  const std::string small = dir.file("small");
  fs::create_directories(small);
  const bool mounted = test::run_command("mount -t tmpfs -o size=120k tmpfs " + small + " 2>&1") == 0;
  const std::string limit = mounted ? "" : "trap '' XFSZ; ulimit -f 160; ";
  std::string printed;
  const int status = test::run_command(limit + test::vigil_binary() + " harvest " + video + " --out " + small + "/out 2>&1", &printed);
  EXPECT_EQ(status, 1) << printed;
  if (mounted) {
    EXPECT_NE(printed.find("No space left on device"), std::string::npos) << printed;
  } else {  // whichever file reaches the limit first: a plain write says so, SQLite's store says less
    EXPECT_TRUE(printed.find("File too large") != std::string::npos || printed.find("is the disk full") != std::string::npos) << printed;
  }
  std::size_t error_lines = 0;
  for (std::size_t at = printed.find("vigil: error:"); at != std::string::npos; at = printed.find("vigil: error:", at + 1)) ++error_lines;
  EXPECT_EQ(error_lines, 1u) << printed;
  // Room again: the folder moves to a roomy disk and the same command finishes there.
  const std::string roomy = dir.file("roomy");
  ASSERT_EQ(test::run_command("cp -a " + small + "/out " + roomy), 0);
  if (mounted) {
    EXPECT_EQ(test::run_command("umount " + small), 0);
  }
  int again = 0;
  printed = harvest(video + " --out " + roomy, &again);
  ASSERT_EQ(again, 0) << printed;
  EXPECT_NE(printed.find("resumed"), std::string::npos) << "what was done before the disk filled is not done again: " << printed;
  const std::string reference = dir.file("reference");
  ASSERT_EQ((harvest(video + " --out " + reference, &again), again), 0);
  for (const char* name : {"faces.jsonl", "tracks.jsonl", "identities.json", "embeddings.npy"}) {
    EXPECT_EQ(test::read_file(roomy + "/" + name), test::read_file(reference + "/" + name)) << name;
  }
}

// The environment of a harvest that uploads to `server` (its keys are s3rver's own).
std::string s3_env(const test::S3Server& server) {
  return "AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 AWS_ENDPOINT_URL=" + server.endpoint() + " ";
}

// Every output a harvest uploads (all but the journal and progress.json), relative to `out`.
std::vector<std::string> uploadable(const std::string& out) {
  std::vector<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (!e.is_regular_file()) continue;
    const std::string name = fs::relative(e.path(), out).string();
    if (name != "harvest.journal" && name != "progress.json") names.push_back(name);
  }
  return names;
}

TEST(HarvestCommandTest, TheOutputsAreUploadedOnceWithTheManifestLast) {
  test::S3Server server;
  ASSERT_TRUE(server.ready());
  test::TempDir dir;
  const std::string out = dir.file("out");
  const std::string command = s3_env(server) + test::vigil_binary() + " harvest " + test::data_file("media/Megamind.avi") +
                              " --out " + out + " --stride 9 --upload s3://test/episodes/ep1 --upload-concurrency 3 2>&1";
  std::string printed;
  ASSERT_EQ(test::run_command(command, &printed), 0) << printed;
  const std::vector<std::string> names = uploadable(out);
  ASSERT_GT(names.size(), 8u) << "outputs, crops and thumbs";
  for (const std::string& name : names) {
    EXPECT_EQ(server.stored("episodes/ep1/" + name), 1) << name;
    EXPECT_EQ(server.object("episodes/ep1/" + name), test::read_file(out + "/" + name)) << name;
  }
  const std::vector<std::string> keys = server.stored_keys();
  ASSERT_EQ(keys.size(), names.size());
  EXPECT_EQ(keys.back(), "episodes/ep1/manifest.json") << "a manifest in the bucket means a whole harvest";
  const std::string all = std::to_string(names.size());
  EXPECT_NE(printed.find("uploaded " + all + " of " + all + " files"), std::string::npos) << printed;
  EXPECT_NE(printed.find("to s3://test/episodes/ep1/"), std::string::npos) << printed;

  // The same command again: the same bytes, nothing sent.
  ASSERT_EQ(test::run_command(command, &printed), 0) << printed;
  EXPECT_NE(printed.find("uploaded 0 of " + all + " files"), std::string::npos) << printed;
  EXPECT_NE(printed.find(all + " were there already"), std::string::npos) << printed;
  EXPECT_EQ(server.stored_total(), static_cast<int>(names.size()));
}

TEST(HarvestCommandTest, AnUnreachableStorageIsOneLineBeforeAnyWorkAndTheRunGoesOnWhenItIsBack) {
  test::S3Server server;
  ASSERT_TRUE(server.ready());
  server.stop();
  test::TempDir dir;
  const std::string out = dir.file("out");
  const std::string command = s3_env(server) + test::vigil_binary() + " harvest " + test::data_file("media/Megamind.avi") +
                              " --out " + out + " --stride 9 --upload s3://test/ep 2>&1";
  std::string printed;
  EXPECT_EQ(test::run_command(command, &printed), 1) << printed;
  EXPECT_NE(printed.find("vigil: error: upload: cannot reach " + server.endpoint()), std::string::npos) << printed;
  EXPECT_EQ(std::count(printed.begin(), printed.end(), '\n'), 1) << "one line: " << printed;
  EXPECT_FALSE(fs::exists(out + "/faces.jsonl")) << "no work with nowhere to send it";
  ASSERT_TRUE(server.start());
  ASSERT_EQ(test::run_command(command, &printed), 0) << printed;
  EXPECT_EQ(server.stored_total(), static_cast<int>(uploadable(out).size()));
  EXPECT_EQ(server.stored_keys().back(), "ep/manifest.json");
}

// The detector of a harvest is any face detector kind of a config: here SCRFD (the planted
// fixture: two faces above its threshold, at the same places in every frame), with the
// face-api embedder.
TEST(HarvestCommandTest, AnyFaceDetectorKindOfAConfigRunsTheHarvest) {
  test::TempDir dir;
  const std::string config = dir.file("scrfd.yaml");
  std::ofstream(config) << "models:\n"
                           "  faces: {kind: scrfd, path: " << test::data_file("models/fixtures/det_10g.onnx") << ", max_batch: 1}\n"
                           "  embedder: {kind: face_embedder, path: " << test::data_file("models/face_recognition_128.onnx") << "}\n";  // no cameras: a harvest takes only the models
  int status = 0;
  const std::string out = dir.file("out");
  std::string printed = harvest(test::data_file("media/Megamind.avi") + " --stride 9 --config " + config + " --out " + out, &status);
  ASSERT_EQ(status, 0) << printed;
  const json manifest = json::parse(test::read_file(out + "/manifest.json"));
  EXPECT_EQ(manifest["models"]["detector"]["kind"], "scrfd");
  EXPECT_EQ(manifest["counts"]["sampled"], 30);
  EXPECT_EQ(manifest["counts"]["faces_detected"], 60) << "the two planted faces in every sampled frame";
  EXPECT_GE(manifest["counts"]["tracks"], 1);

  const std::string yolo = dir.file("yolo.yaml");
  std::ofstream(yolo) << "models:\n"
                         "  things: {kind: yolo, path: " << test::data_file("models/fixtures/yolo11n.onnx") << "}\n"
                         "  embedder: {kind: face_embedder, path: " << test::data_file("models/face_recognition_128.onnx") << "}\n"
                         "cameras:\n  - {id: c, source: {type: synthetic}}\n";
  printed = harvest(test::data_file("media/Megamind.avi") + " --config " + yolo + " --out " + dir.file("y"), &status);
  EXPECT_EQ(status, 2) << printed;
  EXPECT_NE(printed.find("needs a face detector (blazeface or scrfd)"), std::string::npos) << printed;
}

TEST(HarvestCommandTest, BadInputsAreClearErrors) {
  test::TempDir dir;
  int status = 0;
  std::string printed = harvest(dir.file("missing.mp4") + " --out " + dir.file("out"), &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(printed.find("missing.mp4: no such file"), std::string::npos) << printed;

  const std::string text = dir.file("notes.mp4");
  std::ofstream(text) << "not a video at all\n";
  printed = harvest(text + " --out " + dir.file("out"), &status);
  EXPECT_EQ(status, 2) << printed;
  EXPECT_NE(printed.find("notes.mp4"), std::string::npos) << printed;

  const std::string truncated = dir.file("cut.avi");
  const std::string video = test::read_file(test::data_file("media/Megamind.avi"));
  std::ofstream(truncated, std::ios::binary) << video.substr(0, video.size() / 3);
  printed = harvest(truncated + " --out " + dir.file("cut"), &status);
  EXPECT_EQ(status, 2) << printed;
  EXPECT_NE(printed.find("cut.avi: stream ended after"), std::string::npos) << printed;
  EXPECT_NE(printed.find("truncated or damaged"), std::string::npos) << printed;

  printed = harvest(test::data_file("media/Megamind.avi") + " --out /proc/vigil-cannot-write", &status);
  EXPECT_EQ(status, 1) << printed;
  EXPECT_NE(printed.find("/proc/vigil-cannot-write"), std::string::npos) << printed;

  printed = harvest(test::data_file("media/Megamind.avi") + " --out " + dir.file("g") + " --gallery " + dir.file("no-gallery"), &status);
  EXPECT_EQ(status, 2) << printed;
  EXPECT_NE(printed.find("no-gallery"), std::string::npos) << printed;

  printed = harvest(test::data_file("media/Megamind.avi") + " --out " + dir.file("x") + " --stride 0", &status);
  EXPECT_NE(status, 0) << printed;

  printed = harvest(test::data_file("media/Megamind.avi") + " --out " + dir.file("u") + " --upload https://bucket/x", &status);
  EXPECT_EQ(status, 2) << printed;
  EXPECT_NE(printed.find("--upload wants s3://BUCKET/PREFIX"), std::string::npos) << printed;
  std::string no_keys;
  status = test::run_command("env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY " + test::vigil_binary() + " harvest " +
                                 test::data_file("media/Megamind.avi") + " --out " + dir.file("u") + " --upload s3://bucket/x",
                             &no_keys);
  EXPECT_EQ(status, 2) << no_keys;
  EXPECT_NE(no_keys.find("needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), std::string::npos) << no_keys;
  EXPECT_EQ(std::count(no_keys.begin(), no_keys.end(), '\n'), 1) << no_keys;
}

}  // namespace
}  // namespace vigil
