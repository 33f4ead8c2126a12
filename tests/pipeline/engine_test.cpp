// The live engine with real sources (H.264 files, synthetic cameras, an HTTP stream on
// loopback) and a fake detector with a set delay, so scheduling is what is tested.
#include "vigil/pipeline/engine.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <thread>

#include "support/test_support.h"
#include "support/ts_http_server.h"
#include "vigil/core/process_stats.h"

namespace vigil {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A detector that takes `delay` per call (sleeping, or burning CPU) and finds nothing.
class FakeDetector final : public Detector {
 public:
  FakeDetector(int max_batch, milliseconds delay, bool burn, std::atomic<int>* calls = nullptr)
      : max_batch_(max_batch), delay_(delay), burn_(burn), calls_(calls) {}
  Status detect(std::span<const Image* const> images, std::vector<Detections>& results) override {
    if (calls_) ++*calls_;
    results.assign(images.size(), {});
    if (burn_) {
      const auto until = SteadyClock::now() + delay_;
      volatile double x = 1;
      while (SteadyClock::now() < until) x = x * 1.0000001 + 1e-9;
    } else {
      std::this_thread::sleep_for(delay_);
    }
    return {};
  }
  int max_batch() const override { return max_batch_; }

 private:
  int max_batch_;
  milliseconds delay_;
  bool burn_;
  std::atomic<int>* calls_;  // counts calls when set
};

// Everything the engine produced, by camera.
struct Collector {
  struct Item {
    std::uint64_t seq;
    double age_ms;  // frame age when its inference started
    SteadyTime at;
  };
  std::mutex mu;
  std::map<std::string, std::vector<Item>> items;
  void add(const FrameResult& r) {
    std::lock_guard lock(mu);
    items[*r.frame->camera].push_back(
        {r.frame->seq, std::chrono::duration<double, std::milli>(r.inference_started - r.frame->captured_steady).count(),
         SteadyClock::now()});
  }
  std::size_t count(const std::string& camera) {
    std::lock_guard lock(mu);
    return items[camera].size();
  }
};

EngineHooks fake_hooks(Collector& collector, milliseconds delay, bool burn = false) {
  EngineHooks hooks;
  hooks.make_detector = [delay, burn](const std::string&, const ModelConfig& m) -> Result<std::unique_ptr<Detector>> {
    return std::unique_ptr<Detector>(new FakeDetector(m.settings.max_batch, delay, burn));
  };
  hooks.on_result = [&collector](const FrameResult& r) { collector.add(r); };
  return hooks;
}

EngineConfig base_config(int max_batch = 8, double max_delay_ms = 2, int workers = 2) {
  EngineConfig config;
  ModelConfig model;
  model.settings.max_batch = max_batch;
  model.max_delay_ms = max_delay_ms;
  config.models["fake"] = model;
  config.workers = workers;
  config.status_interval_s = 0;
  return config;
}

CameraConfig file_camera(const std::string& id, const std::string& path) {
  CameraConfig c;
  c.id = id;
  c.source.type = SourceType::file;
  c.source.url = path;
  c.source.live = false;
  c.detect.model = "fake";
  return c;
}

CameraConfig synthetic_camera(const std::string& id, double fps, int width = 320, int height = 240) {
  CameraConfig c;
  c.id = id;
  c.source.type = SourceType::synthetic;
  c.source.pattern = SyntheticPattern::procedural;
  c.source.width = width;
  c.source.height = height;
  c.source.fps = fps;
  c.source.live = true;
  c.detect.model = "fake";
  return c;
}

const CameraStatus* find(const EngineStatus& status, const std::string& id) {
  for (const auto& c : status.cameras) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

std::string history_text(const std::vector<CameraState>& h) {
  std::string s;
  for (auto st : h) s += std::string(to_string(st)) + " ";
  return s;
}

// Waits (up to timeout) for a condition; true if it held.
template <class F>
bool wait_for(F condition, std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return condition();
}

TEST(EngineTest, FileCamerasProcessEveryFrameOnceInOrder) {
  test::TempDir dir;
  EngineConfig config = base_config(4, 1, 2);
  for (int i = 0; i < 6; ++i) {
    const std::string path = dir.file("clip" + std::to_string(i) + ".mp4");
    ASSERT_TRUE(test::make_h264_video(path, 40 + i, 160, 120));
    config.cameras.push_back(file_camera("cam" + std::to_string(i), path));
  }
  Collector collector;
  auto engine = Engine::create(config, fake_hooks(collector, milliseconds(2)));
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  ASSERT_TRUE((*engine)->run(std::nullopt).ok());  // ends when every file has ended
  for (int i = 0; i < 6; ++i) {
    const auto& items = collector.items["cam" + std::to_string(i)];
    ASSERT_EQ(items.size(), static_cast<std::size_t>(40 + i)) << "cam" << i;
    for (std::size_t k = 0; k < items.size(); ++k) EXPECT_EQ(items[k].seq, k) << "cam" << i;
  }
  const EngineStatus status = (*engine)->status();
  for (const auto& c : status.cameras) {
    EXPECT_EQ(c.state, CameraState::stopped);
    EXPECT_EQ(c.frames_replaced, 0u);
  }
  // Six cameras ready at once share batches (max 4).
  const auto& sizes = status.models.at(0).batch_sizes;
  std::uint64_t multi = 0;
  for (std::size_t n = 2; n < sizes.size(); ++n) multi += sizes[n];
  EXPECT_GT(multi, 0u);
}

// The harvest's way: one started engine, files added one after another, each finished (every
// result delivered) and removed before the next, the same id again allowed.
TEST(EngineTest, FilesRunOneAfterAnotherOnAStartedEngine) {
  test::TempDir dir;
  EngineConfig config = base_config(4, 1, 2);
  config.offline = true;
  const std::string first = dir.file("first.mp4"), second = dir.file("second.mp4");
  ASSERT_TRUE(test::make_h264_video(first, 30, 160, 120));
  ASSERT_TRUE(test::make_h264_video(second, 25, 160, 120));
  Collector collector;
  auto engine = Engine::create(config, fake_hooks(collector, milliseconds(1)));
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  (*engine)->start();
  ASSERT_TRUE((*engine)->add_camera(file_camera("a", first)).ok());
  const Result<CameraStatus> a = (*engine)->finish_camera("a");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->frames_decoded, 30u);
  EXPECT_EQ(a->frames_inferred, 30u);
  EXPECT_EQ(a->state, CameraState::stopped);
  EXPECT_EQ(collector.count("a"), 30u) << "every result delivered before it returned";
  EXPECT_EQ((*engine)->pipeline("a").error().code, ErrorCode::not_found) << "and the camera removed";
  ASSERT_TRUE((*engine)->add_camera(file_camera("a", second)).ok()) << "the same id again";
  const Result<CameraStatus> again = (*engine)->finish_camera("a");
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->frames_decoded, 25u);
  {
    std::lock_guard lock(collector.mu);
    const auto& items = collector.items["a"];
    ASSERT_EQ(items.size(), 55u);
    for (std::size_t k = 0; k < items.size(); ++k) EXPECT_EQ(items[k].seq, k < 30 ? k : k - 30) << k;
  }
  EXPECT_EQ((*engine)->finish_camera("nope").error().code, ErrorCode::not_found);
  ASSERT_TRUE((*engine)->add_camera(file_camera("b", first)).ok());
  (*engine)->request_stop();
  const Result<CameraStatus> stopped = (*engine)->finish_camera("b");
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.error().code, ErrorCode::cancelled);
  EXPECT_TRUE((*engine)->run(std::nullopt).ok());
}

// What an ingest node's lease thread asks on each tick, without waiting: a file camera is
// finished only once its source ended and its last result was delivered.
TEST(EngineTest, CameraFinishedSaysSoOnlyOnceEveryResultWasDelivered) {
  test::TempDir dir;
  EngineConfig config = base_config(2, 1, 1);
  config.offline = true;
  const std::string video = dir.file("v.mp4");
  ASSERT_TRUE(test::make_h264_video(video, 30, 160, 120));
  Collector collector;
  auto engine = Engine::create(config, fake_hooks(collector, milliseconds(15)));  // slower than the decoder
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  (*engine)->start();
  EXPECT_FALSE((*engine)->camera_finished("a")) << "an unknown camera";
  ASSERT_TRUE((*engine)->add_camera(file_camera("a", video)).ok());
  int polls_unfinished = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!(*engine)->camera_finished("a") && std::chrono::steady_clock::now() < give_up) {
    ++polls_unfinished;
    std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_GT(polls_unfinished, 0);
  EXPECT_EQ(collector.count("a"), 30u) << "finished said before the last result was delivered";
  const Result<CameraStatus> a = (*engine)->finish_camera("a");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_FALSE((*engine)->camera_finished("a")) << "removed";
  // A camera read to its end, then the engine told to stop: no longer "finished" (a cluster
  // node must not mark its cameras done because it stops).
  ASSERT_TRUE((*engine)->add_camera(file_camera("b", video)).ok());
  ASSERT_TRUE(test::wait_until([&] { return (*engine)->camera_finished("b"); }, milliseconds(120000)));
  (*engine)->request_stop();
  EXPECT_FALSE((*engine)->camera_finished("b")) << "the engine is stopping";
  EXPECT_TRUE((*engine)->run(std::nullopt).ok());
}

TEST(EngineTest, DetectEveryNthFrameOfAFile) {
  test::TempDir dir;
  const std::string path = dir.file("clip.mp4");
  ASSERT_TRUE(test::make_h264_video(path, 30, 160, 120));
  EngineConfig config = base_config();
  config.cameras.push_back(file_camera("a", path));
  config.cameras.back().detect.every = 3;
  Collector collector;
  auto engine = Engine::create(config, fake_hooks(collector, milliseconds(1)));
  ASSERT_TRUE(engine.ok());
  ASSERT_TRUE((*engine)->run(std::nullopt).ok());
  const auto& items = collector.items["a"];
  ASSERT_EQ(items.size(), 10u);
  for (std::size_t k = 0; k < items.size(); ++k) EXPECT_EQ(items[k].seq, 3 * k);
  EXPECT_EQ((*engine)->status().cameras.at(0).frames_skipped, 20u);
}

// A live 15 fps camera and a model that takes 100 ms per call: inference runs back to back
// on the newest frame, not on a backlog.
TEST(EngineTest, SlowModelRunsOnFreshFrames) {
  EngineConfig config = base_config(8, 2, 1);
  config.cameras.push_back(synthetic_camera("live", 15));
  Collector collector;
  auto engine = Engine::create(config, fake_hooks(collector, milliseconds(100)));
  ASSERT_TRUE(engine.ok());
  ASSERT_TRUE((*engine)->run(4.0).ok());
  const auto& items = collector.items["live"];
  ASSERT_GT(items.size(), 10u);
  // Rate over the steady part (first result to last).
  const double span_s = std::chrono::duration<double>(items.back().at - items.front().at).count();
  const double rate = static_cast<double>(items.size() - 1) / span_s;
  EXPECT_GE(rate, 9.5) << items.size() << " results in " << span_s << " s";
  std::vector<double> ages;
  for (const auto& i : items) ages.push_back(i.age_ms);
  std::sort(ages.begin(), ages.end());
  const double p99 = ages[static_cast<std::size_t>(0.99 * static_cast<double>(ages.size() - 1))];
  // Fresh: no older than one frame interval plus scheduling slack (a worker woken on a busy
  // machine under a sanitizer starts a few ms late). Stale frames queued behind a 100 ms
  // model would age by a whole interval per frame, far beyond this bound.
  EXPECT_LE(p99, 1.5 * 1000.0 / 15) << "frame age p99 in ms";
  EXPECT_GT((*engine)->status().cameras.at(0).frames_replaced, 0u);  // stale frames were dropped, not queued
}

TEST(EngineTest, DetectionRateFollowsDetectFps) {
  EngineConfig config = base_config(8, 2, 2);
  for (int i = 0; i < 4; ++i) {
    config.cameras.push_back(synthetic_camera("c" + std::to_string(i), 15));
    config.cameras.back().detect.fps = 5;
  }
  Collector collector;
  auto engine = Engine::create(config, fake_hooks(collector, milliseconds(3)));
  ASSERT_TRUE(engine.ok());
  ASSERT_TRUE((*engine)->run(4.0).ok());
  for (int i = 0; i < 4; ++i) {
    const auto& items = collector.items["c" + std::to_string(i)];
    ASSERT_GT(items.size(), 5u);
    const double span_s = std::chrono::duration<double>(items.back().at - items.front().at).count();
    const double rate = static_cast<double>(items.size() - 1) / span_s;
    EXPECT_NEAR(rate, 5.0, 0.25) << "camera c" << i;
  }
  for (const auto& c : (*engine)->status().cameras) {
    EXPECT_NEAR(c.decode_fps, 15.0, 1.5) << c.id;  // lifetime averages
    EXPECT_NEAR(c.infer_fps, 5.0, 0.75) << c.id;
  }
}

TEST(EngineTest, CamerasCanBeAddedAndRemovedWhileRunning) {
  EngineConfig config = base_config(4, 2, 2);
  config.cameras.push_back(synthetic_camera("base", 20));
  Collector collector;
  auto engine = Engine::create(config, fake_hooks(collector, milliseconds(5)));
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  e.start();
  std::thread runner([&] { EXPECT_TRUE(e.run(std::nullopt).ok()); });
  for (int round = 0; round < 5; ++round) {
    const std::string id = "extra" + std::to_string(round);
    ASSERT_TRUE(e.add_camera(synthetic_camera(id, 30)).ok());
    EXPECT_FALSE(e.add_camera(synthetic_camera(id, 30)).ok());  // ids are unique
    ASSERT_TRUE(wait_for([&] { return collector.count(id) >= 3; }, milliseconds(3000))) << id;
    ASSERT_TRUE(e.remove_camera(id).ok());
    const std::size_t after_removal = collector.count(id);
    EXPECT_EQ(find(e.status(), id), nullptr);
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_EQ(collector.count(id), after_removal) << "no results after removal";
  }
  EXPECT_EQ(e.remove_camera("nope").error().code, ErrorCode::not_found);
  const std::size_t base_before = collector.count("base");
  EXPECT_TRUE(wait_for([&] { return collector.count("base") > base_before + 5; }, milliseconds(3000)));
  e.request_stop();
  runner.join();
}

// latest(): the camera's state and newest delivered result, which keeps its frame alive for
// the reader while the engine goes on; unknown ids get nullopt.
TEST(EngineTest, LatestResultFollowsTheCamera) {
  EngineConfig config = base_config(4, 2, 2);
  config.cameras.push_back(synthetic_camera("cam", 30));
  Collector collector;
  auto engine = Engine::create(config, fake_hooks(collector, milliseconds(2)));
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  EXPECT_FALSE(e.latest("nope").has_value());
  e.start();
  std::thread runner([&] { EXPECT_TRUE(e.run(std::nullopt).ok()); });
  ASSERT_TRUE(wait_for([&] { return e.latest("cam") && e.latest("cam")->result; }, milliseconds(5000)));
  const std::optional<CameraLatest> first = e.latest("cam");
  ASSERT_TRUE(first && first->result && first->result->frame);
  EXPECT_EQ(first->state, CameraState::live);
  EXPECT_EQ(*first->result->frame->camera, "cam");
  const std::uint64_t seq = first->result->frame->seq;
  EXPECT_TRUE(first->result->detected);
  // Newer results replace it; the one held here stays intact.
  ASSERT_TRUE(wait_for([&] { return e.latest("cam")->result->frame->seq > seq + 3; }, milliseconds(5000)));
  EXPECT_EQ(first->result->frame->seq, seq);
  EXPECT_FALSE(first->result->frame->image.empty());
  ASSERT_TRUE(e.remove_camera("cam").ok());
  EXPECT_FALSE(e.latest("cam").has_value());
  e.request_stop();
  runner.join();
}

// A thousand live synthetic cameras share the timer threads: no thread per camera anywhere.
TEST(EngineTest, AThousandCamerasDoNotMeanAThousandThreads) {
  EngineConfig config = base_config(64, 5, 2);
  for (int i = 0; i < 1000; ++i) {
    std::string id = "c";
    id += std::to_string(i);  // (not "c" + ...: GCC 12's -Wrestrict misfires on it at -O3)
    config.cameras.push_back(synthetic_camera(id, 2, 16, 16));
  }
  Collector collector;
  auto engine = Engine::create(config, fake_hooks(collector, milliseconds(1)));
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  const int threads_before = process_thread_count();
  std::thread runner([&] { EXPECT_TRUE(e.run(std::nullopt).ok()); });
  ASSERT_TRUE(wait_for(
      [&] {
        std::lock_guard lock(collector.mu);
        return collector.items.size() == 1000;  // every camera produced a result
      },
      milliseconds(10000)));
  const int threads_running = process_thread_count();
  e.request_stop();
  runner.join();
  EXPECT_LE(threads_running - threads_before, 8) << "threads added by the engine";
}

TEST(EngineTest, StopDrainsTheBatchInFlight) {
  EngineConfig config = base_config(8, 0, 1);
  config.cameras.push_back(synthetic_camera("a", 30));
  Collector collector;
  std::atomic<int> calls{0};
  EngineHooks hooks = fake_hooks(collector, milliseconds(1000));
  hooks.make_detector = [&calls](const std::string&, const ModelConfig& m) -> Result<std::unique_ptr<Detector>> {
    return std::unique_ptr<Detector>(new FakeDetector(m.settings.max_batch, milliseconds(1000), false, &calls));
  };
  auto engine = Engine::create(config, hooks);
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  std::thread runner([&] { EXPECT_TRUE(e.run(std::nullopt).ok()); });
  // Stop once the first (1 s) batch is in inference.
  ASSERT_TRUE(wait_for([&] { return calls.load() > 0; }, std::chrono::seconds(30)));
  const auto stop_at = SteadyClock::now();
  e.request_stop();
  runner.join();
  EXPECT_LT(SteadyClock::now() - stop_at, std::chrono::seconds(3));
  EXPECT_GE(collector.count("a"), 1u);
  // Every batch that started finished and was delivered (one, unless this thread was late).
  EXPECT_EQ(collector.count("a"), static_cast<std::size_t>(calls.load()));
}

TEST(EngineTest, EachCameraRunsTheChainItsStagesDeclare) {
  test::TempDir dir;
  const std::string path = dir.file("clip.mp4");
  ASSERT_TRUE(test::make_h264_video(path, 10, 160, 120));
  EngineConfig config = base_config(4, 3, 1);
  config.cameras.push_back(synthetic_camera("door", 10));  // live, tracked (the default)
  CameraConfig file = file_camera("tape", path);
  file.track.enabled = false;
  config.cameras.push_back(file);
  CameraConfig sparse = synthetic_camera("yard", 10);
  sparse.detect.every = 3;
  config.cameras.push_back(sparse);
  Collector collector;
  auto engine = Engine::create(config, fake_hooks(collector, milliseconds(1)));
  ASSERT_TRUE(engine.ok()) << engine.error().message;

  auto live = (*engine)->pipeline("door");
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(live->size(), 4u);
  EXPECT_EQ((*live)[0].kind, StageKind::capture);
  const StageSpec& detect = (*live)[1];
  EXPECT_EQ(detect.kind, StageKind::detect);
  EXPECT_EQ(detect.input, (EdgeSpec{EdgeOverflow::newest_wins, 1}));
  ASSERT_TRUE(detect.batch.has_value());
  EXPECT_EQ(detect.batch->max_batch, 4u);
  EXPECT_EQ(detect.batch->max_delay, std::chrono::microseconds(3000));
  EXPECT_EQ(detect.adds, static_cast<std::uint32_t>(kDetections));
  EXPECT_EQ((*live)[2].kind, StageKind::track);
  EXPECT_FALSE((*live)[2].input.has_value()) << "tracking runs inline after detection";
  EXPECT_EQ((*live)[2].adds, static_cast<std::uint32_t>(kTracks));
  EXPECT_EQ((*live)[3].kind, StageKind::deliver);
  EXPECT_EQ(describe(*live),
            "capture door -[newest-wins 1]-> detect fake (batch<=4, 3 ms; +detections) -> track (+tracks) -> deliver");

  auto queued = (*engine)->pipeline("tape");
  ASSERT_TRUE(queued.ok());
  EXPECT_EQ(describe(*queued), "capture tape -[queue 4]-> detect fake (batch<=4, 3 ms; +detections) -> deliver");
  auto skipping = (*engine)->pipeline("yard");
  ASSERT_TRUE(skipping.ok());
  EXPECT_EQ((*skipping)[2].adds, kTracks | kPredictedTracks);
  EXPECT_EQ((*engine)->pipeline("nobody").error().code, ErrorCode::not_found);
}

TEST(EngineTest, BadFileFailsAtStartNamingTheCamera) {
  EngineConfig config = base_config();
  config.cameras.push_back(file_camera("gone", "/nonexistent/x.mp4"));
  Collector collector;
  auto engine = Engine::create(config, fake_hooks(collector, milliseconds(1)));
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.error().code, ErrorCode::not_found);
  EXPECT_NE(engine.error().message.find("camera gone"), std::string::npos);
}

TEST(EngineTest, InjectedFaultsAreRecoveredFrom) {
  EngineConfig config = base_config(4, 2, 1);
  config.cameras.push_back(synthetic_camera("faulty", 30));
  SourceConfig& s = config.cameras.back().source;
  s.read_timeout_ms = 200;
  s.faults.every_s = 1.0;
  s.faults.stall_s = 0.5;
  s.faults.disconnect_s = 0.3;
  s.faults.jitter_ms = 5;
  config.cameras.push_back(synthetic_camera("steady", 30));
  Collector collector;
  auto engine = Engine::create(config, fake_hooks(collector, milliseconds(2)));
  ASSERT_TRUE(engine.ok());
  ASSERT_TRUE((*engine)->run(4.2).ok());  // faults at 1 s (stall), 2 s (disconnect), 3 s (corrupt)
  const EngineStatus status = (*engine)->status();
  const CameraStatus* faulty = find(status, "faulty");
  ASSERT_NE(faulty, nullptr);
  auto seen = [&](CameraState s1, CameraState s2) {
    for (std::size_t i = 0; i + 1 < faulty->history.size(); ++i) {
      if (faulty->history[i] == s1 && faulty->history[i + 1] == s2) return true;
    }
    return false;
  };
  EXPECT_TRUE(seen(CameraState::live, CameraState::stalled));
  EXPECT_TRUE(seen(CameraState::stalled, CameraState::connecting));
  EXPECT_TRUE(seen(CameraState::connecting, CameraState::live));
  EXPECT_GE(faulty->reconnects, 2u);
  EXPECT_GE(faulty->decode_errors, 1u);
  EXPECT_EQ(faulty->history.back(), CameraState::stopped);
  // The other camera did not notice.
  const CameraStatus* steady = find(status, "steady");
  EXPECT_GT(steady->frames_decoded, static_cast<std::uint64_t>(4.0 * 30 * 0.9));
}

TEST(EngineTest, CpuBudgetIsEnforced) {
  EngineConfig config = base_config(1, 0, 2);
  config.cpu_budget.cores = 0.5;
  config.cpu_budget.enforce = true;
  config.workers = 2;  // more than the budget wants, to show the governor holds anyway
  for (int i = 0; i < 4; ++i) config.cameras.push_back(synthetic_camera("c" + std::to_string(i), 30, 64, 48));
  Collector collector;
  auto engine = Engine::create(config, fake_hooks(collector, milliseconds(20), /*burn=*/true));
  ASSERT_TRUE(engine.ok());
  const double cpu0 = process_cpu_seconds();
  const auto t0 = SteadyClock::now();
  ASSERT_TRUE((*engine)->run(3.0).ok());
  const double cores = (process_cpu_seconds() - cpu0) / std::chrono::duration<double>(SteadyClock::now() - t0).count();
  EXPECT_LE(cores, 0.5 * 1.1) << "measured CPU cores";
  EXPECT_GT(collector.count("c0"), 5u);  // but it did work
}

// A real HTTP stream on loopback: kill the server, the camera goes stalled -> connecting;
// restart it, the camera comes back live and keeps producing results.
class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ts_ = dir_.file("live.ts");
    std::string out;
    ASSERT_EQ(test::run_command("ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=320x240:rate=25 -t 4 "
                                "-c:v libx264 -preset ultrafast -g 5 -bf 0 -f mpegts '" + ts_ + "'", &out),
              0)
        << out;
  }
  CameraConfig stream_camera(const std::string& url) {
    CameraConfig c;
    c.id = "door";
    c.source.type = SourceType::stream;
    c.source.url = url;
    c.source.live = true;
    c.source.reconnect = true;
    c.source.open_timeout_ms = 1000;
    c.source.read_timeout_ms = 1000;
    c.source.reconnect_initial_ms = 100;
    c.source.reconnect_max_ms = 400;
    c.detect.model = "fake";
    return c;
  }
  double bytes_per_second() const { return static_cast<double>(std::filesystem::file_size(ts_)) / 4.0; }
  test::TempDir dir_;
  std::string ts_;
};

TEST_F(StreamTest, ReconnectsAfterTheServerRestarts) {
  test::TsHttpServer server(ts_, bytes_per_second());
  const int port = server.start();
  ASSERT_GT(port, 0);
  EngineConfig config = base_config(4, 2, 2);
  config.cameras.push_back(stream_camera(server.url()));
  // Every third frame: the reconnected stream numbers its frames from 0 again, and detection
  // must resume at once, not when the new numbering reaches the old one.
  config.cameras.back().detect.every = 3;
  config.cameras.push_back(synthetic_camera("other", 10));
  Collector collector;
  auto engine = Engine::create(config, fake_hooks(collector, milliseconds(2)));
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  Engine& e = **engine;
  std::thread runner([&] { EXPECT_TRUE(e.run(std::nullopt).ok()); });
  auto state = [&] { return find(e.status(), "door")->state; };
  ASSERT_TRUE(wait_for([&] { return collector.count("door") >= 10; }, milliseconds(5000)));
  EXPECT_EQ(state(), CameraState::live);

  const std::size_t other_before = collector.count("other");
  const auto outage_start = SteadyClock::now();
  server.stop();
  ASSERT_TRUE(wait_for([&] { return state() != CameraState::live; }, milliseconds(3000)));
  std::this_thread::sleep_for(milliseconds(1500));  // a while with the camera down
  EXPECT_NE(state(), CameraState::live);
  ASSERT_EQ(server.start(port), port);
  const std::size_t door_before = collector.count("door");
  ASSERT_TRUE(wait_for([&] { return state() == CameraState::live; }, milliseconds(5000)));
  ASSERT_TRUE(wait_for([&] { return collector.count("door") >= door_before + 10; }, milliseconds(5000)));
  {
    std::lock_guard lock(collector.mu);
    const auto& door_items = collector.items["door"];
    ASSERT_GT(door_items.size(), door_before);
    EXPECT_GE(door_items[door_before - 1].seq, 27u) << "before the outage: at least 10 results, every third frame";
    // The reconnected stream numbers from 0 again and its first frames can arrive in a burst
    // (FFmpeg probes before it yields), of which the newest-wins edge keeps the last: what
    // matters is that detection resumes below the old numbering, not when it catches up.
    EXPECT_LT(door_items[door_before].seq, door_items[door_before - 1].seq)
        << "the first result after reconnecting comes from the new numbering";
  }
  const double outage_s = std::chrono::duration<double>(SteadyClock::now() - outage_start).count();
  // The other camera kept its rate (10 fps) meanwhile: within 5%.
  const double other_rate = static_cast<double>(collector.count("other") - other_before) / outage_s;
  EXPECT_NEAR(other_rate, 10.0, 0.5);
  e.request_stop();
  runner.join();

  const EngineStatus final_status = e.status();
  const CameraStatus* door = find(final_status, "door");
  ASSERT_NE(door, nullptr);
  std::vector<CameraState> h = door->history;
  const CameraState expected[] = {CameraState::live, CameraState::stalled, CameraState::connecting};
  auto order = std::search(h.begin(), h.end(), std::begin(expected), std::end(expected));
  EXPECT_NE(order, h.end()) << "live -> stalled -> connecting; history: " << history_text(h) << " last error "
                            << door->last_error;
  EXPECT_GE(door->reconnects, 1u);
}

TEST_F(StreamTest, HalfOpenServerIsDetectedAsStalled) {
  test::TsHttpServer server(ts_, bytes_per_second());
  ASSERT_GT(server.start(), 0);
  EngineConfig config = base_config(4, 2, 1);
  config.cameras.push_back(stream_camera(server.url()));
  Collector collector;
  auto engine = Engine::create(config, fake_hooks(collector, milliseconds(2)));
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  std::thread runner([&] { EXPECT_TRUE(e.run(std::nullopt).ok()); });
  ASSERT_TRUE(wait_for([&] { return find(e.status(), "door")->state == CameraState::live; }, milliseconds(5000)));
  server.set_silent(true);  // the connection stays open; no more bytes
  const auto silent_at = SteadyClock::now();
  ASSERT_TRUE(wait_for([&] { return find(e.status(), "door")->state != CameraState::live; }, milliseconds(4000)));
  const auto detected_after = SteadyClock::now() - silent_at;
  // read timeout (1 s) + 1 s; the decoder may still hold up to a few frames of buffered data.
  EXPECT_LT(detected_after, milliseconds(2000));
  e.request_stop();
  runner.join();
  const EngineStatus final_status = e.status();
  const auto& h = find(final_status, "door")->history;
  EXPECT_NE(std::find(h.begin(), h.end(), CameraState::stalled), h.end()) << history_text(h);
}

// A detector that always finds one face at the same place.
class StillFaceDetector final : public Detector {
 public:
  // dx: the box's left edge moves right by this much (tells two detectors' results apart).
  explicit StillFaceDetector(milliseconds delay = milliseconds(0), std::atomic<int>* calls = nullptr, float dx = 0)
      : delay_(delay), calls_(calls), dx_(dx) {}
  Status detect(std::span<const Image* const> images, std::vector<Detections>& results) override {
    if (calls_) ++*calls_;
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    Detection d;
    d.bbox = {10 + dx_, 10, 50, 50};
    d.score = 0.9f;
    results.assign(images.size(), Detections{d});
    return {};
  }
  int max_batch() const override { return 4; }

 private:
  milliseconds delay_;
  std::atomic<int>* calls_;  // counts calls when set
  float dx_;
};

struct TrackedItem {
  std::uint64_t seq;
  bool detected;
  bool tracked;
  std::vector<std::uint64_t> track_ids;
  std::vector<bool> predicted;
  std::uint64_t detection_track_id;
};

EngineHooks still_face_hooks(std::mutex& mu, std::map<std::string, std::vector<TrackedItem>>& out,
                             milliseconds delay = milliseconds(0), std::atomic<int>* calls = nullptr) {
  EngineHooks hooks;
  hooks.make_detector = [delay, calls](const std::string&, const ModelConfig&) -> Result<std::unique_ptr<Detector>> {
    return std::unique_ptr<Detector>(new StillFaceDetector(delay, calls));
  };
  hooks.on_result = [&mu, &out](const FrameResult& r) {
    TrackedItem item{r.frame->seq, r.detected, r.tracked, {}, {}, r.detections.empty() ? 0 : r.detections[0].track_id};
    for (const auto& t : r.tracks) {
      item.track_ids.push_back(t.track_id);
      item.predicted.push_back(t.predicted);
    }
    std::lock_guard lock(mu);
    out[*r.frame->camera].push_back(std::move(item));
  };
  return hooks;
}

TEST(EngineTest, TrackedFileCamerasGetTracksOnEveryFrameInOrder) {
  test::TempDir dir;
  EngineConfig config = base_config(4, 1, 2);
  for (int i = 0; i < 2; ++i) {
    const std::string path = dir.file("clip" + std::to_string(i) + ".mp4");
    ASSERT_TRUE(test::make_h264_video(path, 31, 160, 120));
    CameraConfig c = file_camera("cam" + std::to_string(i), path);
    c.detect.every = 3;
    c.track.emit = TrackEmit::every_frame;
    config.cameras.push_back(c);
  }
  std::mutex mu;
  std::map<std::string, std::vector<TrackedItem>> out;
  auto engine = Engine::create(config, still_face_hooks(mu, out));
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  ASSERT_TRUE((*engine)->run(30.0).ok());
  for (const char* id : {"cam0", "cam1"}) {
    const auto& items = out[id];
    ASSERT_EQ(items.size(), 31u) << id;
    for (std::size_t k = 0; k < items.size(); ++k) {
      const TrackedItem& item = items[k];
      ASSERT_EQ(item.seq, k) << id << ": results leave in frame order";
      EXPECT_EQ(item.detected, k % 3 == 0) << id << " frame " << k;
      EXPECT_TRUE(item.tracked);
      ASSERT_EQ(item.track_ids.size(), 1u) << id << " frame " << k;
      EXPECT_EQ(item.track_ids[0], 1u) << id << " frame " << k;
      EXPECT_EQ(item.predicted[0], !item.detected) << id << " frame " << k;
      if (item.detected) {
        EXPECT_EQ(item.detection_track_id, 1u);
      }
    }
    const EngineStatus status = (*engine)->status();
    const CameraStatus* st = find(status, id);
    ASSERT_NE(st, nullptr);
    EXPECT_EQ(st->frames_inferred, 11u);
    EXPECT_EQ(st->frames_predicted, 20u);
    EXPECT_EQ(st->tracks_started, 1u);
  }
}

// One file camera alone brings runs of its frames to the detector's batches (the model's
// max_batch is not wasted on it), a run is split between the idle workers (one camera uses
// every core), and the frames not due for detection between them are tracked in their
// place: results still leave once each, in frame order.
TEST(EngineTest, OneFileCameraFillsTheBatchWithARunOfItsFramesInOrder) {
  test::TempDir dir;
  const std::string path = dir.file("clip.mp4");
  ASSERT_TRUE(test::make_h264_video(path, 61, 160, 120));
  EngineConfig config = base_config(8, 1, 2);
  CameraConfig c = file_camera("tape", path);
  c.detect.every = 2;
  c.track.emit = TrackEmit::every_frame;
  config.cameras.push_back(c);
  std::mutex mu;
  std::map<std::string, std::vector<TrackedItem>> out;
  // The model is slower than the decoder, so frames are waiting whenever a batch forms.
  std::atomic<int> calls{0};
  auto engine = Engine::create(config, still_face_hooks(mu, out, milliseconds(30), &calls));
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  auto chain = (*engine)->pipeline("tape");
  ASSERT_TRUE(chain.ok());
  EXPECT_NE(describe(*chain).find("-[queue 8]-> detect fake"), std::string::npos) << describe(*chain);
  ASSERT_TRUE((*engine)->run(60.0).ok());
  const auto& items = out["tape"];
  ASSERT_EQ(items.size(), 61u);
  for (std::size_t k = 0; k < items.size(); ++k) {
    ASSERT_EQ(items[k].seq, k) << "results leave in frame order";
    EXPECT_EQ(items[k].detected, k % 2 == 0) << "frame " << k;
    ASSERT_EQ(items[k].track_ids.size(), 1u) << "frame " << k;
    EXPECT_EQ(items[k].track_ids[0], 1u) << "frame " << k;
  }
  const EngineStatus status = (*engine)->status();
  ASSERT_EQ(status.cameras.size(), 1u);
  EXPECT_EQ(status.cameras[0].frames_inferred, 31u);
  EXPECT_EQ(status.cameras[0].frames_predicted, 30u);
  const ModelStatus& model = status.models.at(0);
  EXPECT_EQ(model.items, 31u);
  EXPECT_LT(model.batches, 31u) << "runs of frames share batches";
  std::uint64_t multi = 0;
  for (std::size_t n = 2; n < model.batch_sizes.size(); ++n) multi += model.batch_sizes[n];
  EXPECT_GT(multi, 0u);
  // A batch of 4+ frames of the one camera goes in two parts, one for each worker.
  std::uint64_t splittable = 0;
  for (std::size_t n = 4; n < model.batch_sizes.size(); ++n) splittable += model.batch_sizes[n];
  std::string sizes;
  for (std::size_t n = 0; n < model.batch_sizes.size(); ++n) sizes += std::to_string(model.batch_sizes[n]) + " ";
  EXPECT_EQ(static_cast<std::uint64_t>(calls.load()), model.batches + splittable) << "batches by size: " << sizes;
}

// A detector that records each call: how many images, and the width of the first (which
// tells the cameras of a test apart).
class CallLog {
 public:
  struct Call {
    int width;
    std::size_t images;
  };
  EngineHooks hooks(milliseconds delay, std::mutex& mu, std::map<std::string, std::vector<TrackedItem>>& out) {
    EngineHooks h = still_face_hooks(mu, out);
    h.make_detector = [this, delay](const std::string&, const ModelConfig&) -> Result<std::unique_ptr<Detector>> {
      return std::unique_ptr<Detector>(new Recorder(*this, delay));
    };
    return h;
  }
  std::vector<Call> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  // Call sizes of the images of this width, in call order.
  std::vector<std::size_t> sizes(int width) {
    std::vector<std::size_t> out;
    for (const Call& c : calls()) {
      if (c.width == width) out.push_back(c.images);
    }
    return out;
  }

 private:
  class Recorder final : public Detector {
   public:
    Recorder(CallLog& log, milliseconds delay) : log_(log), delay_(delay) {}
    Status detect(std::span<const Image* const> images, std::vector<Detections>& results) override {
      {
        std::lock_guard lock(log_.mu_);
        for (const Image* image : images) {
          if (image->width != images.front()->width) log_.mixed_ = true;
        }
        log_.calls_.push_back({images.front()->width, images.size()});
      }
      if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
      results.assign(images.size(), {});
      return {};
    }
    int max_batch() const override { return 8; }

   private:
    CallLog& log_;
    milliseconds delay_;
  };
  std::mutex mu_;
  std::vector<Call> calls_;

 public:
  bool mixed_ = false;  // a call held images of two widths (two cameras)
};

std::vector<std::size_t> sorted(std::vector<std::size_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// Offline, a call is one camera's run of max_batch frames due (fewer at the end), whether
// the decoder or the model is the faster, and with one or two workers (two split each run
// in halves); results leave in frame order. Online, the same engine with a fast model would
// take whatever few frames the decoder has queued.
TEST(EngineTest, OfflineRunsAreTheSameWhateverTheTiming) {
  test::TempDir dir;
  const std::string path = dir.file("clip.mp4");
  ASSERT_TRUE(test::make_h264_video(path, 61, 160, 120));
  const std::vector<std::size_t> one_worker = {8, 8, 8, 8, 8, 8, 8, 5};
  std::vector<std::size_t> two_workers(14, 4);
  two_workers.insert(two_workers.begin(), {2, 3});
  for (int workers : {1, 2}) {
    for (milliseconds delay : {milliseconds(0), milliseconds(15)}) {
      SCOPED_TRACE("workers " + std::to_string(workers) + ", model " + std::to_string(delay.count()) + " ms");
      EngineConfig config = base_config(8, 2, workers);
      config.offline = true;
      config.cameras.push_back(file_camera("tape", path));
      CallLog log;
      std::mutex mu;
      std::map<std::string, std::vector<TrackedItem>> out;
      auto engine = Engine::create(config, log.hooks(delay, mu, out));
      ASSERT_TRUE(engine.ok()) << engine.error().message;
      auto chain = (*engine)->pipeline("tape");
      ASSERT_TRUE(chain.ok());
      EXPECT_NE(describe(*chain).find("-[queue 8]-> detect fake (runs of 8; +detections)"), std::string::npos)
          << describe(*chain);
      ASSERT_TRUE((*engine)->run(60.0).ok());
      ASSERT_EQ(out["tape"].size(), 61u);
      for (std::size_t k = 0; k < 61; ++k) ASSERT_EQ(out["tape"][k].seq, k) << "results leave in frame order";
      if (workers == 1) {
        EXPECT_EQ(log.sizes(160), one_worker);
      } else {
        EXPECT_EQ(sorted(log.sizes(160)), two_workers);
      }
    }
  }
}

// Offline, a run spans at most the frames the camera's queue holds (a tracked camera queues
// the frames it does not detect, to predict its tracks on them), and cameras never share a
// call, so each camera's calls are the same as when it runs alone.
TEST(EngineTest, OfflineCamerasNeverShareACall) {
  EngineConfig config = base_config(8, 2, 1);
  config.offline = true;
  test::TempDir dir;
  const std::string a = dir.file("a.mp4"), b = dir.file("b.mp4");
  ASSERT_TRUE(test::make_h264_video(a, 61, 160, 120));
  ASSERT_TRUE(test::make_h264_video(b, 21, 96, 64));
  CameraConfig every_other = file_camera("every_other", a);
  every_other.detect.every = 2;
  every_other.track.emit = TrackEmit::every_frame;
  config.cameras = {every_other, file_camera("small", b)};
  CallLog log;
  std::mutex mu;
  std::map<std::string, std::vector<TrackedItem>> out;
  auto engine = Engine::create(config, log.hooks(milliseconds(2), mu, out));
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  ASSERT_TRUE((*engine)->run(60.0).ok());
  EXPECT_FALSE(log.mixed_) << "a call held frames of both cameras";
  // 31 frames due, in runs of the 8 frames the queue holds (4 due each).
  EXPECT_EQ(log.sizes(160), (std::vector<std::size_t>{4, 4, 4, 4, 4, 4, 4, 3}));
  EXPECT_EQ(log.sizes(96), (std::vector<std::size_t>{8, 8, 5}));
  ASSERT_EQ(out["every_other"].size(), 61u);
  ASSERT_EQ(out["small"].size(), 21u);
  for (std::size_t k = 0; k < 61; ++k) {
    ASSERT_EQ(out["every_other"][k].seq, k);
    EXPECT_EQ(out["every_other"][k].detected, k % 2 == 0) << k;
  }
}

// Offline, a journal can answer a run before the model: the first run records every run the
// model detected; the second, with a model that finds other boxes, is answered for the runs
// the journal holds whole (frames 0-31) and runs the model on the rest, including the run
// it holds only in part (32-39).
TEST(EngineTest, OfflineReplayAnswersWholeRunsBeforeTheModel) {
  test::TempDir dir;
  const std::string path = dir.file("clip.mp4");
  ASSERT_TRUE(test::make_h264_video(path, 61, 160, 120));
  EngineConfig config = base_config(8, 2, 1);
  config.offline = true;
  config.cameras = {file_camera("tape", path)};
  std::map<std::uint64_t, Detections> journal;  // by frame seq (one camera: one worker's calls in order)
  std::map<std::uint64_t, float> first_x, second_x;
  auto run = [&](float dx, std::map<std::uint64_t, float>& x, std::uint64_t replay_below) {
    std::atomic<int> calls{0};
    EngineHooks hooks;
    hooks.make_detector = [&](const std::string&, const ModelConfig&) -> Result<std::unique_ptr<Detector>> {
      return std::unique_ptr<Detector>(new StillFaceDetector(milliseconds(0), &calls, dx));
    };
    hooks.on_result = [&](const FrameResult& r) { x[r.frame->seq] = r.detections.at(0).bbox.x1; };
    hooks.on_detected = [&](const std::string& camera, std::span<const std::uint64_t> seqs, std::span<const Detections> found) {
      EXPECT_EQ(camera, "tape");
      for (std::size_t i = 0; i < seqs.size(); ++i) journal[seqs[i]] = found[i];
    };
    hooks.replay_detections = [&](const std::string&, std::span<const std::uint64_t> seqs, std::vector<Detections>& out) {
      out.clear();
      for (std::uint64_t seq : seqs) {
        if (seq >= replay_below || !journal.count(seq)) return false;
        out.push_back(journal[seq]);
      }
      return true;
    };
    auto engine = Engine::create(config, hooks);
    EXPECT_TRUE(engine.ok()) << engine.error().message;
    if (engine.ok()) {
      EXPECT_TRUE((*engine)->run(60.0).ok());
    }
    return calls.load();
  };
  EXPECT_EQ(run(0, first_x, 0), 8) << "nothing to replay: every run goes to the model";
  ASSERT_EQ(journal.size(), 61u);
  EXPECT_EQ(run(5, second_x, 36), 4) << "runs 0-7, 8-15, 16-23, 24-31 replayed; 32-39 held only in part";
  ASSERT_EQ(second_x.size(), 61u);
  for (std::uint64_t seq = 0; seq < 61; ++seq) {
    EXPECT_FLOAT_EQ(second_x[seq], seq < 32 ? 10.0f : 15.0f) << "frame " << seq;
  }
  EXPECT_FLOAT_EQ(journal[40].at(0).bbox.x1, 15.0f) << "the second run's model results were recorded too";
}

// A file that cuts from a black scene to a white one at frame 10, with the same face box on
// every frame: with track.shot_cut the cut ends the track and the box gets a new id there;
// without it, one track runs across the cut.
TEST(EngineTest, AShotCutEndsEveryTrack) {
  test::TempDir dir;
  const std::string path = dir.file("cut.mp4");
  std::string output;
  ASSERT_EQ(test::run_command("ffmpeg -nostdin -v error -y -f lavfi -i color=c=black:s=160x120:d=1:r=10 -f lavfi -i "
                              "color=c=white:s=160x120:d=1:r=10 -filter_complex \"[0][1]concat=n=2:v=1:a=0\" "
                              "-c:v libx264 -preset ultrafast -pix_fmt yuv420p " + path,
                              &output),
            0)
      << output;
  for (double shot_cut : {0.0, 12.0}) {
    EngineConfig config = base_config(4, 1, 2);
    CameraConfig c = file_camera("film", path);
    c.track.shot_cut = shot_cut;
    config.cameras = {c};
    std::mutex mu;
    std::map<std::string, std::vector<TrackedItem>> out;
    auto engine = Engine::create(config, still_face_hooks(mu, out));
    ASSERT_TRUE(engine.ok()) << engine.error().message;
    ASSERT_TRUE((*engine)->run(30.0).ok());
    const auto& items = out["film"];
    ASSERT_EQ(items.size(), 20u);
    for (std::size_t k = 0; k < items.size(); ++k) {
      ASSERT_EQ(items[k].track_ids.size(), 1u) << k;
      EXPECT_EQ(items[k].track_ids[0], shot_cut > 0 && k >= 10 ? 2u : 1u) << "shot_cut " << shot_cut << ", frame " << k;
    }
    EXPECT_EQ(find((*engine)->status(), "film")->shot_cuts, shot_cut > 0 ? 1u : 0u);
  }
}

// Finds the same face on every image but one (the `missing`-th it is given, counted from 0).
class GapDetector final : public Detector {
 public:
  explicit GapDetector(std::size_t missing) : missing_(missing) {}
  Status detect(std::span<const Image* const> images, std::vector<Detections>& results) override {
    results.assign(images.size(), {});
    for (auto& found : results) {
      if (seen_++ == missing_) continue;
      Detection d;
      d.bbox = {10, 10, 50, 50};
      d.score = 0.9f;
      found.push_back(d);
    }
    return {};
  }
  int max_batch() const override { return 4; }

 private:
  std::size_t missing_, seen_ = 0;
};

// A file camera with source.stride 3: frames 0, 3, 6, ... reach the detector (the others are
// decoded and counted), and the tracker counts the frames passed on, so a face missing from
// one sampled frame (three frames of the file) comes back as the same track within
// lost_frames = 2; counted in the file's frames it would have been lost for 6 and removed.
TEST(EngineTest, AStrideSamplesEveryNthFrameAndTheTrackerCountsTheSampledFrames) {
  test::TempDir dir;
  const std::string path = dir.file("clip.mp4");
  ASSERT_TRUE(test::make_h264_video(path, 61, 160, 120));
  EngineConfig config = base_config(4, 1, 1);
  config.offline = true;
  CameraConfig c = file_camera("tape", path);
  c.source.stride = 3;
  c.track.tracker.lost_frames = 2;
  config.cameras = {c};
  std::mutex mu;
  std::map<std::string, std::vector<TrackedItem>> out;
  EngineHooks hooks = still_face_hooks(mu, out);
  hooks.make_detector = [](const std::string&, const ModelConfig&) -> Result<std::unique_ptr<Detector>> {
    return std::unique_ptr<Detector>(new GapDetector(3));
  };
  auto engine = Engine::create(config, hooks);
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  ASSERT_TRUE((*engine)->run(60.0).ok());
  const auto& items = out["tape"];
  ASSERT_EQ(items.size(), 21u);
  for (std::size_t k = 0; k < items.size(); ++k) {
    EXPECT_EQ(items[k].seq, 3 * k) << k;
    if (k == 3) continue;  // no face
    EXPECT_EQ(items[k].detection_track_id, 1u) << "sampled frame " << k << " (frame " << items[k].seq << ")";
  }
  const EngineStatus engine_status = (*engine)->status();
  const CameraStatus* status = find(engine_status, "tape");
  ASSERT_NE(status, nullptr);
  EXPECT_EQ(status->frames_decoded, 61u);
  EXPECT_EQ(status->frames_inferred, 21u);
  EXPECT_EQ(status->frame_count, 61) << "the file's length as its header says";

  c.source.stride = 0;
  config.cameras = {c};
  auto refused = Engine::create(config, hooks);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("camera tape: a stride of 1 or more"), std::string::npos) << refused.error().message;
}

TEST(EngineTest, OfflineRefusesLiveCamerasWithTheirName) {
  EngineConfig config = base_config(4, 1, 1);
  config.offline = true;
  config.cameras = {synthetic_camera("pan", 15)};
  Collector collector;
  auto refused = Engine::create(config, fake_hooks(collector, milliseconds(0)));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(refused.error().message.find("camera pan: offline mode takes sources that are not live"), std::string::npos)
      << refused.error().message;
  config.cameras.clear();
  auto engine = Engine::create(config, fake_hooks(collector, milliseconds(0)));
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  CameraConfig stream = file_camera("door", "http://127.0.0.1:9/live.ts");
  stream.source.type = SourceType::stream;
  stream.source.live = false;
  const Status status = (*engine)->add_camera(stream);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("camera door: offline mode takes files, not streams"), std::string::npos)
      << status.error().message;
}

TEST(EngineTest, TrackedCamerasEmitDetectedFramesOnlyByDefault) {
  test::TempDir dir;
  EngineConfig config = base_config(4, 1, 2);
  const std::string path = dir.file("clip.mp4");
  ASSERT_TRUE(test::make_h264_video(path, 30, 160, 120));
  CameraConfig tracked = file_camera("tracked", path);
  tracked.detect.every = 2;
  CameraConfig untracked = file_camera("untracked", path);
  untracked.detect.every = 2;
  untracked.track.enabled = false;
  config.cameras = {tracked, untracked};
  std::mutex mu;
  std::map<std::string, std::vector<TrackedItem>> out;
  auto engine = Engine::create(config, still_face_hooks(mu, out));
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  ASSERT_TRUE((*engine)->run(30.0).ok());
  ASSERT_EQ(out["tracked"].size(), 15u);
  ASSERT_EQ(out["untracked"].size(), 15u);
  for (const auto& item : out["tracked"]) {
    EXPECT_TRUE(item.detected);
    EXPECT_EQ(item.track_ids, std::vector<std::uint64_t>{1});
  }
  for (const auto& item : out["untracked"]) {
    EXPECT_FALSE(item.tracked);
    EXPECT_TRUE(item.track_ids.empty());
    EXPECT_EQ(item.detection_track_id, 0u);
  }
  EXPECT_EQ(find((*engine)->status(), "untracked")->frames_predicted, 0u);
  EXPECT_EQ(find((*engine)->status(), "tracked")->frames_predicted, 15u);
}

TEST(EngineTest, LiveTrackedCameraPredictsBetweenDetections) {
  EngineConfig config = base_config(4, 1, 2);
  CameraConfig c = synthetic_camera("live", 30);
  c.detect.fps = 10;
  c.track.emit = TrackEmit::every_frame;
  config.cameras = {c};
  std::mutex mu;
  std::map<std::string, std::vector<TrackedItem>> out;
  auto engine = Engine::create(config, still_face_hooks(mu, out));
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  (*engine)->start();
  auto count_detected = [&] {
    std::lock_guard lock(mu);
    return std::count_if(out["live"].begin(), out["live"].end(), [](const TrackedItem& i) { return i.detected; });
  };
  ASSERT_TRUE(wait_for([&] { return count_detected() >= 10; }, std::chrono::seconds(30)));
  (*engine)->request_stop();
  ASSERT_TRUE((*engine)->run(0.0).ok());
  std::lock_guard lock(mu);
  const auto& items = out["live"];
  std::uint64_t last_seq = 0;
  std::size_t predicted_frames = 0;
  for (std::size_t k = 0; k < items.size(); ++k) {
    if (k > 0) {
      EXPECT_GT(items[k].seq, last_seq) << "results in frame order";
    }
    last_seq = items[k].seq;
    if (!items[k].detected) {
      ++predicted_frames;
      // After the first detection every frame carries the one track, predicted.
      if (items[k].track_ids.size() == 1) {
        EXPECT_TRUE(items[k].predicted[0]);
      }
    }
    for (auto id : items[k].track_ids) EXPECT_EQ(id, 1u);
  }
  EXPECT_GT(predicted_frames, items.size() / 3) << "frames between detections are tracked too";
}

// People for an object model: person A (frames 0-29), person B (10-59) and a car (0-59), by
// the index of the image it is given.
class PeopleDetector final : public Detector {
 public:
  Status detect(std::span<const Image* const> images, std::vector<Detections>& results) override {
    results.assign(images.size(), {});
    for (auto& found : results) {
      const int k = seen_++;
      const auto add = [&](BBox box, int class_id) {
        Detection d;
        d.bbox = box;
        d.score = 0.9f;
        d.class_id = class_id;
        found.push_back(d);
      };
      if (k < 30) add({10, 10, 40, 90}, kPersonClass);
      if (k >= 10) add({100, 10, 130, 90}, kPersonClass);
      add({60, 60, 95, 80}, 2);
    }
    return {};
  }
  int max_batch() const override { return 4; }

 private:
  int seen_ = 0;
};

// A person's track confirmed is person_entered, removed person_left, each with how many
// people are on the camera after it; a car's track is no person; the camera's status counts
// the people there now.
TEST(EngineTest, PeopleEnteringAndLeavingAreEventsWithTheCount) {
  test::TempDir dir;
  const std::string path = dir.file("clip.mp4");
  ASSERT_TRUE(test::make_h264_video(path, 60, 160, 120));
  EngineConfig config = base_config(4, 1, 1);
  config.offline = true;
  config.models["fake"].kind = "yolo";
  CameraConfig c = file_camera("door", path);
  c.track.tracker.lost_frames = 5;
  config.cameras = {c};
  std::mutex mu;
  std::map<std::string, std::vector<TrackedItem>> out;
  EngineHooks hooks = still_face_hooks(mu, out);
  hooks.make_detector = [](const std::string&, const ModelConfig&) -> Result<std::unique_ptr<Detector>> {
    return std::unique_ptr<Detector>(new PeopleDetector());
  };
  auto engine = Engine::create(config, hooks);
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  ASSERT_TRUE((*engine)->run(60.0).ok());
  std::vector<Event> events;
  ASSERT_TRUE((*engine)->events().read(0, 1000, events));
  std::vector<Event> people;
  for (const Event& e : events) {
    if (e.kind == EventKind::person_entered || e.kind == EventKind::person_left) people.push_back(e);
  }
  ASSERT_EQ(people.size(), 3u);
  EXPECT_EQ(people[0].kind, EventKind::person_entered);
  EXPECT_EQ(people[0].frame_seq, 0u);
  EXPECT_EQ(people[0].people, 1u);
  EXPECT_EQ(people[1].kind, EventKind::person_entered);
  EXPECT_EQ(people[1].frame_seq, 11u) << "confirmed by its second frame";
  EXPECT_EQ(people[1].people, 2u);
  EXPECT_EQ(people[2].kind, EventKind::person_left);
  EXPECT_EQ(people[2].track_id, people[0].track_id);
  EXPECT_EQ(people[2].people, 1u);
  EXPECT_EQ(people[2].frame_seq, 35u) << "removed after lost_frames";
  const EngineStatus status = (*engine)->status();
  const CameraStatus* door = find(status, "door");
  ASSERT_NE(door, nullptr);
  EXPECT_TRUE(door->counts_people);
  EXPECT_EQ(door->people, 1u);
  EXPECT_EQ(door->tracks_started, 3u) << "two people and a car";
}

TEST(EngineTest, StateChangesAndTrackEventsGoOnTheBusInOrder) {
  test::TempDir dir;
  EngineConfig config = base_config(4, 1, 2);
  const std::string path = dir.file("clip.mp4");
  ASSERT_TRUE(test::make_h264_video(path, 20, 160, 120));
  config.cameras = {file_camera("clip", path)};
  std::mutex mu;
  std::map<std::string, std::vector<TrackedItem>> out;
  auto engine = Engine::create(config, still_face_hooks(mu, out));
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  std::vector<Event> subscribed;
  (*engine)->events().subscribe([&](const Event& e) {
    std::lock_guard lock(mu);
    subscribed.push_back(e);
  });
  ASSERT_TRUE((*engine)->run(30.0).ok());
  std::vector<Event> events;
  EXPECT_TRUE((*engine)->events().read(0, 100, events));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kind, EventKind::camera_state);
  EXPECT_EQ(events[0].to, CameraState::live);
  EXPECT_EQ(events[1].kind, EventKind::track_started);
  EXPECT_EQ(events[1].camera, "clip");
  EXPECT_EQ(events[1].track_id, 1u);
  EXPECT_EQ(events[1].frame_seq, 0u);
  EXPECT_EQ(events[2].kind, EventKind::camera_state);
  EXPECT_EQ(events[2].from, CameraState::live);
  EXPECT_EQ(events[2].to, CameraState::stopped);
  std::lock_guard lock(mu);
  ASSERT_EQ(subscribed.size(), events.size());
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(subscribed[i].id, events[i].id);
}

TEST(EngineTest, MetricsRegistryCarriesEachCameraUntilItIsRemoved) {
  test::TempDir dir;
  EngineConfig config = base_config(4, 1, 2);
  const std::string path = dir.file("clip.mp4");
  ASSERT_TRUE(test::make_h264_video(path, 12, 160, 120));
  config.cameras = {file_camera("a", path), file_camera("b", path)};
  std::mutex mu;
  std::map<std::string, std::vector<TrackedItem>> out;
  auto engine = Engine::create(config, still_face_hooks(mu, out));
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  ASSERT_TRUE((*engine)->run(30.0).ok());
  const MetricsRegistry& metrics = (*engine)->metrics();
  EXPECT_EQ(metrics.total("vigil_frames_decoded_total", {{"camera", "a"}}), 12);
  EXPECT_EQ(metrics.total("vigil_frames_inferred_total"), 24);
  EXPECT_EQ(metrics.total("vigil_tracks_started_total", {{"camera", "b"}}), 1);
  EXPECT_EQ(metrics.total("vigil_model_items_total", {{"model", "fake"}}), 24);
  const std::string text = prometheus_text(metrics.snapshot());
  EXPECT_NE(text.find("vigil_frames_decoded_total{camera=\"b\"} 12\n"), std::string::npos) << text;
  EXPECT_NE(text.find("vigil_frame_age_seconds_count{camera=\"a\"} 12\n"), std::string::npos) << text;
  ASSERT_TRUE((*engine)->remove_camera("a").ok());
  EXPECT_EQ(metrics.total("vigil_frames_decoded_total"), 12) << "camera a's series are gone";
}

// Throws on frames of one size (one camera's), finds a face on the others.
class ThrowingDetector final : public Detector {
 public:
  explicit ThrowingDetector(int bad_width, milliseconds delay = milliseconds(0)) : bad_width_(bad_width), delay_(delay) {}
  Status detect(std::span<const Image* const> images, std::vector<Detections>& results) override {
    for (const Image* image : images) {
      if (image->width == bad_width_) throw std::runtime_error("cannot handle this frame");
    }
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);  // a model call's duration
    return still_.detect(images, results);
  }
  int max_batch() const override { return 4; }

 private:
  int bad_width_;
  milliseconds delay_;
  StillFaceDetector still_;
};

TEST(EngineTest, AModelThatThrowsForOneCameraLeavesTheOthersWhole) {
  test::TempDir dir;
  EngineConfig config = base_config(4, 5, 2);
  const std::string good = dir.file("good.mp4"), bad = dir.file("bad.mp4");
  ASSERT_TRUE(test::make_h264_video(good, 30, 160, 120));
  ASSERT_TRUE(test::make_h264_video(bad, 30, 96, 64));
  config.cameras = {file_camera("good0", good), file_camera("bad", bad), file_camera("good1", good)};
  std::mutex mu;
  std::map<std::string, std::vector<TrackedItem>> out;
  EngineHooks hooks = still_face_hooks(mu, out);
  hooks.make_detector = [](const std::string&, const ModelConfig&) -> Result<std::unique_ptr<Detector>> {
    return std::unique_ptr<Detector>(new ThrowingDetector(96));
  };
  auto engine = Engine::create(config, hooks);
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  const Status status = (*engine)->run(60.0);
  EXPECT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(out["good0"].size(), 30u) << "every frame of the healthy cameras has its result";
  EXPECT_EQ(out["good1"].size(), 30u);
  EXPECT_TRUE(out["bad"].empty());
  const EngineStatus st = (*engine)->status();
  EXPECT_EQ(find(st, "bad")->stage_errors, 30u);
  EXPECT_EQ(find(st, "good0")->stage_errors, 0u);
  EXPECT_NE(find(st, "bad")->last_error.find("cannot handle this frame"), std::string::npos);
  for (const auto& item : out["good0"]) EXPECT_EQ(item.track_ids, std::vector<std::uint64_t>{1});
}

// Live cameras: a camera whose every frame makes the model throw costs the others nothing
// they can see. Its batches are re-run one frame at a time (so only its frames are lost),
// and the healthy cameras still get (almost) every frame they offer inferred.
TEST(EngineTest, AStageThatThrowsForOneLiveCameraLeavesTheOthersRates) {
  EngineConfig config = base_config(4, 5, 2);
  config.cameras = {synthetic_camera("good0", 12, 160, 120), synthetic_camera("bad", 12, 96, 64),
                    synthetic_camera("good1", 12, 160, 120)};
  for (auto& c : config.cameras) c.track.enabled = false;
  std::mutex mu;
  std::map<std::string, std::vector<TrackedItem>> out;
  EngineHooks hooks = still_face_hooks(mu, out);
  hooks.make_detector = [](const std::string&, const ModelConfig&) -> Result<std::unique_ptr<Detector>> {
    return std::unique_ptr<Detector>(new ThrowingDetector(96, milliseconds(10)));
  };
  auto engine = Engine::create(config, hooks);
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  (*engine)->start();
  // Wait until every camera offered 40 frames (about 3.3 s), then compare what was inferred.
  ASSERT_TRUE(wait_for(
      [&] {
        const EngineStatus st = (*engine)->status();
        return std::all_of(st.cameras.begin(), st.cameras.end(), [](const auto& c) { return c.frames_decoded >= 40; });
      },
      milliseconds(30000)));
  (*engine)->request_stop();
  ASSERT_TRUE((*engine)->run(std::nullopt).ok());
  const EngineStatus st = (*engine)->status();
  for (const char* id : {"good0", "good1"}) {
    const CameraStatus& c = *find(st, id);
    EXPECT_EQ(c.stage_errors, 0u) << id;
    // Rate within 5%: inferred of decoded (the last one may have been in flight at stop).
    EXPECT_GE(static_cast<double>(c.frames_inferred + 1), 0.95 * static_cast<double>(c.frames_decoded))
        << id << ": " << c.frames_inferred << " inferred of " << c.frames_decoded << " decoded";
  }
  const CameraStatus& bad = *find(st, "bad");
  EXPECT_GE(bad.stage_errors + bad.frames_replaced + 1, bad.frames_decoded) << "every frame of the bad camera failed";
  EXPECT_EQ(bad.frames_inferred, 0u);
}

// Sleeps longer for batches that hold a frame of the given width (one costly camera).
class UnevenDetector final : public Detector {
 public:
  explicit UnevenDetector(int slow_width) : slow_width_(slow_width) {}
  Status detect(std::span<const Image* const> images, std::vector<Detections>& results) override {
    bool slow = false;
    for (const Image* image : images) slow = slow || image->width == slow_width_;
    std::this_thread::sleep_for(milliseconds(slow ? 24 : 8));
    results.assign(images.size(), {});
    return {};
  }
  int max_batch() const override { return 4; }

 private:
  int slow_width_;
};

// Four always-ready file cameras on two workers, one of them costly for the model: FIFO
// batching keeps the pairs that returned together, so the costly camera's partner slows
// with it while the other pair runs three times as fast. Fair share keeps every camera's
// detection count within 15% of the others'.
TEST(EngineTest, QueuedCamerasGetAFairShareWhenOneIsCostly) {
  test::TempDir dir;
  const std::string normal = dir.file("normal.mp4"), costly = dir.file("costly.mp4");
  ASSERT_TRUE(test::make_h264_video(normal, 50, 160, 120));
  ASSERT_TRUE(test::make_h264_video(costly, 50, 96, 64));
  EngineConfig config = base_config(4, 2, 2);
  config.cameras = {file_camera("a", normal), file_camera("b", normal), file_camera("c", normal),
                    file_camera("slow", costly)};
  for (auto& c : config.cameras) {
    c.source.loop = true;
    c.track.enabled = false;
  }
  Collector collector;
  EngineHooks hooks = fake_hooks(collector, milliseconds(0));
  hooks.make_detector = [](const std::string&, const ModelConfig&) -> Result<std::unique_ptr<Detector>> {
    return std::unique_ptr<Detector>(new UnevenDetector(96));
  };
  auto engine = Engine::create(config, hooks);
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  (*engine)->start();
  ASSERT_TRUE(wait_for([&] { return collector.count("slow") >= 60; }, milliseconds(60000)));
  (*engine)->request_stop();
  ASSERT_TRUE((*engine)->run(std::nullopt).ok());
  std::size_t lo = SIZE_MAX, hi = 0;
  for (const char* id : {"a", "b", "c", "slow"}) {
    lo = std::min(lo, collector.count(id));
    hi = std::max(hi, collector.count(id));
  }
  EXPECT_LE(static_cast<double>(hi), 1.15 * static_cast<double>(lo))
      << "a " << collector.count("a") << ", b " << collector.count("b") << ", c " << collector.count("c") << ", slow "
      << collector.count("slow");
}

}  // namespace
}  // namespace vigil
