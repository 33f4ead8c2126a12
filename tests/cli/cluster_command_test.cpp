// `vigil ingest` and `vigil worker` as processes, against a real redis-server on loopback:
// workers killed with SIGKILL at random moments and Redis restarted mid-run lose no file
// frame and deliver none twice; bad Redis settings fail with one line before any work.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "support/http_client.h"
#include "support/test_support.h"

namespace vigil {
namespace {

using std::chrono::milliseconds;

using test::wait_until;

class ClusterCommandTest : public ::testing::Test {
 protected:
  // `cameras` file cameras over Megamind.avi (270 frames each), results to out.jsonl.
  std::string write_config(int cameras, const std::string& cluster = "{claim_idle_ms: 300, reply_timeout_ms: 1500}") {
    std::string yaml = "models:\n  faces:\n    path: " + test::data_file("models/blazeface_front_128_dyn.onnx") +
                       "\n    input_size: 128\n    max_batch: 8\ncameras:\n";
    for (int i = 0; i < cameras; ++i) {
      yaml += "  - {id: cam" + std::to_string(i) + ", source: {type: file, url: " + test::data_file("media/Megamind.avi") + "}}\n";
    }
    yaml += "sinks:\n  - {type: jsonl, path: " + out() + "}\ncluster: " + cluster + "\nstatus_interval_s: 0\nlog_level: info\n";
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
  // A worker that has loaded its models and serves (what a node's start-up check needs).
  std::unique_ptr<test::ChildProcess> ready_worker(const std::string& config, const std::string& url, const std::string& name) {
    auto w = worker(config, url, name);
    EXPECT_TRUE(wait_until([&] { return test::read_file(dir_.file(name + ".log")).find("serving") != std::string::npos; },
                           milliseconds(120000)))
        << test::read_file(dir_.file(name + ".log"));
    return w;
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
  // Two ingest nodes' config: four live synthetic cameras, each node's results to $NODE_OUT,
  // its API on a free port.
  std::string write_live_config() {
    std::string yaml = "models:\n  faces:\n    path: " + test::data_file("models/blazeface_front_128_dyn.onnx") +
                       "\n    input_size: 128\n    max_batch: 8\ncameras:\n";
    for (int i = 0; i < 4; ++i) {
      yaml += "  - {id: live" + std::to_string(i) + ", source: {type: synthetic, pattern: image, path: " +
              test::data_file("media/sample" + std::to_string(i + 1) + ".jpg") + ", width: 320, height: 180, fps: 5}}\n";
    }
    yaml += "sinks:\n  - {type: jsonl, path: \"${NODE_OUT}\"}\nhttp: {listen: 127.0.0.1:0}\n"
            "cluster: {lease_ms: 2000, claim_idle_ms: 300, reply_timeout_ms: 1500}\nstatus_interval_s: 0\nlog_level: info\n";
    const std::string path = dir_.file("live.yaml");
    std::ofstream(path) << yaml;
    return path;
  }
  struct Node {
    std::unique_ptr<test::ChildProcess> process;
    std::string log, out;
    int port = 0;
  };
  Node start_node(const std::string& config, const std::string& url, const std::string& name) {
    Node n;
    n.log = dir_.file(name + ".log");
    n.out = dir_.file(name + ".jsonl");
    n.process = std::make_unique<test::ChildProcess>(std::vector<std::string>{"/usr/bin/env", "NODE_OUT=" + n.out, test::vigil_binary(),
                                                                             "ingest", "--config", config, "--redis", url, "--node", name},
                                                    n.log);
    const std::string wall = "wall at http://127.0.0.1:";
    EXPECT_TRUE(wait_until([&] { return test::read_file(n.log).find(wall) != std::string::npos || n.process->exited(); },
                           milliseconds(60000)));
    const std::string text = test::read_file(n.log);
    if (const auto at = text.find(wall); at != std::string::npos) n.port = std::stoi(text.substr(at + wall.size()));
    return n;
  }
  // Nodes a and b started, two of the four cameras live on each.
  void start_two_nodes(const std::string& config, const std::string& url, Node& a, Node& b) {
    a = start_node(config, url, "a");
    b = start_node(config, url, "b");
    ASSERT_TRUE(a.port > 0 && b.port > 0) << test::read_file(a.log) << test::read_file(b.log);
    ASSERT_TRUE(wait_until([&] { return live_cameras(a).size() == 2 && live_cameras(b).size() == 2; }, milliseconds(30000)))
        << live_cameras(a).size() << " and " << live_cameras(b).size() << " cameras live";
  }
  // The node's cameras that are live, by its API.
  static std::set<std::string> live_cameras(const Node& n) {
    std::set<std::string> out;
    const auto reply = test::http_get(n.port, "/api/v1/cameras");
    if (reply.status != 200) return out;
    const auto body = nlohmann::json::parse(reply.body);
    for (const auto& c : body["cameras"]) {
      if (c["state"] == "live") out.insert(c["id"].get<std::string>());
    }
    return out;
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
  // The worker serves /metrics, at the URL the registry lists.
  const std::string log = test::read_file(dir_.file("w-status.log"));
  const std::string at = "metrics at http://127.0.0.1:";
  ASSERT_NE(log.find(at), std::string::npos) << log;
  const int port = std::stoi(log.substr(log.find(at) + at.size()));
  EXPECT_NE(status.find("http://127.0.0.1:" + std::to_string(port)), std::string::npos) << status;
  const auto metrics = test::http_get(port, "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("vigil_worker_items_served_total 0"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("process_cpu_seconds_total"), std::string::npos) << metrics.body;
  EXPECT_EQ(test::http_get(port, "/api/v1/cameras").status, 404);
  std::string bad;
  EXPECT_EQ(test::run_command(test::vigil_binary() + " worker --config " + config + " --redis " + server.url() + " --http nowhere 2>&1", &bad), 2);
  EXPECT_NE(bad.find("--http nowhere: expected HOST:PORT"), std::string::npos) << bad;

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

// A config whose second model no worker serves (the workers run --models faces): the ingest
// node exits 2 with one line naming the model and what the workers serve, before any work,
// and long before the 30 s a check waits for a worker that is still starting.
TEST_F(ClusterCommandTest, AnIngestNodeWhoseModelNoWorkerServesExitsTwoNamingIt) {
  test::RedisServer server;
  ASSERT_TRUE(server.ready());
  std::string yaml = test::read_file(write_config(1));
  const std::string models = "models:\n";
  yaml.insert(yaml.find(models) + models.size(), "  back:\n    path: " + test::data_file("models/blazeface_back_256_dyn.onnx") +
                                                    "\n    input_size: 256\n");
  const std::string source = "source: {type: file";
  yaml.replace(yaml.find(source), source.size(), "detect: {model: faces}, " + source);
  const std::string config = dir_.file("two-models.yaml");
  std::ofstream(config) << yaml;
  auto w = std::make_unique<test::ChildProcess>(std::vector<std::string>{test::vigil_binary(), "worker", "--config", config, "--redis",
                                                                         server.url(), "--name", "w-faces", "--models", "faces"},
                                                dir_.file("w-faces.log"));
  ASSERT_TRUE(wait_until([&] { return test::read_file(dir_.file("w-faces.log")).find("serving") != std::string::npos || w->exited(); },
                         milliseconds(120000)));
  ASSERT_FALSE(w->exited())
      << test::read_file(dir_.file("w-faces.log"));
  const auto started = std::chrono::steady_clock::now();
  std::string output;
  EXPECT_EQ(test::run_command(test::vigil_binary() + " ingest --config " + config + " --redis " + server.url() + " 2>&1", &output), 2)
      << output;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(25)) << output;
  EXPECT_NE(output.find("model back: no worker of the cluster serves it (w-faces serves faces)"), std::string::npos) << output;
  EXPECT_FALSE(std::filesystem::exists(out())) << "work started without the model";
}

// Twenty SIGKILLs of workers mid-run (each killed at a random moment after it started serving,
// while a second worker goes on): four file cameras, every frame's result exactly once.
TEST_F(ClusterCommandTest, WorkersKilledMidBatchTwentyTimesLoseNoFileFrameAndDeliverNoneTwice) {
  test::RedisServer server;
  ASSERT_TRUE(server.ready());
  const int cameras = 4;
  // A request a doomed worker claimed and died with counts a delivery: room for many kills
  // before one is taken for a poison (max_deliveries), which a file frame would not survive.
  const std::string config = write_config(cameras, "{claim_idle_ms: 300, reply_timeout_ms: 1500, max_deliveries: 20}");
  auto steady = ready_worker(config, server.url(), "steady");
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

// Workers killed with SIGKILL at random moments under four live cameras: every frame a
// camera decoded is delivered once or counted where it went (replaced on the newest-wins
// edge, dropped as late, failed, fenced), and the counts add up (but for the frame waiting
// in each camera's slot when the run stops).
TEST_F(ClusterCommandTest, UnderWorkerKillsEveryLiveFrameIsDeliveredOnceOrCountedAndTheCountsAddUp) {
  test::RedisServer server;
  ASSERT_TRUE(server.ready());
  std::string yaml = test::read_file(write_live_config());
  yaml.replace(yaml.find("${NODE_OUT}"), 11, out());
  const std::string config = dir_.file("live-kills.yaml");
  std::ofstream(config) << yaml;
  auto steady = ready_worker(config, server.url(), "steady");
  const std::string log = dir_.file("ingest.log");
  test::ChildProcess ingest({test::vigil_binary(), "ingest", "--config", config, "--redis", server.url()}, log);
  // The kills start once every camera's results flow (a run stopped while it starts has
  // nothing to count).
  const auto all_flowing = [&] {
    std::set<std::string> seen;
    for (const std::string& line : test::read_lines(out())) {
      const auto at = line.find("\"camera\":\"");
      if (at != std::string::npos) seen.insert(line.substr(at + 10, line.find('"', at + 10) - at - 10));
    }
    return seen.size() == 4;
  };
  ASSERT_TRUE(wait_until([&] { return all_flowing() || ingest.exited(); }, milliseconds(60000))) << test::read_file(log);
  ASSERT_FALSE(ingest.exited()) << test::read_file(log);
  std::mt19937 rng(20261208);
  int kills = 0;
  while (kills < 4 && !ingest.exited()) {
    const std::string name = "doomed" + std::to_string(kills);
    auto doomed = worker(config, server.url(), name);
    ASSERT_TRUE(wait_until([&] { return test::read_file(dir_.file(name + ".log")).find("serving") != std::string::npos ||
                                        ingest.exited(); }, milliseconds(60000)));
    std::this_thread::sleep_for(milliseconds(std::uniform_int_distribution<int>(0, 800)(rng)));
    doomed->kill(SIGKILL);
    doomed->wait();
    ++kills;
  }
  ingest.kill(SIGTERM);  // live cameras run until a signal
  const int status = ingest.wait();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << test::read_file(log);
  EXPECT_EQ(kills, 4);
  std::map<std::string, std::uint64_t> delivered;
  std::map<std::string, std::set<std::uint64_t>> seqs;
  for (const std::string& line : test::read_lines(out())) {
    const auto j = nlohmann::json::parse(line);
    ++delivered[j["camera"]];
    EXPECT_TRUE(seqs[j["camera"]].insert(j["seq"].get<std::uint64_t>()).second) << line << ": delivered twice";
  }
  const std::string summary = test::read_file(log);
  const auto totals = summary.find("vigil run: 4 cameras");
  ASSERT_NE(totals, std::string::npos) << "no summary:\n" << summary;
  std::printf("%d kills; %s", kills, summary.substr(totals).c_str());
  // Per camera line: "vigil run:   liveN  STATE  decoded D (...), ..., replaced R, ...[, dropped:
  // F failed, L late, X fenced][, last error: ...]" (no std::regex: GCC 12 under ASan warns in it).
  const auto number_after = [](const std::string& line, const std::string& key) -> unsigned long long {
    const auto at = line.find(key);
    return at == std::string::npos ? 0ull : std::stoull(line.substr(at + key.size()));
  };
  int cameras = 0;
  for (const std::string& line : test::read_lines(log)) {
    const std::string prefix = "vigil run:   live";
    if (line.rfind(prefix, 0) != 0) continue;
    const std::string id = line.substr(13, line.find(' ', 13) - 13);
    const unsigned long long decoded = number_after(line, " decoded "), replaced = number_after(line, ", replaced ");
    const unsigned long long failed = number_after(line, ", dropped: "), late = number_after(line, " failed, "),
                             fenced = number_after(line, " late, ");
    ++cameras;
    EXPECT_GT(delivered[id], 0u) << id;
    // The one frame in the camera's newest-wins slot when the run stopped is neither.
    const auto accounted = delivered[id] + replaced + failed + late + fenced;
    EXPECT_TRUE(decoded == accounted || decoded == accounted + 1)
        << id << ": decoded " << decoded << ", delivered " << delivered[id] << ", replaced " << replaced << ", failed " << failed
        << ", late " << late << ", fenced " << fenced;
  }
  EXPECT_EQ(cameras, 4) << summary;
  // Stopped by a signal, the node's live cameras were not read to an end: none is done.
  EXPECT_EQ(summary.find("released (ended)"), std::string::npos) << summary;
}

TEST_F(ClusterCommandTest, RedisRestartedMidRunLosesNoFileFrame) {
  test::RedisServer server;
  ASSERT_TRUE(server.ready());
  const int cameras = 2;
  const std::string config = write_config(cameras);
  auto w = ready_worker(config, server.url(), "w");
  const std::string log = dir_.file("ingest.log");
  test::ChildProcess ingest({test::vigil_binary(), "ingest", "--config", config, "--redis", server.url()}, log);
  ASSERT_TRUE(wait_until([&] { return test::read_lines(out()).size() >= 100 || ingest.exited(); }, milliseconds(120000)))
      << test::read_file(log) << test::read_file(dir_.file("w.log"));
  ASSERT_FALSE(ingest.exited()) << "the run ended before Redis could be restarted";
  server.stop();
  ASSERT_TRUE(server.start());
  const auto restarted = std::chrono::steady_clock::now();
  int status = ingest.wait();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << test::read_file(log);
  EXPECT_LT(std::chrono::steady_clock::now() - restarted, std::chrono::seconds(120))
      << "the run took long to finish after the restart\n" << test::read_file(log) << test::read_file(dir_.file("w.log"));
  expect_each_frame_once(cameras);
  const std::string summary = test::read_file(log);
  // The node saw the restart (whether requests were in flight at that instant depends on
  // timing: a fast run may have had all its replies; sending again is RemoteWorkerTest's).
  EXPECT_EQ(summary.find(" 0 reconnects;"), std::string::npos) << "the node never reconnected: " << summary;
  w->kill(SIGTERM);
  w->wait();
  EXPECT_NE(test::read_file(dir_.file("w.log")).find("reconnects"), std::string::npos);
}

// Two ingest nodes share four live cameras; one is killed with SIGKILL: the other runs all
// four, live, within the lease (2 s) + 1 s.
TEST_F(ClusterCommandTest, AKilledIngestNodesCamerasAreLiveOnTheOtherWithinLeasePlusOneSecond) {
  test::RedisServer server;
  ASSERT_TRUE(server.ready());
  const std::string config = write_live_config();
  auto w = ready_worker(config, server.url(), "w");
  Node a, b;
  ASSERT_NO_FATAL_FAILURE(start_two_nodes(config, server.url(), a, b));
  const std::set<std::string> orphans = live_cameras(a);
  const auto killed = std::chrono::steady_clock::now();
  a.process->kill(SIGKILL);
  a.process->wait();
  ASSERT_TRUE(wait_until([&] { return live_cameras(b).size() == 4; }, milliseconds(30000)));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  std::printf("the killed node's cameras were live on the other %.2f s after the SIGKILL (lease 2 s)\n", took);
  EXPECT_LE(took, 3.0);
  // The takeover's event is published once the camera was added: it may follow its going live.
  std::string events;
  EXPECT_TRUE(wait_until([&] {
    events = test::http_get(b.port, "/api/v1/events?type=camera_state&limit=1000").body;
    return std::all_of(orphans.begin(), orphans.end(), [&](const std::string& id) {
      return events.find(id + "\",\"detail\":\"taken over from node a") != std::string::npos;
    });
  }, milliseconds(10000))) << events;
}

// A node paused (SIGSTOP) past its lease: the other node takes its cameras, and when it
// resumes it delivers nothing more of them (its fence closed with the lease).
TEST_F(ClusterCommandTest, APausedOwnerWhoseLeaseExpiredDeliversNothingAfterItResumes) {
  test::RedisServer server;
  ASSERT_TRUE(server.ready());
  const std::string config = write_live_config();
  auto w = ready_worker(config, server.url(), "w");
  Node a, b;
  ASSERT_NO_FATAL_FAILURE(start_two_nodes(config, server.url(), a, b));
  const std::set<std::string> paused = live_cameras(a);
  // Some results of each of them first.
  ASSERT_TRUE(wait_until([&] { return test::read_lines(a.out).size() >= 30; }, milliseconds(120000)))
      << test::read_lines(a.out).size() << " results\n" << test::read_file(a.log) << test::read_file(b.log) << test::read_file(dir_.file("w.log"));
  a.process->kill(SIGSTOP);
  std::map<std::string, std::uint64_t> last;
  const auto before = test::read_lines(a.out);
  for (const auto& line : before) {
    const auto j = nlohmann::json::parse(line);
    last[j["camera"]] = std::max(last[j["camera"]], j["seq"].get<std::uint64_t>());
  }
  ASSERT_TRUE(wait_until([&] { return live_cameras(b).size() == 4; }, milliseconds(30000)));
  a.process->kill(SIGCONT);
  // It finds its leases run out (and says so), then goes on with what it gets again.
  ASSERT_TRUE(wait_until([&] { return test::read_file(a.log).find("lease ran out") != std::string::npos; }, milliseconds(30000)))
      << test::read_file(a.log);
  ASSERT_TRUE(wait_until([&] { return live_cameras(a).size() + live_cameras(b).size() == 4 && !live_cameras(a).empty(); },
                         milliseconds(30000)));
  const auto after = test::read_lines(a.out);
  int continued = 0;
  for (std::size_t i = before.size(); i < after.size(); ++i) {
    const auto j = nlohmann::json::parse(after[i]);
    const std::string camera = j["camera"];
    // A camera it takes again starts at seq 0; a result of the old run would go on from last.
    if (paused.count(camera) && j["seq"].get<std::uint64_t>() > last[camera]) ++continued;
  }
  EXPECT_EQ(continued, 0) << "results delivered after the lease ran out";
}

}  // namespace
}  // namespace vigil
