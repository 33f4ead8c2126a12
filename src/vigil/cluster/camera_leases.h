// CameraLeases: which ingest node runs which camera. The cluster's camera list lives in Redis
// (seeded from the config, changed through any node's HTTP API); each camera is run by the
// one node that holds its lease; nodes balance the cameras among themselves; a dead node's
// cameras are taken by the others once its leases expire.
//
//   PREFIX:cameras          hash: camera id -> its config (JSON, as POST /api/v1/cameras takes it)
//   PREFIX:done             set: file cameras read to their end (not run again)
//   PREFIX:lease:{ID}       "NODE|TOKEN", SET NX PX lease_ms; renewed by a compare-and-PEXPIRE
//                           script, released by a compare-and-DEL script
//   PREFIX:fence            INCR: each acquisition's fencing token (increasing)
//   PREFIX:owner:{ID}       the node that last acquired it (to say "taken over from")
//   PREFIX:seeded           set with the list: missing means Redis lost its data (restarted
//                           without persistence); every node then puts its config's cameras
//                           back, the files it finished back in the done set, and its leases
//                           back (a renewal finding no lease sets it again)
//
// Every tick (on its own thread): read the list, the done set, every lease and the live ingest
// nodes (registry.h; live: a heartbeat younger than the lease); renew this node's leases (a lease not renewed is lost: the camera is
// released at once); release cameras removed from the list or ended; target = ceil(cameras
// not done / nodes); acquire free cameras up to it (for at most a quarter lease per tick);
// above it, hand over as many live cameras (the newest first) as the other nodes lack (a file
// camera moves only when its node dies: it would start again from its first frame).
//
// Fencing: a camera's lease_until (steady clock, ns) is set to (time the renewal was sent +
// 0.9 lease) after each renewal and to 0 when lost; the engine delivers no result after it
// (pipeline/engine_config.h: CameraConfig::lease_until). A node paused past its lease (SIGSTOP,
// a long GC-like stall) therefore writes nothing when it resumes, before its tick even runs.
//
// Threading: callbacks run on the lease thread; put/remove/held from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "vigil/cluster/redis.h"
#include "vigil/core/mutex.h"
#include "vigil/core/status.h"

namespace vigil {

struct LeaseOptions {
  RedisUrl url;
  std::string prefix = "vigil";
  std::string node;
  std::chrono::milliseconds lease{5000};
  std::chrono::milliseconds tick{500};
  // This node's config cameras (id, spec): put in the list at start (HSETNX), and again if
  // Redis loses the cluster's state (a restart without persistence: PREFIX:seeded is gone).
  std::vector<std::pair<std::string, std::string>> seed;
};

struct LeasedCamera {
  std::string id;
  std::string spec;            // its config, as stored
  std::uint64_t token = 0;     // fencing token of this acquisition
  std::string previous_owner;  // the node that ran it before (empty: none)
  std::shared_ptr<std::atomic<std::int64_t>> until;  // steady ns: the lease is held until then
};

struct LeaseCallbacks {
  // This node now holds the camera: start it. An error gives the lease back at once.
  std::function<Status(const LeasedCamera&)> acquired;
  // This node no longer holds it (why: "lease lost", "removed", "ended", "handed over",
  // "stopping"): stop it.
  std::function<void(const std::string& id, const std::string& why)> released;
  // Whether a held camera has ended (a file read to its end, every result delivered): it is
  // then marked done. Called on the leases' thread, which renews every lease: never blocks.
  std::function<bool(const std::string& id)> ended;
  // Whether a camera may move between live nodes to balance them (live sources: yes; files: no).
  std::function<bool(const std::string& spec)> movable;
  // Once, when every camera of the list is done (the cluster's files all read to their end).
  std::function<void()> finished;
};

// One camera of the cluster's list as the last tick saw it (for the wall of any node).
struct ClusterCamera {
  std::string id;
  std::string owner;  // the node holding its lease; empty when none does
  std::string http;   // that node's HTTP URL (registry.h), when it serves one
  bool done = false;  // a file read to its end
};

struct LeaseCounters {
  std::uint64_t acquired = 0;
  std::uint64_t taken_over = 0;  // acquired from another node that had it
  std::uint64_t lost = 0;        // a renewal found the lease gone or another's
  std::uint64_t handed_over = 0;
};

class CameraLeases {
 public:
  static Result<std::unique_ptr<CameraLeases>> start(LeaseOptions options, LeaseCallbacks callbacks);
  // Releases every lease it holds (released(id, "stopping") for each).
  ~CameraLeases();
  CameraLeases(const CameraLeases&) = delete;
  CameraLeases& operator=(const CameraLeases&) = delete;

  // Adds the cameras the list does not have yet (HSETNX): the config's cameras.
  static Status seed(RedisConnection& redis, const std::string& prefix, const std::vector<std::pair<std::string, std::string>>& cameras);
  // The API's add and remove, for the whole cluster. put: already_exists for a taken id.
  Status put(const std::string& id, const std::string& spec);
  Status remove(const std::string& id);  // not_found for an unknown id

  std::vector<std::string> held() const;
  // Every camera of the list is done (files read to their end) and the list is not empty.
  bool all_done() const { return all_done_.load(); }
  LeaseCounters counters() const;
  // The cluster's cameras, their owners and the owners' URLs, as of the last tick (no I/O).
  std::vector<ClusterCamera> view() const;
  // Stops the tick thread and releases everything now (what the destructor does).
  void stop();
  // Tests: stops the tick thread and keeps every lease, as a process that died would (the
  // cameras' lease_until stay as the last renewal left them).
  void abandon();

 private:
  struct Held {
    LeasedCamera camera;
    bool movable = true;
    std::chrono::steady_clock::time_point since;
  };
  CameraLeases(LeaseOptions options, LeaseCallbacks callbacks);
  Status tick(RedisConnection& redis);
  void release(RedisConnection* redis, const std::string& id, const std::string& why);
  Status reseed(RedisConnection& redis);
  void drop_expired();
  void loop();

  const LeaseOptions options_;
  const LeaseCallbacks callbacks_;
  mutable Mutex mu_;
  CondVar wake_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::map<std::string, Held> held_ GUARDED_BY(mu_);
  std::vector<ClusterCamera> view_ GUARDED_BY(mu_);
  std::set<std::string> done_here_;  // files this node finished (lease thread only)
  std::atomic<bool> all_done_{false};
  std::atomic<std::uint64_t> acquired_{0}, taken_over_{0}, lost_{0}, handed_over_{0};
  std::thread thread_;
};

}  // namespace vigil
