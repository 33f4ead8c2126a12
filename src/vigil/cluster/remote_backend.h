// RemoteModels: the ingest node's side of remote model calls. Every model of `vigil ingest`
// gets backend kind remote: its Detector or FaceEmbedder pre-processes here as in process
// (letterbox, alignment) and decodes the outputs here, and only Backend::infer goes over
// Redis, to whichever `vigil worker` reads the model's request streams (cluster/worker.h).
//
//   engine worker: RemoteBackend::infer(batch [n, ...])
//     ─▶ one pipelined round trip: XADD PREFIX:{MODEL.SHARD}:req MAXLEN ~ L * id I r REPLY m
//        MODEL o OUTPUTS live 0|1 cap MS cam C seq S x ITEM, per item (shards taken in turn)
//     ─▶ waits for the n replies, which the node's reply reader (one thread, XREAD BLOCK on
//        PREFIX:{NODE}:reply) hands to the waiting call by request id.
//
// Each item is one request (so a worker's XREADGROUP forms batches across cameras and nodes).
// A reply is taken once: a second reply to the same request (a worker died after replying,
// before XACK, and another ran the request again) is counted and dropped, so each frame
// reaches the sinks once. A request without a reply within reply_timeout is sent again when
// its camera is a file (nothing is dropped) and fails as deadline_exceeded when live (the
// frame is counted, not waited for). A call that finds Redis down reconnects with capped,
// jittered backoff: files wait and re-send, live calls fail at once.
//
// Lifetime: the RemoteModels outlives every backend it made (the engine that holds them).
// Threading: RemoteModels is shared by every backend it makes; each RemoteBackend is used by
// one caller at a time (one per engine worker) and has its own connection.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "vigil/cluster/redis.h"
#include "vigil/core/mutex.h"
#include "vigil/core/status.h"
#include "vigil/infer/backend.h"

namespace vigil {

struct RemoteOptions {
  RedisUrl url;
  std::string prefix = "vigil";
  std::string node;  // this node's id, unique in the cluster (its reply stream's name)
  int shards = 1;    // request streams per model
  std::chrono::milliseconds connect_timeout{2000};
  // A file item not answered by then is sent again; a live one fails.
  std::chrono::milliseconds reply_timeout{10000};
  // A call made outside any camera's frames (a model's check at start-up) fails when no worker
  // answers by then: no worker serves the model.
  std::chrono::milliseconds start_timeout{30000};
  std::int64_t max_len = 100000;  // request streams are trimmed to about this many entries
  // The config's models: file path -> model name (the name the requests carry).
  std::map<std::string, std::string> models;
};

struct RemoteCounters {
  std::uint64_t requests = 0;     // items sent (once each)
  std::uint64_t resent = 0;       // items sent again after reply_timeout or a lost connection
  std::uint64_t replies = 0;      // replies taken
  std::uint64_t duplicates = 0;   // replies to requests already answered (or no longer waited for)
  std::uint64_t deadline = 0;     // items a worker dropped as late, or live items not answered in time
  std::uint64_t failed = 0;       // items a worker failed (the model threw, dead-lettered)
  std::uint64_t reconnects = 0;   // connections made again after one broke
  std::uint64_t round_trips = 0;  // Redis round trips of the calls and the reply reader
  std::uint64_t bytes = 0;        // request and reply payload bytes
};

class RemoteModels {
 public:
  // Connects (an unreachable server or a wrong password fails here: unavailable,
  // invalid_argument) and starts the reply reader.
  static Result<std::shared_ptr<RemoteModels>> start(RemoteOptions options);
  ~RemoteModels();
  RemoteModels(const RemoteModels&) = delete;
  RemoteModels& operator=(const RemoteModels&) = delete;

  // A backend for one model instance (BackendOptions::model_path names the model).
  Result<std::unique_ptr<Backend>> make_backend(const BackendOptions& options);
  // Installs make_backend as the process's remote backend factory (infer/backend.h); the
  // destructor removes it.
  void install();
  RemoteCounters counters() const;
  const RemoteOptions& options() const { return options_; }
  // Stops waiting after `grace`: calls still waiting then fail as cancelled (the engine is
  // stopping and should not hang on a cluster with no worker left).
  void cancel(std::chrono::milliseconds grace = std::chrono::milliseconds(0));

 private:
  friend class RemoteBackend;
  struct Slot {
    bool done = false;
    std::string status;
    std::vector<std::string> outputs;
  };
  explicit RemoteModels(RemoteOptions options);
  void read_replies();
  void take_reply(const RedisReply& fields);
  std::unique_ptr<RedisConnection> reconnect_reader();

  const RemoteOptions options_;
  const std::string reply_key_;
  std::atomic<std::uint64_t> next_id_{1};
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> cancel_at_{INT64_MAX};  // steady clock, ns
  bool cancelled() const;
  bool installed_ = false;
  mutable Mutex mu_;
  CondVar replied_;
  std::map<std::uint64_t, Slot> pending_ GUARDED_BY(mu_);
  std::atomic<std::uint64_t> requests_{0}, resent_{0}, replies_{0}, duplicates_{0}, deadline_{0}, failed_{0}, reconnects_{0},
      round_trips_{0}, bytes_{0};
  std::thread reader_;
};

}  // namespace vigil
