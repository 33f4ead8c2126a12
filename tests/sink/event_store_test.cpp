#include "vigil/sink/event_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "support/test_support.h"

extern char** environ;

namespace vigil {
namespace {

// A read-only connection for checking what the store wrote.
class Reader {
 public:
  explicit Reader(const std::string& path) { sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr); }
  ~Reader() { sqlite3_close(db_); }
  std::string text(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW &&
        sqlite3_column_text(s, 0)) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    return out;
  }
  std::int64_t number(const std::string& sql) { return std::stoll(text(sql).empty() ? "-1" : text(sql)); }

 private:
  sqlite3* db_ = nullptr;
};

Event track_event(std::uint64_t id, EventKind kind = EventKind::track_started) {
  Event e;
  e.id = id;
  e.at = std::chrono::system_clock::now();
  e.kind = kind;
  e.camera = "lobby";
  e.track_id = 7;
  e.frame_seq = 42;
  e.bbox = {10, 20, 110, 140};
  return e;
}

TEST(EventStoreTest, WritesEventsAndFacesReadableWithSql) {
  test::TempDir dir;
  EventStoreOptions options;
  options.path = dir.file("sub/vigil.db");  // the folder is created
  auto store = EventStore::open(options);
  ASSERT_TRUE(store.ok()) << store.error().message;
  Event state;
  state.id = 1;
  state.at = std::chrono::system_clock::now();
  state.kind = EventKind::camera_state;
  state.camera = "lobby";
  state.from = CameraState::connecting;
  state.to = CameraState::live;
  EXPECT_TRUE((*store)->offer(state));
  EXPECT_TRUE((*store)->offer(track_event(2), std::make_shared<const std::vector<std::uint8_t>>(std::vector<std::uint8_t>{0xff, 0xd8, 1, 2})));
  Event identity = track_event(3, EventKind::identity_matched);
  identity.detail = "alice";
  identity.similarity = 0.8f;
  identity.known = true;
  EXPECT_TRUE((*store)->offer(identity));
  Event entered = track_event(4, EventKind::person_entered);
  entered.people = 3;
  EXPECT_TRUE((*store)->offer(entered));
  (*store)->flush();
  EXPECT_EQ((*store)->written(), 4u);
  Reader r(options.path);
  EXPECT_EQ(r.number("PRAGMA user_version"), 3);
  EXPECT_EQ(r.text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(r.number("SELECT count(*) FROM events"), 4);
  EXPECT_EQ(r.text("SELECT type || ' ' || track_id || ' ' || people FROM events WHERE bus_id = 4"), "person_entered 7 3");
  EXPECT_EQ(r.number("SELECT count(*) FROM events WHERE people IS NOT NULL"), 1) << "only person events count people";
  EXPECT_EQ(r.text("SELECT from_state || '>' || to_state FROM events WHERE bus_id = 1"), "connecting>live");
  EXPECT_EQ(r.text("SELECT type || ' ' || camera || ' ' || track_id || ' ' || frame_seq || ' ' || x2 FROM events WHERE bus_id = 2"),
            "track_started lobby 7 42 110.0");
  EXPECT_EQ(r.number("SELECT length(jpeg) FROM faces JOIN events ON events.id = faces.event_id WHERE bus_id = 2"), 4);
  EXPECT_EQ(r.text("SELECT detail || ' ' || known FROM events WHERE bus_id = 3"), "alice 1");
  EXPECT_EQ(r.text("SELECT run FROM events LIMIT 1"), (*store)->run());
}

// Attached to a bus, the store makes its ids continue after the last run's: the ids the API
// and SSE give are the rows' ids, and they are never reused, even after everything was deleted.
TEST(EventStoreTest, IdsKeepIncreasingAcrossRuns) {
  test::TempDir dir;
  EventStoreOptions options;
  options.path = dir.file("vigil.db");
  options.max_age_s = 60;
  std::vector<std::uint64_t> published;
  for (int run = 0; run < 3; ++run) {
    EventBus bus;  // each run's bus would start at 1
    auto store = EventStore::open(options);
    ASSERT_TRUE(store.ok()) << store.error().message;
    (*store)->attach(bus);
    for (int i = 0; i < 5; ++i) {
      Event e = track_event(0);
      e.at = std::chrono::system_clock::now() - (run < 2 ? std::chrono::minutes(5) : std::chrono::minutes(0));
      published.push_back(bus.publish(e));
    }
    (*store)->flush();
    if (run < 2) (*store)->compact();  // retention deletes every row: the ids must still not restart
  }  // the store goes before its bus
  ASSERT_EQ(published.size(), 15u);
  for (std::size_t i = 0; i < published.size(); ++i) EXPECT_EQ(published[i], i + 1) << "run " << i / 5;
  Reader r(options.path);
  EXPECT_EQ(r.number("SELECT count(*) FROM events"), 5);  // runs 0 and 1 went by age
  EXPECT_EQ(r.number("SELECT min(id) FROM events"), 11);
  EXPECT_EQ(r.number("SELECT count(*) FROM events WHERE id <> bus_id"), 0);
}

// What the API serves to pollers: ids after a cursor, filtered, limited, with faces.
TEST(EventStoreTest, AnswersQueriesAndServesFaces) {
  test::TempDir dir;
  EventStoreOptions options;
  options.path = dir.file("vigil.db");
  auto store = EventStore::open(options);
  ASSERT_TRUE(store.ok());
  auto face = std::make_shared<const std::vector<std::uint8_t>>(std::vector<std::uint8_t>{0xff, 0xd8, 9, 9, 0xff, 0xd9});
  for (std::uint64_t id = 1; id <= 30; ++id) {
    Event e = track_event(id, id % 3 == 0 ? EventKind::identity_matched : EventKind::track_started);
    e.camera = id % 2 == 0 ? "lobby" : "door";
    if (e.kind == EventKind::identity_matched) {
      e.detail = "alice";
      e.similarity = 0.75f;
      e.known = true;
    }
    (*store)->offer(e, e.kind == EventKind::identity_matched ? face : nullptr);
  }
  (*store)->flush();
  auto page = (*store)->query({10, "", "", 7});
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(page->events.size(), 7u);
  EXPECT_EQ(page->events.front().event.id, 11u);
  EXPECT_EQ(page->events.back().event.id, 17u);
  EXPECT_TRUE(page->complete);
  auto identities = (*store)->query({0, "lobby", "identity_matched", 100});
  ASSERT_TRUE(identities.ok());
  ASSERT_EQ(identities->events.size(), 5u);  // 6, 12, 18, 24, 30
  for (const StoredEvent& row : identities->events) {
    EXPECT_EQ(row.event.id % 6, 0u);
    EXPECT_EQ(row.event.camera, "lobby");
    EXPECT_EQ(row.event.kind, EventKind::identity_matched);
    EXPECT_EQ(row.event.detail, "alice");
    EXPECT_FLOAT_EQ(row.event.similarity, 0.75f);
    EXPECT_TRUE(row.event.known);
    EXPECT_TRUE(row.has_face);
    EXPECT_EQ(row.event.bbox.x2, 110.0f);
    EXPECT_EQ(row.run, (*store)->run());
  }
  auto jpeg = (*store)->face(6);
  ASSERT_TRUE(jpeg.ok());
  EXPECT_EQ(*jpeg, *face);
  auto none = (*store)->face(7);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::not_found);
  auto bad = (*store)->query({0, "", "track_exploded", 10});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::invalid_argument);
  auto after_end = (*store)->query({30, "", "", 10});
  ASSERT_TRUE(after_end.ok());
  EXPECT_TRUE(after_end->events.empty());
  EXPECT_TRUE(after_end->complete);
}

// Two processes writing one store would reuse ids: the second is refused with a clear error,
// and the store opens again once the first is gone. Readers are never refused.
TEST(EventStoreTest, ASecondWriterIsRefused) {
  test::TempDir dir;
  EventStoreOptions options;
  options.path = dir.file("vigil.db");
  {
    auto first = EventStore::open(options);
    ASSERT_TRUE(first.ok());
    (*first)->offer(track_event(1));
    (*first)->flush();
    auto second = EventStore::open(options);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().code, ErrorCode::failed_precondition);
    EXPECT_NE(second.error().message.find("in use by another vigil process"), std::string::npos) << second.error().message;
    Reader r(options.path);
    EXPECT_EQ(r.number("SELECT count(*) FROM events"), 1);
  }
  auto again = EventStore::open(options);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ((*again)->last_id(), 1u);
}

// A store written by schema v1 (ids the store's own, bus_id per run) is upgraded in place and
// its ids go on increasing.
TEST(EventStoreTest, AVersionOneStoreIsUpgraded) {
  test::TempDir dir;
  const std::string path = dir.file("v1.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE events (id INTEGER PRIMARY KEY, run TEXT NOT NULL, bus_id INTEGER NOT NULL, at REAL NOT NULL, "
                         "type TEXT NOT NULL, camera TEXT NOT NULL, track_id INTEGER, frame_seq INTEGER, x1 REAL, y1 REAL, x2 REAL, "
                         "y2 REAL, from_state TEXT, to_state TEXT, detail TEXT, similarity REAL, known INTEGER, UNIQUE (run, bus_id));"
                         "CREATE TABLE faces (event_id INTEGER PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE, jpeg BLOB NOT NULL);"
                         "INSERT INTO events (id, run, bus_id, at, type, camera) VALUES (40, 'old', 1, 1.0, 'camera_state', 'lobby');"
                         "PRAGMA user_version = 1;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  EventBus bus;  // before the store: the store goes first (it listens to the bus)
  auto store = EventStore::open({path});
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ((*store)->last_id(), 40u);
  (*store)->attach(bus);
  EXPECT_EQ(bus.publish(track_event(0)), 41u);
  Event left = track_event(0, EventKind::person_left);
  left.people = 0;
  EXPECT_EQ(bus.publish(left), 42u);
  (*store)->flush();
  Reader r(path);
  EXPECT_EQ(r.number("PRAGMA user_version"), 3);
  EXPECT_EQ(r.number("SELECT max(id) FROM events"), 42);
  EXPECT_EQ(r.text("SELECT type || ' ' || people FROM events WHERE id = 42"), "person_left 0") << "the column was added";
  // This run's events (row 40, from 1970, may already be gone to retention).
  EventQuery after_old;
  after_old.after_id = 40;
  auto read = (*store)->query(after_old);
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_EQ(read->events.size(), 2u);
  EXPECT_EQ(read->events[1].event.kind, EventKind::person_left);
  EXPECT_EQ(read->events[1].event.people, 0u);
}

// A full queue never blocks the caller: the events are counted as dropped.
TEST(EventStoreTest, AFullQueueDropsAndCountsInsteadOfBlocking) {
  test::TempDir dir;
  EventStoreOptions options;
  options.path = dir.file("vigil.db");
  options.queue_capacity = 5;
  auto store = EventStore::open(options);
  ASSERT_TRUE(store.ok());
  // Another connection holds the write lock: the writer waits on it with what it took.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(options.path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  const auto start = std::chrono::steady_clock::now();
  int accepted = 0;
  for (std::uint64_t id = 1; id <= 5000; ++id) accepted += (*store)->offer(track_event(id)) ? 1 : 0;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2)) << "offer() blocked";
  EXPECT_LE(accepted, 1005) << "at most one batch in the writer's hands plus the queue";
  sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  (*store)->flush();
  EXPECT_EQ((*store)->written() + (*store)->dropped(), 5000u);
  EXPECT_GE((*store)->dropped(), 5000u - 1005u);
}

TEST(EventStoreTest, OldEventsAndExcessSizeAreRemoved) {
  test::TempDir dir;
  EventStoreOptions options;
  options.path = dir.file("vigil.db");
  options.max_age_s = 60;
  auto store = EventStore::open(options);
  ASSERT_TRUE(store.ok());
  for (std::uint64_t id = 1; id <= 10; ++id) {
    Event e = track_event(id);
    if (id <= 4) e.at -= std::chrono::minutes(5);
    (*store)->offer(e);
  }
  (*store)->flush();
  (*store)->compact();
  Reader r(options.path);
  EXPECT_EQ(r.number("SELECT count(*) FROM events"), 6);
  EXPECT_EQ(r.number("SELECT min(bus_id) FROM events"), 5);
  // A poller whose cursor is older than what retention kept learns that it missed events.
  auto missed = (*store)->query({2, "", "", 100});
  ASSERT_TRUE(missed.ok());
  EXPECT_FALSE(missed->complete);
  EXPECT_EQ(missed->events.front().event.id, 5u);
  auto caught_up = (*store)->query({4, "", "", 100});
  ASSERT_TRUE(caught_up.ok());
  EXPECT_TRUE(caught_up->complete);
}

TEST(EventStoreTest, BeyondTheSizeLimitTheOldestGo) {
  test::TempDir dir;
  EventStoreOptions options;
  options.path = dir.file("vigil.db");
  options.max_bytes = 256 * 1024;
  auto store = EventStore::open(options);
  ASSERT_TRUE(store.ok());
  auto face = std::make_shared<const std::vector<std::uint8_t>>(3000, std::uint8_t{7});
  for (std::uint64_t id = 1; id <= 1000; ++id) (*store)->offer(track_event(id), face);  // about 3 MB
  (*store)->flush();
  Reader r(options.path);
  const auto used = [&] {
    return (r.number("PRAGMA page_count") - r.number("PRAGMA freelist_count")) * r.number("PRAGMA page_size");
  };
  for (int i = 0; i < 40 && used() > options.max_bytes; ++i) (*store)->compact();
  EXPECT_LE(used(), options.max_bytes + 64 * 1024);
  EXPECT_LT(r.number("SELECT count(*) FROM events"), 1000);
  EXPECT_EQ(r.number("SELECT max(bus_id) FROM events"), 1000) << "the newest stay";
  EXPECT_EQ(r.number("SELECT count(*) FROM faces WHERE event_id NOT IN (SELECT id FROM events)"), 0) << "faces go with their events";
}

TEST(EventStoreTest, WrongFilesAreClearErrors) {
  test::TempDir dir;
  const std::string text = dir.file("notes.db");
  std::ofstream(text) << "this is not a database, just some text that is long enough to have a header\n";
  auto a = EventStore::open({text});
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, ErrorCode::failed_precondition);
  EXPECT_NE(a.error().message.find("not a SQLite database"), std::string::npos) << a.error().message;

  const std::string other = dir.file("other.db");
  sqlite3* db = nullptr;
  sqlite3_open(other.c_str(), &db);
  sqlite3_exec(db, "CREATE TABLE accounts (id INTEGER)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto b = EventStore::open({other});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("not a vigil store"), std::string::npos) << b.error().message;

  const std::string newer = dir.file("newer.db");
  sqlite3_open(newer.c_str(), &db);
  sqlite3_exec(db, "PRAGMA user_version = 9", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto c = EventStore::open({newer});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("schema version 9 is newer"), std::string::npos) << c.error().message;

  auto d = EventStore::open({"/proc/vigil/cannot/be/here.db"});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, ErrorCode::unavailable);
}

// 200 writers killed with SIGKILL at random moments: every time the file checks out, no
// event is stored twice, and the WAL stays bounded.
TEST(EventStoreTest, SurvivesSigkillWhileWriting) {
  test::TempDir dir;
  const std::string path = dir.file("vigil.db");
  const std::string writer = std::string(VIGIL_BINARY_DIR) + "/tests/sink/event_store_writer";
  std::mt19937 rng(20261125);
  std::uniform_int_distribution<int> delay_ms(0, 60);
  std::uintmax_t largest_wal = 0;
  for (int round = 0; round < 200; ++round) {
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    pid_t pid = 0;
    char* args[] = {const_cast<char*>(writer.c_str()), const_cast<char*>(path.c_str()), nullptr};
    ASSERT_EQ(posix_spawn(&pid, writer.c_str(), &actions, nullptr, args, environ), 0) << writer;
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    char line[16] = {};
    const ssize_t n = read(out[0], line, sizeof line - 1);  // "writing": the store is open
    close(out[0]);
    ASSERT_GT(n, 0) << "round " << round << ": the writer did not start";
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));  // a random moment while it writes
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "round " << round << ": the writer exited by itself";
    Reader r(path);
    ASSERT_EQ(r.text("PRAGMA integrity_check"), "ok") << "round " << round;
    ASSERT_EQ(r.number("SELECT count(*) - count(DISTINCT run || '/' || bus_id) FROM events"), 0) << "round " << round;
    std::error_code ec;
    largest_wal = std::max(largest_wal, std::filesystem::file_size(path + "-wal", ec));
  }
  Reader r(path);
  const auto kept = r.number("SELECT count(*) FROM events");
  const auto writers = r.number("SELECT count(DISTINCT run) FROM events");
  EXPECT_GT(kept, 0);
  EXPECT_GT(writers, 1) << "what earlier writers committed is kept";
  EXPECT_LT(largest_wal, 32u << 20) << "WAL grew without bound";
  std::printf("kill test: 200 rounds, %lld events kept from %lld writers, largest WAL %ju bytes\n",
              static_cast<long long>(kept), static_cast<long long>(writers), largest_wal);
}

}  // namespace
}  // namespace vigil
