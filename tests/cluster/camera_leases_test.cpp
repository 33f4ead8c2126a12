// CameraLeases against a real redis-server: two nodes balance the cluster's cameras, a node
// that dies has its cameras taken within lease + 1 s and could deliver nothing after its lease
// ran out, cameras added and removed through any node reach their owner, ended files are done.
#include "vigil/cluster/camera_leases.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <set>
#include <thread>

#include "support/test_support.h"
#include "vigil/cluster/registry.h"

namespace vigil {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

using test::wait_until;

// One ingest node: its registry entry and its leases, with what the callbacks saw.
struct Node {
  Node(const RedisUrl& url, const std::string& node, milliseconds lease = milliseconds(1000)) : name(node) {
    ProcessInfo self;
    self.id = node;
    self.role = "ingest";
    self.models_hash = "h";
    auto r = Registry::start(url, "vigil", self, milliseconds(100), {});
    EXPECT_TRUE(r.ok()) << r.error().message;
    registry = std::move(r).value();
    LeaseOptions o;
    o.url = url;
    o.node = node;
    o.lease = lease;
    o.tick = milliseconds(100);
    LeaseCallbacks c;
    c.acquired = [this](const LeasedCamera& cam) {
      MutexLock lock(mu);
      running[cam.id] = cam;
      acquired_at[cam.id] = SteadyClock::now();
      if (!cam.previous_owner.empty()) taken_from[cam.id] = cam.previous_owner;
      return Status{};
    };
    c.released = [this](const std::string& id, const std::string& why) {
      MutexLock lock(mu);
      running.erase(id);
      reasons.push_back(id + ": " + why);
    };
    c.ended = [this](const std::string& id) {
      MutexLock lock(mu);
      return ended.count(id) > 0;
    };
    c.movable = [](const std::string& spec) { return spec != "file"; };
    auto l = CameraLeases::start(o, c);
    EXPECT_TRUE(l.ok()) << l.error().message;
    leases = std::move(l).value();
  }
  std::set<std::string> cameras() {
    MutexLock lock(mu);
    std::set<std::string> out;
    for (const auto& [id, cam] : running) out.insert(id);
    return out;
  }
  std::string name;
  Mutex mu;
  std::map<std::string, LeasedCamera> running GUARDED_BY(mu);
  std::map<std::string, SteadyClock::time_point> acquired_at GUARDED_BY(mu);
  std::map<std::string, std::string> taken_from GUARDED_BY(mu);
  std::vector<std::string> reasons GUARDED_BY(mu);
  std::set<std::string> ended GUARDED_BY(mu);
  std::unique_ptr<Registry> registry;
  std::unique_ptr<CameraLeases> leases;
};

std::unique_ptr<RedisConnection> connect(const RedisUrl& url) {
  return std::move(RedisConnection::connect(url, milliseconds(2000))).value();
}

TEST(CameraLeasesTest, TwoNodesBalanceAndADeadNodesCamerasAreTakenWithinLeasePlusOneSecondAfterItsFenceClosed) {
  test::RedisServer server;
  ASSERT_TRUE(server.ready());
  const RedisUrl url = *parse_redis_url(server.url());
  auto redis = connect(url);
  ASSERT_TRUE(CameraLeases::seed(*redis, "vigil", {{"c1", "live"}, {"c2", "live"}, {"c3", "live"}, {"c4", "live"}}).ok());
  const milliseconds lease(2000);
  auto a = std::make_unique<Node>(url, "a", lease);
  Node b(url, "b", lease);
  const auto balanced = [&] {
    std::set<std::string> all = a->cameras();
    const std::set<std::string> theirs = b.cameras();
    all.insert(theirs.begin(), theirs.end());
    return a->cameras().size() == 2 && theirs.size() == 2 && all.size() == 4;
  };
  ASSERT_TRUE(wait_until(balanced)) << a->cameras().size() << " " << b.cameras().size();

  // Node a dies (its process would be gone: no release, no more heartbeats).
  std::map<std::string, std::int64_t> fence;
  {
    MutexLock lock(a->mu);
    for (const auto& [id, cam] : a->running) fence[id] = cam.until->load();
  }
  const auto died = SteadyClock::now();
  a->leases->abandon();
  a->registry.reset();  // its heartbeat stops (the entry would also expire)
  ASSERT_TRUE(wait_until([&] { return b.cameras().size() == 4; }));
  MutexLock lock(b.mu);
  for (const auto& [id, until] : fence) {
    ASSERT_TRUE(b.acquired_at.count(id)) << id;
    const auto taken = b.acquired_at.at(id);
    EXPECT_GT(taken, died) << id;
    EXPECT_LE(taken - died, lease + milliseconds(1000)) << id << ": taken over after lease + 1 s";
    EXPECT_GT(taken.time_since_epoch().count(), until) << id << ": taken before the old owner's fence closed";
    EXPECT_EQ(b.taken_from.count(id) ? b.taken_from.at(id) : "", "a") << id;
  }
  EXPECT_GE(b.leases->counters().taken_over, 2u);  // and those a handed over at the start
}

// A node that started alone holds every camera; a second node joins: the first hands over
// what the second lacks within a few ticks, not one camera a tick (120 cameras, 100 ms ticks:
// one a tick would take 6 s), and exactly that many.
TEST(CameraLeasesTest, ANodeThatTookEverythingHandsOverWhatTheOtherLacksInAFewTicksAndNoMore) {
  test::RedisServer server;
  ASSERT_TRUE(server.ready());
  const RedisUrl url = *parse_redis_url(server.url());
  auto redis = connect(url);
  std::vector<std::pair<std::string, std::string>> cameras;
  for (int i = 0; i < 120; ++i) cameras.emplace_back("c" + std::to_string(i), "live");
  ASSERT_TRUE(CameraLeases::seed(*redis, "vigil", cameras).ok());
  Node a(url, "a", milliseconds(5000));
  ASSERT_TRUE(wait_until([&] { return a.cameras().size() == 120; }));
  const auto joined = SteadyClock::now();
  Node b(url, "b", milliseconds(5000));
  ASSERT_TRUE(wait_until([&] { return a.cameras().size() == 60 && b.cameras().size() == 60; }, milliseconds(20000)))
      << a.cameras().size() << " " << b.cameras().size();
  const double took = std::chrono::duration<double>(SteadyClock::now() - joined).count();
  std::printf("60 of 120 cameras moved to the new node in %.2f s (ticks of 100 ms)\n", took);
  EXPECT_LT(took, 4.0);
  EXPECT_EQ(a.leases->counters().handed_over, 60u);
}

TEST(CameraLeasesTest, CamerasAddedAndRemovedThroughAnyNodeReachTheirOwnerAndEndedFilesAreDone) {
  test::RedisServer server;
  ASSERT_TRUE(server.ready());
  const RedisUrl url = *parse_redis_url(server.url());
  Node a(url, "a");
  Node b(url, "b");
  ASSERT_TRUE(a.leases->put("f1", "file").ok());
  EXPECT_EQ(b.leases->put("f1", "file").error().code, ErrorCode::already_exists);
  ASSERT_TRUE(b.leases->put("l1", "live").ok());
  // Balanced, one each (a node that took both at first hands the live one over).
  ASSERT_TRUE(wait_until([&] { return a.cameras().size() == 1 && b.cameras().size() == 1; }));
  Node& live_owner = a.cameras().count("l1") ? a : b;
  ASSERT_TRUE((&live_owner == &a ? b : a).leases->remove("l1").ok());  // through the other node
  ASSERT_TRUE(wait_until([&] { return live_owner.cameras().count("l1") == 0; }));
  EXPECT_EQ(a.leases->remove("l1").error().code, ErrorCode::not_found);
  {
    MutexLock lock(live_owner.mu);
    EXPECT_NE(std::find(live_owner.reasons.begin(), live_owner.reasons.end(), "l1: removed"), live_owner.reasons.end());
  }
  Node& file_owner = a.cameras().count("f1") ? a : b;
  EXPECT_FALSE(file_owner.leases->all_done());
  {
    MutexLock lock(file_owner.mu);
    file_owner.ended.insert("f1");
  }
  ASSERT_TRUE(wait_until([&] { return a.leases->all_done() && b.leases->all_done(); }));
  EXPECT_TRUE(a.cameras().empty() && b.cameras().empty());
  EXPECT_EQ(connect(url)->command({"SISMEMBER", "vigil:done", "f1"})->integer, 1);
}

TEST(CameraLeasesTest, ALeaseTakenByAnotherNodeIsLostAtTheNextRenewalAndItsFenceClosesAtOnce) {
  test::RedisServer server;
  ASSERT_TRUE(server.ready());
  const RedisUrl url = *parse_redis_url(server.url());
  auto redis = connect(url);
  ASSERT_TRUE(CameraLeases::seed(*redis, "vigil", {{"c1", "live"}}).ok());
  Node a(url, "a");
  ASSERT_TRUE(wait_until([&] { return a.cameras().size() == 1; }));
  std::shared_ptr<std::atomic<std::int64_t>> until;
  {
    MutexLock lock(a.mu);
    until = a.running.at("c1").until;
  }
  // Someone else's lease now (as after a's lease expired during a pause and b took it).
  ASSERT_TRUE(redis->command({"SET", "vigil:lease:{c1}", "b|999", "PX", "60000"}).ok());
  ASSERT_TRUE(wait_until([&] { return a.cameras().empty(); }));
  EXPECT_EQ(until->load(), 0);
  EXPECT_EQ(a.leases->counters().lost, 1u);
  EXPECT_EQ(redis->command({"GET", "vigil:lease:{c1}"})->str, "b|999") << "a released a lease that was not its own";
}

}  // namespace
}  // namespace vigil
