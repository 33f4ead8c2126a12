#include "vigil/cli/config_loader.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <algorithm>
#include <set>
#include <sstream>

#include "vigil/core/paths.h"

namespace vigil {

namespace {

struct ConfigError {
  std::string path;
  std::string message;
};

[[noreturn]] void fail(const std::string& path, const std::string& message) { throw ConfigError{path, message}; }

// A YAML mapping with its path; records the keys read so leftovers can be reported.
class Fields {
 public:
  // Fails on any key not in `known`, first: a typo is reported as itself, not as the
  // required key it was meant to be.
  Fields(YAML::Node node, std::string path, std::initializer_list<const char*> known)
      : node_(std::move(node)), path_(std::move(path)) {
    if (!node_.IsMap()) fail(path_, "expected a mapping");
    for (const auto& item : node_) {
      const std::string key = item.first.as<std::string>();
      if (std::none_of(known.begin(), known.end(), [&](const char* k) { return key == k; })) {
        fail(child_path(key), "unknown key");
      }
    }
  }

  std::string child_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  bool has(const std::string& key) {
    return static_cast<bool>(node_[key]);
  }
  YAML::Node node(const std::string& key) {
    return node_[key];
  }

  template <class T>
  T get(const std::string& key, T fallback) {
    YAML::Node value = node(key);
    if (!value) return fallback;
    return convert<T>(value, child_path(key));
  }
  template <class T>
  T required(const std::string& key) {
    YAML::Node value = node(key);
    if (!value || value.IsNull()) fail(child_path(key), "required");
    return convert<T>(value, child_path(key));
  }

  template <class T>
  static T convert(const YAML::Node& value, const std::string& path) {
    if (!value.IsScalar()) fail(path, std::string("expected ") + type_name<T>());
    try {
      return value.as<T>();
    } catch (const YAML::Exception&) {
      fail(path, std::string("expected ") + type_name<T>() + ", got '" + value.Scalar() + "'");
    }
  }
  template <class T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    if constexpr (std::is_integral_v<T>) return "an integer";
    if constexpr (std::is_floating_point_v<T>) return "a number";
    return "a string";
  }

  const std::string& path() const { return path_; }

 private:
  YAML::Node node_;
  std::string path_;
};

template <class T>
T in_range(T value, T lo, T hi, const std::string& path) {
  if (value < lo || value > hi) {
    std::ostringstream out;
    out << "must be between " << lo << " and " << hi << ", got " << value;
    fail(path, out.str());
  }
  return value;
}

std::string one_of(const std::string& value, std::initializer_list<const char*> choices, const std::string& path) {
  std::string list;
  for (const char* c : choices) {
    if (value == c) return value;
    list += list.empty() ? "" : ", ";
    list += c;
  }
  fail(path, "must be one of " + list + ", got '" + value + "'");
}

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  }
  return true;
}

SourceConfig parse_source(const YAML::Node& node, const std::string& path) {
  Fields f(node, path,
           {"type", "url", "decoder_threads", "loop", "realtime", "stride", "open_timeout_ms", "read_timeout_ms",
            "rtsp_transport", "pattern", "path", "width", "height", "fps", "live", "zoom_min", "zoom_max",
            "pan_period_s", "reconnect", "reconnect_initial_ms", "reconnect_max_ms", "faults"});
  SourceConfig s;
  const std::string type = one_of(f.required<std::string>("type"), {"file", "stream", "synthetic"}, f.child_path("type"));
  s.type = type == "file" ? SourceType::file : type == "stream" ? SourceType::stream : SourceType::synthetic;
  s.url = expand_path(f.get<std::string>("url", ""));
  s.decoder_threads = in_range(f.get("decoder_threads", s.decoder_threads), 1, 64, f.child_path("decoder_threads"));
  s.loop = f.get("loop", s.loop);
  s.realtime = f.get("realtime", s.realtime);
  s.stride = in_range(f.get("stride", s.stride), 1, 10000, f.child_path("stride"));
  if (s.stride > 1 && s.type != SourceType::file) fail(f.child_path("stride"), "is for file sources");
  s.open_timeout_ms = in_range(f.get("open_timeout_ms", s.open_timeout_ms), 100, 600000, f.child_path("open_timeout_ms"));
  s.read_timeout_ms = in_range(f.get("read_timeout_ms", s.read_timeout_ms), 100, 600000, f.child_path("read_timeout_ms"));
  s.rtsp_transport = one_of(f.get<std::string>("rtsp_transport", s.rtsp_transport), {"tcp", "udp"},
                            f.child_path("rtsp_transport"));
  const std::string pattern =
      one_of(f.get<std::string>("pattern", "procedural"), {"procedural", "image", "video"}, f.child_path("pattern"));
  s.pattern = pattern == "image" ? SyntheticPattern::image
              : pattern == "video" ? SyntheticPattern::video
                                   : SyntheticPattern::procedural;
  s.path = expand_path(f.get<std::string>("path", ""));
  s.width = in_range(f.get("width", s.width), 16, 8192, f.child_path("width"));
  s.height = in_range(f.get("height", s.height), 16, 8192, f.child_path("height"));
  if (s.width % 2 || s.height % 2) fail(f.child_path(s.width % 2 ? "width" : "height"), "must be even");
  s.fps = in_range(f.get("fps", s.fps), 0.1, 1000.0, f.child_path("fps"));
  // Live by kind unless the config says otherwise: streams and paced synthetic cameras are,
  // files are not (unless delivered in real time).
  s.live = f.get("live", s.type == SourceType::file ? s.realtime : true);
  s.reconnect = f.get("reconnect", s.reconnect);
  s.reconnect_initial_ms =
      in_range(f.get("reconnect_initial_ms", s.reconnect_initial_ms), 10, 600000, f.child_path("reconnect_initial_ms"));
  s.reconnect_max_ms = in_range(f.get("reconnect_max_ms", std::max(s.reconnect_max_ms, s.reconnect_initial_ms)),
                                s.reconnect_initial_ms, 3600000, f.child_path("reconnect_max_ms"));
  if (f.has("faults")) {
    Fields x(f.node("faults"), f.child_path("faults"), {"every_s", "kinds", "stall_s", "disconnect_s", "jitter_ms"});
    FaultConfig& fc = s.faults;
    fc.every_s = in_range(x.get("every_s", fc.every_s), 0.0, 86400.0, x.child_path("every_s"));
    fc.stall_s = in_range(x.get("stall_s", fc.stall_s), 0.0, 3600.0, x.child_path("stall_s"));
    fc.disconnect_s = in_range(x.get("disconnect_s", fc.disconnect_s), 0.0, 3600.0, x.child_path("disconnect_s"));
    fc.jitter_ms = in_range(x.get("jitter_ms", fc.jitter_ms), 0.0, 10000.0, x.child_path("jitter_ms"));
    if (YAML::Node kinds = x.node("kinds")) {
      if (!kinds.IsSequence() || kinds.size() == 0) fail(x.child_path("kinds"), "expected a list of stall, disconnect, corrupt");
      fc.kinds.clear();
      for (std::size_t k = 0; k < kinds.size(); ++k) {
        const std::string at = x.child_path("kinds") + "[" + std::to_string(k) + "]";
        const std::string kind = one_of(Fields::convert<std::string>(kinds[k], at), {"stall", "disconnect", "corrupt"}, at);
        fc.kinds.push_back(kind == "stall" ? FaultKind::stall : kind == "disconnect" ? FaultKind::disconnect : FaultKind::corrupt);
      }
    }
    if (fc.every_s > 0 && fc.every_s <= std::max(fc.stall_s, fc.disconnect_s)) {
      fail(x.child_path("every_s"), "must be longer than stall_s and disconnect_s");
    }
  }
  s.zoom_min = in_range(f.get("zoom_min", s.zoom_min), 1.0, 50.0, f.child_path("zoom_min"));
  s.zoom_max = in_range(f.get("zoom_max", std::max(s.zoom_max, s.zoom_min)), s.zoom_min, 50.0, f.child_path("zoom_max"));
  s.pan_period_s = in_range(f.get("pan_period_s", s.pan_period_s), 0.1, 86400.0, f.child_path("pan_period_s"));

  if (s.type != SourceType::synthetic && s.url.empty()) fail(f.child_path("url"), "required for type '" + type + "'");
  if (s.type == SourceType::stream && s.url.find("://") == std::string::npos) {
    fail(f.child_path("url"), "a stream needs a URL such as rtsp://host/path, got '" + s.url + "'");
  }
  if (s.type == SourceType::synthetic && s.pattern != SyntheticPattern::procedural && s.path.empty()) {
    fail(f.child_path("path"), "required for pattern '" + pattern + "'");
  }
  return s;
}

// The kinds that take an optional setting, for the message when another kind is given it.
std::string kinds_with(const std::string& setting) {
  std::string list;
  for (const std::string& name : model_kind_names()) {
    const ModelKind& k = *find_model_kind(name);
    if (std::find(k.settings.begin(), k.settings.end(), setting) == k.settings.end()) continue;
    list += (list.empty() ? "" : ", ") + name;
  }
  return list;
}

// A model of any kind in the table (pipeline/model_kinds.h): the settings every kind has,
// then the ones its kind takes, checked by the kind.
ModelConfig parse_model(const YAML::Node& node, const std::string& path) {
  Fields f(node, path,
           {"kind", "path", "backend", "precision", "input_size", "max_batch", "max_delay_ms", "score_threshold", "nms_iou", "nms"});
  const std::string kind_name = f.get<std::string>("kind", "blazeface");
  const ModelKind* kind = find_model_kind(kind_name);
  if (!kind) {
    std::string list;
    for (const std::string& name : model_kind_names()) list += (list.empty() ? "" : ", ") + name;
    fail(f.child_path("kind"), "must be one of " + list + ", got '" + kind_name + "'");
  }
  ModelConfig m = ModelConfig::of_kind(kind_name);
  ModelSettings& s = m.settings;
  s.backend =
      *parse_backend_kind(one_of(f.get<std::string>("backend", "auto"), {"auto", "opencv", "xnnpack", "onednn"}, f.child_path("backend")));
  s.precision = *parse_precision(one_of(f.get<std::string>("precision", "fp32"), {"fp32", "bf16"}, f.child_path("precision")));
  if (s.precision == Precision::bf16 && s.backend != BackendKind::automatic && s.backend != BackendKind::onednn) {
    fail(f.child_path("precision"), "bf16 runs on backend onednn (or auto), not " + std::string(to_string(s.backend)));
  }
  s.model_path = expand_path(f.required<std::string>("path"));
  s.max_batch = in_range(f.get("max_batch", s.max_batch), 1, 1024, f.child_path("max_batch"));
  m.max_delay_ms = in_range(f.get("max_delay_ms", m.max_delay_ms), 0.0, 10000.0, f.child_path("max_delay_ms"));
  for (const char* key : {"input_size", "score_threshold", "nms_iou", "nms"}) {
    if (!f.has(key) || std::find(kind->settings.begin(), kind->settings.end(), key) != kind->settings.end()) continue;
    const std::string others = kinds_with(key);
    fail(f.child_path(key), "not a setting of a " + kind_name + (others.empty() ? "" : " (kinds with it: " + others + ")"));
  }
  s.input_size = f.get("input_size", s.input_size);
  s.score_threshold = in_range(f.get("score_threshold", s.score_threshold), 0.01f, 0.99f, f.child_path("score_threshold"));
  s.nms_iou = in_range(f.get("nms_iou", s.nms_iou), 0.01f, 0.99f, f.child_path("nms_iou"));
  if (f.has("nms")) s.nms = one_of(f.get<std::string>("nms", ""), {"weighted", "hard"}, f.child_path("nms")) == "hard" ? NmsMode::hard : NmsMode::weighted;
  if (kind->check) {
    const auto [setting, problem] = kind->check(s);
    if (!problem.empty()) fail(f.child_path(setting), problem);
  }
  return m;
}

// `track: false`, `track: true`, or a mapping of tracker settings over `t` (the detector
// kind's scores).
TrackConfig parse_track(const YAML::Node& node, const std::string& path, TrackConfig t) {
  if (node.IsScalar()) {
    t.enabled = Fields::convert<bool>(node, path);
    return t;
  }
  Fields f(node, path,
           {"enabled", "emit", "high_score", "low_score", "new_track_score", "confirm_hits", "match_iou", "lost_frames",
            "shot_cut", "keep_unconfirmed"});
  t.enabled = f.get("enabled", t.enabled);
  const std::string emit = one_of(f.get<std::string>("emit", "detections"), {"detections", "every_frame"},
                                  f.child_path("emit"));
  t.emit = emit == "every_frame" ? TrackEmit::every_frame : TrackEmit::detections;
  t.shot_cut = in_range(f.get("shot_cut", t.shot_cut), 0.0, 255.0, f.child_path("shot_cut"));
  t.keep_unconfirmed = f.get("keep_unconfirmed", t.keep_unconfirmed);
  TrackerConfig& c = t.tracker;
  c.high_score = in_range(f.get("high_score", c.high_score), 0.0f, 1.0f, f.child_path("high_score"));
  c.low_score = in_range(f.get("low_score", c.low_score), 0.0f, c.high_score, f.child_path("low_score"));
  c.new_track_score = in_range(f.get("new_track_score", c.new_track_score), 0.0f, 1.0f, f.child_path("new_track_score"));
  c.confirm_hits = in_range(f.get("confirm_hits", c.confirm_hits), 0, 1000, f.child_path("confirm_hits"));
  c.match_iou = in_range(f.get("match_iou", c.match_iou), 0.01f, 0.99f, f.child_path("match_iou"));
  c.lost_frames = in_range(f.get("lost_frames", c.lost_frames), 0, 100000, f.child_path("lost_frames"));
  return t;
}

// One camera, checked against the config's models (also what POST /api/v1/cameras takes).
CameraConfig parse_camera(const YAML::Node& node, const std::string& path, const EngineConfig& config) {
  Fields f(node, path, {"id", "source", "detect", "track", "faces"});
  CameraConfig camera;
  camera.id = f.required<std::string>("id");
  if (!valid_id(camera.id)) fail(f.child_path("id"), "use 1-64 letters, digits, '_', '-' or '.'");
  if (!f.has("source")) fail(f.child_path("source"), "required");
  camera.source = parse_source(f.node("source"), f.child_path("source"));
  if (f.has("detect")) {
    Fields d(f.node("detect"), f.child_path("detect"), {"model", "every", "fps"});
    camera.detect.model = d.get<std::string>("model", "");
    camera.detect.every = in_range(d.get("every", 1), 1, 100000, d.child_path("every"));
    camera.detect.fps = in_range(d.get("fps", 0.0), 0.0, 1000.0, d.child_path("fps"));
    if (d.has("every") && d.has("fps")) fail(d.child_path("fps"), "give either every or fps, not both");
  }
  std::vector<std::string> detectors, embedders;
  for (const auto& [name, m] : config.models) (m.is_detector() ? detectors : embedders).push_back(name);
  if (camera.detect.model.empty()) {
    if (detectors.size() != 1) fail(f.child_path("detect.model"), "required when there are several detectors");
    camera.detect.model = detectors.front();
  }
  if (!config.models.count(camera.detect.model)) {
    fail(f.child_path("detect.model"), "unknown model '" + camera.detect.model + "'");
  }
  if (!config.models.at(camera.detect.model).is_detector()) {
    fail(f.child_path("detect.model"), "'" + camera.detect.model + "' is a face_embedder, not a detector");
  }
  if (const ModelKind* kind = find_model_kind(config.models.at(camera.detect.model).kind)) {
    camera.track.tracker.high_score = kind->track_high_score;
    camera.track.tracker.new_track_score = kind->track_new_score;
  }
  if (f.has("track")) camera.track = parse_track(f.node("track"), f.child_path("track"), camera.track);
  // faces: the embedder's name, or false; by default the config's only face_embedder.
  if (f.has("faces")) {
    const YAML::Node faces = f.node("faces");
    const std::string value = Fields::convert<std::string>(faces, f.child_path("faces"));
    if (value == "false" || value == "off" || value == "no") {
      camera.faces_model.clear();
    } else if (value == "true" || value == "on" || value == "yes") {
      if (embedders.size() != 1) fail(f.child_path("faces"), "name the face_embedder model (there are " + std::to_string(embedders.size()) + ")");
      camera.faces_model = embedders.front();
    } else {
      if (!config.models.count(value) || config.models.at(value).is_detector()) {
        fail(f.child_path("faces"), "'" + value + "' is not a face_embedder model");
      }
      camera.faces_model = value;
    }
  } else if (embedders.size() == 1 && config.models.at(camera.detect.model).finds_faces()) {
    camera.faces_model = embedders.front();
  }
  if (!camera.faces_model.empty() && !config.models.at(camera.detect.model).finds_faces()) {
    fail(f.child_path("faces"), "'" + camera.detect.model + "' is a " + config.models.at(camera.detect.model).kind +
                                    " model: faces are embedded from a face detector's keypoints (blazeface or scrfd)");
  }
  return camera;
}

}  // namespace

Result<std::pair<std::string, int>> parse_listen_address(const std::string& listen) {
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return Error{ErrorCode::invalid_argument, "expected HOST:PORT, e.g. 127.0.0.1:8080"};
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(port) > 65535) {
    return Error{ErrorCode::invalid_argument, "port must be 0..65535"};
  }
  return std::make_pair(host, std::stoi(port));
}

namespace {

// http: {listen: "HOST:PORT", token, threads, max_connections, idle_timeout_s, max_body_bytes}
HttpConfig parse_http(const YAML::Node& node) {
  Fields f(node, "http", {"listen", "token", "threads", "max_connections", "idle_timeout_s", "max_body_bytes", "snapshot_cache"});
  HttpConfig http;
  auto listen = parse_listen_address(f.required<std::string>("listen"));
  if (!listen.ok()) fail("http.listen", listen.error().message);
  http.host = listen->first;
  http.port = listen->second;
  http.token = expand_path(f.get<std::string>("token", ""));  // token: ${VIGIL_TOKEN}
  http.threads = in_range(f.get("threads", http.threads), 1, 64, "http.threads");
  http.max_connections = in_range(f.get("max_connections", http.max_connections), 1, 100000, "http.max_connections");
  http.idle_timeout_s = in_range(f.get("idle_timeout_s", http.idle_timeout_s), 1, 3600, "http.idle_timeout_s");
  http.snapshot_cache = f.get("snapshot_cache", true);
  http.max_body_bytes = in_range(f.get("max_body_bytes", http.max_body_bytes), 1024, 16 * 1024 * 1024, "http.max_body_bytes");
  return http;
}

// cluster: {prefix, shards, max_len, reply_timeout_ms, max_age_ms, claim_idle_ms, max_deliveries, block_ms, lease_ms}
ClusterConfig parse_cluster(const YAML::Node& node) {
  Fields f(node, "cluster",
           {"prefix", "shards", "max_len", "reply_timeout_ms", "max_age_ms", "claim_idle_ms", "max_deliveries", "block_ms", "lease_ms"});
  ClusterConfig c;
  c.prefix = f.get<std::string>("prefix", c.prefix);
  if (c.prefix.empty() || c.prefix.find_first_of("{} ") != std::string::npos) {
    fail("cluster.prefix", "must be a non-empty key prefix without braces or spaces");
  }
  c.shards = in_range(f.get("shards", c.shards), 1, 1024, "cluster.shards");
  c.max_len = in_range<std::int64_t>(f.get<std::int64_t>("max_len", c.max_len), 100, 100000000, "cluster.max_len");
  c.reply_timeout_ms = in_range(f.get("reply_timeout_ms", c.reply_timeout_ms), 10, 3600000, "cluster.reply_timeout_ms");
  c.max_age_ms = in_range(f.get("max_age_ms", c.max_age_ms), 1, 3600000, "cluster.max_age_ms");
  c.claim_idle_ms = in_range(f.get("claim_idle_ms", c.claim_idle_ms), 10, 3600000, "cluster.claim_idle_ms");
  c.max_deliveries = in_range(f.get("max_deliveries", c.max_deliveries), 1, 1000, "cluster.max_deliveries");
  c.block_ms = in_range(f.get("block_ms", c.block_ms), 1, 60000, "cluster.block_ms");
  c.lease_ms = in_range(f.get("lease_ms", c.lease_ms), 500, 600000, "cluster.lease_ms");
  return c;
}

EngineConfig parse_root(const YAML::Node& root, ConfigUse use) {
  if (!root || root.IsNull()) fail("", "the config is empty");
  Fields top(root, "",
             {"models", "cameras", "sinks", "threads", "cpu_budget", "workers", "log_level", "status_interval_s", "identity",
              "http", "store", "offline", "cluster"});
  EngineConfig config;
  config.offline = top.get("offline", false);

  YAML::Node models = top.node("models");
  if (!models || !models.IsMap() || models.size() == 0) fail("models", "required: a mapping of model name to settings");
  for (const auto& item : models) {
    const std::string name = item.first.as<std::string>();
    if (!valid_id(name)) fail("models." + name, "model names use letters, digits, '_', '-' and '.'");
    config.models[name] = parse_model(item.second, "models." + name);
  }

  YAML::Node cameras = top.node("cameras");
  const bool listed = cameras && cameras.IsSequence() && cameras.size() > 0;
  if (!listed && (use == ConfigUse::engine || cameras)) fail("cameras", "required: a list of cameras");
  std::set<std::string> ids;
  for (std::size_t i = 0; listed && i < cameras.size(); ++i) {
    const std::string path = "cameras[" + std::to_string(i) + "]";
    CameraConfig camera = parse_camera(cameras[i], path, config);
    if (!ids.insert(camera.id).second) fail(path + ".id", "duplicate camera id '" + camera.id + "'");
    const std::string refusal = config.offline ? offline_refusal(camera.source) : "";
    if (!refusal.empty()) fail(path + ".source", refusal);
    config.cameras.push_back(std::move(camera));
  }

  if (YAML::Node sinks = top.node("sinks")) {
    if (!sinks.IsSequence()) fail("sinks", "expected a list");
    for (std::size_t i = 0; i < sinks.size(); ++i) {
      Fields f(sinks[i], "sinks[" + std::to_string(i) + "]", {"type", "path", "fsync"});
      SinkConfig sink;
      sink.type = one_of(f.required<std::string>("type"), {"jsonl"}, f.child_path("type"));
      sink.jsonl.path = expand_path(f.required<std::string>("path"));
      sink.jsonl.fsync = f.get("fsync", false);
          config.sinks.push_back(std::move(sink));
    }
  }
  if (top.has("identity")) {
    Fields id(top.node("identity"), "identity",
              {"gallery", "threshold", "margin", "anon_threshold", "max_embeddings", "min_gain"});
    IdentityConfig& c = config.identity;
    if (id.has("gallery")) config.gallery = expand_path(id.required<std::string>("gallery"));
    c.threshold = in_range(id.get("threshold", c.threshold), -1.0f, 1.0f, id.child_path("threshold"));
    c.margin = in_range(id.get("margin", c.margin), 0.0f, 2.0f, id.child_path("margin"));
    c.anon_threshold = in_range(id.get("anon_threshold", c.anon_threshold), -1.0f, 1.0f, id.child_path("anon_threshold"));
    c.max_embeddings = in_range(id.get("max_embeddings", c.max_embeddings), 1, 1000, id.child_path("max_embeddings"));
    c.min_gain = in_range(id.get("min_gain", c.min_gain), 0.0f, 10.0f, id.child_path("min_gain"));
  }
  if (top.has("threads")) {
    Fields t(top.node("threads"), "threads", {"inference"});
    config.inference_threads = in_range(t.get("inference", config.inference_threads), 0, 256, t.child_path("inference"));
  }
  if (YAML::Node budget = top.node("cpu_budget")) {
    if (budget.IsScalar()) {
      config.cpu_budget.cores = in_range(Fields::convert<double>(budget, "cpu_budget"), 0.1, 1024.0, "cpu_budget");
    } else {
      Fields b(budget, "cpu_budget", {"cores", "enforce"});
      config.cpu_budget.cores = in_range(b.required<double>("cores"), 0.1, 1024.0, b.child_path("cores"));
      config.cpu_budget.enforce = b.get("enforce", false);
    }
  }
  if (top.has("http")) config.http = parse_http(top.node("http"));
  if (top.has("store")) {
    Fields f(top.node("store"), "store", {"path", "max_age_days", "max_mb", "queue"});
    config.store.path = expand_path(f.get<std::string>("path", "out/vigil.db"));
    if (config.store.path.empty()) fail("store.path", "must not be empty");
    config.store.max_age_days = in_range(f.get("max_age_days", config.store.max_age_days), 0.0, 36500.0, "store.max_age_days");
    config.store.max_mb = in_range(f.get("max_mb", config.store.max_mb), 0.0, 1e7, "store.max_mb");
    config.store.queue = in_range(f.get("queue", config.store.queue), 1, 10000000, "store.queue");
  }
  if (top.has("cluster")) config.cluster = parse_cluster(top.node("cluster"));
  config.workers = in_range(top.get("workers", config.workers), 0, 256, "workers");
  config.log_level = one_of(top.get<std::string>("log_level", config.log_level),
                            {"trace", "debug", "info", "warn", "error", "off"}, "log_level");
  config.status_interval_s = in_range(top.get("status_interval_s", config.status_interval_s), 0.0, 3600.0,
                                      "status_interval_s");
  return config;
}

}  // namespace

Result<EngineConfig> parse_config(const std::string& yaml_text, const std::string& origin, ConfigUse use) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Error{ErrorCode::invalid_argument, origin + ":" + std::to_string(e.mark.line + 1) + ":" +
                                                  std::to_string(e.mark.column + 1) + ": malformed YAML: " + e.msg};
  }
  try {
    return parse_root(root, use);
  } catch (const ConfigError& e) {
    return Error{ErrorCode::invalid_argument, origin + ": " + (e.path.empty() ? "" : e.path + ": ") + e.message};
  } catch (const YAML::Exception& e) {
    return Error{ErrorCode::invalid_argument, origin + ": " + e.msg};
  }
}

Result<CameraConfig> parse_camera_config(const std::string& text, const EngineConfig& config, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(text);  // JSON is YAML
  } catch (const YAML::Exception& e) {
    return Error{ErrorCode::invalid_argument, origin + ": malformed: " + e.msg};
  }
  try {
    return parse_camera(root, "camera", config);
  } catch (const ConfigError& e) {
    return Error{ErrorCode::invalid_argument, origin + ": " + (e.path.empty() ? "" : e.path + ": ") + e.message};
  } catch (const YAML::Exception& e) {
    return Error{ErrorCode::invalid_argument, origin + ": " + e.msg};
  }
}

Result<EngineConfig> load_config_file(const std::string& path, ConfigUse use) {
  std::ifstream in(path);
  if (!in) return Error{ErrorCode::not_found, path + ": cannot read config file"};
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path, use);
}

}  // namespace vigil
