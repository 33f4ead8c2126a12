#include "vigil/cluster/remote_backend.h"

#include <spdlog/spdlog.h>

#include <random>

#include "vigil/cluster/registry.h"
#include "vigil/cluster/wire.h"
#include "vigil/core/reconnect.h"
#include "vigil/infer/call_context.h"

namespace vigil {

namespace {

using SteadyClock = std::chrono::steady_clock;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

}  // namespace

// One model instance's remote calls (one engine worker's), over its own connection.
class RemoteBackend final : public Backend {
 public:
  RemoteBackend(RemoteModels& owner, std::string model, BackendOptions options)
      : owner_(owner), model_(std::move(model)), options_(std::move(options)), outputs_(join(options_.output_names)),
        backoff_(std::chrono::milliseconds(100), std::chrono::milliseconds(2000), std::random_device{}()) {}

  Status infer(const Tensor& input, std::vector<Tensor>& outputs) override;
  const std::vector<std::string>& output_names() const override { return options_.output_names; }
  std::string name() const override { return "remote"; }

 private:
  struct Item {
    std::uint64_t id = 0;
    bool live = false;
    std::string entry;  // its entry id in the request stream, as XADD gave it
  };
  // Of `late`, the items whose request is gone: not in the stream, or read and acknowledged
  // without a reply reaching us (a Redis restart, a trimmed stream). A request still queued or
  // pending is a slow or dead worker's: XAUTOCLAIM takes care of it, and sending it again
  // would only add work to a cluster already behind.
  Result<std::vector<std::size_t>> lost(const std::vector<std::size_t>& late);
  // Sends the requests of `which` (indices into items_ and commands_) in one round trip;
  // reconnects first when needed. `patient`: keep trying (with backoff) until reply_timeout.
  Status send(const std::vector<std::size_t>& which, bool patient);
  Status connect();
  void forget();
  Status wait_and_collect(std::vector<Tensor>& outputs, bool checking);

  RemoteModels& owner_;  // outlives its backends (the caller's promise: see remote_backend.h)
  const std::string model_;
  const BackendOptions options_;
  const std::string outputs_;
  ReconnectBackoff backoff_;
  std::unique_ptr<RedisConnection> conn_;
  std::uint64_t shard_ = 0;
  std::vector<Item> items_;
  std::vector<RedisCommand> commands_;
  std::vector<RedisCommand> batch_;
  std::vector<std::size_t> all_;
  std::uint64_t seen_trips_ = 0, seen_bytes_ = 0;
};

Status RemoteBackend::connect() {
  if (conn_ && !conn_->broken()) return {};
  const bool again = conn_ != nullptr;
  conn_.reset();
  auto conn = RedisConnection::connect(owner_.options_.url, owner_.options_.connect_timeout);
  if (!conn.ok()) return conn.error();
  conn_ = std::move(conn).value();
  seen_trips_ = seen_bytes_ = 0;
  if (again) owner_.reconnects_.fetch_add(1, std::memory_order_relaxed);
  backoff_.reset();
  return {};
}

Status RemoteBackend::send(const std::vector<std::size_t>& which, bool patient) {
  const auto give_up = SteadyClock::now() + owner_.options_.reply_timeout;
  while (true) {
    if (owner_.cancelled()) return Error{ErrorCode::cancelled, "remote model call cancelled"};
    Status status = connect();
    if (status.ok()) {
      // One transaction: a worker blocked in XREADGROUP wakes after EXEC and sees every item
      // of the call at once (one batch there), not the first alone.
      batch_.clear();
      batch_.push_back({"MULTI"});
      for (std::size_t i : which) batch_.push_back(commands_[i]);
      batch_.push_back({"EXEC"});
      auto replies = conn_->pipeline(batch_);
      owner_.round_trips_.fetch_add(conn_->round_trips() - seen_trips_, std::memory_order_relaxed);
      owner_.bytes_.fetch_add(conn_->bytes_out() + conn_->bytes_in() - seen_bytes_, std::memory_order_relaxed);
      seen_trips_ = conn_->round_trips();
      seen_bytes_ = conn_->bytes_out() + conn_->bytes_in();
      if (replies.ok()) {
        for (const auto& r : *replies) VIGIL_RETURN_IF_ERROR(reply_status(r, "XADD to " + model_ + "'s request stream"));
        const auto& ids = replies->back().elements;
        for (const auto& r : ids) VIGIL_RETURN_IF_ERROR(reply_status(r, "XADD to " + model_ + "'s request stream"));
        for (std::size_t k = 0; k < which.size() && k < ids.size(); ++k) items_[which[k]].entry = ids[k].str;
        return {};
      }
      status = replies.error();
    }
    if (!patient || SteadyClock::now() >= give_up) return status;
    std::this_thread::sleep_for(backoff_.next());
  }
}

void RemoteBackend::forget() {
  MutexLock lock(owner_.mu_);
  for (const Item& item : items_) owner_.pending_.erase(item.id);
}

namespace {

// "ms-seq" stream ids compared as numbers.
bool id_after(const std::string& a, const std::string& b) {
  const auto split = [](const std::string& id) {
    const auto dash = id.find('-');
    return std::pair<unsigned long long, unsigned long long>(std::strtoull(id.c_str(), nullptr, 10),
                                                             dash == std::string::npos ? 0 : std::strtoull(id.c_str() + dash + 1, nullptr, 10));
  };
  return split(a) > split(b);
}

}  // namespace

Result<std::vector<std::size_t>> RemoteBackend::lost(const std::vector<std::size_t>& late) {
  VIGIL_RETURN_IF_ERROR(connect());
  std::vector<RedisCommand> asks;
  for (std::size_t i : late) {
    const std::string& stream = commands_[i][1];
    const std::string& id = items_[i].entry;
    asks.push_back({"XRANGE", stream, id, id});
    asks.push_back({"XPENDING", stream, std::string(kWorkerGroup), id, id, "1"});
    asks.push_back({"XINFO", "GROUPS", stream});
  }
  auto replies = conn_->pipeline(asks);
  if (!replies.ok()) return replies.error();
  std::vector<std::size_t> out;
  for (std::size_t k = 0; k < late.size(); ++k) {
    const RedisReply& range = (*replies)[3 * k];
    const RedisReply& pending = (*replies)[3 * k + 1];
    const RedisReply& groups = (*replies)[3 * k + 2];
    const std::string& id = items_[late[k]].entry;
    bool queued = false;  // in the stream and not yet read by the workers' group
    for (const RedisReply& g : groups.elements) {
      if (const RedisReply* last = g.field("last-delivered-id")) queued = id_after(id, last->str);
    }
    const bool exists = range.is_array() && !range.elements.empty();
    const bool in_flight = pending.is_array() && !pending.elements.empty();
    if (id.empty() || !exists || !(in_flight || queued || groups.elements.empty())) out.push_back(late[k]);
  }
  return out;
}

Status RemoteBackend::infer(const Tensor& input, std::vector<Tensor>& outputs) {
  const RemoteOptions& o = owner_.options_;
  const auto n = static_cast<std::size_t>(input.rank() == 0 ? 0 : input.dim(0));
  const std::span<const CallItem> context = CallContext::take(n);
  items_.resize(n);
  commands_.resize(n);
  all_.resize(n);
  bool any_live = false;
  for (std::size_t i = 0; i < n; ++i) {
    const CallItem item = i < context.size() ? context[i] : CallItem{};
    items_[i] = {owner_.next_id_.fetch_add(1), item.live, {}};
    any_live = any_live || item.live;
    all_[i] = i;
    RedisCommand& c = commands_[i];
    c = {"XADD", request_stream(o.prefix, model_, static_cast<int>(shard_++ % static_cast<std::uint64_t>(o.shards))), "MAXLEN", "~",
         std::to_string(o.max_len), "*", std::string(request_field::id), std::to_string(items_[i].id),
         std::string(request_field::reply), owner_.reply_key_, std::string(request_field::model), model_, "o", outputs_,
         std::string(request_field::live), item.live ? "1" : "0", std::string(request_field::captured),
         std::to_string(item.captured_ms != 0 ? item.captured_ms : now_ms()), std::string(request_field::camera),
         std::string(item.camera), std::string(request_field::seq), std::to_string(item.seq), std::string(request_field::input), ""};
    encode_item(input, static_cast<std::int64_t>(i), c.back());
  }
  {
    MutexLock lock(owner_.mu_);
    for (const Item& item : items_) owner_.pending_[item.id];
  }
  Status status = send(all_, !any_live);
  if (status.ok()) {
    owner_.requests_.fetch_add(n, std::memory_order_relaxed);
    status = wait_and_collect(outputs, context.empty());
  } else if (any_live) {
    owner_.deadline_.fetch_add(n, std::memory_order_relaxed);
  }
  forget();
  return status;
}

namespace {

// While a model's start-up check waits: what the cluster's workers serve, when workers are
// registered and none of them serves `model` (empty when one does, or none is there yet).
std::string workers_without(const RemoteOptions& o, const std::string& model) {
  auto conn = RedisConnection::connect(o.url, o.connect_timeout);
  if (!conn.ok()) return "";
  auto procs = list_processes(**conn, o.prefix);
  if (!procs.ok()) return "";
  std::string serving;
  for (const ProcessInfo& p : *procs) {
    if (p.role != "worker") continue;
    if (("," + p.models + ",").find("," + model + ",") != std::string::npos) return "";
    serving += (serving.empty() ? "" : "; ") + p.id + " serves " + (p.models.empty() ? "nothing" : p.models);
  }
  return serving;
}

}  // namespace

// Waits for every item's reply (sending a file's again after reply_timeout), then decodes
// them into `outputs`. A start-up check fails early, by the registry, when the cluster's
// workers are there and none of them serves the model (twice in a row, a second apart).

Status RemoteBackend::wait_and_collect(std::vector<Tensor>& outputs, bool checking) {
  const RemoteOptions& o = owner_.options_;
  auto deadline = SteadyClock::now() + o.reply_timeout;
  const auto give_up = SteadyClock::now() + o.start_timeout;
  auto next_look = SteadyClock::now() + std::chrono::seconds(1);  // at the registry, when checking
  int unserved = 0;
  std::vector<std::size_t> late;
  MutexLock lock(owner_.mu_);
  while (true) {
    late.clear();
    for (std::size_t i = 0; i < items_.size(); ++i) {
      if (!owner_.pending_[items_[i].id].done) late.push_back(i);
    }
    if (late.empty()) break;
    if (owner_.cancelled()) return Error{ErrorCode::cancelled, "remote model call cancelled"};
    if (checking && SteadyClock::now() >= next_look) {
      lock.unlock();
      const std::string serving = workers_without(o, model_);
      lock.lock();
      unserved = serving.empty() ? 0 : unserved + 1;
      if (unserved >= 2) {
        return Error{ErrorCode::not_found, "model " + model_ + ": no worker of the cluster serves it (" + serving +
                                               "); start one: vigil worker --config CONFIG --redis " + o.url.redacted() +
                                               " --models " + model_};
      }
      next_look = SteadyClock::now() + std::chrono::seconds(1);
      continue;  // replies may have come meanwhile
    }
    if (checking && SteadyClock::now() >= give_up) {
      return Error{ErrorCode::unavailable, "model " + model_ + ": no worker answered within " + std::to_string(o.start_timeout.count() / 1000) +
                                               " s (start one: vigil worker --config CONFIG --redis " + o.url.redacted() + ")"};
    }
    if (SteadyClock::now() < deadline) {
      owner_.replied_.wait_until(owner_.mu_, std::min(deadline, SteadyClock::now() + std::chrono::milliseconds(200)));
      continue;
    }
    for (std::size_t i : late) {
      if (items_[i].live) {
        owner_.deadline_.fetch_add(late.size(), std::memory_order_relaxed);
        return Error{ErrorCode::deadline_exceeded, "model " + model_ + ": no worker answered within " +
                                                      std::to_string(o.reply_timeout.count()) + " ms"};
      }
    }
    lock.unlock();
    auto gone = lost(late);
    Status status = gone.ok() ? Status{} : Status(gone.error());
    if (status.ok() && !gone->empty()) {
      spdlog::warn("model {}: {} requests gone from the stream without a reply; sending them again", model_, gone->size());
      owner_.resent_.fetch_add(gone->size(), std::memory_order_relaxed);
      status = send(*gone, true);
    } else if (!status.ok() && status.error().code == ErrorCode::unavailable) {
      status = send(late, true);  // Redis is away: whatever it had may be lost
      if (status.ok()) owner_.resent_.fetch_add(late.size(), std::memory_order_relaxed);
    }
    lock.lock();
    if (!status.ok()) return status;
    deadline = SteadyClock::now() + o.reply_timeout;
  }
  // Every reply is in: statuses first, then the outputs.
  for (const Item& item : items_) {
    const RemoteModels::Slot& slot = owner_.pending_[item.id];
    if (slot.status == kReplyOk) continue;
    if (slot.status == kReplyDeadline) {
      owner_.deadline_.fetch_add(1, std::memory_order_relaxed);
      return Error{ErrorCode::deadline_exceeded, "model " + model_ + ": a worker dropped a frame older than its max_age_ms"};
    }
    owner_.failed_.fetch_add(1, std::memory_order_relaxed);
    return Error{ErrorCode::internal, "model " + model_ + " on a worker: " + slot.status};
  }
  const std::size_t count = owner_.pending_[items_.front().id].outputs.size();
  outputs.resize(count);
  for (std::size_t k = 0; k < count; ++k) {
    for (std::size_t i = 0; i < items_.size(); ++i) {
      const RemoteModels::Slot& slot = owner_.pending_[items_[i].id];
      if (slot.outputs.size() != count) return Error{ErrorCode::data_loss, "model " + model_ + ": replies with different outputs"};
      if (i == 0) {
        auto shape = item_shape(slot.outputs[k]);
        if (!shape.ok()) return Error{ErrorCode::data_loss, "model " + model_ + ": a reply's output " + std::to_string(k) + " is " + shape.error().message};
        (*shape)[0] = static_cast<std::int64_t>(items_.size());
        outputs[k].reshape(*shape);
      }
      VIGIL_RETURN_IF_ERROR(decode_item(slot.outputs[k], outputs[k], static_cast<std::int64_t>(i), 0));
    }
  }
  return {};
}

RemoteModels::RemoteModels(RemoteOptions options)
    : options_(std::move(options)), reply_key_(reply_stream(options_.prefix, options_.node)) {}

Result<std::shared_ptr<RemoteModels>> RemoteModels::start(RemoteOptions options) {
  if (options.node.empty()) return Error{ErrorCode::invalid_argument, "remote: a node id is needed"};
  if (options.shards < 1) return Error{ErrorCode::invalid_argument, "remote: shards must be at least 1"};
  auto probe = RedisConnection::connect(options.url, options.connect_timeout);
  if (!probe.ok()) return probe.error();
  std::shared_ptr<RemoteModels> models(new RemoteModels(std::move(options)));
  models->reader_ = std::thread([m = models.get()] { m->read_replies(); });
  return models;
}

RemoteModels::~RemoteModels() {
  if (installed_) set_remote_backend_factory({});
  stop_.store(true);
  cancel();
  if (reader_.joinable()) reader_.join();
}

bool RemoteModels::cancelled() const {
  return SteadyClock::now().time_since_epoch().count() >= cancel_at_.load();
}

void RemoteModels::cancel(std::chrono::milliseconds grace) {
  cancel_at_.store((SteadyClock::now() + grace).time_since_epoch().count());
  MutexLock lock(mu_);
  replied_.notify_all();
}

void RemoteModels::install() {
  installed_ = true;
  set_remote_backend_factory([this](const BackendOptions& o) { return make_backend(o); });
}

Result<std::unique_ptr<Backend>> RemoteModels::make_backend(const BackendOptions& options) {
  const auto it = options_.models.find(options.model_path);
  if (it == options_.models.end()) {
    return Error{ErrorCode::invalid_argument, "remote: no model of the config has the file " + options.model_path};
  }
  return std::unique_ptr<Backend>(std::make_unique<RemoteBackend>(*this, it->second, options));
}

RemoteCounters RemoteModels::counters() const {
  RemoteCounters c;
  c.requests = requests_.load();
  c.resent = resent_.load();
  c.replies = replies_.load();
  c.duplicates = duplicates_.load();
  c.deadline = deadline_.load();
  c.failed = failed_.load();
  c.reconnects = reconnects_.load();
  c.round_trips = round_trips_.load();
  c.bytes = bytes_.load();
  return c;
}

std::unique_ptr<RedisConnection> RemoteModels::reconnect_reader() {
  ReconnectBackoff backoff(std::chrono::milliseconds(100), std::chrono::milliseconds(2000), std::random_device{}());
  while (!stop_.load()) {
    auto conn = RedisConnection::connect(options_.url, options_.connect_timeout);
    if (conn.ok()) return std::move(conn).value();
    spdlog::warn("remote reply reader: {}", conn.error().message);
    std::this_thread::sleep_for(backoff.next());
  }
  return nullptr;
}

void RemoteModels::take_reply(const RedisReply& fields) {
  const RedisReply* id = fields.field(reply_field::id);
  const RedisReply* status = fields.field(reply_field::status);
  if (id == nullptr || status == nullptr) return;
  std::uint64_t key = 0;
  try {
    key = std::stoull(id->str);
  } catch (const std::exception&) {
    return;
  }
  MutexLock lock(mu_);
  const auto it = pending_.find(key);
  if (it == pending_.end() || it->second.done) {
    duplicates_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Slot& slot = it->second;
  slot.status = status->str;
  for (std::size_t k = 0;; ++k) {
    const RedisReply* y = fields.field("y" + std::to_string(k));
    if (y == nullptr) break;
    slot.outputs.push_back(y->str);
  }
  slot.done = true;
  replies_.fetch_add(1, std::memory_order_relaxed);
  replied_.notify_all();
}

void RemoteModels::read_replies() {
  std::unique_ptr<RedisConnection> conn;
  std::string last = "0-0";
  auto trimmed = SteadyClock::now();
  std::uint64_t trips = 0, bytes = 0;
  while (!stop_.load()) {
    if (!conn || conn->broken()) {
      if (conn) reconnects_.fetch_add(1, std::memory_order_relaxed);
      conn = reconnect_reader();
      trips = bytes = 0;
      if (!conn) return;
    }
    auto reply = conn->blocking_command({"XREAD", "COUNT", "1024", "BLOCK", "200", "STREAMS", reply_key_, last},
                                        std::chrono::milliseconds(200));
    round_trips_.fetch_add(conn->round_trips() - trips, std::memory_order_relaxed);
    bytes_.fetch_add(conn->bytes_in() + conn->bytes_out() - bytes, std::memory_order_relaxed);
    trips = conn->round_trips();
    bytes = conn->bytes_in() + conn->bytes_out();
    if (!reply.ok() || !reply->is_array()) continue;
    for (const RedisReply& stream : reply->elements) {
      if (stream.elements.size() != 2) continue;
      for (const RedisReply& entry : stream.elements[1].elements) {
        if (entry.elements.size() != 2) continue;
        take_reply(entry.elements[1]);
        last = entry.elements[0].str;
      }
    }
    if (SteadyClock::now() - trimmed > std::chrono::seconds(1)) {  // read replies go
      (void)conn->command({"XTRIM", reply_key_, "MINID", last});
      trimmed = SteadyClock::now();
    }
  }
}

}  // namespace vigil
