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

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

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

  const json manifest = json::parse(slurp(out + "/manifest.json"));
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
  auto matrix = parse_npy(slurp(out + "/embeddings.npy"));
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
  const json people = json::parse(slurp(out + "/identities.json"))["people"];
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
  const json progress = json::parse(slurp(out + "/progress.json"));
  EXPECT_EQ(progress["frames_done"], 270);
  EXPECT_EQ(progress["frames_total"], 270);
  EXPECT_EQ(progress["eta_s"], 0.0);
  EXPECT_GE(progress["embedder_calls"], 1);

  // The same command again gives the same bytes.
  const std::string again = dir.file("again");
  ASSERT_EQ((harvest(test::data_file("media/Megamind.avi") + " --out " + again, &status), status), 0);
  for (const char* name : {"faces.jsonl", "tracks.jsonl", "identities.json", "embeddings.npy"}) {
    EXPECT_EQ(slurp(out + "/" + name), slurp(again + "/" + name)) << name;
  }

  // --all-faces embeds every tracked face, still in batches.
  const std::string all = dir.file("all");
  ASSERT_EQ((harvest(test::data_file("media/Megamind.avi") + " --all-faces --out " + all, &status), status), 0);
  const json all_counts = json::parse(slurp(all + "/manifest.json"))["counts"];
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
    const std::string text = slurp(out + "/progress.json");  // whole or absent: it is replaced atomically
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
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(dir.file("log"));
  const json final_progress = json::parse(slurp(out + "/progress.json"));
  cpu_percent.push_back(final_progress["cpu_percent"]);
  EXPECT_GE(cpu_percent.size(), 2u);
  for (double c : cpu_percent) EXPECT_LE(c, 105.0) << "progress.json's CPU over its window";
  const rusage& used = run.usage();
  const double cpu = static_cast<double>(used.ru_utime.tv_sec + used.ru_stime.tv_sec) +
                     static_cast<double>(used.ru_utime.tv_usec + used.ru_stime.tv_usec) / 1e6;
  EXPECT_LE(cpu / wall, 1.05) << "getrusage: " << cpu << " s of CPU in " << wall << " s";
  EXPECT_GT(cpu, 1.0) << "it did the work (seconds of CPU whatever else the machine runs)";
  const json manifest = json::parse(slurp(out + "/manifest.json"));
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
    EXPECT_EQ(slurp(roomy + "/" + name), slurp(reference + "/" + name)) << name;
  }
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
  const std::string video = slurp(test::data_file("media/Megamind.avi"));
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
}

}  // namespace
}  // namespace vigil
