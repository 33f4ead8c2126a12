// InferenceWorker: `vigil worker`, stateless batched inference over Redis Streams. No
// camera, no FFmpeg, no OpenCV pre-processing: requests carry the model input (the
// letterboxed frame, the aligned face chip; cluster/wire.h) and replies carry the raw outputs,
// which the requesting ingest node decodes.
//
//   loop:  XREADGROUP GROUP workers CONSUMER COUNT max_batch BLOCK block_ms
//              STREAMS PREFIX:{M.0}:req ... PREFIX:{M.S-1}:req (every model served) > ...
//          (one read forms a batch across cameras and nodes)
//          per model: late live requests (capture older than max_age_ms) replied "dropped:
//          deadline" without running; the rest stacked into one batch, run on the backend;
//          one pipelined round trip: XADD each reply to its node's stream (MAXLEN ~), XACK.
//   every claim_idle_ms / 2: XPENDING (deliveries) and XAUTOCLAIM of entries idle longer
//          than claim_idle_ms (a worker died mid-batch, or the model failed on them): run
//          again, or, delivered more than max_deliveries times, moved to PREFIX:{M}:dead
//          with the reason and replied "failed: ...". Entries trimmed away while pending
//          (XAUTOCLAIM's deleted ids) are counted and logged, never silently gone.
//
// A batch the model fails on is run item by item; an item that fails alone stays pending (no
// reply, no XACK) and comes back through XAUTOCLAIM, so a passing fault is retried and a
// poison request ends in the dead-letter stream. Replies go before XACK: a worker killed
// between them leaves the request pending, another runs it again, and the ingest node drops
// the second reply (remote_backend.h).
//
// Threading: run() on one thread; counters() from any.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vigil/cluster/redis.h"
#include "vigil/core/status.h"
#include "vigil/infer/backend.h"

namespace vigil {

struct WorkerModel {
  std::string name;        // the config's name for it (what requests carry)
  BackendOptions backend;  // path, kind, precision, threads (output names come with requests)
  int max_batch = 16;
};

struct WorkerOptions {
  RedisUrl url;
  std::string prefix = "vigil";
  std::string consumer;  // this worker's name in the group, unique in the cluster
  std::vector<WorkerModel> models;
  int shards = 1;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds block{100};
  std::chrono::milliseconds claim_idle{5000};
  int max_deliveries = 3;
  std::chrono::milliseconds max_age{1000};  // a live request older than this is dropped
  std::int64_t reply_max_len = 100000;
  std::int64_t dead_max_len = 10000;
  // Tests: makes the backend instead of create_backend (a model that throws...).
  std::function<Result<std::unique_ptr<Backend>>(const BackendOptions&)> make_backend;
};

struct WorkerCounters {
  std::uint64_t served = 0;         // items the model ran on and replied to
  std::uint64_t batches = 0;        // model calls
  std::uint64_t deadline = 0;       // live items replied "dropped: deadline"
  std::uint64_t retried = 0;        // items left pending after the model failed on them
  std::uint64_t dead_lettered = 0;  // items moved to the dead-letter stream
  std::uint64_t claimed = 0;        // items taken over from idle consumers (or retried)
  std::uint64_t trimmed = 0;        // pending items found trimmed away (XAUTOCLAIM's deleted ids)
  std::uint64_t reconnects = 0;
  std::uint64_t round_trips = 0;
  std::uint64_t bytes = 0;
};

class InferenceWorker {
 public:
  // Checks the options, connects and loads every model: an unreachable server (unavailable),
  // a wrong password or a model that does not load (invalid_argument) fails here. A request
  // naming other outputs of a model loads that variant on its first request.
  static Result<std::unique_ptr<InferenceWorker>> create(WorkerOptions options);
  ~InferenceWorker();

  // Serves until `stop` is set (checked at least every block_ms); reconnects with capped,
  // jittered backoff when Redis goes away. Returns ok, or a fault that cannot pass.
  Status run(const std::atomic<bool>& stop);
  WorkerCounters counters() const;

 private:
  struct Entry;
  struct Served;
  explicit InferenceWorker(WorkerOptions options);
  Status ensure_connected(const std::atomic<bool>& stop);
  Status create_groups();
  Status read_once();
  Status claim();
  Status process(Served& model, std::vector<Entry>& entries);
  Backend* backend_for(Served& model, const std::string& outputs, std::string& error);
  void run_batch(Served& model, Backend& backend, std::vector<Entry*>& batch);
  void reply(const Entry& entry, std::string_view status, const std::vector<Tensor>* outputs, std::size_t item);
  void dead_letter(const Entry& entry, const std::string& reason);
  void acknowledge(const Entry& entry);  // XACK and XDEL
  Status flush();

  WorkerOptions options_;
  std::vector<std::unique_ptr<Served>> served_;
  std::map<std::string, Served*> by_stream_;
  std::vector<std::string> streams_;
  std::unique_ptr<RedisConnection> conn_;
  std::vector<RedisCommand> out_;  // replies, dead letters and acks of the batch at hand
  std::uint64_t seen_trips_ = 0, seen_bytes_ = 0;
  std::atomic<std::uint64_t> served_items_{0}, batches_{0}, deadline_{0}, retried_{0}, dead_lettered_{0}, claimed_{0}, trimmed_{0},
      reconnects_{0}, round_trips_{0}, bytes_{0};
};

}  // namespace vigil
