#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <functional>
#include <cstdio>
#include <thread>

#include <yaml-cpp/yaml.h>

#include "vigil/cli/cluster_support.h"
#include "vigil/cli/commands.h"
#include "vigil/cli/signal_watcher.h"
#include "vigil/cluster/camera_leases.h"
#include "vigil/cluster/remote_backend.h"
#include "vigil/cli/config_loader.h"
#include "vigil/core/log.h"
#include "vigil/core/process_stats.h"
#include "vigil/http/api_server.h"
#include "vigil/sink/event_store.h"
#include "vigil/pipeline/engine.h"

namespace vigil {

namespace {

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// The HTTP API when the config asks for it (http.listen). Refuses a non-loopback address
// without a token: the API can add and remove cameras.
Result<std::unique_ptr<ApiServer>> start_api(Engine& engine, const EngineConfig& config, const EventStore* store,
                                             CameraLeases* cluster_cameras, const std::string& node) {
  const HttpConfig& http = config.http;
  if (http.host.empty()) return std::unique_ptr<ApiServer>();
  if (!is_loopback(http.host) && http.token.empty()) {
    return Error{ErrorCode::invalid_argument, "http.listen: refusing to listen on " + http.host +
                                                  " without http.token (the API can add and remove cameras)"};
  }
  ApiOptions options;
  options.server.host = http.host;
  options.server.port = http.port;
  options.server.threads = http.threads;
  options.server.max_connections = http.max_connections;
  options.server.idle_timeout_s = http.idle_timeout_s;
  options.server.max_body_bytes = static_cast<std::size_t>(http.max_body_bytes);
  options.token = http.token;
  options.snapshot_cache = http.snapshot_cache;
  options.store = store;
  options.parse_camera = [config](const std::string& body) { return parse_camera_config(body, config, "request body"); };
  if (cluster_cameras != nullptr) {  // cameras are the cluster's: they start on whichever node takes them
    options.add_camera = [cluster_cameras](const CameraConfig& camera, const std::string& body) {
      return cluster_cameras->put(camera.id, body);
    };
    options.remove_camera = [cluster_cameras](const std::string& id) { return cluster_cameras->remove(id); };
    options.cluster_cameras = [cluster_cameras] {
      std::vector<ClusterCameraInfo> out;
      for (ClusterCamera& c : cluster_cameras->view()) out.push_back({std::move(c.id), std::move(c.owner), std::move(c.http), c.done});
      return out;
    };
    options.node = node;
  }
  return ApiServer::start(engine, std::move(options));
}

// What `vigil ingest` adds to `vigil run`: every model of the config on the cluster's workers
// (backend remote), and this node in the cluster's registry. Redis unreachable or refusing the
// password, or a cluster with other models or shards, fails in start(), before any work.
class IngestNode {
 public:
  static Result<std::unique_ptr<IngestNode>> start(EngineConfig& config, const RunOptions& options) {
    auto url = parse_redis_url(options.redis_url);
    if (!url.ok()) return url.error();
    RemoteOptions remote;
    remote.url = *url;
    remote.node = options.node.empty() ? default_cluster_name() : options.node;
    remote.prefix = config.cluster.prefix;
    remote.shards = config.cluster.shards;
    remote.max_len = config.cluster.max_len;
    remote.reply_timeout = std::chrono::milliseconds(config.cluster.reply_timeout_ms);
    for (auto& [name, model] : config.models) {
      remote.models[model.settings.model_path] = name;
      model.settings.backend = BackendKind::remote;
    }
    auto models = RemoteModels::start(std::move(remote));
    if (!models.ok()) return models.error();
    std::unique_ptr<IngestNode> node(new IngestNode(std::move(models).value()));
    auto joined = join_cluster(*url, config, "ingest", node->remote_->options().node, "", [n = node.get()] { return n->rates(); });
    if (!joined.ok()) return joined.error();
    node->registry_ = std::move(joined).value();
    node->remote_->install();
    std::printf("vigil ingest: node %s, models on the workers of %s\n", node->remote_->options().node.c_str(), url->redacted().c_str());
    std::fflush(stdout);
    return node;
  }
  ~IngestNode() {
    leases_.reset();
    registry_.reset();  // its heartbeat stops first
  }

  // The heartbeat reports this engine's cameras and rate (and `http`) until detach().
  void attach(Engine* engine, std::string http) {
    MutexLock lock(mu_);
    engine_ = engine;
    registry_->set_http(std::move(http));
  }
  void detach() {
    stop_leases();
    MutexLock lock(mu_);
    engine_ = nullptr;
  }
  RemoteModels& remote() { return *remote_; }
  CameraLeases* leases() { return leases_.get(); }

  // The config's cameras go to the cluster's camera list (their YAML as written, so that each
  // node expands ${...} itself) instead of this engine: the leases start each on one node.
  Status seed_cameras(EngineConfig& config, const std::string& config_path) {
    std::vector<std::pair<std::string, std::string>> specs;
    try {
      const YAML::Node cameras = YAML::LoadFile(config_path)["cameras"];
      for (std::size_t i = 0; cameras && i < cameras.size(); ++i) {
        YAML::Emitter out;
        out << YAML::Flow << cameras[i];
        specs.emplace_back(config.cameras.at(i).id, out.c_str());
      }
    } catch (const std::exception& e) {
      return Error{ErrorCode::invalid_argument, config_path + ": " + e.what()};
    }
    auto redis = RedisConnection::connect(remote_->options().url, std::chrono::milliseconds(2000));
    if (!redis.ok()) return redis.error();
    // The first node of a cluster starts a new run: files read to their end before are read again.
    auto procs = list_processes(**redis, config.cluster.prefix);
    if (!procs.ok()) return procs.error();
    const bool first = std::none_of(procs->begin(), procs->end(), [&](const ProcessInfo& p) {
      return p.role == "ingest" && p.id != remote_->options().node;
    });
    if (first) {
      auto reset = (*redis)->command({"DEL", config.cluster.prefix + ":done"});
      if (!reset.ok()) return reset.error();
    }
    seed_ = std::move(specs);  // the leases put them in the list when they start
    config.cameras.clear();
    return {};
  }

  // Takes cameras from the cluster's list into `engine` (and out of it) from now on; stops the
  // engine once every camera of the list is a file read to its end.
  Status start_leases(Engine* engine, const EngineConfig& config) {
    LeaseOptions o;
    o.url = remote_->options().url;
    o.prefix = config.cluster.prefix;
    o.node = remote_->options().node;
    o.lease = std::chrono::milliseconds(config.cluster.lease_ms);
    o.tick = std::min(std::chrono::milliseconds(500), o.lease / 5);
    o.seed = seed_;
    LeaseCallbacks c;
    c.acquired = [this, engine, config](const LeasedCamera& leased) -> Status {
      if (!accepting_.load()) return Error{ErrorCode::cancelled, "the node is stopping"};
      auto camera = parse_camera_config(leased.spec, config, "cluster camera " + leased.id);
      if (!camera.ok()) return camera.error();
      camera->lease_until = leased.until;
      VIGIL_RETURN_IF_ERROR(engine->add_camera(*camera));
      if (!leased.previous_owner.empty()) {
        Event event;
        event.kind = EventKind::camera_state;
        event.camera = leased.id;
        event.detail = "taken over from node " + leased.previous_owner + " (its tracks start again here)";
        engine->events().publish(std::move(event));
        spdlog::info("camera {}: taken over from node {}", leased.id, leased.previous_owner);
      }
      return {};
    };
    c.released = [engine](const std::string& id, const std::string& why) {
      spdlog::info("camera {}: released ({})", id, why);
      (void)engine->remove_camera(id);
    };
    c.ended = [this, engine](const std::string& id) {
      // Never waits (the leases' thread renews the others' leases): a file whose last results
      // are still at a worker ends on a later tick.
      const std::optional<CameraLatest> cam = engine->latest(id);
      if (!cam || (cam->state != CameraState::stopped && cam->state != CameraState::failed)) return false;
      if (!engine->camera_finished(id)) return false;
      auto last = engine->finish_camera(id);  // returns at once: every result of it delivered
      // Stopped meanwhile (a signal, --duration): not read to its end; it stays in the list.
      if (!last.ok() && last.error().code == ErrorCode::cancelled) return false;
      if (last.ok()) {
        MutexLock lock(mu_);
        finished_.push_back(*last);
      }
      return true;
    };
    c.movable = [config](const std::string& spec) {
      auto camera = parse_camera_config(spec, config, "cluster camera");
      return camera.ok() && camera->source.type != SourceType::file;
    };
    c.finished = [engine] { engine->request_stop(); };
    auto leases = CameraLeases::start(std::move(o), std::move(c));
    if (!leases.ok()) return leases.error();
    leases_ = std::move(leases).value();
    return {};
  }
  // The cameras this node read to their end (and removed from its engine), last status each.
  std::vector<CameraStatus> finished_cameras() {
    MutexLock lock(mu_);
    return finished_;
  }
  // The run is over: no camera is taken any more (those held are given back in stop_leases).
  void stop_accepting() { accepting_.store(false); }
  // Before the engine goes: its cameras are given back to the cluster.
  void stop_leases() {
    if (leases_) leases_->stop();
  }

 private:
  explicit IngestNode(std::shared_ptr<RemoteModels> remote) : remote_(std::move(remote)) {}
  // On the heartbeat's thread.
  std::string rates() {
    MutexLock lock(mu_);
    if (engine_ == nullptr) return "starting";
    const EngineStatus st = engine_->status();
    std::uint64_t inferred = 0;
    std::string cameras;
    for (const auto& c : st.cameras) {
      inferred += c.frames_inferred;
      cameras += (cameras.empty() ? "" : ",") + c.id;
    }
    registry_->set_cameras(cameras);
    const auto now = std::chrono::steady_clock::now();
    const double s = std::chrono::duration<double>(now - last_at_).count();
    const double fps = last_inferred_ == 0 || s <= 0 ? 0.0 : static_cast<double>(inferred - last_inferred_) / s;
    last_inferred_ = inferred;
    last_at_ = now;
    char line[96];
    std::snprintf(line, sizeof line, "%zu cameras, %.1f fps inferred", st.cameras.size(), fps);
    return line;
  }

  std::shared_ptr<RemoteModels> remote_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<CameraLeases> leases_;
  std::atomic<bool> accepting_{true};
  std::vector<std::pair<std::string, std::string>> seed_;  // the config's cameras: id, YAML
  std::vector<CameraStatus> finished_ GUARDED_BY(mu_);  // cameras read to their end here
  Mutex mu_;
  Engine* engine_ GUARDED_BY(mu_) = nullptr;
  std::uint64_t last_inferred_ GUARDED_BY(mu_) = 0;
  std::chrono::steady_clock::time_point last_at_ GUARDED_BY(mu_);
};

void print_cluster_counters(const RemoteModels& models, std::uint64_t frames) {
  const RemoteCounters c = models.counters();
  const double per_frame = frames > 0 ? 1.0 / static_cast<double>(frames) : 0.0;
  std::printf("vigil ingest: %llu requests, %llu replies, %llu sent again, %llu duplicate replies dropped, %llu dropped as late, "
              "%llu failed, %llu reconnects; Redis %.2f round trips and %.1f KB per frame inferred\n",
              static_cast<unsigned long long>(c.requests), static_cast<unsigned long long>(c.replies),
              static_cast<unsigned long long>(c.resent), static_cast<unsigned long long>(c.duplicates),
              static_cast<unsigned long long>(c.deadline), static_cast<unsigned long long>(c.failed),
              static_cast<unsigned long long>(c.reconnects), static_cast<double>(c.round_trips) * per_frame,
              static_cast<double>(c.bytes) * per_frame / 1024.0);
}

// What a camera lost after decoding, when it lost anything: frames a model failed on, live
// frames dropped as late and results fenced (the live edge's replaced frames are above).
std::string dropped_line(const CameraStatus& c) {
  if (c.stage_errors + c.frames_late + c.frames_fenced == 0) return "";
  char line[128];
  std::snprintf(line, sizeof line, ", dropped: %llu failed, %llu late, %llu fenced", static_cast<unsigned long long>(c.stage_errors),
                static_cast<unsigned long long>(c.frames_late), static_cast<unsigned long long>(c.frames_fenced));
  return line;
}

double worst_age_p99(const EngineStatus& status) {
  double worst = 0;
  for (const auto& c : status.cameras) worst = std::max(worst, c.age_p99_ms);
  return worst;
}

}  // namespace

int run_command(const RunOptions& options) {
  auto config = load_config_file(options.config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", config.error().message.c_str());
    return 2;
  }
  setup_logging(config->log_level);
  SignalWatcher::block_in_this_thread();  // before the engine starts any thread
  std::unique_ptr<IngestNode> ingest;  // outlives the engine, whose models it backs
  if (!options.redis_url.empty()) {
    auto started = IngestNode::start(*config, options);
    if (!started.ok()) {
      std::fprintf(stderr, "vigil: error: %s\n", started.error().message.c_str());
      return 2;
    }
    ingest = std::move(started).value();
    if (Status s = ingest->seed_cameras(*config, options.config_path); !s.ok()) {
      std::fprintf(stderr, "vigil: error: %s\n", s.error().message.c_str());
      return 2;
    }
  }

  // Counts for the summary line, from the engine's result hook (atomics: workers call it).
  std::atomic<std::uint64_t> frames_with_faces{0}, faces_seen{0};
  EngineHooks hooks;
  hooks.on_result = [&](const FrameResult& r) {
    if (r.detected && !r.detections.empty()) {
      frames_with_faces.fetch_add(1, std::memory_order_relaxed);
      faces_seen.fetch_add(r.detections.size(), std::memory_order_relaxed);
    }
  };
  auto engine = Engine::create(*config, hooks);
  if (!engine.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", engine.error().message.c_str());
    return engine.error().code == ErrorCode::invalid_argument || engine.error().code == ErrorCode::not_found ? 2 : 1;
  }
  // The ingest node's heartbeat lets go of the engine before the engine goes.
  const std::unique_ptr<IngestNode, void (*)(IngestNode*)> detach(ingest.get(), [](IngestNode* n) {
    if (n != nullptr) n->detach();
  });
  std::unique_ptr<EventStore> store;  // destroyed before the engine: it listens to its bus
  if (!config->store.path.empty()) {
    EventStoreOptions store_options;
    store_options.path = config->store.path;
    store_options.max_age_s = config->store.max_age_days * 86400.0;
    store_options.max_bytes = static_cast<std::int64_t>(config->store.max_mb * 1024 * 1024);
    store_options.queue_capacity = static_cast<std::size_t>(config->store.queue);
    auto opened = EventStore::open(store_options);
    if (!opened.ok()) {
      std::fprintf(stderr, "vigil: error: %s\n", opened.error().message.c_str());
      return opened.error().code == ErrorCode::failed_precondition ? 2 : 1;
    }
    store = std::move(opened).value();
    store->attach((*engine)->events());
  }
  if (ingest) {
    if (Status s = ingest->start_leases(engine->get(), *config); !s.ok()) {
      std::fprintf(stderr, "vigil: error: %s\n", s.error().message.c_str());
      return 1;
    }
  }
  auto api = start_api(**engine, *config, store.get(), ingest ? ingest->leases() : nullptr, ingest ? ingest->remote().options().node : "");
  if (!api.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", api.error().message.c_str());
    return api.error().code == ErrorCode::invalid_argument ? 2 : 1;
  }
  if (*api) {
    const std::string host = config->http.host.find(':') != std::string::npos ? "[" + config->http.host + "]" : config->http.host;
    std::printf("vigil run: wall at http://%s:%d/ , API at http://%s:%d/api/v1/cameras\n", host.c_str(), (*api)->port(),
                host.c_str(), (*api)->port());
    std::fflush(stdout);
  }
  if (ingest) {
    const std::string host = config->http.host.find(':') != std::string::npos ? "[" + config->http.host + "]" : config->http.host;
    ingest->attach(engine->get(), *api ? "http://" + host + ":" + std::to_string((*api)->port()) : "");
  }
  const double cpu_start = process_cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  Status status;
  {
    SignalWatcher watcher([&] {
      (*engine)->request_stop();
      // In-flight remote calls get one reply timeout to finish, then fail.
      if (ingest) ingest->remote().cancel(std::chrono::milliseconds(config->cluster.reply_timeout_ms));
    });
    status = (*engine)->run(options.duration_s);
    if (ingest) ingest->stop_accepting();
  }
  if (store) {
    store->flush();
    std::printf("vigil run: %llu events stored in %s (%llu dropped)\n", static_cast<unsigned long long>(store->written()),
                config->store.path.c_str(), static_cast<unsigned long long>(store->dropped()));
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cores = wall > 0 ? (process_cpu_seconds() - cpu_start) / wall : 0;
  EngineStatus st = (*engine)->status();
  if (ingest) {  // the files this node read to their end left its engine: their last status
    for (CameraStatus& c : ingest->finished_cameras()) st.cameras.push_back(std::move(c));
  }
  std::uint64_t decoded = 0, inferred = 0;
  for (const auto& c : st.cameras) {
    decoded += c.frames_decoded;
    inferred += c.frames_inferred;
  }
  std::uint64_t batches = 0;
  for (const auto& m : st.models) batches += m.batches;
  const std::uint64_t with_faces = frames_with_faces.load();
  const std::uint64_t faces = faces_seen.load();
  std::printf("vigil run: %zu cameras, %llu frames decoded in %.1f s (%.1f fps), %llu inferred in %llu batches, "
              "faces in %llu frames (%llu faces), frame age p99 %.0f ms, capture to result p50 %.1f ms p99 %.1f ms, CPU %.2f cores\n",
              st.cameras.size(), static_cast<unsigned long long>(decoded), wall, static_cast<double>(decoded) / wall,
              static_cast<unsigned long long>(inferred), static_cast<unsigned long long>(batches),
              static_cast<unsigned long long>(with_faces), static_cast<unsigned long long>(faces),
              worst_age_p99(st), st.end_to_end_p50_ms, st.end_to_end_p99_ms, cores);
  // One line per camera (the first 32).
  std::size_t shown = 0;
  for (const auto& c : st.cameras) {
    if (++shown > 32) {
      std::printf("vigil run:   ... %zu more cameras\n", st.cameras.size() - 32);
      break;
    }
    std::printf("vigil run:   %-16s %-10s decoded %llu (%.1f fps), inferred %llu (%.1f fps), replaced %llu, "
                "skipped %llu, tracks %llu, faces embedded %llu of %llu, errors %llu, reconnects %llu, age p99 %.0f ms%s%s%s\n",
                c.id.c_str(), to_string(c.state), static_cast<unsigned long long>(c.frames_decoded), c.decode_fps,
                static_cast<unsigned long long>(c.frames_inferred), c.infer_fps,
                static_cast<unsigned long long>(c.frames_replaced), static_cast<unsigned long long>(c.frames_skipped),
                static_cast<unsigned long long>(c.tracks_started), static_cast<unsigned long long>(c.faces_embedded),
                static_cast<unsigned long long>(c.faces_detected), static_cast<unsigned long long>(c.decode_errors), static_cast<unsigned long long>(c.reconnects),
                c.age_p99_ms, dropped_line(c).c_str(), c.last_error.empty() ? "" : ", last error: ", c.last_error.c_str());
  }
  for (const auto& m : st.models) {  // batching factor per model
    std::printf("vigil run: model %s: %llu calls, %llu items (%.2f per call), latency p50 %.1f ms\n", m.name.c_str(),
                static_cast<unsigned long long>(m.batches), static_cast<unsigned long long>(m.items),
                m.batches ? static_cast<double>(m.items) / static_cast<double>(m.batches) : 0.0, m.latency_p50_ms);
  }
  std::uint64_t faces_detected = 0, faces_embedded = 0;
  for (const auto& c : st.cameras) faces_detected += c.faces_detected, faces_embedded += c.faces_embedded;
  if (faces_embedded > 0) {
    std::printf("vigil run: faces: %llu embedded of %llu detected (1 per %.1f)\n",
                static_cast<unsigned long long>(faces_embedded), static_cast<unsigned long long>(faces_detected),
                static_cast<double>(faces_detected) / static_cast<double>(faces_embedded));
  }
  if (ingest) print_cluster_counters(ingest->remote(), inferred);
  for (const auto& sink : config->sinks) std::printf("vigil run: results in %s\n", sink.jsonl.path.c_str());
  std::fflush(stdout);
  if (!status.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", status.error().message.c_str());
    return 1;
  }
  return 0;
}

}  // namespace vigil
