// The HTTP API over real loopback HTTP, on a running engine with synthetic cameras and a
// detector that finds one box per frame.
#include "vigil/http/api_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <thread>

#include <sys/socket.h>
#include <unistd.h>

#include "support/http_client.h"
#include "support/test_support.h"

namespace vigil {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::http_get;
using test::http_request;
using test::HttpReply;

// One box in the middle of every frame, with two keypoints.
class BoxDetector final : public Detector {
 public:
  Status detect(std::span<const Image* const> images, std::vector<Detections>& results) override {
    results.assign(images.size(), {});
    for (std::size_t i = 0; i < images.size(); ++i) {
      Detection d;
      const float w = static_cast<float>(images[i]->width), h = static_cast<float>(images[i]->height);
      d.bbox = {w * 0.25f, h * 0.25f, w * 0.75f, h * 0.75f};
      d.score = 0.9f;
      d.keypoint_count = 2;
      d.keypoints[0] = {w * 0.4f, h * 0.4f};
      d.keypoints[1] = {w * 0.6f, h * 0.4f};
      results[i].push_back(d);
    }
    return {};
  }
  int max_batch() const override { return 8; }
};

CameraConfig synthetic(const std::string& id, double fps) {
  CameraConfig c;
  c.id = id;
  c.source.type = SourceType::synthetic;
  c.source.pattern = SyntheticPattern::procedural;
  c.source.width = 320;
  c.source.height = 240;
  c.source.fps = fps;
  c.source.live = true;
  c.detect.model = "boxes";
  return c;
}

template <class F>
bool wait_for(F condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

// A camera from the JSON the API accepts (the cli parses it with the config loader; this is
// the part of that schema the tests need).
Result<CameraConfig> parse_camera(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("id") || !j["id"].is_string()) return Error{ErrorCode::invalid_argument, "camera: id missing"};
  CameraConfig c = synthetic(j["id"].get<std::string>(), j.value("fps", 10.0));
  return c;
}

class ApiServerTest : public ::testing::Test {
 protected:
  void start(std::vector<CameraConfig> cameras, const std::string& token = "") {
    EngineConfig config;
    ModelConfig model;
    model.settings.max_batch = 8;
    model.max_delay_ms = 1;
    config.models["boxes"] = model;
    config.workers = 1;
    config.status_interval_s = 0;
    config.cameras = std::move(cameras);
    EngineHooks hooks;
    hooks.make_detector = [](const std::string&, const ModelConfig&) -> Result<std::unique_ptr<Detector>> {
      return std::unique_ptr<Detector>(new BoxDetector);
    };
    auto engine = Engine::create(config, hooks);
    ASSERT_TRUE(engine.ok()) << engine.error().message;
    engine_ = std::move(engine).value();
    if (!store_path_.empty()) {
      auto store = EventStore::open({store_path_});
      ASSERT_TRUE(store.ok()) << store.error().message;
      store_ = std::move(store).value();
      store_->attach(engine_->events());
    }
    engine_->start();
    runner_ = std::thread([this] { (void)engine_->run(std::nullopt); });
    ApiOptions options;
    options.server.port = 0;
    options.server.max_body_bytes = 4096;
    options.token = token;
    options.parse_camera = parse_camera;
    options.store = store_.get();
    auto api = ApiServer::start(*engine_, options);
    ASSERT_TRUE(api.ok()) << api.error().message;
    api_ = std::move(api).value();
    port_ = api_->port();
  }
  void TearDown() override {
    api_.reset();
    if (engine_) engine_->request_stop();
    if (runner_.joinable()) runner_.join();
    store_.reset();  // before the engine (it listens to the engine's bus)
  }
  // Waits until the camera serves a snapshot.
  bool serving(const std::string& id) {
    return wait_for([&] { return http_get(port_, "/api/v1/cameras/" + id + "/snapshot.jpg").status == 200; }, 10s);
  }

  std::unique_ptr<Engine> engine_;
  std::thread runner_;
  std::unique_ptr<ApiServer> api_;
  int port_ = 0;
  std::string store_path_;  // set before start(): the API reads events and faces from a store
  std::unique_ptr<EventStore> store_;
};

TEST_F(ApiServerTest, HealthCamerasAndErrors) {
  start({synthetic("lobby", 10)});
  const HttpReply health = http_get(port_, "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(json::parse(health.body)["status"], "ok");
  ASSERT_TRUE(serving("lobby"));
  EXPECT_EQ(http_get(port_, "/readyz").status, 200);

  const HttpReply list = http_get(port_, "/api/v1/cameras");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.header("content-type"), "application/json");
  const json cameras = json::parse(list.body)["cameras"];
  ASSERT_EQ(cameras.size(), 1u);
  EXPECT_EQ(cameras[0]["id"], "lobby");
  EXPECT_EQ(cameras[0]["state"], "live");
  EXPECT_EQ(cameras[0]["source"]["type"], "synthetic");
  EXPECT_TRUE(cameras[0]["last_frame_at"].is_number());
  EXPECT_EQ(cameras[0]["detections"], 1);

  EXPECT_EQ(json::parse(http_get(port_, "/api/v1/cameras/lobby").body)["id"], "lobby");
  const HttpReply unknown = http_get(port_, "/api/v1/cameras/nope");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(json::parse(unknown.body)["error"], "unknown camera");
  EXPECT_EQ(http_get(port_, "/api/v1/cameras/nope/snapshot.jpg").status, 404);
  EXPECT_EQ(http_get(port_, "/api/v1/cameras/lobby/nothing").status, 404);
  EXPECT_EQ(http_get(port_, "/nothing").status, 404);
  EXPECT_EQ(http_get(port_, "/api/v1/cluster/cameras").status, 404) << "not a cluster's node";
  EXPECT_EQ(http_request(port_, "PUT", "/api/v1/cameras/lobby").status, 405);
  // Bad query arguments.
  EXPECT_EQ(http_get(port_, "/api/v1/cameras/lobby/snapshot.jpg?quality=0").status, 400);
  EXPECT_EQ(http_get(port_, "/api/v1/cameras/lobby/snapshot.jpg?width=abc").status, 400);
  EXPECT_EQ(http_get(port_, "/api/v1/cameras/lobby/snapshot.jpg?annotate=2").status, 400);
}

TEST_F(ApiServerTest, PathTraversalIsRefused) {
  start({synthetic("lobby", 10)});
  for (const std::string target : {"/api/v1/cameras/../../etc/passwd", "/api/v1/cameras/%2e%2e/snapshot.jpg",
                                   "/api/v1/cameras/..%2f..%2fetc/snapshot.jpg", "/api/v1/cameras/%5c..%5cwin/snapshot.jpg",
                                   "/api/v1/cameras/%252e%252e/snapshot.jpg", "/api/v1/cameras/.hidden"}) {
    const HttpReply reply = http_get(port_, target);
    EXPECT_TRUE(reply.status == 400 || reply.status == 404) << target << ": " << reply.status;
    EXPECT_EQ(reply.header("content-type"), "application/json") << target;
  }
}

TEST_F(ApiServerTest, SnapshotIsAJpegOfTheNewestFrameWithFreshness) {
  start({synthetic("lobby", 10)});
  ASSERT_TRUE(serving("lobby"));
  const HttpReply full = http_get(port_, "/api/v1/cameras/lobby/snapshot.jpg");
  ASSERT_EQ(full.status, 200);
  EXPECT_EQ(full.header("content-type"), "image/jpeg");
  const cv::Mat picture = cv::imdecode(std::vector<std::uint8_t>(full.body.begin(), full.body.end()), cv::IMREAD_COLOR);
  ASSERT_FALSE(picture.empty());
  EXPECT_EQ(picture.cols, 320);
  EXPECT_EQ(picture.rows, 240);
  EXPECT_FALSE(full.header("etag").empty());
  EXPECT_GT(std::stod(full.header("x-frame-timestamp")), 1.6e9);
  const long age = std::stol(full.header("x-frame-age-ms"));
  EXPECT_GE(age, 0);
  EXPECT_LT(age, 5000);

  const HttpReply small = http_get(port_, "/api/v1/cameras/lobby/snapshot.jpg?width=160&quality=50&annotate=1");
  ASSERT_EQ(small.status, 200);
  const cv::Mat thumb = cv::imdecode(std::vector<std::uint8_t>(small.body.begin(), small.body.end()), cv::IMREAD_COLOR);
  ASSERT_FALSE(thumb.empty());
  EXPECT_EQ(thumb.cols, 160);
  EXPECT_EQ(thumb.rows, 120);
  EXPECT_NE(small.header("etag"), full.header("etag"));

  // The box is drawn: the annotated picture differs from the plain one along its edge.
  const HttpReply plain = http_get(port_, "/api/v1/cameras/lobby/snapshot.jpg?width=160&quality=50");
  const cv::Mat plain_thumb = cv::imdecode(std::vector<std::uint8_t>(plain.body.begin(), plain.body.end()), cv::IMREAD_COLOR);
  ASSERT_FALSE(plain_thumb.empty());
  double edge_difference = 0;
  for (int y = 40; y < 80; ++y) edge_difference += cv::norm(thumb.at<cv::Vec3b>(y, 40), plain_thumb.at<cv::Vec3b>(y, 40));
  EXPECT_GT(edge_difference / 40, 30) << "no box drawn at x = 40";

  const HttpReply detections = http_get(port_, "/api/v1/cameras/lobby/detections");
  ASSERT_EQ(detections.status, 200);
  const json result = json::parse(detections.body);
  EXPECT_EQ(result["camera"], "lobby");
  ASSERT_EQ(result["detections"].size(), 1u);
  EXPECT_FLOAT_EQ(result["detections"][0]["bbox"][0].get<float>(), 80.0f);
  EXPECT_EQ(result["detections"][0]["keypoints"].size(), 2u);
}

// Same frame and options: encoded once, served from the cache; If-None-Match gets 304; a new
// frame gets a new ETag and new bytes.
TEST_F(ApiServerTest, CacheEncodesOncePerFrameAndAnswersNotModified) {
  start({synthetic("slow", 2)});
  ASSERT_TRUE(serving("slow"));
  const SnapshotCache& cache = api_->snapshots();
  bool saw_hit = false, saw_not_modified = false;
  for (int attempt = 0; attempt < 20 && !(saw_hit && saw_not_modified); ++attempt) {
    const std::uint64_t encodes_before = cache.encodes();
    const HttpReply a = http_get(port_, "/api/v1/cameras/slow/snapshot.jpg?quality=70");
    const HttpReply b = http_get(port_, "/api/v1/cameras/slow/snapshot.jpg?quality=70");
    ASSERT_EQ(a.status, 200);
    ASSERT_EQ(b.status, 200);
    if (a.header("x-frame-seq") == b.header("x-frame-seq")) {
      EXPECT_EQ(a.header("etag"), b.header("etag"));
      EXPECT_EQ(a.body, b.body);
      EXPECT_LE(cache.encodes() - encodes_before, 1u) << "the second request encoded again";
      saw_hit = true;
    } else {
      EXPECT_NE(a.header("etag"), b.header("etag"));
    }
    const HttpReply c = http_get(port_, "/api/v1/cameras/slow/snapshot.jpg?quality=70", {{"If-None-Match", b.header("etag")}});
    if (c.status == 304) {
      EXPECT_TRUE(c.body.empty());
      EXPECT_EQ(c.header("etag"), b.header("etag"));
      saw_not_modified = true;
    } else {
      ASSERT_EQ(c.status, 200);
      EXPECT_NE(c.header("etag"), b.header("etag")) << "200 for an unchanged ETag";
    }
  }
  EXPECT_TRUE(saw_hit);
  EXPECT_TRUE(saw_not_modified);
  // A new frame: new ETag and new bytes.
  const HttpReply first = http_get(port_, "/api/v1/cameras/slow/snapshot.jpg");
  ASSERT_TRUE(wait_for([&] { return http_get(port_, "/api/v1/cameras/slow/snapshot.jpg").header("etag") != first.header("etag"); }, 5s));
  const HttpReply next = http_get(port_, "/api/v1/cameras/slow/snapshot.jpg");
  EXPECT_NE(next.body, first.body);
}

// Many requests at the same moment for a key nobody has encoded: one encode per frame.
TEST_F(ApiServerTest, ConcurrentRequestsForOneFrameEncodeOnce) {
  start({synthetic("slow", 2)});
  ASSERT_TRUE(serving("slow"));
  const SnapshotCache& cache = api_->snapshots();
  const std::uint64_t before = cache.encodes();
  std::vector<std::thread> clients;
  std::mutex mu;
  std::set<std::string> seqs;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&] {
      const HttpReply r = http_get(port_, "/api/v1/cameras/slow/snapshot.jpg?quality=33&width=200");
      if (r.status != 200) return;
      ++ok;
      std::lock_guard lock(mu);
      seqs.insert(r.header("x-frame-seq"));
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(cache.encodes() - before, seqs.size()) << "one encode per distinct frame";
}

TEST_F(ApiServerTest, MutationsNeedTheTokenAndCheckTheirBody) {
  start({synthetic("lobby", 10)}, "s3cret");
  const std::string added = R"({"id": "porch", "fps": 10})";
  EXPECT_EQ(http_request(port_, "POST", "/api/v1/cameras", {}, added).status, 401);
  EXPECT_EQ(http_request(port_, "POST", "/api/v1/cameras", {{"Authorization", "Bearer wrong"}}, added).status, 401);
  EXPECT_EQ(http_request(port_, "DELETE", "/api/v1/cameras/lobby").status, 401);
  const test::HttpHeaders auth = {{"Authorization", "Bearer s3cret"}, {"Content-Type", "application/json"}};
  const HttpReply bad = http_request(port_, "POST", "/api/v1/cameras", auth, "{not json");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(json::parse(bad.body)["error"], "body is not valid JSON");
  EXPECT_EQ(http_request(port_, "POST", "/api/v1/cameras", auth, "").status, 400);
  EXPECT_EQ(http_request(port_, "POST", "/api/v1/cameras", auth, R"({"id": "../x"})").status, 400);
  const HttpReply oversized = http_request(port_, "POST", "/api/v1/cameras", auth, std::string(10000, ' '));
  EXPECT_EQ(oversized.status, 413);

  const HttpReply created = http_request(port_, "POST", "/api/v1/cameras", auth, added);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.header("location"), "/api/v1/cameras/porch");
  EXPECT_EQ(http_request(port_, "POST", "/api/v1/cameras", auth, added).status, 409);
  ASSERT_TRUE(serving("porch"));
  EXPECT_EQ(http_request(port_, "DELETE", "/api/v1/cameras/porch", auth).status, 200);
  EXPECT_EQ(http_get(port_, "/api/v1/cameras/porch").status, 404);
  EXPECT_EQ(http_get(port_, "/api/v1/cameras/porch/snapshot.jpg").status, 404);
  EXPECT_EQ(http_request(port_, "DELETE", "/api/v1/cameras/porch", auth).status, 404);
}

// A camera that disconnects answers 404 (never its last picture), and serves again when it
// is back.
TEST_F(ApiServerTest, DisconnectedCameraSnapshotIs404) {
  CameraConfig flaky = synthetic("flaky", 20);
  flaky.source.faults.every_s = 1.0;
  flaky.source.faults.kinds = {FaultKind::disconnect};
  flaky.source.faults.disconnect_s = 0.6;
  start({flaky});
  ASSERT_TRUE(serving("flaky"));
  bool saw_404 = false;
  ASSERT_TRUE(wait_for([&] {
    const HttpReply r = http_get(port_, "/api/v1/cameras/flaky/snapshot.jpg");
    if (r.status == 404) {
      saw_404 = json::parse(r.body)["error"].get<std::string>().rfind("camera is ", 0) == 0;
      return true;
    }
    return false;
  }, 10s));
  EXPECT_TRUE(saw_404);
  EXPECT_EQ(http_get(port_, "/readyz").status, 503);
  EXPECT_TRUE(serving("flaky"));
}

TEST_F(ApiServerTest, CredentialsInCameraUrlsAreNeverShown) {
  CameraConfig stream;
  stream.id = "gate";
  stream.source.type = SourceType::stream;
  stream.source.url = "rtsp://admin:hunter2@127.0.0.1:1/live";
  stream.source.live = true;
  stream.source.reconnect = true;
  stream.source.reconnect_initial_ms = 50;
  stream.detect.model = "boxes";
  start({stream});
  ASSERT_TRUE(wait_for([&] { return !json::parse(http_get(port_, "/api/v1/cameras/gate").body).value("last_error", "").empty(); }, 10s));
  for (const std::string target : {"/api/v1/cameras", "/api/v1/cameras/gate", "/api/v1/events", "/metrics"}) {
    const HttpReply r = http_get(port_, target);
    EXPECT_EQ(r.status, 200) << target;
    EXPECT_EQ(r.body.find("hunter2"), std::string::npos) << target << ": " << r.body;
  }
  EXPECT_NE(http_get(port_, "/api/v1/cameras/gate").body.find("rtsp://127.0.0.1:1/live"), std::string::npos);
}

// With a store, pollers page through everything it kept (an earlier run's events too), with
// the same ids as the live stream, and faces are served by event id.
TEST_F(ApiServerTest, EventsComeFromTheStoreWithTheirFaces) {
  test::TempDir dir;
  store_path_ = dir.file("vigil.db");
  const std::vector<std::uint8_t> old_face = {0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9};
  {
    // An earlier run left three events, the second with a face.
    auto earlier = EventStore::open({store_path_});
    ASSERT_TRUE(earlier.ok());
    for (std::uint64_t id = 1; id <= 3; ++id) {
      Event e;
      e.id = id;
      e.at = std::chrono::system_clock::now();
      e.kind = id == 2 ? EventKind::identity_matched : EventKind::track_started;
      e.camera = "door";
      e.track_id = id;
      (*earlier)->offer(e, id == 2 ? std::make_shared<const std::vector<std::uint8_t>>(old_face) : nullptr);
    }
  }
  start({synthetic("lobby", 10)});
  ASSERT_TRUE(serving("lobby"));

  const json first = json::parse(http_get(port_, "/api/v1/events?limit=2").body);
  ASSERT_EQ(first["events"].size(), 2u);
  EXPECT_EQ(first["events"][0]["id"], 1);
  EXPECT_EQ(first["events"][1]["camera"], "door");
  EXPECT_EQ(first["events"][1]["face"], "/api/v1/events/2/face.jpg");
  EXPECT_FALSE(first["events"][0].contains("face"));
  EXPECT_EQ(first["next"], 2);
  EXPECT_TRUE(first["complete"]);
  const HttpReply face = http_get(port_, "/api/v1/events/2/face.jpg");
  ASSERT_EQ(face.status, 200);
  EXPECT_EQ(face.header("content-type"), "image/jpeg");
  EXPECT_EQ(face.body, std::string(old_face.begin(), old_face.end()));

  // This run's events continue after the store's: the camera going live is id 4 or later,
  // stored (the poller sees it once the writer wrote it).
  json live;
  ASSERT_TRUE(wait_for([&] {
    live = json::parse(http_get(port_, "/api/v1/events?since=2&camera=lobby&type=camera_state").body);
    return !live["events"].empty() && live["events"].back()["to"] == "live";
  }, 10s)) << live.dump();
  EXPECT_GT(live["events"][0]["id"].get<std::uint64_t>(), 3u);

  // A new identity's face is served at once (from the bus's ring, before the store wrote it),
  // and later from the store under the same id.
  Event identity;
  identity.kind = EventKind::identity_matched;
  identity.camera = "lobby";
  identity.track_id = 9;
  identity.detail = "alice";
  identity.known = true;
  const std::vector<std::uint8_t> new_face = {0xff, 0xd8, 7, 7, 7, 0xff, 0xd9};
  identity.face_jpeg = std::make_shared<const std::vector<std::uint8_t>>(new_face);
  const std::uint64_t id = engine_->events().publish(identity);
  const HttpReply fresh = http_get(port_, "/api/v1/events/" + std::to_string(id) + "/face.jpg");
  ASSERT_EQ(fresh.status, 200);
  EXPECT_EQ(fresh.body, std::string(new_face.begin(), new_face.end()));
  json stored;
  ASSERT_TRUE(wait_for([&] {
    stored = json::parse(http_get(port_, "/api/v1/events?since=" + std::to_string(id - 1) + "&type=identity_matched").body);
    return !stored["events"].empty();
  }, 10s));
  EXPECT_EQ(stored["events"][0]["id"], id);
  EXPECT_EQ(stored["events"][0]["detail"], "alice");
  EXPECT_EQ(stored["events"][0]["face"], "/api/v1/events/" + std::to_string(id) + "/face.jpg");

  // Errors.
  EXPECT_EQ(http_get(port_, "/api/v1/events?type=track_exploded").status, 400);
  EXPECT_EQ(http_get(port_, "/api/v1/events?camera=../x").status, 400);
  EXPECT_EQ(http_get(port_, "/api/v1/events/abc/face.jpg").status, 400);
  EXPECT_EQ(http_get(port_, "/api/v1/events/99999999/face.jpg").status, 404);
  EXPECT_EQ(http_get(port_, "/api/v1/events/1/face.jpg").status, 404) << "event 1 has no face";
  EXPECT_EQ(http_get(port_, "/api/v1/events/2/other").status, 404);
  EXPECT_EQ(http_get(port_, "/api/v1/events/stream?type=track_exploded").status, 400);
}

TEST_F(ApiServerTest, EventsAndMetrics) {
  start({synthetic("lobby", 10)});
  ASSERT_TRUE(serving("lobby"));
  const json events = json::parse(http_get(port_, "/api/v1/events?camera=lobby&type=camera_state").body);
  ASSERT_FALSE(events["events"].empty());
  EXPECT_EQ(events["events"].back()["to"], "live");
  const std::uint64_t next = events["next"];
  const json later = json::parse(http_get(port_, "/api/v1/events?since=" + std::to_string(next)).body);
  for (const auto& e : later["events"]) EXPECT_GT(e["id"].get<std::uint64_t>(), next);
  EXPECT_EQ(http_get(port_, "/api/v1/events?limit=0").status, 400);
  const HttpReply metrics = http_get(port_, "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.header("content-type").rfind("text/plain; version=0.0.4", 0), 0u);
  EXPECT_NE(metrics.body.find("camera=\"lobby\""), std::string::npos);
  EXPECT_NE(metrics.body.find("vigil_model_latency_seconds"), std::string::npos);
  // Prometheus' own linter accepts it (Debian's prometheus package, installed by setup).
  test::TempDir dir;
  const std::string file = dir.file("metrics.prom");
  std::ofstream(file) << metrics.body;
  std::string lint;
  EXPECT_EQ(test::run_command("promtool check metrics < " + file + " 2>&1", &lint), 0) << lint;
}

// Opens a streaming request and returns its socket (the caller reads and closes it).
int open_stream(int port, const std::string& target, const std::string& extra_headers = "") {
  const int fd = test::connect_loopback(port);
  if (fd >= 0) test::send_all(fd, "GET " + target + " HTTP/1.1\r\nHost: x\r\n" + extra_headers + "\r\n");
  return fd;
}

// Parts of a multipart MJPEG body: each part's JPEG bytes and X-Frame-Seq.
struct Part {
  std::string jpeg;
  std::uint64_t seq;
};
std::vector<Part> mjpeg_parts(const std::string& body) {
  std::vector<Part> parts;
  std::size_t pos = 0;
  while ((pos = body.find("--vigil-frame\r\n", pos)) != std::string::npos) {
    const std::size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string::npos) break;
    const std::string head = body.substr(pos, head_end - pos);
    const auto length_at = head.find("Content-Length: ");
    const auto seq_at = head.find("X-Frame-Seq: ");
    if (length_at == std::string::npos || seq_at == std::string::npos) break;
    const std::size_t length = std::stoul(head.substr(length_at + 16));
    if (head_end + 4 + length > body.size()) break;  // cut off by the end of the read
    parts.push_back({body.substr(head_end + 4, length), std::stoull(head.substr(seq_at + 13))});
    pos = head_end + 4 + length;
  }
  return parts;
}

TEST_F(ApiServerTest, MjpegStreamSendsNewFramesAtTheRequestedRate) {
  start({synthetic("lobby", 20)});
  ASSERT_TRUE(serving("lobby"));
  const std::uint64_t encodes_before = api_->snapshots().encodes();
  const int a = open_stream(port_, "/api/v1/cameras/lobby/stream.mjpg?fps=5&width=160");
  const int b = open_stream(port_, "/api/v1/cameras/lobby/stream.mjpg?fps=5&width=160");
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  // Each viewer hangs up the moment its read ends, so the server stops encoding for it.
  std::string raw_b;
  std::thread second([&] {
    raw_b = test::read_until_closed(b, 1500);
    ::close(b);
  });
  const std::string raw_a = test::read_until_closed(a, 1500);
  ::close(a);
  second.join();
  ASSERT_NE(raw_a.find("multipart/x-mixed-replace; boundary=vigil-frame"), std::string::npos) << raw_a.substr(0, 300);
  const test::HttpReply reply = test::parse_reply(raw_a);  // the body de-chunked
  const std::vector<Part> parts = mjpeg_parts(reply.body);
  ASSERT_GE(parts.size(), 4u) << "5 fps for 1.5 s";
  EXPECT_LE(parts.size(), 10u) << "no faster than asked";
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const cv::Mat picture = cv::imdecode(std::vector<std::uint8_t>(parts[i].jpeg.begin(), parts[i].jpeg.end()), cv::IMREAD_COLOR);
    ASSERT_FALSE(picture.empty()) << "part " << i;
    EXPECT_EQ(picture.cols, 160);
    if (i > 0) {
      EXPECT_GT(parts[i].seq, parts[i - 1].seq) << "a repeated or older frame";
    }
  }
  // Both streams end on the server (it notices the hang-ups), and then no more encodes happen.
  ASSERT_TRUE(wait_for([&] { return api_->open_streams() == 0; }, std::chrono::seconds(10))) << api_->open_streams() << " streams still open";
  // Frames go through the cache: at most one encode per distinct frame the two viewers were
  // sent, plus, per stream, the part cut off by the end of the read and the one in flight.
  std::set<std::uint64_t> seqs;
  for (const Part& p : parts) seqs.insert(p.seq);
  for (const Part& p : mjpeg_parts(test::parse_reply(raw_b).body)) seqs.insert(p.seq);
  EXPECT_LE(api_->snapshots().encodes() - encodes_before, seqs.size() + 4);
  // An unknown camera gets a JSON 404, not a stream.
  EXPECT_EQ(http_get(port_, "/api/v1/cameras/nope/stream.mjpg").status, 404);
  EXPECT_EQ(http_get(port_, "/api/v1/cameras/lobby/stream.mjpg?fps=0").status, 400);
}

TEST_F(ApiServerTest, EventStreamPushesNewEventsAndResumes) {
  start({synthetic("lobby", 10)}, "tok");
  ASSERT_TRUE(serving("lobby"));
  const int fd = open_stream(port_, "/api/v1/events/stream?type=camera_state");
  ASSERT_GE(fd, 0);
  // The stream is open (its headers and a first comment arrive), then a camera is added.
  std::string raw = test::read_until_closed(fd, 300);
  ASSERT_NE(raw.find("text/event-stream"), std::string::npos) << raw;
  ASSERT_EQ(http_request(port_, "POST", "/api/v1/cameras", {{"Authorization", "Bearer tok"}}, R"({"id": "porch", "fps": 10})").status, 201);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (raw.find("\"camera\":\"porch\"") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    raw += test::read_until_closed(fd, 100);
  }
  ::close(fd);
  ASSERT_NE(raw.find("\"camera\":\"porch\""), std::string::npos) << raw;
  EXPECT_NE(raw.find("event: camera_state"), std::string::npos);
  EXPECT_EQ(raw.find("event: track_"), std::string::npos) << "type filter";
  // Resuming after the last id seen gives only later events.
  const auto id_at = raw.rfind("id: ");
  ASSERT_NE(id_at, std::string::npos);
  const std::uint64_t last_id = std::stoull(raw.substr(id_at + 4));
  const int again = open_stream(port_, "/api/v1/events/stream", "Last-Event-ID: " + std::to_string(last_id) + "\r\n");
  const std::string resumed = test::read_until_closed(again, 500);
  ::close(again);
  for (std::size_t at = resumed.find("\nid: "); at != std::string::npos; at = resumed.find("\nid: ", at + 1)) {
    EXPECT_GT(std::stoull(resumed.substr(at + 5)), last_id);
  }
  EXPECT_EQ(http_get(port_, "/api/v1/events/stream", {{"Last-Event-ID", "x"}}).status, 400);
}

// Slow and hostile clients cost sockets, not threads: with 500 idle connections, a client
// sending its headers a byte at a time and 50 MJPEG viewers that never read, /healthz and
// snapshots still answer within a second and the engine keeps its rate.
TEST_F(ApiServerTest, SlowAndIdleClientsDoNotStopTheOthers) {
  start({synthetic("lobby", 10)});
  ASSERT_TRUE(serving("lobby"));
  std::vector<int> sockets;
  for (int i = 0; i < 500; ++i) {
    const int fd = test::connect_loopback(port_);
    ASSERT_GE(fd, 0) << "connection " << i;
    sockets.push_back(fd);
  }
  for (int i = 0; i < 50; ++i) {
    const int fd = open_stream(port_, "/api/v1/cameras/lobby/stream.mjpg?fps=30");
    ASSERT_GE(fd, 0);
    const int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockets.push_back(fd);
  }
  std::atomic<bool> done{false};
  std::thread trickle([&] {
    const int fd = test::connect_loopback(port_);
    const std::string request = "GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Padding: ";
    for (std::size_t i = 0; !done && fd >= 0; ++i) {
      if (!test::send_all(fd, std::string(1, i < request.size() ? request[i] : 'a'))) break;
      std::this_thread::sleep_for(100ms);
    }
    if (fd >= 0) ::close(fd);
  });
  const std::uint64_t decoded_before = engine_->status().cameras.at(0).frames_decoded;
  const auto started = std::chrono::steady_clock::now();
  double worst_health = 0, worst_snapshot = 0;
  for (int i = 0; i < 40; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(http_get(port_, "/healthz").status, 200);
    worst_health = std::max(worst_health, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(http_get(port_, "/api/v1/cameras/lobby/snapshot.jpg?width=320").status, 200);
    worst_snapshot = std::max(worst_snapshot, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    std::this_thread::sleep_for(25ms);
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const std::uint64_t decoded = engine_->status().cameras.at(0).frames_decoded - decoded_before;
  done = true;
  trickle.join();
  for (int fd : sockets) ::close(fd);
  EXPECT_LT(worst_health, 1.0);
  EXPECT_LT(worst_snapshot, 1.0);
  EXPECT_GE(static_cast<double>(decoded), 0.8 * 10 * elapsed) << "the camera kept its 10 fps";
  std::printf("slow clients: worst /healthz %.1f ms, worst snapshot %.1f ms over 40 requests each\n", worst_health * 1000,
              worst_snapshot * 1000);
}

TEST(ApiHelpersTest, RedactAndValidate) {
  EXPECT_EQ(redact_url("rtsp://user:pass@cam.local:554/s?x=1"), "rtsp://cam.local:554/s?x=1");
  EXPECT_EQ(redact_url("http://cam/a@b"), "http://cam/a@b");
  EXPECT_EQ(redact_url("/videos/a.mp4"), "/videos/a.mp4");
  EXPECT_TRUE(valid_camera_id("lobby-1_a.b"));
  EXPECT_FALSE(valid_camera_id(".."));
  EXPECT_FALSE(valid_camera_id("a/b"));
  EXPECT_FALSE(valid_camera_id("a\\b"));
  EXPECT_FALSE(valid_camera_id("%2e"));
  EXPECT_FALSE(valid_camera_id(std::string(65, 'a')));
}

TEST(HttpServerTest, ABusyPortIsAClearError) {
  auto first = HttpServer::start({"127.0.0.1", 0}, [](const HttpRequest&, HttpResponse&) {});
  ASSERT_TRUE(first.ok());
  auto second = HttpServer::start({"127.0.0.1", (*first)->port()}, [](const HttpRequest&, HttpResponse&) {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::unavailable);
  auto bad = HttpServer::start({"not-an-address", 0}, [](const HttpRequest&, HttpResponse&) {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::invalid_argument);
}

}  // namespace
}  // namespace vigil
