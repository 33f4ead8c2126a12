// Remote model calls end to end through a real redis-server on loopback: RemoteModels (the
// ingest side) and an InferenceWorker on its own thread. Real BlazeFace through Redis finds
// what it finds in process; late live frames are dropped and counted; a poison request ends in
// the dead-letter stream; a dead worker's requests are taken over; a restarted Redis and
// trimmed requests lose nothing for a file camera.
#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include <atomic>
#include <cmath>
#include <future>
#include <thread>

#include "support/test_support.h"
#include "vigil/cluster/registry.h"
#include "vigil/cluster/remote_backend.h"
#include "vigil/cluster/wire.h"
#include "vigil/cluster/worker.h"
#include "vigil/infer/call_context.h"
#include "vigil/vision/blazeface.h"

namespace vigil {
namespace {

using std::chrono::milliseconds;

std::int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A model that sums each item and echoes its first value, and throws on an item starting
// with 42 (the poison).
class SumBackend final : public Backend {
 public:
  Status infer(const Tensor& input, std::vector<Tensor>& outputs) override {
    outputs.resize(1);
    outputs[0].reshape({input.dim(0), 2});
    for (std::int64_t i = 0; i < input.dim(0); ++i) {
      const float* x = input.item(i);
      if (x[0] == 42.0f) throw std::runtime_error("poison");
      double sum = 0;
      for (std::size_t k = 0; k < input.item_size(); ++k) sum += x[k];
      outputs[0].item(i)[0] = static_cast<float>(sum);
      outputs[0].item(i)[1] = x[0];
    }
    return {};
  }
  const std::vector<std::string>& output_names() const override { return names_; }
  std::string name() const override { return "sum"; }

 private:
  std::vector<std::string> names_;
};

// A Redis, a worker thread serving `model` and a node's RemoteModels.
class Cluster {
 public:
  explicit Cluster(WorkerOptions worker = {}, RemoteOptions remote = {}, bool start_worker = true) {
    url_ = *parse_redis_url(server.url());
    worker_options_ = std::move(worker);
    worker_options_.url = url_;
    if (worker_options_.consumer.empty()) worker_options_.consumer = "w1";
    if (worker_options_.models.empty()) {
      worker_options_.models.push_back({"sum", BackendOptions{"sum.onnx", {}}, 8});
      worker_options_.make_backend = [](const BackendOptions&) -> Result<std::unique_ptr<Backend>> {
        return std::unique_ptr<Backend>(std::make_unique<SumBackend>());
      };
    }
    remote.url = url_;
    remote.node = "n1";
    if (remote.models.empty()) remote.models = {{"sum.onnx", "sum"}};
    auto models = RemoteModels::start(remote);
    EXPECT_TRUE(models.ok()) << models.error().message;
    if (models.ok()) models_ = std::move(models).value();
    if (start_worker) start();
  }
  ~Cluster() { stop(); }
  void start() {
    auto worker = InferenceWorker::create(worker_options_);
    ASSERT_TRUE(worker.ok()) << worker.error().message;
    worker_ = std::move(worker).value();
    stop_ = false;
    thread_ = std::thread([this] { status_ = worker_->run(stop_); });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::unique_ptr<Backend> backend(const std::string& path = "sum.onnx", std::vector<std::string> outputs = {}) {
    auto b = models_->make_backend(BackendOptions{path, std::move(outputs), BackendKind::remote});
    EXPECT_TRUE(b.ok()) << b.error().message;
    return b.ok() ? std::move(b).value() : nullptr;
  }
  std::unique_ptr<RedisConnection> connect() { return std::move(RedisConnection::connect(url_, milliseconds(2000))).value(); }

  test::RedisServer server;
  RedisUrl url_;
  WorkerOptions worker_options_;
  std::shared_ptr<RemoteModels> models_;
  std::unique_ptr<InferenceWorker> worker_;
  std::atomic<bool> stop_{false};
  Status status_;
  std::thread thread_;
};

Tensor items(std::initializer_list<float> firsts, int size = 1024) {
  Tensor t({static_cast<std::int64_t>(firsts.size()), size});
  std::int64_t i = 0;
  for (float f : firsts) {
    std::fill(t.item(i), t.item(i) + size, 1.0f);
    t.item(i)[0] = f;
    ++i;
  }
  return t;
}

using test::wait_until;

struct Photo {
  cv::Mat bgr;
  Image image;
};

Photo load_photo(int index) {
  Photo p;
  p.bgr = cv::imread(test::data_file("media/sample" + std::to_string(index) + ".jpg"), cv::IMREAD_COLOR);
  p.image.format = PixelFormat::bgr24;
  p.image.width = p.bgr.cols;
  p.image.height = p.bgr.rows;
  p.image.planes[0] = {p.bgr.data, static_cast<int>(p.bgr.step)};
  return p;
}

TEST(RemoteWorkerTest, RealBlazeFaceThroughRedisFindsWhatItFindsInProcess) {
  const std::string path = test::data_file("models/blazeface_back_256_dyn.onnx");
  WorkerOptions w;
  w.models.push_back({"faces", BackendOptions{path, {}}, 8});
  RemoteOptions r;
  r.models = {{path, "faces"}};
  Cluster cluster(w, r);
  BlazeFaceConfig config;
  config.model_path = path;
  config.max_batch = 8;
  auto local = BlazeFace::create(config);
  ASSERT_TRUE(local.ok()) << local.error().message;
  auto remote = BlazeFace::create(config, cluster.backend(path, {}));
  ASSERT_TRUE(remote.ok()) << remote.error().message;

  std::vector<Photo> photos;
  std::vector<const Image*> images;
  for (int i = 1; i <= 6; ++i) photos.push_back(load_photo(i));
  for (const auto& p : photos) images.push_back(&p.image);
  std::vector<Detections> here, there;
  ASSERT_TRUE((*local)->detect(images, here).ok());
  ASSERT_TRUE((*remote)->detect(images, there).ok());
  ASSERT_EQ(there.size(), here.size());
  std::size_t faces = 0;
  for (std::size_t i = 0; i < here.size(); ++i) {
    ASSERT_EQ(there[i].size(), here[i].size()) << "photo " << i + 1;
    for (std::size_t d = 0; d < here[i].size(); ++d) {
      EXPECT_NEAR(there[i][d].bbox.x1, here[i][d].bbox.x1, 1e-3);
      EXPECT_NEAR(there[i][d].bbox.y2, here[i][d].bbox.y2, 1e-3);
      EXPECT_NEAR(there[i][d].score, here[i][d].score, 1e-5);
    }
    faces += here[i].size();
  }
  EXPECT_GE(faces, 20u);
  const RemoteCounters c = cluster.models_->counters();
  const WorkerCounters wc = cluster.worker_->counters();
  EXPECT_EQ(c.duplicates, 0u);
  EXPECT_EQ(c.replies, c.requests);
  EXPECT_EQ(wc.served, c.requests);
  std::printf("BlazeFace 256 through Redis: %zu faces as in process; %llu requests, %llu replies, %llu round trips and %.0f KB "
              "on the node; worker %llu batches\n",
              faces, static_cast<unsigned long long>(c.requests), static_cast<unsigned long long>(c.replies),
              static_cast<unsigned long long>(c.round_trips), c.bytes / 1024.0, static_cast<unsigned long long>(wc.batches));
}

TEST(RemoteWorkerTest, LateLiveFramesAreDroppedByTheWorkerAndCountedOnBothSides) {
  WorkerOptions w;
  w.max_age = milliseconds(500);
  Cluster cluster(w);
  auto backend = cluster.backend();
  const Tensor input = items({1, 2});
  const CallItem stale[] = {{"cam", 1, now_ms() - 5000, true}, {"cam", 2, now_ms() - 5000, true}};
  std::vector<Tensor> out;
  {
    CallContext::Scope scope(stale);
    Status s = backend->infer(input, out);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::deadline_exceeded) << s.error().message;
  }
  EXPECT_EQ(cluster.worker_->counters().deadline, 2u);
  EXPECT_EQ(cluster.worker_->counters().batches, 0u);
  EXPECT_GE(cluster.models_->counters().deadline, 1u);
  // Fresh live frames and file frames run.
  const CallItem fresh[] = {{"cam", 3, now_ms(), true}, {"file", 4, now_ms() - 60000, false}};
  CallContext::Scope scope(fresh);
  ASSERT_TRUE(backend->infer(input, out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].item(0)[1], 1.0f);
  EXPECT_EQ(out[0].item(1)[1], 2.0f);
  EXPECT_EQ(out[0].item(1)[0], 1023.0f + 2.0f);
}

TEST(RemoteWorkerTest, APoisonRequestEndsInTheDeadLetterStreamAfterMaxDeliveries) {
  WorkerOptions w;
  w.claim_idle = milliseconds(100);
  w.max_deliveries = 3;
  Cluster cluster(w);
  auto backend = cluster.backend();
  std::vector<Tensor> out;
  Status s = backend->infer(items({42}), out);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("failed: delivered 4 times"), std::string::npos) << s.error().message;
  auto redis = cluster.connect();
  auto dead = redis->command({"XRANGE", dead_letter_stream("vigil", "sum"), "-", "+"});
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->elements.size(), 1u);
  const RedisReply& fields = dead->elements[0].elements[1];
  ASSERT_GE(fields.elements.size(), 2u);
  EXPECT_EQ(fields.elements[0].str, "reason");
  EXPECT_NE(fields.elements[1].str.find("max_deliveries 3"), std::string::npos) << fields.elements[1].str;
  const WorkerCounters c = cluster.worker_->counters();
  EXPECT_EQ(c.dead_lettered, 1u);
  EXPECT_EQ(c.retried, 3u);
  // Nothing is left pending, and the worker goes on serving.
  EXPECT_EQ(redis->command({"XPENDING", request_stream("vigil", "sum", 0), "workers"})->elements[0].integer, 0);
  ASSERT_TRUE(backend->infer(items({5}), out).ok());
  EXPECT_EQ(out[0].item(0)[1], 5.0f);
}

TEST(RemoteWorkerTest, ARequestReadByAWorkerThatDiedIsTakenOverAndAnsweredOnce) {
  WorkerOptions w;
  w.claim_idle = milliseconds(300);
  Cluster cluster(w, {}, /*start_worker=*/false);
  auto redis = cluster.connect();
  const std::string stream = request_stream("vigil", "sum", 0);
  ASSERT_TRUE(redis->command({"XGROUP", "CREATE", stream, "workers", "0", "MKSTREAM"}).ok());
  auto backend = cluster.backend();
  std::vector<Tensor> out;
  auto call = std::async(std::launch::async, [&] { return backend->infer(items({7, 8, 9}), out); });
  // A worker reads the three requests and dies before it answers.
  ASSERT_TRUE(wait_until([&] {
    auto r = redis->command({"XREADGROUP", "GROUP", "workers", "ghost", "COUNT", "8", "STREAMS", stream, ">"});
    return r.ok() && r->is_array() && !r->elements.empty();
  }));
  cluster.start();
  ASSERT_TRUE(call.get().ok());
  EXPECT_EQ(out[0].item(0)[1], 7.0f);
  EXPECT_EQ(out[0].item(2)[1], 9.0f);
  EXPECT_EQ(cluster.worker_->counters().claimed, 3u);
  EXPECT_EQ(cluster.models_->counters().replies, 3u);
  // The ghost's copy answered too (it comes back to life): its reply is dropped, counted.
  auto again = redis->command({"XADD", reply_stream("vigil", "n1"), "*", "id", "1", "st", "ok"});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(wait_until([&] { return cluster.models_->counters().duplicates == 1; }));
}

TEST(RemoteWorkerTest, AFileCallOutlivesARedisRestart) {
  WorkerOptions w;
  w.claim_idle = milliseconds(200);
  RemoteOptions r;
  r.reply_timeout = milliseconds(1500);
  Cluster cluster(w, r);
  auto backend = cluster.backend();
  std::vector<Tensor> out;
  ASSERT_TRUE(backend->infer(items({1}), out).ok());

  // Redis goes away and comes back empty: the call waits, sends again, and is answered.
  cluster.server.stop();
  auto call = std::async(std::launch::async, [&] { return backend->infer(items({3, 4}), out); });
  std::this_thread::sleep_for(milliseconds(300));  // the call is trying (no condition to see: Redis is down)
  ASSERT_TRUE(cluster.server.start());
  Status s = call.get();
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(out[0].item(1)[1], 4.0f);
  EXPECT_GE(cluster.worker_->counters().reconnects, 1u);
}

TEST(RemoteWorkerTest, RequestsTrimmedAwayWhilePendingAreCountedAndAFileSendsThemAgain) {
  WorkerOptions w;
  w.claim_idle = milliseconds(200);
  RemoteOptions r;
  r.reply_timeout = milliseconds(1000);
  Cluster cluster(w, r, /*start_worker=*/false);
  auto redis = cluster.connect();
  const std::string stream = request_stream("vigil", "sum", 0);
  ASSERT_TRUE(redis->command({"XGROUP", "CREATE", stream, "workers", "0", "MKSTREAM"}).ok());
  auto backend = cluster.backend();
  std::vector<Tensor> out;
  auto call = std::async(std::launch::async, [&] { return backend->infer(items({6}), out); });
  ASSERT_TRUE(wait_until([&] {
    auto read = redis->command({"XREADGROUP", "GROUP", "workers", "ghost", "COUNT", "8", "STREAMS", stream, ">"});
    return read.ok() && read->is_array() && !read->elements.empty();
  }));
  ASSERT_EQ(redis->command({"XTRIM", stream, "MAXLEN", "0"})->integer, 1);  // pending, and gone
  cluster.start();
  Status s = call.get();
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(out[0].item(0)[1], 6.0f);
  EXPECT_EQ(cluster.worker_->counters().trimmed, 1u);
  EXPECT_EQ(cluster.models_->counters().resent, 1u);
}

ProcessInfo process(const std::string& id, const std::string& role, const std::string& hash = "h1", int shards = 1) {
  ProcessInfo p;
  p.id = id;
  p.role = role;
  p.host = "here";
  p.models = "sum";
  p.models_hash = hash;
  p.shards = shards;
  return p;
}

TEST(RegistryTest, ProcessesAreListedWhileAliveAndAClusterWithOtherModelsOrShardsIsRefused) {
  test::RedisServer server;
  ASSERT_TRUE(server.ready());
  const RedisUrl url = *parse_redis_url(server.url());
  auto node = Registry::start(url, "vigil", process("n1", "ingest"), milliseconds(100), [] { return std::string("fast"); });
  ASSERT_TRUE(node.ok()) << node.error().message;
  (*node)->set_cameras("a,b");
  auto worker = Registry::start(url, "vigil", process("w1", "worker"), milliseconds(100), {});
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  auto redis = std::move(RedisConnection::connect(url, milliseconds(2000))).value();
  ASSERT_TRUE(wait_until([&] {
    auto procs = list_processes(*redis, "vigil");
    return procs.ok() && procs->size() == 2 && (*procs)[0].cameras == "a,b" && (*procs)[0].rates == "fast";
  }));

  auto other_models = Registry::start(url, "vigil", process("w2", "worker", "h2"), milliseconds(100), {});
  ASSERT_FALSE(other_models.ok());
  EXPECT_EQ(other_models.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(other_models.error().message.find("models differ"), std::string::npos) << other_models.error().message;
  auto other_shards = Registry::start(url, "vigil", process("w2", "worker", "h1", 4), milliseconds(100), {});
  ASSERT_FALSE(other_shards.ok());
  EXPECT_NE(other_shards.error().message.find("cluster.shards is 4 here and 1"), std::string::npos) << other_shards.error().message;
  auto same_name = Registry::start(url, "vigil", process("w1", "worker"), milliseconds(100), {});
  ASSERT_FALSE(same_name.ok());
  EXPECT_EQ(same_name.error().code, ErrorCode::already_exists);

  // A process that leaves is gone at once; one that dies, when its heartbeat key expires.
  worker->reset();
  EXPECT_EQ(list_processes(*redis, "vigil")->size(), 1u);
  ASSERT_TRUE(redis->command({"HSET", "vigil:proc:{ghost}", "id", "ghost", "role", "worker", "models_hash", "h1", "shards", "1"}).ok());
  ASSERT_TRUE(redis->command({"PEXPIRE", "vigil:proc:{ghost}", "200"}).ok());
  ASSERT_TRUE(redis->command({"SADD", "vigil:procs", "ghost"}).ok());
  EXPECT_EQ(list_processes(*redis, "vigil")->size(), 2u);
  ASSERT_TRUE(wait_until([&] { return list_processes(*redis, "vigil")->size() == 1; }));
  EXPECT_EQ(redis->command({"SISMEMBER", "vigil:procs", "ghost"})->integer, 0);
}

TEST(RegistryTest, ClusterStatusShowsProcessesStreamsPendingAndDeadLetters) {
  WorkerOptions w;
  w.claim_idle = milliseconds(100);
  w.max_deliveries = 1;
  Cluster cluster(w);
  auto node = Registry::start(cluster.url_, "vigil", process("n1", "ingest"), milliseconds(100), {});
  ASSERT_TRUE(node.ok());
  auto backend = cluster.backend();
  std::vector<Tensor> out;
  ASSERT_FALSE(backend->infer(items({42}), out).ok());  // the poison, dead-lettered
  auto redis = cluster.connect();
  auto text = cluster_status(*redis, "vigil", false);
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_NE(text->find("ingest  n1"), std::string::npos) << *text;
  EXPECT_NE(text->find("vigil:{sum.0}:req"), std::string::npos) << *text;
  EXPECT_NE(text->find("dead letters of sum: 1"), std::string::npos) << *text;
  auto json = cluster_status(*redis, "vigil", true);
  ASSERT_TRUE(json.ok());
  EXPECT_NE(json->find("\"pending\": 0"), std::string::npos) << *json;
}

}  // namespace
}  // namespace vigil
