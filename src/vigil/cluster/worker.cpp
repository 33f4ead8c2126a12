#include "vigil/cluster/worker.h"

#include <spdlog/spdlog.h>

#include <random>
#include <thread>

#include "vigil/cluster/wire.h"
#include "vigil/core/reconnect.h"

namespace vigil {

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A string field of a stream entry, or null.
const std::string* field_of(const RedisReply& fields, std::string_view field) {
  const RedisReply* value = fields.field(field);
  return value != nullptr ? &value->str : nullptr;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::size_t begin = 0;
  while (begin < text.size()) {
    const std::size_t end = std::min(text.find(',', begin), text.size());
    out.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

}  // namespace

struct InferenceWorker::Entry {
  std::string stream;
  std::string id;
  RedisReply fields;
  std::uint64_t deliveries = 1;
  const std::string* reply_to = nullptr;
  const std::string* request_id = nullptr;
  const std::string* outputs = nullptr;
};

struct InferenceWorker::Served {
  WorkerModel model;
  std::vector<std::string> streams;
  std::map<std::string, std::unique_ptr<Backend>> backends;  // by output names asked for
  std::map<std::string, std::string> broken;                 // output names -> why the backend did not load
  Tensor input;
  std::vector<Tensor> outputs;
};

InferenceWorker::InferenceWorker(WorkerOptions options) : options_(std::move(options)) {
  for (const WorkerModel& m : options_.models) {
    auto served = std::make_unique<Served>();
    served->model = m;
    for (int s = 0; s < options_.shards; ++s) {
      served->streams.push_back(request_stream(options_.prefix, m.name, s));
      by_stream_[served->streams.back()] = served.get();
      streams_.push_back(served->streams.back());
    }
    served_.push_back(std::move(served));
  }
}

InferenceWorker::~InferenceWorker() = default;

Result<std::unique_ptr<InferenceWorker>> InferenceWorker::create(WorkerOptions options) {
  if (options.consumer.empty()) return Error{ErrorCode::invalid_argument, "worker: a consumer name is needed"};
  if (options.models.empty()) return Error{ErrorCode::invalid_argument, "worker: no models to serve"};
  if (options.shards < 1) return Error{ErrorCode::invalid_argument, "worker: shards must be at least 1"};
  if (options.max_deliveries < 1) return Error{ErrorCode::invalid_argument, "worker: max_deliveries must be at least 1"};
  for (const WorkerModel& m : options.models) {
    if (m.max_batch < 1) return Error{ErrorCode::invalid_argument, "worker: model " + m.name + ": max_batch must be at least 1"};
  }
  std::unique_ptr<InferenceWorker> worker(new InferenceWorker(std::move(options)));
  auto conn = RedisConnection::connect(worker->options_.url, worker->options_.connect_timeout);
  if (!conn.ok()) return conn.error();
  worker->conn_ = std::move(conn).value();
  VIGIL_RETURN_IF_ERROR(worker->create_groups());
  // Each model loads now, with its graph's outputs: a wrong file fails here, and the backend's
  // per-process calibration is done before the first request waits for it.
  for (auto& served : worker->served_) {
    std::string error;
    if (worker->backend_for(*served, "", error) == nullptr) return Error{ErrorCode::invalid_argument, error};
  }
  return worker;
}

Status InferenceWorker::create_groups() {
  std::vector<RedisCommand> commands;
  for (const std::string& s : streams_) commands.push_back({"XGROUP", "CREATE", s, std::string(kWorkerGroup), "0", "MKSTREAM"});
  auto replies = conn_->pipeline(commands);
  if (!replies.ok()) return replies.error();
  for (const auto& r : *replies) {
    if (r.is_error() && r.str.rfind("BUSYGROUP", 0) != 0) return Error{ErrorCode::invalid_argument, "XGROUP CREATE: " + r.str};
  }
  return {};
}

Status InferenceWorker::ensure_connected(const std::atomic<bool>& stop) {
  ReconnectBackoff backoff(std::chrono::milliseconds(100), std::chrono::milliseconds(2000), std::random_device{}());
  while (!conn_ || conn_->broken()) {
    if (stop.load()) return {};
    conn_.reset();
    auto conn = RedisConnection::connect(options_.url, options_.connect_timeout);
    if (conn.ok()) {
      conn_ = std::move(conn).value();
      seen_trips_ = seen_bytes_ = 0;
      reconnects_.fetch_add(1, std::memory_order_relaxed);
      Status groups = create_groups();
      if (groups.ok()) break;
      if (groups.error().code == ErrorCode::invalid_argument) return groups;
      conn_.reset();
    } else if (conn.error().code == ErrorCode::invalid_argument) {
      return conn.error();  // a wrong password does not pass
    } else {
      spdlog::warn("worker {}: {}", options_.consumer, conn.error().message);
    }
    std::this_thread::sleep_for(backoff.next());
  }
  return {};
}

Status InferenceWorker::run(const std::atomic<bool>& stop) {
  auto next_claim = std::chrono::steady_clock::now();
  while (!stop.load()) {
    VIGIL_RETURN_IF_ERROR(ensure_connected(stop));
    if (stop.load()) break;
    Status status;
    if (std::chrono::steady_clock::now() >= next_claim) {
      status = claim();
      next_claim = std::chrono::steady_clock::now() + std::max(options_.claim_idle / 2, std::chrono::milliseconds(10));
    }
    if (status.ok()) status = read_once();
    round_trips_.fetch_add(conn_->round_trips() - seen_trips_, std::memory_order_relaxed);
    bytes_.fetch_add(conn_->bytes_in() + conn_->bytes_out() - seen_bytes_, std::memory_order_relaxed);
    seen_trips_ = conn_->round_trips();
    seen_bytes_ = conn_->bytes_in() + conn_->bytes_out();
    if (!status.ok() && !conn_->broken()) {
      if (status.error().message.find("NOGROUP") != std::string::npos) {
        spdlog::warn("worker {}: the request streams are gone (Redis restarted without its data?); making them again", options_.consumer);
        VIGIL_RETURN_IF_ERROR(create_groups());
        continue;
      }
      return status;
    }
    if (!status.ok()) spdlog::warn("worker {}: {}; reconnecting", options_.consumer, status.error().message);
  }
  return {};
}

// One XREADGROUP over every stream served; each model's entries processed.
Status InferenceWorker::read_once() {
  int most = 1;
  for (const auto& s : served_) most = std::max(most, s->model.max_batch);
  RedisCommand read = {"XREADGROUP", "GROUP", std::string(kWorkerGroup), options_.consumer, "COUNT", std::to_string(most),
                       "BLOCK", std::to_string(options_.block.count()), "STREAMS"};
  for (const auto& s : streams_) read.push_back(s);
  for (std::size_t i = 0; i < streams_.size(); ++i) read.push_back(">");
  auto reply = conn_->blocking_command(read, options_.block);
  if (!reply.ok()) return reply.error();
  VIGIL_RETURN_IF_ERROR(reply_status(*reply, "XREADGROUP"));
  if (!reply->is_array()) return {};
  std::map<Served*, std::vector<Entry>> by_model;
  for (RedisReply& stream : reply->elements) {
    if (stream.elements.size() != 2) continue;
    const auto it = by_stream_.find(stream.elements[0].str);
    if (it == by_stream_.end()) continue;
    for (RedisReply& e : stream.elements[1].elements) {
      if (e.elements.size() != 2) continue;
      by_model[it->second].push_back(Entry{stream.elements[0].str, e.elements[0].str, std::move(e.elements[1])});
    }
  }
  for (auto& [model, entries] : by_model) VIGIL_RETURN_IF_ERROR(process(*model, entries));
  return {};
}

// Entries idle longer than claim_idle: their deliveries from XPENDING, then XAUTOCLAIM.
Status InferenceWorker::claim() {
  constexpr int kMost = 256;
  const std::string idle = std::to_string(options_.claim_idle.count());
  for (auto& served : served_) {
    for (const std::string& stream : served->streams) {
      auto pending = conn_->command({"XPENDING", stream, std::string(kWorkerGroup), "IDLE", idle, "-", "+", std::to_string(kMost)});
      if (!pending.ok()) return pending.error();
      VIGIL_RETURN_IF_ERROR(reply_status(*pending, "XPENDING"));
      if (pending->elements.empty()) continue;
      std::map<std::string, std::uint64_t> deliveries;
      for (const RedisReply& p : pending->elements) {
        if (p.elements.size() == 4) deliveries[p.elements[0].str] = static_cast<std::uint64_t>(p.elements[3].integer);
      }
      auto claimed = conn_->command({"XAUTOCLAIM", stream, std::string(kWorkerGroup), options_.consumer, idle, "0-0", "COUNT",
                                     std::to_string(kMost)});
      if (!claimed.ok()) return claimed.error();
      VIGIL_RETURN_IF_ERROR(reply_status(*claimed, "XAUTOCLAIM"));
      if (claimed->elements.size() < 2) continue;
      if (claimed->elements.size() >= 3 && !claimed->elements[2].elements.empty()) {
        const auto n = claimed->elements[2].elements.size();
        trimmed_.fetch_add(n, std::memory_order_relaxed);
        spdlog::warn("worker {}: {} pending requests of {} were trimmed away before they ran (raise max_len); their "
                     "callers time out", options_.consumer, n, stream);
      }
      std::vector<Entry> entries;
      for (RedisReply& e : claimed->elements[1].elements) {
        if (e.elements.size() != 2 || e.elements[1].is_nil()) continue;
        Entry entry{stream, e.elements[0].str, std::move(e.elements[1])};
        entry.deliveries = deliveries[entry.id] + 1;  // XAUTOCLAIM counted one more
        entries.push_back(std::move(entry));
      }
      claimed_.fetch_add(entries.size(), std::memory_order_relaxed);
      if (!entries.empty()) VIGIL_RETURN_IF_ERROR(process(*served, entries));
    }
  }
  return {};
}

Backend* InferenceWorker::backend_for(Served& model, const std::string& outputs, std::string& error) {
  if (auto it = model.backends.find(outputs); it != model.backends.end()) return it->second.get();
  if (auto it = model.broken.find(outputs); it != model.broken.end()) {
    error = it->second;
    return nullptr;
  }
  BackendOptions options = model.model.backend;
  options.output_names = split(outputs);
  auto backend = options_.make_backend ? options_.make_backend(options) : create_backend(options);
  if (!backend.ok()) {
    error = "worker " + options_.consumer + " cannot load model " + model.model.name + ": " + backend.error().message;
    spdlog::error("{}", error);
    model.broken[outputs] = error;
    return nullptr;
  }
  spdlog::info("worker {}: model {} loaded ({})", options_.consumer, model.model.name, (*backend)->name());
  return model.backends.emplace(outputs, std::move(backend).value()).first->second.get();
}

void InferenceWorker::reply(const Entry& entry, std::string_view status, const std::vector<Tensor>* outputs, std::size_t item) {
  RedisCommand c = {"XADD", *entry.reply_to, "MAXLEN", "~", std::to_string(options_.reply_max_len), "*",
                    std::string(reply_field::id), *entry.request_id, std::string(reply_field::status), std::string(status)};
  if (outputs != nullptr) {
    for (std::size_t k = 0; k < outputs->size(); ++k) {
      c.push_back("y" + std::to_string(k));
      c.emplace_back();
      encode_item((*outputs)[k], static_cast<std::int64_t>(item), c.back());
    }
  }
  out_.push_back(std::move(c));
  acknowledge(entry);
}

// Done with the request: acknowledged and deleted (a request stream holds only what is still
// to run: 100,000 answered 128x128 frames kept until MAXLEN trimmed them held 5 GB of Redis).
void InferenceWorker::acknowledge(const Entry& entry) {
  out_.push_back({"XACK", entry.stream, std::string(kWorkerGroup), entry.id});
  out_.push_back({"XDEL", entry.stream, entry.id});
}

void InferenceWorker::dead_letter(const Entry& entry, const std::string& reason) {
  const Served& served = *by_stream_.at(entry.stream);
  RedisCommand c = {"XADD", dead_letter_stream(options_.prefix, served.model.name), "MAXLEN", "~",
                    std::to_string(options_.dead_max_len), "*", "reason", reason, "stream", entry.stream, "entry", entry.id,
                    "deliveries", std::to_string(entry.deliveries)};
  for (const RedisReply& f : entry.fields.elements) c.push_back(f.str);
  out_.push_back(std::move(c));
  dead_lettered_.fetch_add(1, std::memory_order_relaxed);
  spdlog::error("worker {}: request {} of {} dead-lettered: {}", options_.consumer, entry.id, entry.stream, reason);
  if (entry.reply_to != nullptr && entry.request_id != nullptr) {
    reply(entry, "failed: " + reason, nullptr, 0);
  } else {
    acknowledge(entry);
  }
}

Status InferenceWorker::flush() {
  if (out_.empty()) return {};
  auto replies = conn_->pipeline(out_);
  out_.clear();
  if (!replies.ok()) return replies.error();
  for (const auto& r : *replies) VIGIL_RETURN_IF_ERROR(reply_status(r, "reply"));
  return {};
}

// Late live entries answered as dropped, poison ones dead-lettered, the rest run in batches
// of the same outputs and shape; replies and acks go in one round trip.
Status InferenceWorker::process(Served& model, std::vector<Entry>& entries) {
  const std::int64_t now = now_ms();
  std::map<std::string, std::vector<Entry*>> batches;  // by outputs asked for
  for (Entry& e : entries) {
    e.reply_to = field_of(e.fields, request_field::reply);
    e.request_id = field_of(e.fields, request_field::id);
    e.outputs = field_of(e.fields, "o");
    const std::string* live = field_of(e.fields, request_field::live);
    const std::string* captured = field_of(e.fields, request_field::captured);
    const std::string* input = field_of(e.fields, request_field::input);
    if (e.reply_to == nullptr || e.request_id == nullptr || e.outputs == nullptr || input == nullptr || !item_shape(*input).ok()) {
      dead_letter(e, "not a request vigil can read");
      continue;
    }
    if (e.deliveries > static_cast<std::uint64_t>(options_.max_deliveries)) {
      dead_letter(e, "delivered " + std::to_string(e.deliveries) + " times without a result (max_deliveries " +
                         std::to_string(options_.max_deliveries) + ")");
      continue;
    }
    if (live != nullptr && *live == "1" && captured != nullptr && now - std::atoll(captured->c_str()) > options_.max_age.count()) {
      reply(e, kReplyDeadline, nullptr, 0);
      deadline_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    batches[*e.outputs].push_back(&e);
  }
  for (auto& [outputs, batch] : batches) {
    std::string error;
    Backend* backend = backend_for(model, outputs, error);
    if (backend == nullptr) {
      for (Entry* e : batch) dead_letter(*e, error);
      continue;
    }
    for (std::size_t begin = 0; begin < batch.size(); begin += static_cast<std::size_t>(model.model.max_batch)) {
      const std::size_t end = std::min(batch.size(), begin + static_cast<std::size_t>(model.model.max_batch));
      std::vector<Entry*> part(batch.begin() + static_cast<std::ptrdiff_t>(begin), batch.begin() + static_cast<std::ptrdiff_t>(end));
      run_batch(model, *backend, part);
    }
  }
  return flush();
}

// Runs one batch (items of one shape); on failure, item by item, leaving the items that fail
// alone pending for a later retry.
void InferenceWorker::run_batch(Served& model, Backend& backend, std::vector<Entry*>& batch) {
  const auto run = [&](std::span<Entry* const> items) -> Status {
    model.input = Tensor();
    for (std::size_t i = 0; i < items.size(); ++i) {
      const std::string& x = *field_of(items[i]->fields, request_field::input);
      VIGIL_RETURN_IF_ERROR(decode_item(x, model.input, static_cast<std::int64_t>(i), static_cast<std::int64_t>(items.size())));
    }
    batches_.fetch_add(1, std::memory_order_relaxed);
    return guarded_call([&] { return backend.infer(model.input, model.outputs); });
  };
  const auto answer = [&](std::span<Entry* const> items) {
    for (std::size_t i = 0; i < items.size(); ++i) reply(*items[i], kReplyOk, &model.outputs, i);
    served_items_.fetch_add(items.size(), std::memory_order_relaxed);
  };
  Status status = run(batch);
  if (status.ok()) {
    answer(batch);
    return;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Status one = batch.size() == 1 ? status : run(std::span<Entry* const>(&batch[i], 1));
    if (one.ok()) {
      answer(std::span<Entry* const>(&batch[i], 1));
      continue;
    }
    retried_.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("worker {}: model {} failed on request {} (delivery {}): {}; it stays pending", options_.consumer,
                 model.model.name, batch[i]->id, batch[i]->deliveries, one.error().message);
  }
}

WorkerCounters InferenceWorker::counters() const {
  WorkerCounters c;
  c.served = served_items_.load();
  c.batches = batches_.load();
  c.deadline = deadline_.load();
  c.retried = retried_.load();
  c.dead_lettered = dead_lettered_.load();
  c.claimed = claimed_.load();
  c.trimmed = trimmed_.load();
  c.reconnects = reconnects_.load();
  c.round_trips = round_trips_.load();
  c.bytes = bytes_.load();
  return c;
}

}  // namespace vigil
