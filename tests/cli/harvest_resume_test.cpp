// vigil harvest killed with SIGKILL at random moments, again and again, then let finish: the
// outputs equal an uninterrupted run's, no file is ever half-written under its final name, and
// every output reached the S3 server (s3rver on loopback) exactly once.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "support/test_support.h"
#include "vigil/harvest/npy.h"

namespace vigil {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::vector<std::string> harvest_argv(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {test::vigil_binary(), "harvest"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// A file under its final name is whole: JSON parses, JSON lines end with a newline and parse,
// the matrix parses, images end with their end markers.
::testing::AssertionResult whole(const fs::path& path) {
  const std::string bytes = test::read_file(path);
  const std::string ext = path.extension().string();
  {
    if (ext == ".json") {
      if (!nlohmann::json::accept(bytes)) return ::testing::AssertionFailure() << path << " is not whole JSON";
    } else if (ext == ".jsonl") {
      if (!bytes.empty() && bytes.back() != '\n') return ::testing::AssertionFailure() << path << " ends mid-line";
      std::istringstream lines(bytes);
      for (std::string line; std::getline(lines, line);) {
        if (!nlohmann::json::accept(line)) return ::testing::AssertionFailure() << path << " holds a broken line";
      }
    } else if (ext == ".npy") {
      if (!parse_npy(bytes).ok()) return ::testing::AssertionFailure() << path << " is not a whole matrix";
    } else if (ext == ".png") {
      if (bytes.size() < 12 || bytes.compare(bytes.size() - 8, 4, "IEND") != 0) return ::testing::AssertionFailure() << path << " has no PNG end";
    } else if (ext == ".jpg") {
      if (bytes.size() < 4 || static_cast<unsigned char>(bytes[bytes.size() - 1]) != 0xd9) return ::testing::AssertionFailure() << path << " has no JPEG end";
    }
  }
  return ::testing::AssertionSuccess();
}

TEST(HarvestResumeTest, FiftyKillsThenResumeGiveTheOutputsOfAnUninterruptedRunAndUploadEachOnce) {
  test::S3Server server;
  ASSERT_TRUE(server.ready());
  // The children's environment (no other thread runs yet).
  ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
  ::setenv("AWS_ENDPOINT_URL", server.endpoint().c_str(), 1);
  test::TempDir dir;
  const std::string video = test::data_file("media/Megamind.avi");
  const std::vector<std::string> settings = {"--stride", "2", "--all-faces"};  // many embedder calls to interrupt
  const auto args = [&](const std::string& out, const std::string& upload) {
    std::vector<std::string> a = {video, "--out", out, "--upload", upload};
    a.insert(a.end(), settings.begin(), settings.end());
    return a;
  };

  const std::string reference = dir.file("reference");
  const auto started = Clock::now();
  ASSERT_EQ(test::ChildProcess(harvest_argv(args(reference, "s3://test/reference"))).wait(), 0);
  const auto full_run = Clock::now() - started;

  const std::string out = dir.file("killed");
  std::mt19937 random(20261125);
  std::uniform_real_distribution<double> moment(0.0, 1.0);
  int killed = 0, finished = 0, killed_uploading = 0;
  for (int attempt = 0; attempt < 50; ++attempt) {
    // The first forty runs do not upload and die at random moments of the work; the last ten
    // upload (the same harvest: where it goes is not part of it) and die in the upload, within
    // 5 ms of storing an object, while they still have others to send (a run left alone between
    // them would send the rest).
    const bool upload = attempt >= 40;
    std::vector<std::string> argv = harvest_argv(args(out, "s3://test/killed"));
    if (!upload) argv.erase(std::find(argv.begin(), argv.end(), "--upload"), std::find(argv.begin(), argv.end(), "--upload") + 2);
    test::ChildProcess run(argv);
    ASSERT_TRUE(run.started());
    const std::size_t stored_before = server.stored_keys().size();
    if (upload) {
      while (!run.exited() && server.stored_keys().size() == stored_before) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      std::this_thread::sleep_for(std::chrono::duration<double>(0.005 * moment(random)));
    } else {
      std::this_thread::sleep_for(std::chrono::duration_cast<Clock::duration>(full_run * moment(random)));  // the random moment
    }
    run.kill(SIGKILL);
    const int status = run.wait();
    if (WIFSIGNALED(status)) {
      ++killed;
      // Killed after it stored some objects but before the manifest: mid-upload.
      const auto keys = server.stored_keys();
      if (keys.size() > stored_before && keys.back() != "killed/manifest.json") ++killed_uploading;
    } else {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a run between kills failed: status " << status;
      ++finished;
    }
    if (!fs::exists(out)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(out)) {
      if (!entry.is_regular_file()) continue;
      const std::string name = entry.path().filename().string();
      if (name.find(".vigil-tmp-") == 0 || name == "harvest.journal") continue;  // a temporary is not a final name
      EXPECT_TRUE(whole(entry.path())) << "after kill " << attempt;
    }
  }
  std::printf("%d runs killed (%d while uploading), %d finished before their kill\n", killed, killed_uploading, finished);
  EXPECT_GE(killed, 25) << "most kills land mid-run";
  EXPECT_GE(killed_uploading, 5) << "kills land mid-upload";

  std::string printed;
  ASSERT_EQ(test::run_command(test::vigil_binary() + " harvest " + video + " --out " + out +
                                  " --stride 2 --all-faces --upload s3://test/killed 2>&1",
                              &printed),
            0)
      << printed;
  for (const char* name : {"faces.jsonl", "tracks.jsonl", "identities.json", "embeddings.npy"}) {
    EXPECT_EQ(test::read_file(fs::path(out) / name), test::read_file(fs::path(reference) / name)) << name;
  }
  for (const char* sub : {"crops", "thumbs"}) {
    std::size_t files = 0;
    for (const auto& entry : fs::directory_iterator(fs::path(reference) / sub)) {
      ++files;
      EXPECT_EQ(test::read_file(fs::path(out) / sub / entry.path().filename()), test::read_file(entry.path())) << entry.path();
    }
    EXPECT_EQ(std::distance(fs::directory_iterator(fs::path(out) / sub), fs::directory_iterator{}), static_cast<std::ptrdiff_t>(files))
        << sub << " holds exactly the reference's files (no temporaries left)";
  }
  const auto manifest = nlohmann::json::parse(test::read_file(fs::path(out) / "manifest.json"));
  EXPECT_EQ(manifest["counts"], nlohmann::json::parse(test::read_file(fs::path(reference) / "manifest.json"))["counts"]);

  // Uploads not repeated: every output is in the bucket once, as it is on disk, manifest last.
  std::size_t outputs = 0;
  for (const auto& entry : fs::recursive_directory_iterator(out)) {
    const std::string name = fs::relative(entry.path(), out).string();
    if (!entry.is_regular_file() || name == "harvest.journal" || name == "progress.json") continue;
    ++outputs;
    EXPECT_EQ(server.stored("killed/" + name), 1) << name;
    EXPECT_EQ(server.object("killed/" + name), test::read_file(entry.path())) << name;
  }
  std::vector<std::string> killed_keys;
  for (const std::string& key : server.stored_keys()) {
    if (key.rfind("killed/", 0) == 0) killed_keys.push_back(key);
  }
  EXPECT_EQ(killed_keys.size(), outputs) << "no object stored twice, none that is not an output";
  ASSERT_FALSE(killed_keys.empty());
  EXPECT_EQ(killed_keys.back(), "killed/manifest.json");
  std::printf("%zu outputs uploaded once each across the kills\n", outputs);
}

TEST(HarvestResumeTest, AFolderOfAnotherHarvestIsRefused) {
  test::TempDir dir;
  const std::string video = test::data_file("media/Megamind.avi");
  std::string printed;
  ASSERT_EQ(test::run_command(test::vigil_binary() + " harvest " + video + " --out " + dir.file("out") + " --stride 9 2>&1", &printed), 0)
      << printed;
  const int status = test::run_command(test::vigil_binary() + " harvest " + video + " --out " + dir.file("out") + " --stride 3 2>&1", &printed);
  EXPECT_NE(status, 0);
  EXPECT_NE(printed.find("holds a harvest of other inputs or settings"), std::string::npos) << printed;
  EXPECT_EQ(std::count(printed.begin(), printed.end(), '\n'), 1) << "one line: " << printed;
}

}  // namespace
}  // namespace vigil
