#include "vigil/cluster/camera_leases.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <random>
#include <set>

#include "vigil/cluster/registry.h"

namespace vigil {

namespace {

using SteadyClock = std::chrono::steady_clock;

// 1: renewed; 2: the lease was gone (Redis lost its data) and is ours again; 0: another's.
constexpr const char* kRenew =
    "local v = redis.call('get', KEYS[1]) "
    "if v == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
    "elseif not v then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 "
    "else return 0 end";
// Acquire: the lease if free, and then (only then) the last owner swapped for this node; nil
// when another holds it, else the node that had it before ("" for none).
constexpr const char* kAcquire =
    "if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then "
    "return redis.call('getset', KEYS[2], ARGV[3]) or '' else return false end";
constexpr const char* kRelease =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

std::string lease_key(const std::string& prefix, const std::string& id) { return prefix + ":lease:{" + id + "}"; }
std::string owner_key(const std::string& prefix, const std::string& id) { return prefix + ":owner:{" + id + "}"; }

std::string lease_value(const std::string& node, std::uint64_t token) { return node + "|" + std::to_string(token); }
std::string owner_of(const std::string& value) { return value.substr(0, value.rfind('|')); }

}  // namespace

CameraLeases::CameraLeases(LeaseOptions options, LeaseCallbacks callbacks)
    : options_(std::move(options)), callbacks_(std::move(callbacks)) {}

Result<std::unique_ptr<CameraLeases>> CameraLeases::start(LeaseOptions options, LeaseCallbacks callbacks) {
  if (options.node.empty()) return Error{ErrorCode::invalid_argument, "leases: a node id is needed"};
  if (options.node.find('|') != std::string::npos) return Error{ErrorCode::invalid_argument, "leases: a node id may not hold '|'"};
  if (options.lease < std::chrono::milliseconds(100) || options.tick * 2 > options.lease) {
    return Error{ErrorCode::invalid_argument, "leases: the lease must be at least 100 ms and twice the tick"};
  }
  if (!callbacks.acquired || !callbacks.released) return Error{ErrorCode::invalid_argument, "leases: callbacks missing"};
  auto probe = RedisConnection::connect(options.url, std::chrono::milliseconds(2000));
  if (!probe.ok()) return probe.error();
  std::unique_ptr<CameraLeases> leases(new CameraLeases(std::move(options), std::move(callbacks)));
  VIGIL_RETURN_IF_ERROR(leases->reseed(**probe));
  leases->thread_ = std::thread([l = leases.get()] { l->loop(); });
  return leases;
}

CameraLeases::~CameraLeases() { stop(); }

void CameraLeases::abandon() {
  {
    MutexLock lock(mu_);
    stop_ = true;
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  MutexLock lock(mu_);
  held_.clear();
}

void CameraLeases::stop() {
  {
    MutexLock lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  auto conn = RedisConnection::connect(options_.url, std::chrono::milliseconds(1000));
  for (const std::string& id : held()) release(conn.ok() ? conn->get() : nullptr, id, "stopping");
}

Status CameraLeases::seed(RedisConnection& redis, const std::string& prefix,
                          const std::vector<std::pair<std::string, std::string>>& cameras) {
  std::vector<RedisCommand> commands;
  for (const auto& [id, spec] : cameras) commands.push_back({"HSETNX", prefix + ":cameras", id, spec});
  if (commands.empty()) return {};
  auto replies = redis.pipeline(commands);
  if (!replies.ok()) return replies.error();
  for (const auto& r : *replies) VIGIL_RETURN_IF_ERROR(reply_status(r, "HSETNX cameras"));
  return {};
}

Status CameraLeases::put(const std::string& id, const std::string& spec) {
  auto conn = RedisConnection::connect(options_.url, std::chrono::milliseconds(2000));
  if (!conn.ok()) return conn.error();
  auto replies = (*conn)->pipeline({{"HSETNX", options_.prefix + ":cameras", id, spec}, {"SREM", options_.prefix + ":done", id}});
  if (!replies.ok()) return replies.error();
  VIGIL_RETURN_IF_ERROR(reply_status((*replies)[0], "HSETNX cameras"));
  if ((*replies)[0].integer == 0) return Error{ErrorCode::already_exists, "camera " + id + " exists in the cluster"};
  wake_.notify_all();
  return {};
}

Status CameraLeases::remove(const std::string& id) {
  auto conn = RedisConnection::connect(options_.url, std::chrono::milliseconds(2000));
  if (!conn.ok()) return conn.error();
  auto reply = (*conn)->command({"HDEL", options_.prefix + ":cameras", id});
  if (!reply.ok()) return reply.error();
  VIGIL_RETURN_IF_ERROR(reply_status(*reply, "HDEL cameras"));
  if (reply->integer == 0) return Error{ErrorCode::not_found, "unknown camera"};
  wake_.notify_all();
  return {};
}

std::vector<std::string> CameraLeases::held() const {
  MutexLock lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, h] : held_) out.push_back(id);
  return out;
}

std::vector<ClusterCamera> CameraLeases::view() const {
  MutexLock lock(mu_);
  return view_;
}

LeaseCounters CameraLeases::counters() const {
  return {acquired_.load(), taken_over_.load(), lost_.load(), handed_over_.load()};
}

// Stops the camera here, then gives the lease back when it is still ours (redis may be null).
void CameraLeases::release(RedisConnection* redis, const std::string& id, const std::string& why) {
  Held h;
  {
    MutexLock lock(mu_);
    auto it = held_.find(id);
    if (it == held_.end()) return;
    h = std::move(it->second);
    held_.erase(it);
  }
  h.camera.until->store(0, std::memory_order_release);  // nothing more is delivered
  callbacks_.released(id, why);
  if (redis != nullptr) {
    (void)redis->command({"EVAL", kRelease, "1", lease_key(options_.prefix, id), lease_value(options_.node, h.camera.token)});
  }
}

Status CameraLeases::reseed(RedisConnection& redis) {
  VIGIL_RETURN_IF_ERROR(seed(redis, options_.prefix, options_.seed));
  std::vector<RedisCommand> commands = {{"SET", options_.prefix + ":seeded", "1"}};
  for (const auto& id : done_here_) commands.push_back({"SADD", options_.prefix + ":done", id});
  auto replies = redis.pipeline(commands);
  if (!replies.ok()) return replies.error();
  for (const auto& r : *replies) VIGIL_RETURN_IF_ERROR(reply_status(r, "seed"));
  return {};
}

// A lease not renewed in time is lost: a node that cannot reach Redis (or was paused) stops
// delivering when its leases run out (lease_until), and drops those cameras here, before it
// could renew (set again) a lease another node may hold by now.
void CameraLeases::drop_expired() {
  std::vector<std::string> expired;
  {
    MutexLock lock(mu_);
    const std::int64_t now = SteadyClock::now().time_since_epoch().count();
    for (const auto& [id, h] : held_) {
      if (h.camera.until->load() <= now) expired.push_back(id);
    }
  }
  for (const auto& id : expired) {
    lost_.fetch_add(1);
    spdlog::warn("camera {}: lease ran out before it was renewed", id);
    release(nullptr, id, "lease lost");
  }
}

void CameraLeases::loop() {
  std::unique_ptr<RedisConnection> conn;
  while (true) {
    {
      MutexLock lock(mu_);
      if (stop_) return;
    }
    if (!conn || conn->broken()) {
      auto c = RedisConnection::connect(options_.url, std::chrono::milliseconds(1000));
      if (c.ok()) conn = std::move(c).value();
    }
    drop_expired();
    if (conn) {
      if (Status s = tick(*conn); !s.ok()) spdlog::warn("camera leases: {}", s.error().message);
    }
    drop_expired();
    MutexLock lock(mu_);
    if (!stop_) wake_.wait_for(mu_, options_.tick);
  }
}

Status CameraLeases::tick(RedisConnection& redis) {
  const std::string& p = options_.prefix;
  auto seeded = redis.command({"EXISTS", p + ":seeded"});
  if (!seeded.ok()) return seeded.error();
  if (seeded->integer == 0) {
    spdlog::warn("camera leases: Redis lost the cluster's state (restarted without persistence?); putting it back");
    VIGIL_RETURN_IF_ERROR(reseed(redis));
  }
  auto state = redis.pipeline({{"HGETALL", p + ":cameras"}, {"SMEMBERS", p + ":done"}});
  if (!state.ok()) return state.error();
  std::map<std::string, std::string> cameras;
  for (std::size_t i = 0; i + 1 < (*state)[0].elements.size(); i += 2) cameras[(*state)[0].elements[i].str] = (*state)[0].elements[i + 1].str;
  std::set<std::string> done;
  for (const auto& d : (*state)[1].elements) done.insert(d.str);
  auto procs = list_processes(redis, p);
  if (!procs.ok()) return procs.error();
  // Live ingest nodes: a heartbeat younger than a lease (a dead node's cameras are free by then).
  const std::int64_t wall_now =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const auto live = [&](const ProcessInfo& x) { return x.role == "ingest" && wall_now - x.heartbeat_ms < options_.lease.count(); };
  const auto nodes = std::max<std::size_t>(1, static_cast<std::size_t>(std::count_if(procs->begin(), procs->end(), live)));

  // Renew what we hold; what is gone from the list or ended goes.
  std::vector<std::pair<std::string, Held*>> mine;
  {
    MutexLock lock(mu_);
    for (auto& [id, h] : held_) mine.emplace_back(id, &h);
  }
  std::vector<RedisCommand> renewals;
  for (const auto& [id, h] : mine) {
    renewals.push_back({"EVAL", kRenew, "1", lease_key(p, id), lease_value(options_.node, h->camera.token),
                        std::to_string(options_.lease.count())});
  }
  if (!renewals.empty()) {
    const auto sent = SteadyClock::now();
    auto renewed = redis.pipeline(renewals);
    if (!renewed.ok()) return renewed.error();
    const std::int64_t until = (sent + options_.lease * 9 / 10).time_since_epoch().count();
    for (std::size_t i = 0; i < mine.size(); ++i) {
      const std::string id = mine[i].first;
      if ((*renewed)[i].integer == 1 || (*renewed)[i].integer == 2) {
        mine[i].second->camera.until->store(until, std::memory_order_release);
      } else {
        lost_.fetch_add(1);
        spdlog::warn("camera {}: lease lost (another node holds it now)", id);
        release(nullptr, id, "lease lost");
        continue;
      }
      if (!cameras.count(id)) {
        release(&redis, id, "removed");
      } else if (callbacks_.ended && callbacks_.ended(id)) {
        (void)redis.command({"SADD", p + ":done", id});
        done.insert(id);
        done_here_.insert(id);
        release(&redis, id, "ended");
      }
    }
  }
  std::size_t active = 0;
  for (const auto& [id, spec] : cameras) active += done.count(id) ? 0 : 1;
  const bool finished = !cameras.empty() && active == 0;
  if (finished && !all_done_.exchange(true) && callbacks_.finished) callbacks_.finished();
  if (!finished) all_done_.store(false);
  const std::size_t target = (active + nodes - 1) / nodes;

  // Who holds what.
  std::vector<std::string> ids;
  for (const auto& [id, spec] : cameras) {
    if (!done.count(id)) ids.push_back(id);
  }
  std::map<std::string, std::string> owner;  // id -> node
  std::map<std::string, std::size_t> per_node;
  if (!ids.empty()) {
    RedisCommand mget = {"MGET"};
    for (const auto& id : ids) mget.push_back(lease_key(p, id));
    auto leases = redis.command(mget);
    if (!leases.ok()) return leases.error();
    for (std::size_t i = 0; i < ids.size() && i < leases->elements.size(); ++i) {
      if (leases->elements[i].is_nil()) continue;
      owner[ids[i]] = owner_of(leases->elements[i].str);
      ++per_node[owner[ids[i]]];
    }
  }
  {
    std::map<std::string, std::string> urls;  // node -> its HTTP URL
    for (const ProcessInfo& x : *procs) {
      if (x.role == "ingest") urls[x.id] = x.http;
    }
    std::vector<ClusterCamera> view;
    for (const auto& [id, spec] : cameras) {
      ClusterCamera c;
      c.id = id;
      c.done = done.count(id) > 0;
      if (const auto o = owner.find(id); o != owner.end()) {
        c.owner = o->second;
        if (const auto u = urls.find(c.owner); u != urls.end()) c.http = u->second;
      }
      view.push_back(std::move(c));
    }
    MutexLock lock(mu_);
    view_ = std::move(view);
  }
  std::size_t holding = held().size();
  // Acquire free cameras up to the target, in a random order (nodes starting together spread).
  std::vector<std::string> free;
  for (const auto& id : ids) {
    if (!owner.count(id)) free.push_back(id);
  }
  std::shuffle(free.begin(), free.end(), std::mt19937(std::random_device{}()));
  // Acquisitions stop for this tick after a quarter lease: the leases held are renewed only
  // at the start of a tick, and a node taking hundreds of cameras at once must not let them
  // run out meanwhile.
  const auto acquiring_since = SteadyClock::now();
  std::size_t taken_here = 0;
  for (const std::string& id : free) {
    if (holding >= target || SteadyClock::now() - acquiring_since > options_.lease / 4) break;
    auto token = redis.command({"INCR", p + ":fence"});
    if (!token.ok()) return token.error();
    const auto sent = SteadyClock::now();
    const std::string value = lease_value(options_.node, static_cast<std::uint64_t>(token->integer));
    auto got = redis.command({"EVAL", kAcquire, "2", lease_key(p, id), owner_key(p, id), value,
                              std::to_string(options_.lease.count()), options_.node});
    if (!got.ok()) return got.error();
    VIGIL_RETURN_IF_ERROR(reply_status(*got, "acquire"));
    if (got->is_nil()) continue;  // another node was quicker
    Held h;
    h.camera.id = id;
    h.camera.spec = cameras[id];
    h.camera.token = static_cast<std::uint64_t>(token->integer);
    h.camera.previous_owner = got->str == options_.node ? "" : got->str;
    h.camera.until = std::make_shared<std::atomic<std::int64_t>>((sent + options_.lease * 9 / 10).time_since_epoch().count());
    h.movable = !callbacks_.movable || callbacks_.movable(h.camera.spec);
    h.since = SteadyClock::now();
    if (Status s = callbacks_.acquired(h.camera); !s.ok()) {
      spdlog::error("camera {}: cannot start it here: {}", id, s.error().message);
      (void)redis.command({"EVAL", kRelease, "1", lease_key(p, id), value});
      continue;
    }
    acquired_.fetch_add(1);
    if (!h.camera.previous_owner.empty()) taken_over_.fetch_add(1);
    {
      MutexLock lock(mu_);
      held_[id] = std::move(h);
    }
    ++holding;
    ++taken_here;
  }
  // Above the target while other nodes hold fewer: hand over the newest live cameras, as many
  // as this node has above the target and the others lack (a node that started first and took
  // everything evens out in a tick or two, not one camera a tick).
  // Free cameras not taken here go to the short nodes first: they count against what they lack
  // (else cameras handed over but not yet taken would be handed over again).
  std::size_t shortfall = 0;
  for (const ProcessInfo& x : *procs) {
    if (live(x) && x.id != options_.node && per_node[x.id] < target) shortfall += target - per_node[x.id];
  }
  const std::size_t still_free = free.size() - std::min(free.size(), taken_here);
  shortfall -= std::min(shortfall, still_free);
  const std::size_t excess = holding > target ? holding - target : 0;
  if (const std::size_t moves = std::min(excess, shortfall); moves > 0) {
    std::vector<std::pair<SteadyClock::time_point, std::string>> movable;
    {
      MutexLock lock(mu_);
      for (const auto& [id, h] : held_) {
        if (h.movable) movable.emplace_back(h.since, id);
      }
    }
    std::sort(movable.begin(), movable.end(), std::greater<>());
    for (std::size_t i = 0; i < moves && i < movable.size(); ++i) {
      handed_over_.fetch_add(1);
      release(&redis, movable[i].second, "handed over");
    }
  }
  return {};
}

}  // namespace vigil
