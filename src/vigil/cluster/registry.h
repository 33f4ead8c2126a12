// Registry: every process of a cluster (ingest node or worker) says in Redis who it is and
// that it is alive, so that `vigil cluster status` can list them and a process that joins
// with different models or shards is refused.
//
//   PREFIX:procs            set of process ids (members whose key expired are dropped by readers)
//   PREFIX:proc:{ID}        hash: role, host, http, models, models_hash, shards, started_ms,
//                           heartbeat_ms, cameras, rates; PEXPIRE 3 heartbeats + 1 s
//
// A heartbeat thread rewrites the hash every `interval` (with the caller's rates); the
// destructor deletes it. start() refuses (invalid_argument, naming the other process) when a
// live process of the cluster has another models hash or another shard count.
// Threading: the heartbeat runs on its own thread; the rates callback is called there.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "vigil/cluster/redis.h"
#include "vigil/core/mutex.h"
#include "vigil/core/status.h"

namespace vigil {

struct ProcessInfo {
  std::string id;
  std::string role;         // "ingest" or "worker"
  std::string host;
  std::string http;         // the process's HTTP URL, or empty
  std::string models;       // model names, comma-separated
  std::string models_hash;  // hash of every model's kind, settings and file bytes
  int shards = 1;
  std::int64_t started_ms = 0;
  std::int64_t heartbeat_ms = 0;
  std::string cameras;      // ingest: the cameras it runs, comma-separated
  std::string rates;        // what the process says about its speed, one line
};

class Registry {
 public:
  static Result<std::unique_ptr<Registry>> start(const RedisUrl& url, std::string prefix, ProcessInfo self,
                                                 std::chrono::milliseconds interval, std::function<std::string()> rates);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  // Set the cameras line and the HTTP URL the next heartbeat writes.
  void set_cameras(std::string cameras);
  void set_http(std::string http);

 private:
  Registry(const RedisUrl& url, std::string prefix, ProcessInfo self, std::chrono::milliseconds interval,
           std::function<std::string()> rates);
  Status beat(RedisConnection& redis);
  void loop();

  const RedisUrl url_;
  const std::string prefix_;
  ProcessInfo self_;
  const std::chrono::milliseconds interval_;
  std::function<std::string()> rates_;
  Mutex mu_;
  CondVar wake_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::string cameras_ GUARDED_BY(mu_);
  std::string http_ GUARDED_BY(mu_);
  std::thread thread_;
};

// The live processes of a cluster, by id.
Result<std::vector<ProcessInfo>> list_processes(RedisConnection& redis, const std::string& prefix);

// What `vigil cluster status` prints: processes, request streams (length, pending, lag),
// dead letters. JSON when `json`.
Result<std::string> cluster_status(RedisConnection& redis, const std::string& prefix, bool json);

// A 64-bit FNV-1a over bytes, as 16 hex digits (the models hash: equality, not security).
std::string fnv1a_hex(std::string_view bytes);

}  // namespace vigil
