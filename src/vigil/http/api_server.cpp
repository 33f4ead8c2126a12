#include "vigil/http/api_server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string_view>

#include "vigil/core/metrics.h"
#include "vigil/http/router.h"
#include "vigil_web_wall.h"

namespace vigil {

namespace {

using nlohmann::json;

constexpr std::string_view kCameras = "/api/v1/cameras";

const char* source_type_name(SourceType type) {
  switch (type) {
    case SourceType::file: return "file";
    case SourceType::stream: return "stream";
    case SourceType::synthetic: return "synthetic";
  }
  return "unknown";
}

double epoch_seconds(SystemTime t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// A query argument, "" when absent.
std::string query_arg(const HttpRequest& request, const std::string& name) {
  const auto it = request.query.find(name);
  return it == request.query.end() ? std::string() : it->second;
}

// An integer query argument within [lo, hi]; `fallback` when absent; nullopt when malformed.
std::optional<long> int_arg(const HttpRequest& request, const std::string& name, long fallback, long lo, long hi) {
  auto it = request.query.find(name);
  if (it == request.query.end() || it->second.empty()) return fallback;
  char* end = nullptr;
  const long value = std::strtol(it->second.c_str(), &end, 10);
  if (*end != '\0' || value < lo || value > hi) return std::nullopt;
  return value;
}

json bbox_json(const BBox& b) { return {b.x1, b.y1, b.x2, b.y2}; }

json result_json(const FrameResult& r) {
  json detections = json::array();
  for (const Detection& d : r.detections) {
    json item = {{"bbox", bbox_json(d.bbox)}, {"score", d.score}};
    if (d.class_id >= 0) item["class_id"] = d.class_id;
    if (d.track_id) item["track_id"] = d.track_id;
    if (d.keypoint_count > 0) {
      json points = json::array();
      for (int k = 0; k < d.keypoint_count; ++k) points.push_back({d.keypoints[k].x, d.keypoints[k].y});
      item["keypoints"] = std::move(points);
    }
    if (d.keypoint_count == Detection::kMaxKeypoints) {  // a person's COCO keypoints: how sure the model is of each
      item["keypoint_scores"] = json(std::vector<float>(d.keypoint_scores.begin(), d.keypoint_scores.begin() + d.keypoint_count));
    }
    detections.push_back(std::move(item));
  }
  json tracks = json::array();
  for (const TrackedObject& t : r.tracks) {
    json item = {{"track_id", t.track_id}, {"bbox", bbox_json(t.bbox)}, {"score", t.score}, {"predicted", t.predicted}};
    if (!t.identity.empty()) {
      item["identity"] = {{"name", t.identity.name}, {"known", t.identity.known}, {"similarity", t.identity.similarity}};
    }
    tracks.push_back(std::move(item));
  }
  return {{"camera", *r.frame->camera},
          {"seq", r.frame->seq},
          {"captured_at", epoch_seconds(r.frame->captured_at)},
          {"width", r.frame->image.width},
          {"height", r.frame->image.height},
          {"model", std::string(r.model)},
          {"detected", r.detected},
          {"detections", std::move(detections)},
          {"tracks", std::move(tracks)}};
}

std::string redact(const std::string& text);

// `has_face`: the event has a face JPEG, served at /api/v1/events/{id}/face.jpg.
json event_json(const Event& e, bool has_face) {
  json item = {{"id", e.id}, {"at", epoch_seconds(e.at)}, {"type", to_string(e.kind)}, {"camera", e.camera}};
  if (e.kind == EventKind::camera_state) {
    item["from"] = to_string(e.from);
    item["to"] = to_string(e.to);
  } else {
    item["track_id"] = e.track_id;
    item["frame_seq"] = e.frame_seq;
    item["bbox"] = bbox_json(e.bbox);
  }
  if (!e.detail.empty()) item["detail"] = redact(e.detail);
  if (e.kind == EventKind::identity_matched) {
    item["similarity"] = e.similarity;
    item["known"] = e.known;
  }
  if (e.kind == EventKind::person_entered || e.kind == EventKind::person_left) item["people"] = e.people;
  if (has_face) item["face"] = "/api/v1/events/" + std::to_string(e.id) + "/face.jpg";
  return item;
}

bool known_event_type(const std::string& type) {
  for (EventKind k : kEventKinds) {
    if (type == to_string(k)) return true;
  }
  return false;
}

bool event_matches(const Event& e, const std::string& camera, const std::string& type) {
  return (camera.empty() || e.camera == camera) && (type.empty() || type == to_string(e.kind));
}

constexpr int kEventStreams = 1;  // HttpResponse::stream_kind of /api/v1/events/stream

// Server-Sent Events from the bus: every event after the last one sent (Last-Event-ID
// resumes), a comment every 15 s so that idle connections stay open through proxies.
class EventStream final : public HttpStream {
 public:
  EventStream(const EventBus& bus, std::uint64_t after, std::string camera, std::string type)
      : bus_(bus), last_id_(after), camera_(std::move(camera)), type_(std::move(type)) {}

  long read(char* buf, std::size_t max, Clock::time_point now, Clock::time_point& retry_at) override {
    if (offset_ >= pending_.size()) {
      pending_.clear();
      offset_ = 0;
      events_.clear();
      const bool complete = bus_.read(last_id_, 64, events_);
      if (!complete) pending_ += "event: dropped\ndata: {}\n\n";  // the ring moved past this reader
      for (const Event& e : events_) {
        last_id_ = e.id;
        if (!event_matches(e, camera_, type_)) continue;
        pending_ += "id: " + std::to_string(e.id) + "\nevent: " + to_string(e.kind) + "\ndata: " + event_json(e, e.face_jpeg != nullptr).dump() + "\n\n";
      }
      if (pending_.empty()) {
        if (now < next_heartbeat_) {
          retry_at = next_heartbeat_;
          return 0;
        }
        pending_ = ": keep-alive\n\n";
      }
      next_heartbeat_ = now + std::chrono::seconds(15);
    }
    const std::size_t n = std::min(max, pending_.size() - offset_);
    std::memcpy(buf, pending_.data() + offset_, n);
    offset_ += n;
    return static_cast<long>(n);
  }

 private:
  const EventBus& bus_;
  std::uint64_t last_id_;
  std::string camera_, type_;
  std::vector<Event> events_;
  std::string pending_;
  std::size_t offset_ = 0;
  Clock::time_point next_heartbeat_{};  // the first read sends one at once (headers reach the client)
};

// multipart/x-mixed-replace JPEG parts at up to `fps`: each part is a new frame (a
// repeated frame is not sent again), encoded through the snapshot cache, so any number of
// viewers of one camera cost one encode per frame. Ends when the camera is gone or not live.
class MjpegStream final : public HttpStream {
 public:
  static constexpr const char* kBoundary = "vigil-frame";
  MjpegStream(Engine& engine, SnapshotCache& cache, std::string camera, JpegOptions options, double fps)
      : engine_(engine), cache_(cache), camera_(std::move(camera)), options_(options),
        interval_(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / fps))) {}

  long read(char* buf, std::size_t max, Clock::time_point now, Clock::time_point& retry_at) override {
    if (offset_ >= part_size()) {
      if (now < next_due_) {
        retry_at = next_due_;
        return 0;
      }
      const std::optional<CameraLatest> latest = engine_.latest(camera_);
      if (!latest || latest->state != CameraState::live) return -1;
      if (!latest->result || (snapshot_ && latest->result->frame->seq == snapshot_->seq)) {
        retry_at = now + std::max<Clock::duration>(interval_ / 4, std::chrono::milliseconds(10));  // wait for a new frame
        return 0;
      }
      auto encoded = cache_.get(*latest->result, options_);
      if (!encoded.ok()) return -1;
      snapshot_ = *encoded;
      header_ = std::string("--") + kBoundary + "\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                std::to_string(snapshot_->jpeg.size()) + "\r\nX-Frame-Seq: " + std::to_string(snapshot_->seq) + "\r\n\r\n";
      offset_ = 0;
      next_due_ = std::max(now, next_due_ + interval_);
    }
    // header, then the JPEG, then CRLF
    std::size_t written = 0;
    while (written < max && offset_ < part_size()) {
      const std::uint8_t* from = nullptr;
      std::size_t left = 0;
      if (offset_ < header_.size()) {
        from = reinterpret_cast<const std::uint8_t*>(header_.data()) + offset_;
        left = header_.size() - offset_;
      } else if (offset_ < header_.size() + snapshot_->jpeg.size()) {
        from = snapshot_->jpeg.data() + (offset_ - header_.size());
        left = header_.size() + snapshot_->jpeg.size() - offset_;
      } else {
        from = reinterpret_cast<const std::uint8_t*>("\r\n") + (offset_ - header_.size() - snapshot_->jpeg.size());
        left = part_size() - offset_;
      }
      const std::size_t n = std::min(left, max - written);
      std::memcpy(buf + written, from, n);
      written += n;
      offset_ += n;
    }
    return static_cast<long>(written);
  }

 private:
  std::size_t part_size() const { return snapshot_ ? header_.size() + snapshot_->jpeg.size() + 2 : 0; }

  Engine& engine_;
  SnapshotCache& cache_;
  std::string camera_;
  JpegOptions options_;
  Clock::duration interval_;
  Clock::time_point next_due_{};
  std::shared_ptr<const Snapshot> snapshot_;
  std::string header_;
  std::size_t offset_ = 0;
};

}  // namespace

std::string redact_url(const std::string& url) {
  const std::size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const std::size_t authority = scheme + 3;
  const std::size_t end = url.find_first_of("/?#", authority);
  const std::size_t at = url.rfind('@', end == std::string::npos ? url.size() : end);
  if (at == std::string::npos || at < authority) return url;
  return url.substr(0, authority) + url.substr(at + 1);
}

namespace {
// Every URL inside a free text (an error message) redacted.
std::string redact(const std::string& text) {
  std::string out = text;
  std::size_t from = 0;
  while ((from = out.find("://", from)) != std::string::npos) {
    std::size_t start = from;
    while (start > 0 && std::isalpha(static_cast<unsigned char>(out[start - 1]))) --start;
    std::size_t end = out.find_first_of(" \t\n'\"", from);
    if (end == std::string::npos) end = out.size();
    const std::string url = redact_url(out.substr(start, end - start));
    out.replace(start, end - start, url);
    from = start + url.size();
  }
  return out;
}
}  // namespace

bool valid_camera_id(const std::string& id) {
  if (id.empty() || id.size() > 64 || id[0] == '.') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
  });
}

struct ApiServer::Impl {
  Engine& engine;
  ApiOptions options;
  SnapshotCache cache;
  Router router;
  std::unique_ptr<HttpServer> server;
  std::atomic<HttpServer*> serving{nullptr};  // set once the server runs (the bus subscriber reads it)
  EventBus::SubscriptionId subscription = 0;

  Impl(Engine& e, ApiOptions o) : engine(e), options(std::move(o)), cache(8, options.snapshot_cache) {}

  // Every endpoint, in one table (README lists them).
  static std::vector<Route> routes(Impl& s) {
    const auto bind = [&s](Status (Impl::*handler)(const HttpRequest&, const RouteParams&, HttpResponse&)) {
      return [&s, handler](const HttpRequest& q, const RouteParams& p, HttpResponse& r) { return (s.*handler)(q, p, r); };
    };
    constexpr unsigned kRead = kGet | kHead;
    return {
        {kRead, "/", Access::open, bind(&Impl::wall)},
        {kRead, "/index.html", Access::open, bind(&Impl::wall)},
        {kRead, "/healthz", Access::open, bind(&Impl::healthz)},
        {kRead, "/readyz", Access::open, bind(&Impl::readyz)},
        {kRead, "/metrics", Access::open, bind(&Impl::metrics)},
        {kRead, "/api/v1/cameras", Access::open, bind(&Impl::list_cameras)},
        {kRead, "/api/v1/cluster/cameras", Access::open, bind(&Impl::list_cluster_cameras)},
        {kPost, "/api/v1/cameras", Access::admin, bind(&Impl::add_camera)},
        {kRead, "/api/v1/cameras/{camera}", Access::open, bind(&Impl::show_camera)},
        {kDelete, "/api/v1/cameras/{camera}", Access::admin, bind(&Impl::remove_camera)},
        {kRead, "/api/v1/cameras/{camera}/snapshot.jpg", Access::open, bind(&Impl::snapshot)},
        {kRead, "/api/v1/cameras/{camera}/detections", Access::open, bind(&Impl::detections)},
        {kGet, "/api/v1/cameras/{camera}/stream.mjpg", Access::open, bind(&Impl::mjpeg)},
        {kRead, "/api/v1/events", Access::open, bind(&Impl::events)},
        {kGet, "/api/v1/events/stream", Access::open, bind(&Impl::event_stream)},
        {kRead, "/api/v1/events/{event}/face.jpg", Access::open, bind(&Impl::event_face)},
    };
  }

  static std::vector<ParamRule> param_rules() {
    return {{"camera", [](std::string_view id) { return valid_camera_id(std::string(id)); }, "invalid camera id"},
            {"event", valid_event_id, "invalid event id"}};
  }

  static bool valid_event_id(std::string_view text) {
    return !text.empty() && text.size() <= 19 && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  }

  static void reply_json(HttpResponse& response, const json& body, int status = 200) {
    response.status = status;
    response.content_type = "application/json";
    response.body = body.dump();
    response.headers.emplace_back("Cache-Control", "no-store");
  }

  json camera_json(const CameraStatus& c) {
    json out = {{"id", c.id},
                {"source", {{"type", source_type_name(c.source_type)}, {"url", redact_url(c.source_url)}}},
                {"state", to_string(c.state)},
                {"live", c.live},
                {"decode_fps", c.decode_fps},
                {"infer_fps", c.infer_fps},
                {"frames_decoded", c.frames_decoded},
                {"frames_inferred", c.frames_inferred},
                {"frames_replaced", c.frames_replaced},
                {"frames_late", c.frames_late},
                {"frames_fenced", c.frames_fenced},
                {"stage_errors", c.stage_errors},
                {"faces_detected", c.faces_detected},
                {"tracks_started", c.tracks_started},
                {"people", c.counts_people ? json(c.people) : json(nullptr)},
                {"decode_errors", c.decode_errors},
                {"reconnects", c.reconnects}};
    if (!c.last_error.empty()) out["last_error"] = redact(c.last_error);
    if (auto latest = engine.latest(c.id); latest && latest->result) {
      out["last_frame_at"] = epoch_seconds(latest->result->frame->captured_at);
      out["last_frame_seq"] = latest->result->frame->seq;
      out["detections"] = latest->result->detections.size();
    } else {
      out["last_frame_at"] = nullptr;
      out["detections"] = 0;
    }
    return out;
  }

  // The cluster's cameras and the nodes that run them (an ingest node only).
  Status list_cluster_cameras(const HttpRequest&, const RouteParams&, HttpResponse& response) {
    if (!options.cluster_cameras) {
      json_error(response, 404, "not a cluster's ingest node");
      return {};
    }
    json list = json::array();
    for (const ClusterCameraInfo& c : options.cluster_cameras()) {
      list.push_back({{"id", c.id}, {"owner", c.owner}, {"http", c.http}, {"done", c.done}});
    }
    reply_json(response, {{"node", options.node}, {"cameras", std::move(list)}});
    response.headers.emplace_back("Cache-Control", "no-store");
    return {};
  }

  Status healthz(const HttpRequest&, const RouteParams&, HttpResponse& response) {
    reply_json(response, {{"status", "ok"}});
    return {};
  }

  Status list_cameras(const HttpRequest&, const RouteParams&, HttpResponse& response) {
    json list = json::array();
    for (const CameraStatus& c : engine.status().cameras) list.push_back(camera_json(c));
    reply_json(response, {{"cameras", std::move(list)}});
    return {};
  }

  Status show_camera(const HttpRequest&, const RouteParams& params, HttpResponse& response) {
    for (const CameraStatus& c : engine.status().cameras) {
      if (c.id == params["camera"]) {
        reply_json(response, camera_json(c));
        return {};
      }
    }
    return Error{ErrorCode::not_found, "unknown camera"};
  }

  Status remove_camera(const HttpRequest&, const RouteParams& params, HttpResponse& response) {
    const std::string& id = params["camera"];
    VIGIL_RETURN_IF_ERROR(options.remove_camera ? options.remove_camera(id) : engine.remove_camera(id));
    cache.drop(id);
    reply_json(response, {{"removed", id}});
    return {};
  }

  Status add_camera(const HttpRequest& request, const RouteParams&, HttpResponse& response) {
    if (!options.parse_camera) return Error{ErrorCode::unimplemented, "adding cameras is not enabled"};
    if (request.body.empty()) return Error{ErrorCode::invalid_argument, "empty body: expected a camera as JSON"};
    if (!json::accept(request.body)) return Error{ErrorCode::invalid_argument, "body is not valid JSON"};
    auto parsed = options.parse_camera(request.body);
    if (!parsed.ok()) return Error{ErrorCode::invalid_argument, redact(parsed.error().message)};
    if (!valid_camera_id(parsed->id)) return Error{ErrorCode::invalid_argument, "invalid camera id"};
    if (Status added = options.add_camera ? options.add_camera(*parsed, request.body) : engine.add_camera(*parsed); !added.ok()) {
      // A source the body names that is missing is the body's fault, not a missing resource.
      const ErrorCode code = added.error().code == ErrorCode::not_found ? ErrorCode::invalid_argument : added.error().code;
      return Error{code, redact(added.error().message)};
    }
    reply_json(response, {{"added", parsed->id}}, 201);
    response.headers.emplace_back("Location", std::string(kCameras) + "/" + parsed->id);
    return {};
  }

  // The camera's newest result when it is live and has one; else not_found saying why.
  Result<std::shared_ptr<const FrameResult>> live_result(const std::string& id) {
    const std::optional<CameraLatest> latest = engine.latest(id);
    if (!latest) return Error{ErrorCode::not_found, "unknown camera"};
    if (latest->state != CameraState::live) {
      cache.drop(id);
      return Error{ErrorCode::not_found, std::string("camera is ") + to_string(latest->state)};
    }
    if (!latest->result) return Error{ErrorCode::not_found, "camera has produced no frame yet"};
    return latest->result;
  }

  // ?quality=&width=&annotate= of a snapshot or stream.
  static Result<JpegOptions> jpeg_args(const HttpRequest& request, long default_quality) {
    const auto quality = int_arg(request, "quality", default_quality, 1, 100);
    const auto width = int_arg(request, "width", 0, 0, 8192);
    const auto annotate = int_arg(request, "annotate", 0, 0, 1);
    if (!quality || !width || !annotate) return Error{ErrorCode::invalid_argument, "quality must be 1..100, width 0..8192, annotate 0 or 1"};
    JpegOptions jpeg;
    jpeg.quality = static_cast<int>(*quality);
    jpeg.width = static_cast<int>(*width);
    jpeg.annotate = *annotate == 1;
    return jpeg;
  }

  Status snapshot(const HttpRequest& request, const RouteParams& params, HttpResponse& response) {
    const auto jpeg = jpeg_args(request, 80);
    if (!jpeg.ok()) return jpeg.error();
    const auto result = live_result(params["camera"]);
    if (!result.ok()) return result.error();
    const Frame& frame = *(*result)->frame;
    const std::string etag = SnapshotCache::etag_of(frame.seq, *jpeg);
    const double age_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - frame.captured_steady).count();
    response.headers.emplace_back("ETag", etag);
    response.headers.emplace_back("Cache-Control", "no-cache");
    response.headers.emplace_back("X-Frame-Seq", std::to_string(frame.seq));
    response.headers.emplace_back("X-Frame-Timestamp", std::to_string(epoch_seconds(frame.captured_at)));
    response.headers.emplace_back("X-Frame-Age-Ms", std::to_string(static_cast<long long>(age_ms)));
    if (request.header("if-none-match") == etag) {
      response.status = 304;
      response.content_type.clear();
      return {};
    }
    auto snapshot = cache.get(**result, *jpeg);
    if (!snapshot.ok()) return snapshot.error();
    const std::shared_ptr<const Snapshot>& s = *snapshot;
    response.status = 200;
    response.content_type = "image/jpeg";
    response.owner = s;
    response.data = s->jpeg.data();
    response.size = s->jpeg.size();
    return {};
  }

  Status mjpeg(const HttpRequest& request, const RouteParams& params, HttpResponse& response) {
    const auto jpeg = jpeg_args(request, 70);
    const auto fps = int_arg(request, "fps", 5, 1, 30);
    if (!jpeg.ok() || !fps) {
      return Error{ErrorCode::invalid_argument, "quality must be 1..100, width 0..8192, annotate 0 or 1, fps 1..30"};
    }
    const std::string& id = params["camera"];
    if (const auto result = live_result(id); !result.ok()) return result.error();
    response.status = 200;
    response.content_type = std::string("multipart/x-mixed-replace; boundary=") + MjpegStream::kBoundary;
    response.headers.emplace_back("Cache-Control", "no-cache");
    response.stream = std::make_shared<MjpegStream>(engine, cache, id, *jpeg, static_cast<double>(*fps));
    return {};
  }

  Status event_stream(const HttpRequest& request, const RouteParams&, HttpResponse& response) {
    const std::string last_event_id = request.header("last-event-id");
    std::optional<long> since = int_arg(request, "since", 0, 0, std::numeric_limits<long>::max());
    if (!last_event_id.empty()) {
      char* end = nullptr;
      const long value = std::strtol(last_event_id.c_str(), &end, 10);
      since = *end == '\0' && value >= 0 ? std::optional<long>(value) : std::nullopt;
    }
    if (!since) return Error{ErrorCode::invalid_argument, "since and Last-Event-ID must be event ids"};
    const std::string type = query_arg(request, "type");
    if (!type.empty() && !known_event_type(type)) return Error{ErrorCode::invalid_argument, "unknown event type '" + type + "'"};
    response.status = 200;
    response.content_type = "text/event-stream";
    response.headers.emplace_back("Cache-Control", "no-cache");
    response.stream = std::make_shared<EventStream>(engine.events(), static_cast<std::uint64_t>(*since), query_arg(request, "camera"), type);
    response.stream_kind = kEventStreams;
    return {};
  }

  Status detections(const HttpRequest&, const RouteParams& params, HttpResponse& response) {
    const auto result = live_result(params["camera"]);
    if (!result.ok()) return result.error();
    reply_json(response, result_json(**result));
    return {};
  }

  // The wall page: static, compiled in; it polls the API and listens to the event stream.
  Status wall(const HttpRequest&, const RouteParams&, HttpResponse& response) {
    response.status = 200;
    response.content_type = "text/html; charset=utf-8";
    response.data = web::kWallHtml;
    response.size = web::kWallHtml_size;
    response.headers.emplace_back("Cache-Control", "no-cache");
    // On a cluster's node the pictures of other nodes' cameras come from those nodes (which
    // may join later): images from any http(s) origin, nothing else from them.
    response.headers.emplace_back("Content-Security-Policy",
                                  std::string("default-src 'self'; img-src 'self' blob: data:") +
                                      (options.cluster_cameras ? " http: https:" : "") +
                                      "; style-src 'unsafe-inline'; script-src 'unsafe-inline'");
    return {};
  }

  Status readyz(const HttpRequest&, const RouteParams&, HttpResponse& response) {
    json waiting = json::array();
    const EngineStatus status = engine.status();
    for (const CameraStatus& c : status.cameras) {
      if (c.state != CameraState::live) waiting.push_back({{"id", c.id}, {"state", to_string(c.state)}});
    }
    if (waiting.empty()) {
      reply_json(response, {{"status", "ready"}, {"cameras", status.cameras.size()}});
    } else {
      reply_json(response, {{"status", "starting"}, {"not_live", std::move(waiting)}}, 503);
    }
    return {};
  }

  Status metrics(const HttpRequest&, const RouteParams&, HttpResponse& response) {
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = prometheus_text(engine.metrics().snapshot());
    return {};
  }

  // Events after `since`: from the store when there is one (everything retention kept, across
  // runs), else from the bus's ring (recent events of this run).
  Status events(const HttpRequest& request, const RouteParams&, HttpResponse& response) {
    const auto since = int_arg(request, "since", 0, 0, std::numeric_limits<long>::max());
    const auto limit = int_arg(request, "limit", 100, 1, 1000);
    if (!since || !limit) return Error{ErrorCode::invalid_argument, "since must be an event id, limit 1..1000"};
    const std::string camera = query_arg(request, "camera"), type = query_arg(request, "type");
    if (!camera.empty() && !valid_camera_id(camera)) return Error{ErrorCode::invalid_argument, "invalid camera id"};
    if (!type.empty() && !known_event_type(type)) return Error{ErrorCode::invalid_argument, "unknown event type '" + type + "'"};
    json list = json::array();
    std::uint64_t next = static_cast<std::uint64_t>(*since);
    bool complete = true;
    if (options.store) {
      EventQuery query;
      query.after_id = next;
      query.camera = camera;
      query.type = type;
      query.limit = static_cast<std::size_t>(*limit);
      auto found = options.store->query(query);
      if (!found.ok()) return store_error(found.error());
      for (const StoredEvent& row : found->events) {
        next = row.event.id;
        list.push_back(event_json(row.event, row.has_face));
      }
      complete = found->complete;
    } else {
      std::vector<Event> found;
      complete = engine.events().read(next, 4096, found);
      for (const Event& e : found) {
        next = e.id;
        if (!event_matches(e, camera, type)) continue;
        list.push_back(event_json(e, e.face_jpeg != nullptr));
        if (list.size() >= static_cast<std::size_t>(*limit)) break;
      }
    }
    reply_json(response, {{"events", std::move(list)}, {"next", next}, {"complete", complete}});
    return {};
  }

  // The store could not answer: the client may try again (its own mistakes stay 400s).
  static Error store_error(const Error& error) {
    return error.code == ErrorCode::invalid_argument || error.code == ErrorCode::not_found ? error
                                                                                          : Error{ErrorCode::unavailable, error.message};
  }

  // /api/v1/events/{event}/face.jpg: the face an identity event came from, from the bus's ring
  // while it is there (the store may not have written it yet), else from the store.
  Status event_face(const HttpRequest&, const RouteParams& params, HttpResponse& response) {
    const std::string& number = params["event"];
    const std::uint64_t id = std::stoull(number);
    std::vector<Event> found;
    if (id > 0) engine.events().read(id - 1, 1, found);
    std::shared_ptr<const std::vector<std::uint8_t>> jpeg;
    if (!found.empty() && found[0].id == id) jpeg = found[0].face_jpeg;
    if (!jpeg && options.store) {
      auto stored = options.store->face(id);
      if (!stored.ok() && stored.error().code != ErrorCode::not_found) return store_error(stored.error());
      if (stored.ok()) jpeg = std::make_shared<const std::vector<std::uint8_t>>(std::move(stored).value());
    }
    if (!jpeg) return Error{ErrorCode::not_found, "no face for event " + number};
    response.status = 200;
    response.content_type = "image/jpeg";
    response.headers.emplace_back("Cache-Control", "max-age=86400, immutable");  // an id's face never changes
    response.owner = jpeg;
    response.data = jpeg->data();
    response.size = jpeg->size();
    return {};
  }
};

Result<std::unique_ptr<ApiServer>> ApiServer::start(Engine& engine, ApiOptions options) {
  std::unique_ptr<ApiServer> api(new ApiServer());
  api->impl_ = std::make_unique<Impl>(engine, std::move(options));
  Impl* impl = api->impl_.get();
  auto router = Router::create(Impl::routes(*impl), Impl::param_rules(), impl->options.token);
  if (!router.ok()) return router.error();
  impl->router = std::move(router).value();
  // A camera that leaves the live state loses its cached pictures at once.
  impl->subscription = engine.events().subscribe([impl](const Event& e) {
    if (e.kind == EventKind::camera_state && e.to != CameraState::live) impl->cache.drop(e.camera);
    if (HttpServer* s = impl->serving.load(std::memory_order_acquire)) s->wake(kEventStreams);
  });
  auto server = HttpServer::start(impl->options.server, [impl](const HttpRequest& request, HttpResponse& response) {
    impl->router.dispatch(request, response);
  });
  if (!server.ok()) {
    engine.events().unsubscribe(impl->subscription);
    return server.error();
  }
  impl->server = std::move(server).value();
  impl->serving.store(impl->server.get(), std::memory_order_release);
  return api;
}

ApiServer::~ApiServer() {
  if (impl_) {
    impl_->serving.store(nullptr, std::memory_order_release);
    impl_->engine.events().unsubscribe(impl_->subscription);  // no wake() after this
    impl_->server.reset();  // no handler runs after this
  }
}

int ApiServer::port() const { return impl_->server->port(); }
const SnapshotCache& ApiServer::snapshots() const { return impl_->cache; }
std::size_t ApiServer::open_streams() const { return impl_->server->streams(); }

}  // namespace vigil
