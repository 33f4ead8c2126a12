// Micro-benchmarks of single components (Google Benchmark). Timings only, no assertions:
//   build/release/bench/vigil_micro_bench --benchmark_format=json
#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>
#include <unistd.h>

#include "vigil/core/event_bus.h"
#include "vigil/core/frame.h"
#include "vigil/core/pool.h"
#include "vigil/http/snapshot_cache.h"
#include "vigil/sink/event_store.h"
#include "vigil/track/byte_tracker.h"
#include "vigil/vision/letterbox.h"
#include "vigil/vision/nms.h"

namespace {

// A 720p YUV420P frame into the model's input; the argument is the input size (128: three
// halvings, 256: two).
void BM_LetterboxYuv720p(benchmark::State& state) {
  const int size = static_cast<int>(state.range(0));
  vigil::ByteStorage storage;
  vigil::Image image = storage.allocate(vigil::PixelFormat::yuv420p, 1280, 720);
  std::fill_n(storage.data(), image.planes[0].stride * 720 * 3 / 2, std::uint8_t{100});
  std::vector<float> out(static_cast<std::size_t>(size) * size * 3);
  vigil::LetterboxScratch scratch;
  for (auto _ : state) {
    auto t = vigil::letterbox_rgb(image, size, vigil::InputRange::minus_one_to_one, out.data(), scratch);
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_LetterboxYuv720p)->Arg(128)->Arg(256);

// A 720p frame with a gradient (so the JPEG is not trivially small) in a FrameResult.
vigil::FrameResult frame_720p(vigil::FramePool& pool) {
  vigil::FrameRef ref = pool.acquire();
  vigil::Frame* frame = ref.mutable_get();
  auto storage = std::make_unique<vigil::ByteStorage>();
  frame->image = storage->allocate(vigil::PixelFormat::yuv420p, 1280, 720);
  for (int p = 0; p < 3; ++p) {
    for (int y = 0; y < frame->image.plane_height(p); ++y) {
      for (int x = 0; x < frame->image.plane_width(p); ++x) {
        frame->mutable_plane(p)[y * frame->image.planes[p].stride + x] = static_cast<std::uint8_t>((x * (p + 1) + y * 3) & 0xff);
      }
    }
  }
  frame->storage = std::move(storage);
  frame->camera = std::make_shared<const std::string>("bench");
  frame->seq = 1;
  vigil::FrameResult result;
  result.frame = std::move(ref);
  return result;
}

// Snapshot requests for a frame already encoded: a lookup and a pointer copy.
void BM_SnapshotCacheHit720p(benchmark::State& state) {
  auto pool = vigil::make_frame_pool();
  const vigil::FrameResult result = frame_720p(*pool);
  vigil::SnapshotCache cache;
  const vigil::JpegOptions options;
  (void)cache.get(result, options);
  for (auto _ : state) {
    auto snapshot = cache.get(result, options);
    benchmark::DoNotOptimize(snapshot);
  }
}
BENCHMARK(BM_SnapshotCacheHit720p);

// What every request costs without the cache: a TurboJPEG encode of the 720p frame
// (quality 80, straight from its YUV planes).
void BM_SnapshotEncode720p(benchmark::State& state) {
  auto pool = vigil::make_frame_pool();
  const vigil::FrameResult result = frame_720p(*pool);
  vigil::JpegEncoder encoder;
  std::vector<std::uint8_t> jpeg;
  for (auto _ : state) {
    if (!encoder.encode(result, {}, jpeg).ok()) state.SkipWithError("encode failed");
    benchmark::DoNotOptimize(jpeg.data());
  }
}
BENCHMARK(BM_SnapshotEncode720p);

void BM_WeightedNms(benchmark::State& state) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> pos(0, 1000), score(0.5f, 1.0f);
  std::vector<vigil::Detection> base(static_cast<std::size_t>(state.range(0)));
  for (auto& d : base) {
    const float x = pos(rng), y = pos(rng);
    d.bbox = {x, y, x + 40, y + 40};
    d.score = score(rng);
    d.keypoint_count = 6;
  }
  std::vector<vigil::Detection> candidates, out;
  std::vector<unsigned char> scratch;
  for (auto _ : state) {
    candidates = base;
    vigil::non_max_suppression(candidates, 0.3f, vigil::NmsMode::weighted, out, scratch);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_WeightedNms)->Arg(16)->Arg(128);

void BM_PoolAcquireRelease(benchmark::State& state) {
  auto pool = vigil::make_frame_pool();
  for (auto _ : state) {
    vigil::FrameRef ref = pool->acquire();
    benchmark::DoNotOptimize(ref.get());
  }
}
BENCHMARK(BM_PoolAcquireRelease);

// One ByteTracker update with N confirmed tracks and N detections that move a little each
// frame (the association, Kalman predict and update of every track).
void BM_ByteTrackerUpdate(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> jitter(-2.0f, 2.0f);
  std::vector<vigil::Detection> dets(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float x = 80.0f * static_cast<float>(i % 10), y = 80.0f * static_cast<float>(i / 10);
    dets[i].bbox = {x, y, x + 50, y + 50};
    dets[i].score = 0.9f;
  }
  vigil::ByteTracker tracker;
  std::vector<vigil::TrackedObject> objects;
  std::vector<vigil::TrackEvent> events;
  for (int warm = 0; warm < 3; ++warm) tracker.update(dets, 1, objects, events);
  for (auto _ : state) {
    for (auto& d : dets) {
      const float dx = jitter(rng), dy = jitter(rng);
      d.bbox = {d.bbox.x1 + dx, d.bbox.y1 + dy, d.bbox.x2 + dx, d.bbox.y2 + dy};
    }
    events.clear();
    tracker.update(dets, 1, objects, events);
    benchmark::DoNotOptimize(objects.data());
  }
  state.counters["tracks"] = static_cast<double>(objects.size());
}
BENCHMARK(BM_ByteTrackerUpdate)->Arg(10)->Arg(50);

// What publishing one track event costs the engine's thread: the bus alone (Arg 0), and with
// the event store attached (Arg 1: its subscriber queues the event for the writer thread).
void BM_EventPublish(benchmark::State& state) {
  char dir[] = "/tmp/vigil-bench-XXXXXX";
  if (!::mkdtemp(dir)) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  vigil::EventBus bus;
  std::unique_ptr<vigil::EventStore> store;
  if (state.range(0) == 1) {
    auto opened = vigil::EventStore::open({std::string(dir) + "/vigil.db"});
    if (!opened.ok()) {
      state.SkipWithError(opened.error().message.c_str());
      return;
    }
    store = std::move(opened).value();
    store->attach(bus);
  }
  vigil::Event e;
  e.kind = vigil::EventKind::track_started;
  e.camera = "lobby";
  e.bbox = {10, 20, 110, 140};
  for (auto _ : state) {
    ++e.track_id;
    benchmark::DoNotOptimize(bus.publish(e));
  }
  if (store) {
    store->flush();
    state.counters["written"] = static_cast<double>(store->written());
    state.counters["dropped"] = static_cast<double>(store->dropped());
  }
  store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_EventPublish)->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
