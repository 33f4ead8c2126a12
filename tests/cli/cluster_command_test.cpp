// `vigil ingest` and `vigil worker` as processes, against a real redis-server on loopback:
// workers killed with SIGKILL at random moments and Redis restarted mid-run lose no file
// frame and deliver none twice; bad Redis settings fail with one line before any work.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "support/test_support.h"

namespace vigil {
namespace {

using std::chrono::milliseconds;

bool wait_until(const std::function<bool()>& done, milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

class ClusterCommandTest : public ::testing::Test {
 protected:
  // `cameras` file cameras over Megamind.avi (270 frames each), results to out.jsonl.
  std::string write_config(int cameras, const std::string& cluster = "{claim_idle_ms: 300, reply_timeout_ms: 1500}") {
    std::string yaml = "models:\n  faces:\n    path: " + test::data_file("models/blazeface_front_128_dyn.onnx") +
                       "\n    input_size: 128\n    max_batch: 8\ncameras:\n";
    for (int i = 0; i < cameras; ++i) {
      yaml += "  - {id: cam" + std::to_string(i) + ", source: {type: file, url: " + test::data_file("media/Megamind.avi") + "}}\n";
    }
    yaml += "sinks:\n  - {type: jsonl, path: " + out() + "}\ncluster: " + cluster + "\nstatus_interval_s: 0\nlog_level: warn\n";
    const std::string path = dir_.file("cluster.yaml");
    std::ofstream(path) << yaml;
    return path;
  }
  std::string out() const { return dir_.file("out.jsonl"); }
  std::unique_ptr<test::ChildProcess> worker(const std::string& config, const std::string& url, const std::string& name) {
    return std::make_unique<test::ChildProcess>(
        std::vector<std::string>{test::vigil_binary(), "worker", "--config", config, "--redis", url, "--name", name, "--threads", "1"},
        dir_.file(name + ".log"));
  }
  // Every camera's 270 frames in the sink exactly once, in order.
  void expect_each_frame_once(int cameras) {
    std::map<std::string, std::uint64_t> next;
    std::size_t lines = 0;
    for (const std::string& line : test::read_lines(out())) {
      const auto j = nlohmann::json::parse(line);
      const std::string camera = j["camera"];
      ASSERT_EQ(j["seq"].get<std::uint64_t>(), next[camera]++) << camera << ": a frame missing, repeated or out of order";
      ++lines;
    }
    EXPECT_EQ(lines, static_cast<std::size_t>(cameras) * 270u);
    for (const auto& [camera, n] : next) EXPECT_EQ(n, 270u) << camera;
  }
  test::TempDir dir_;
};

TEST_F(ClusterCommandTest, IngestAndWorkerExitTwoWithOneLineWhenRedisIsUnreachableOrRefusesThePassword) {
  const std::string config = write_config(1);
  const std::string unreachable = "redis://127.0.0.1:" + std::to_string(test::free_port());
  std::string output;
  EXPECT_EQ(test::run_command(test::vigil_binary() + " ingest --config " + config + " --redis " + unreachable + " 2>&1", &output), 2)
      << output;
  EXPECT_NE(output.find("unreachable"), std::string::npos) << output;
  EXPECT_FALSE(std::filesystem::exists(out())) << "work started before Redis was checked";
  EXPECT_EQ(test::run_command(test::vigil_binary() + " worker --config " + config + " --redis " + unreachable + " 2>&1", &output), 2)
      << output;
  EXPECT_NE(output.find("unreachable"), std::string::npos) << output;

  test::RedisServer server("sesame");
  ASSERT_TRUE(server.ready());
  const std::string wrong = "redis://:open-up@127.0.0.1:" + std::to_string(server.port());
  for (const char* role : {"ingest", "worker"}) {
    EXPECT_EQ(test::run_command(test::vigil_binary() + " " + role + " --config " + config + " --redis " + wrong + " 2>&1", &output), 2)
        << output;
    EXPECT_NE(output.find("authentication failed"), std::string::npos) << output;
    EXPECT_EQ(output.find("open-up"), std::string::npos) << "the password is printed: " << output;
  }
  EXPECT_EQ(test::run_command(test::vigil_binary() + " ingest --config " + config + " --redis redis://nohost:x 2>&1", &output), 2);
  EXPECT_NE(output.find("redis URL"), std::string::npos) << output;
}

TEST_F(ClusterCommandTest, ClusterStatusListsTheProcessesAndAWorkerWithOtherModelsOrShardsExitsTwo) {
  test::RedisServer server;
  ASSERT_TRUE(server.ready());
  const std::string config = write_config(1);
  auto w = worker(config, server.url(), "w-status");
  std::string status;
  ASSERT_TRUE(wait_until([&] {
    test::run_command(test::vigil_binary() + " cluster status --redis " + server.url(), &status);
    return status.find("worker  w-status") != std::string::npos;
  }, milliseconds(30000))) << status;
  EXPECT_NE(status.find("vigil:{faces.0}:req"), std::string::npos) << status;

  // The same model name on another file: refused, naming the running worker.
  std::string other = test::read_file(config);
  const std::string model = test::data_file("models/blazeface_front_128_dyn.onnx");
  other.replace(other.find(model), model.size(), test::data_file("models/blazeface_back_256_dyn.onnx"));
  other.replace(other.find("input_size: 128"), 15, "input_size: 256");
  const std::string other_path = dir_.file("other.yaml");
  std::ofstream(other_path) << other;
  std::string output;
  EXPECT_EQ(test::run_command(test::vigil_binary() + " worker --config " + other_path + " --redis " + server.url() + " 2>&1", &output), 2);
  EXPECT_NE(output.find("models differ from those of worker w-status"), std::string::npos) << output;
  EXPECT_EQ(test::run_command(test::vigil_binary() + " ingest --config " + other_path + " --redis " + server.url() + " 2>&1", &output), 2);
  EXPECT_NE(output.find("models differ"), std::string::npos) << output;
  EXPECT_FALSE(std::filesystem::exists(out())) << "work started before the cluster was checked";

  const std::string sharded = write_config(1, "{shards: 2}");
  EXPECT_EQ(test::run_command(test::vigil_binary() + " worker --config " + sharded + " --redis " + server.url() + " 2>&1", &output), 2);
  EXPECT_NE(output.find("cluster.shards is 2 here and 1 in the running cluster"), std::string::npos) << output;
}

// Twenty SIGKILLs of workers mid-run (each killed at a random moment after it started serving,
// while a second worker goes on): four file cameras, every frame's result exactly once.
TEST_F(ClusterCommandTest, WorkersKilledMidBatchTwentyTimesLoseNoFileFrameAndDeliverNoneTwice) {
  test::RedisServer server;
  ASSERT_TRUE(server.ready());
  const int cameras = 4;
  const std::string config = write_config(cameras);
  auto steady = worker(config, server.url(), "steady");
  std::mt19937 rng(20261207);
  int kills = 0, rounds = 0;
  while (kills < 20) {
    ++rounds;
    std::filesystem::remove(out());
    const std::string log = dir_.file("ingest-" + std::to_string(rounds) + ".log");
    test::ChildProcess ingest({test::vigil_binary(), "ingest", "--config", config, "--redis", server.url(), "--node",
                               "node" + std::to_string(rounds)}, log);
    int status = 0;
    while (!ingest.exited(&status)) {
      const std::string name = "doomed" + std::to_string(kills);
      auto doomed = worker(config, server.url(), name);
      ASSERT_TRUE(wait_until([&] { return test::read_file(dir_.file(name + ".log")).find("serving") != std::string::npos ||
                                          ingest.exited(); }, milliseconds(60000)));
      std::this_thread::sleep_for(milliseconds(std::uniform_int_distribution<int>(0, 800)(rng)));  // the random moment
      doomed->kill(SIGKILL);
      doomed->wait();
      ++kills;
    }
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << test::read_file(log);
    expect_each_frame_once(cameras);
    if (HasFailure()) return;
    const std::string summary = test::read_file(log);
    std::printf("round %d: %d kills so far; %s", rounds, kills, summary.substr(summary.find("vigil ingest: ")).c_str());
  }
}

TEST_F(ClusterCommandTest, RedisRestartedMidRunLosesNoFileFrame) {
  test::RedisServer server;
  ASSERT_TRUE(server.ready());
  const int cameras = 2;
  const std::string config = write_config(cameras);
  auto w = worker(config, server.url(), "w");
  const std::string log = dir_.file("ingest.log");
  test::ChildProcess ingest({test::vigil_binary(), "ingest", "--config", config, "--redis", server.url()}, log);
  ASSERT_TRUE(wait_until([&] { return test::read_lines(out()).size() >= 100 || ingest.exited(); }, milliseconds(60000)));
  ASSERT_FALSE(ingest.exited()) << "the run ended before Redis could be restarted";
  server.stop();
  ASSERT_TRUE(server.start());
  int status = ingest.wait();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << test::read_file(log);
  expect_each_frame_once(cameras);
  const std::string summary = test::read_file(log);
  EXPECT_EQ(summary.find(" 0 sent again"), std::string::npos) << "nothing was sent again: was anything in flight? " << summary;
  w->kill(SIGTERM);
  w->wait();
  EXPECT_NE(test::read_file(dir_.file("w.log")).find("reconnects"), std::string::npos);
}

}  // namespace
}  // namespace vigil
