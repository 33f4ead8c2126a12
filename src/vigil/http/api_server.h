// ApiServer: vigil's HTTP API over a running Engine (the endpoints are listed in README.md):
//
//   GET    /healthz, /readyz, /metrics
//   GET    /api/v1/cameras                     every camera: id, source, state, rates, counts
//   GET    /api/v1/cameras/{id}
//   POST   /api/v1/cameras                     add (body: one camera, as in the config)
//   DELETE /api/v1/cameras/{id}                remove
//   GET    /api/v1/cameras/{id}/snapshot.jpg   ?quality=Q&width=W&annotate=1, ETag / 304
//   GET    /api/v1/cameras/{id}/detections     the newest result as JSON
//   GET    /api/v1/events                      ?since=ID&camera=&type=&limit= (the bus's ring)
//
// Errors are JSON ({"error": ...}) with a 4xx or 5xx status. POST and DELETE need
// "Authorization: Bearer TOKEN" when a token is set. Camera ids in paths are checked
// against the id alphabet before anything is looked up. No response carries the
// credentials of a camera URL.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "vigil/http/http_server.h"
#include "vigil/http/snapshot_cache.h"
#include "vigil/pipeline/engine.h"
#include "vigil/sink/event_store.h"

namespace vigil {

// A camera of a cluster (cluster/camera_leases.h: ClusterCamera), as the API lists it.
struct ClusterCameraInfo {
  std::string id;
  std::string owner;  // the ingest node that runs it; empty when none does now
  std::string http;   // that node's HTTP URL, when it serves one
  bool done = false;  // a file read to its end
};

struct ApiOptions {
  HttpServerOptions server;
  std::string token;  // empty: mutating endpoints are open (loopback only; `vigil run` checks)
  bool snapshot_cache = true;  // false: encode on every request (a benchmark's baseline)
  // Parses a POSTed camera (JSON, the config's camera schema). The cli supplies it (it owns
  // the config loader); without it POST answers 501.
  std::function<Result<CameraConfig>(const std::string& body)> parse_camera;
  // Where /api/v1/events reads and face JPEGs come from once they left the bus's ring; it
  // must outlive the server. Without one, /api/v1/events reads the ring (recent events only).
  const EventStore* store = nullptr;
  // Where POST and DELETE of cameras go instead of this engine: a cluster's ingest node puts
  // them in the cluster's camera list (cluster/camera_leases.h), and the camera starts on
  // whichever node takes it. add_camera gets the parsed camera and the body as it came.
  std::function<Status(const CameraConfig&, const std::string& body)> add_camera;
  std::function<Status(const std::string& id)> remove_camera;
  // On a cluster's ingest node (named `node`): every camera of the cluster, for
  // GET /api/v1/cluster/cameras and the wall. Without it that endpoint answers 404.
  std::function<std::vector<ClusterCameraInfo>()> cluster_cameras;
  std::string node;
};

class ApiServer {
 public:
  static Result<std::unique_ptr<ApiServer>> start(Engine& engine, ApiOptions options);
  ~ApiServer();

  int port() const;
  const SnapshotCache& snapshots() const;
  // Streamed responses (MJPEG, SSE) open now.
  std::size_t open_streams() const;

 private:
  ApiServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A URL with its user information removed ("rtsp://user:pass@host/x" -> "rtsp://host/x").
std::string redact_url(const std::string& url);
// Camera ids: 1..64 characters of [A-Za-z0-9_.-], not starting with '.'.
bool valid_camera_id(const std::string& id);

}  // namespace vigil
