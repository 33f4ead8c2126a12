// vigil harvest killed with SIGKILL at random moments, again and again, then let finish: the
// outputs equal an uninterrupted run's and no file is ever half-written under its final name.
#include <signal.h>
#include <sys/wait.h>

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

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> harvest_argv(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {test::vigil_binary(), "harvest"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// A file under its final name is whole: JSON parses, JSON lines end with a newline and parse,
// the matrix parses, images end with their end markers.
::testing::AssertionResult whole(const fs::path& path) {
  const std::string bytes = slurp(path);
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

TEST(HarvestResumeTest, FiftyKillsThenResumeGiveTheOutputsOfAnUninterruptedRun) {
  test::TempDir dir;
  const std::string video = test::data_file("media/Megamind.avi");
  const std::vector<std::string> settings = {"--stride", "2", "--all-faces"};  // many embedder calls to interrupt
  const auto args = [&](const std::string& out) {
    std::vector<std::string> a = {video, "--out", out};
    a.insert(a.end(), settings.begin(), settings.end());
    return a;
  };

  const std::string reference = dir.file("reference");
  const auto started = Clock::now();
  ASSERT_EQ(test::ChildProcess(harvest_argv(args(reference))).wait(), 0);
  const auto full_run = Clock::now() - started;

  const std::string out = dir.file("killed");
  std::mt19937 random(20261125);
  std::uniform_real_distribution<double> moment(0.0, 1.0);
  int killed = 0, finished = 0;
  for (int attempt = 0; attempt < 50; ++attempt) {
    test::ChildProcess run(harvest_argv(args(out)));
    ASSERT_TRUE(run.started());
    std::this_thread::sleep_for(std::chrono::duration_cast<Clock::duration>(full_run * moment(random)));  // the random moment
    run.kill(SIGKILL);
    const int status = run.wait();
    if (WIFSIGNALED(status)) {
      ++killed;
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
  std::printf("%d runs killed, %d finished before their kill\n", killed, finished);
  EXPECT_GE(killed, 25) << "most kills land mid-run";

  std::string printed;
  ASSERT_EQ(test::run_command(test::vigil_binary() + " harvest " + video + " --out " + out + " --stride 2 --all-faces 2>&1", &printed), 0)
      << printed;
  for (const char* name : {"faces.jsonl", "tracks.jsonl", "identities.json", "embeddings.npy"}) {
    EXPECT_EQ(slurp(fs::path(out) / name), slurp(fs::path(reference) / name)) << name;
  }
  for (const char* sub : {"crops", "thumbs"}) {
    std::size_t files = 0;
    for (const auto& entry : fs::directory_iterator(fs::path(reference) / sub)) {
      ++files;
      EXPECT_EQ(slurp(fs::path(out) / sub / entry.path().filename()), slurp(entry.path())) << entry.path();
    }
    EXPECT_EQ(std::distance(fs::directory_iterator(fs::path(out) / sub), fs::directory_iterator{}), static_cast<std::ptrdiff_t>(files))
        << sub << " holds exactly the reference's files (no temporaries left)";
  }
  const auto manifest = nlohmann::json::parse(slurp(fs::path(out) / "manifest.json"));
  EXPECT_EQ(manifest["counts"], nlohmann::json::parse(slurp(fs::path(reference) / "manifest.json"))["counts"]);
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
