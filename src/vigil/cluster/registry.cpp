#include "vigil/cluster/registry.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <set>

#include "vigil/cluster/wire.h"

namespace vigil {

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string proc_key(const std::string& prefix, const std::string& id) { return prefix + ":proc:{" + id + "}"; }

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::size_t begin = 0;
  while (begin < text.size()) {
    const std::size_t end = std::min(text.find(',', begin), text.size());
    if (end > begin) out.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

ProcessInfo parse_info(const RedisReply& hash) {
  ProcessInfo p;
  for (std::size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
    const std::string& k = hash.elements[i].str;
    const std::string& v = hash.elements[i + 1].str;
    if (k == "id") p.id = v;
    else if (k == "role") p.role = v;
    else if (k == "host") p.host = v;
    else if (k == "http") p.http = v;
    else if (k == "models") p.models = v;
    else if (k == "models_hash") p.models_hash = v;
    else if (k == "shards") p.shards = std::atoi(v.c_str());
    else if (k == "started_ms") p.started_ms = std::atoll(v.c_str());
    else if (k == "heartbeat_ms") p.heartbeat_ms = std::atoll(v.c_str());
    else if (k == "cameras") p.cameras = v;
    else if (k == "rates") p.rates = v;
  }
  return p;
}

}  // namespace

std::string fnv1a_hex(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ull;
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

Registry::Registry(const RedisUrl& url, std::string prefix, ProcessInfo self, std::chrono::milliseconds interval,
                   std::function<std::string()> rates)
    : url_(url), prefix_(std::move(prefix)), self_(std::move(self)), interval_(interval), rates_(std::move(rates)) {}

Result<std::unique_ptr<Registry>> Registry::start(const RedisUrl& url, std::string prefix, ProcessInfo self,
                                                  std::chrono::milliseconds interval, std::function<std::string()> rates) {
  auto conn = RedisConnection::connect(url, std::chrono::milliseconds(2000));
  if (!conn.ok()) return conn.error();
  auto others = list_processes(**conn, prefix);
  if (!others.ok()) return others.error();
  for (const ProcessInfo& other : *others) {
    if (other.id == self.id) {
      return Error{ErrorCode::already_exists, "cluster: a live " + other.role + " on " + other.host + " is already named " + self.id};
    }
    if (other.models_hash != self.models_hash) {
      return Error{ErrorCode::invalid_argument, "cluster: this config's models differ from those of " + other.role + " " + other.id +
                                                    " (models hash " + self.models_hash + " here, " + other.models_hash +
                                                    " there): every process of a cluster takes the same models"};
    }
    if (other.shards != self.shards) {
      return Error{ErrorCode::invalid_argument, "cluster.shards is " + std::to_string(self.shards) + " here and " +
                                                    std::to_string(other.shards) + " in the running cluster (" + other.role + " " +
                                                    other.id + "): stop every process to change it"};
    }
  }
  self.started_ms = now_ms();
  std::unique_ptr<Registry> registry(new Registry(url, std::move(prefix), std::move(self), interval, std::move(rates)));
  VIGIL_RETURN_IF_ERROR(registry->beat(**conn));
  registry->thread_ = std::thread([r = registry.get()] { r->loop(); });
  return registry;
}

Registry::~Registry() {
  {
    MutexLock lock(mu_);
    stop_ = true;
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  if (auto conn = RedisConnection::connect(url_, std::chrono::milliseconds(1000)); conn.ok()) {
    (void)(*conn)->pipeline({{"DEL", proc_key(prefix_, self_.id)}, {"SREM", prefix_ + ":procs", self_.id}});
  }
}

void Registry::set_http(std::string http) {
  MutexLock lock(mu_);
  http_ = std::move(http);
}

void Registry::set_cameras(std::string cameras) {
  MutexLock lock(mu_);
  cameras_ = std::move(cameras);
}

Status Registry::beat(RedisConnection& redis) {
  const std::string rates = rates_ ? rates_() : "";  // may set the cameras
  std::string cameras, http;
  {
    MutexLock lock(mu_);
    cameras = cameras_;
    http = http_.empty() ? self_.http : http_;
  }
  const std::string key = proc_key(prefix_, self_.id);
  auto replies = redis.pipeline({{"HSET", key, "id", self_.id, "role", self_.role, "host", self_.host, "http", http, "models",
                                  self_.models, "models_hash", self_.models_hash, "shards", std::to_string(self_.shards), "started_ms",
                                  std::to_string(self_.started_ms), "heartbeat_ms", std::to_string(now_ms()), "cameras", cameras,
                                  "rates", rates},
                                 {"PEXPIRE", key, std::to_string(interval_.count() * 3 + 1000)},
                                 {"SADD", prefix_ + ":procs", self_.id}});
  if (!replies.ok()) return replies.error();
  for (const auto& r : *replies) VIGIL_RETURN_IF_ERROR(reply_status(r, "registry"));
  return {};
}

void Registry::loop() {
  std::unique_ptr<RedisConnection> conn;
  while (true) {
    {
      MutexLock lock(mu_);
      if (!stop_) wake_.wait_for(mu_, interval_);
      if (stop_) return;
    }
    if (!conn || conn->broken()) {
      auto c = RedisConnection::connect(url_, std::chrono::milliseconds(2000));
      if (!c.ok()) continue;  // the next beat tries again
      conn = std::move(c).value();
    }
    if (Status s = beat(*conn); !s.ok()) spdlog::debug("registry heartbeat: {}", s.error().message);
  }
}

Result<std::vector<ProcessInfo>> list_processes(RedisConnection& redis, const std::string& prefix) {
  auto ids = redis.command({"SMEMBERS", prefix + ":procs"});
  if (!ids.ok()) return ids.error();
  VIGIL_RETURN_IF_ERROR(reply_status(*ids, "SMEMBERS"));
  std::vector<RedisCommand> reads;
  for (const auto& id : ids->elements) reads.push_back({"HGETALL", proc_key(prefix, id.str)});
  std::vector<ProcessInfo> out;
  if (reads.empty()) return out;
  auto hashes = redis.pipeline(reads);
  if (!hashes.ok()) return hashes.error();
  for (std::size_t i = 0; i < hashes->size(); ++i) {
    if ((*hashes)[i].elements.empty()) {  // expired: it died without saying so
      (void)redis.command({"SREM", prefix + ":procs", ids->elements[i].str});
      continue;
    }
    out.push_back(parse_info((*hashes)[i]));
  }
  std::sort(out.begin(), out.end(), [](const ProcessInfo& a, const ProcessInfo& b) { return std::tie(a.role, a.id) < std::tie(b.role, b.id); });
  return out;
}

Result<std::string> cluster_status(RedisConnection& redis, const std::string& prefix, bool json) {
  auto procs = list_processes(redis, prefix);
  if (!procs.ok()) return procs.error();
  const std::int64_t now = now_ms();
  nlohmann::json j;
  j["processes"] = nlohmann::json::array();
  std::set<std::string> models;
  int shards = 1;
  std::vector<std::string> nodes;
  for (const ProcessInfo& p : *procs) {
    j["processes"].push_back({{"id", p.id}, {"role", p.role}, {"host", p.host}, {"http", p.http}, {"models", p.models},
                              {"models_hash", p.models_hash}, {"shards", p.shards}, {"heartbeat_age_ms", now - p.heartbeat_ms},
                              {"up_s", (now - p.started_ms) / 1000}, {"cameras", split(p.cameras)}, {"rates", p.rates}});
    for (const auto& m : split(p.models)) models.insert(m);
    shards = std::max(shards, p.shards);
    if (p.role == "ingest") nodes.push_back(p.id);
  }
  j["streams"] = nlohmann::json::array();
  for (const std::string& model : models) {
    for (int s = 0; s < shards; ++s) {
      const std::string key = request_stream(prefix, model, s);
      auto replies = redis.pipeline({{"XLEN", key}, {"XINFO", "GROUPS", key}});
      if (!replies.ok()) return replies.error();
      nlohmann::json stream = {{"stream", key}, {"length", (*replies)[0].integer}, {"pending", 0}, {"lag", 0}, {"consumers", 0}};
      for (const RedisReply& group : (*replies)[1].elements) {
        if (const RedisReply* v = group.field("pending")) stream["pending"] = v->integer;
        if (const RedisReply* v = group.field("lag")) stream["lag"] = v->integer;
        if (const RedisReply* v = group.field("consumers")) stream["consumers"] = v->integer;
      }
      j["streams"].push_back(stream);
    }
    auto dead = redis.command({"XLEN", dead_letter_stream(prefix, model)});
    if (!dead.ok()) return dead.error();
    j["dead_letters"][model] = dead->integer;
  }
  if (json) return j.dump(2) + "\n";
  std::string out;
  char line[512];
  out += "processes:\n";
  for (const auto& p : j["processes"]) {
    std::snprintf(line, sizeof line, "  %-7s %-28s %-16s up %5llds  heartbeat %4lld ms ago  %s%s%s\n", p["role"].get<std::string>().c_str(),
                  p["id"].get<std::string>().c_str(), p["host"].get<std::string>().c_str(), p["up_s"].get<long long>(),
                  p["heartbeat_age_ms"].get<long long>(), p["rates"].get<std::string>().c_str(),
                  p["http"].get<std::string>().empty() ? "" : "  ", p["http"].get<std::string>().c_str());
    out += line;
    for (const auto& c : p["cameras"]) out += "          camera " + c.get<std::string>() + "\n";
  }
  out += "request streams:\n";
  for (const auto& s : j["streams"]) {
    std::snprintf(line, sizeof line, "  %-28s length %6lld  pending %5lld  lag %6lld  consumers %lld\n", s["stream"].get<std::string>().c_str(),
                  s["length"].get<long long>(), s["pending"].get<long long>(), s["lag"].get<long long>(), s["consumers"].get<long long>());
    out += line;
  }
  if (j.contains("dead_letters")) {
    for (const auto& [model, n] : j["dead_letters"].items()) out += "dead letters of " + model + ": " + std::to_string(n.get<long long>()) + "\n";
  }
  return out;
}

}  // namespace vigil
