#include "vigil/sink/event_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <ctime>
#include <deque>
#include <filesystem>
#include <thread>
#include <unordered_map>

#include "vigil/core/mutex.h"

namespace vigil {

namespace {

// v1: ids were the store's own. v2: ids are the events' (the bus continues after the store's
// last id), AUTOINCREMENT keeps them from being reused. v3: a `people` column (person events).
// Older files are upgraded in place (the column added; their ids keep increasing).
constexpr int kSchemaVersion = 3;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run TEXT NOT NULL,
  bus_id INTEGER NOT NULL,
  at REAL NOT NULL,
  type TEXT NOT NULL,
  camera TEXT NOT NULL,
  track_id INTEGER,
  frame_seq INTEGER,
  x1 REAL, y1 REAL, x2 REAL, y2 REAL,
  from_state TEXT,
  to_state TEXT,
  detail TEXT,
  similarity REAL,
  known INTEGER,
  people INTEGER,
  UNIQUE (run, bus_id)
);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
CREATE INDEX IF NOT EXISTS events_camera ON events (camera, id);
CREATE TABLE IF NOT EXISTS faces (
  event_id INTEGER PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
  jpeg BLOB NOT NULL
);
)sql";

double unix_seconds(SystemTime t) { return std::chrono::duration<double>(t.time_since_epoch()).count(); }

std::string run_name() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  static std::atomic<int> opened{0};  // a process may open stores more than once
  return std::string(text) + "-" + std::to_string(::getpid()) + "-" + std::to_string(opened.fetch_add(1));
}

struct Queued {
  Event event;
  std::shared_ptr<const std::vector<std::uint8_t>> face;
};

EventKind kind_from(const std::string& text, bool* ok) {
  for (EventKind k : kEventKinds) {
    if (text == to_string(k)) {
      *ok = true;
      return k;
    }
  }
  *ok = false;
  return EventKind::camera_state;
}

CameraState state_from(const char* text) {
  for (CameraState s : {CameraState::connecting, CameraState::live, CameraState::stalled, CameraState::failed, CameraState::stopped}) {
    if (text && std::string(text) == to_string(s)) return s;
  }
  return CameraState::connecting;
}

std::string column_text(sqlite3_stmt* s, int column) {
  const unsigned char* text = sqlite3_column_text(s, column);
  return text ? reinterpret_cast<const char*>(text) : "";
}

}  // namespace

struct EventStore::Impl {
  EventStoreOptions options;
  std::string run;
  sqlite3* db = nullptr;
  sqlite3_stmt* insert_event = nullptr;
  sqlite3_stmt* insert_face = nullptr;
  int lock_fd = -1;           // flock'ed: one writing process per store
  std::uint64_t last_id = 0;  // the highest id the store had when opened

  // Readers (HTTP threads) use their own connection: WAL lets them read while the writer writes.
  mutable Mutex read_mu;
  sqlite3* reader GUARDED_BY(read_mu) = nullptr;
  EventBus* bus = nullptr;
  EventBus::SubscriptionId subscription = 0;

  Mutex mu;
  CondVar cv, done_cv;
  std::deque<Queued> queue GUARDED_BY(mu);
  bool stopping GUARDED_BY(mu) = false;
  std::uint64_t accepted GUARDED_BY(mu) = 0;  // events queued so far
  std::uint64_t finished GUARDED_BY(mu) = 0;  // of them, written (or failed)
  std::atomic<std::uint64_t> written{0}, dropped{0};
  std::thread writer;

  ~Impl() {
    if (bus) bus->unsubscribe(subscription);  // then what is queued is written
    {
      MutexLock lock(mu);
      stopping = true;
    }
    cv.notify_all();
    if (writer.joinable()) writer.join();
    if (insert_event) sqlite3_finalize(insert_event);
    if (insert_face) sqlite3_finalize(insert_face);
    if (reader) sqlite3_close(reader);
    if (db) {
      sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
      sqlite3_close(db);
    }
    if (lock_fd >= 0) ::close(lock_fd);  // releases the flock
  }

  Error sql_error(const std::string& what) const {
    return Error{ErrorCode::unavailable, "event store " + options.path + ": " + what + ": " + sqlite3_errmsg(db)};
  }
  bool exec(const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK; }
  std::int64_t query_int(const char* sql) { return query_int_on(db, sql); }
  static std::int64_t query_int_on(sqlite3* connection, const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    std::int64_t value = -1;
    if (sqlite3_prepare_v2(connection, sql, -1, &stmt, nullptr) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
      value = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    return value;
  }

  Status open() {
    const std::filesystem::path path(options.path);
    std::error_code ec;
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
    // A second process writing the same store would reuse ids: refuse it (flock is not the
    // POSIX lock SQLite uses, and the kernel drops it when the process dies, even by SIGKILL).
    // An empty file made here is an empty database to SQLite.
    lock_fd = ::open(options.path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0) return Error{ErrorCode::unavailable, "event store " + options.path + ": cannot open: " + std::strerror(errno)};
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      return Error{ErrorCode::failed_precondition, "event store " + options.path + ": in use by another vigil process"};
    }
    if (sqlite3_open_v2(options.path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
        SQLITE_OK) {
      return sql_error("cannot open");
    }
    sqlite3_busy_timeout(db, 5000);
    const std::int64_t version = query_int("PRAGMA user_version");
    if (version < 0) {
      return Error{ErrorCode::failed_precondition, "event store " + options.path + ": not a SQLite database (" + sqlite3_errmsg(db) + ")"};
    }
    if (version > kSchemaVersion) {
      return Error{ErrorCode::failed_precondition, "event store " + options.path + ": schema version " + std::to_string(version) +
                                                       " is newer than this vigil's (" + std::to_string(kSchemaVersion) + ")"};
    }
    if (version == 0 && query_int("SELECT count(*) FROM sqlite_master WHERE type = 'table'") > 0 &&
        query_int("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'") == 0) {
      return Error{ErrorCode::failed_precondition, "event store " + options.path + ": a SQLite file that is not a vigil store"};
    }
    sqlite3_stmt* mode = nullptr;
    std::string journal;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &mode, nullptr) == SQLITE_OK && sqlite3_step(mode) == SQLITE_ROW) {
      journal = reinterpret_cast<const char*>(sqlite3_column_text(mode, 0));
    }
    sqlite3_finalize(mode);
    if (journal != "wal") return sql_error("cannot switch to WAL mode");
    if (!exec("PRAGMA synchronous = NORMAL") || !exec("PRAGMA foreign_keys = ON") ||
        !exec("PRAGMA journal_size_limit = 8388608") || !exec(kSchema) ||
        (query_int("SELECT count(*) FROM pragma_table_info('events') WHERE name = 'people'") == 0 &&
         !exec("ALTER TABLE events ADD COLUMN people INTEGER")) ||
        !exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str())) {
      return sql_error("cannot create the schema");
    }
    const std::int64_t sequence = query_int("SELECT seq FROM sqlite_sequence WHERE name = 'events'");
    const std::int64_t highest = query_int("SELECT coalesce(max(id), 0) FROM events");
    last_id = static_cast<std::uint64_t>(std::max<std::int64_t>({0, sequence, highest}));
    {
      MutexLock lock(read_mu);  // no reader yet: for the analysis
      if (sqlite3_open_v2(options.path.c_str(), &reader, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
        return sql_error("cannot open for reading");
      }
      sqlite3_busy_timeout(reader, 2000);
    }
    if (sqlite3_prepare_v2(db,
                           "INSERT OR IGNORE INTO events (id, run, bus_id, at, type, camera, track_id, frame_seq, x1, y1, x2, y2, "
                           "from_state, to_state, detail, similarity, known, people) "
                           "VALUES (?2,?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)",
                           -1, &insert_event, nullptr) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO faces (event_id, jpeg) VALUES (?, ?)", -1, &insert_face, nullptr) != SQLITE_OK) {
      return sql_error("cannot prepare statements");
    }
    return {};
  }

  bool write_one(const Queued& q) {
    const Event& e = q.event;
    sqlite3_stmt* s = insert_event;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    sqlite3_bind_text(s, 1, run.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, static_cast<sqlite3_int64>(e.id));
    sqlite3_bind_double(s, 3, unix_seconds(e.at));
    sqlite3_bind_text(s, 4, to_string(e.kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, e.camera.c_str(), -1, SQLITE_TRANSIENT);
    if (e.kind == EventKind::camera_state) {
      sqlite3_bind_text(s, 12, to_string(e.from), -1, SQLITE_STATIC);
      sqlite3_bind_text(s, 13, to_string(e.to), -1, SQLITE_STATIC);
    } else {
      sqlite3_bind_int64(s, 6, static_cast<sqlite3_int64>(e.track_id));
      sqlite3_bind_int64(s, 7, static_cast<sqlite3_int64>(e.frame_seq));
      sqlite3_bind_double(s, 8, e.bbox.x1);
      sqlite3_bind_double(s, 9, e.bbox.y1);
      sqlite3_bind_double(s, 10, e.bbox.x2);
      sqlite3_bind_double(s, 11, e.bbox.y2);
    }
    if (!e.detail.empty()) sqlite3_bind_text(s, 14, e.detail.c_str(), -1, SQLITE_TRANSIENT);
    if (e.kind == EventKind::identity_matched) {
      sqlite3_bind_double(s, 15, e.similarity);
      sqlite3_bind_int(s, 16, e.known ? 1 : 0);
    }
    if (e.kind == EventKind::person_entered || e.kind == EventKind::person_left) {
      sqlite3_bind_int64(s, 17, static_cast<sqlite3_int64>(e.people));
    }
    if (sqlite3_step(s) != SQLITE_DONE) return false;
    if (q.face && !q.face->empty() && sqlite3_changes(db) > 0) {
      sqlite3_reset(insert_face);
      sqlite3_bind_int64(insert_face, 1, static_cast<sqlite3_int64>(e.id));
      sqlite3_bind_blob(insert_face, 2, q.face->data(), static_cast<int>(q.face->size()), SQLITE_STATIC);
      if (sqlite3_step(insert_face) != SQLITE_DONE) return false;
    }
    return true;
  }

  bool offer(const Event& event, std::shared_ptr<const std::vector<std::uint8_t>> face_jpeg) {
    {
      MutexLock lock(mu);
      if (stopping || queue.size() >= options.queue_capacity) {
        dropped.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
      queue.push_back({event, std::move(face_jpeg)});
      ++accepted;
    }
    cv.notify_one();
    return true;
  }

  // Age and size limits, then a checkpoint that truncates the WAL.
  void retain() {
    if (options.max_age_s > 0) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v2(db, "DELETE FROM events WHERE at < ?", -1, &s, nullptr) == SQLITE_OK) {
        sqlite3_bind_double(s, 1, unix_seconds(std::chrono::system_clock::now()) - options.max_age_s);
        sqlite3_step(s);
      }
      sqlite3_finalize(s);
    }
    if (options.max_bytes > 0) {
      const std::int64_t used = (query_int("PRAGMA page_count") - query_int("PRAGMA freelist_count")) * query_int("PRAGMA page_size");
      if (used > options.max_bytes) {
        // The oldest tenth goes; freed pages are reused by later writes.
        exec("DELETE FROM events WHERE id <= (SELECT min(id) + (max(id) - min(id)) / 10 FROM events)");
      }
    }
    exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }

  void loop() {
    std::vector<Queued> batch;
    auto last_retention = std::chrono::steady_clock::now() - std::chrono::hours(1);
    for (;;) {
      {
        MutexLock lock(mu);
        if (!stopping && queue.empty()) cv.wait_for(mu, std::chrono::seconds(5));  // retention runs at least this often
        while (!queue.empty() && batch.size() < 1000) {
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
        if (batch.empty() && stopping) break;
      }
      if (!batch.empty()) {
        std::uint64_t ok = 0;
        if (exec("BEGIN")) {
          for (const Queued& q : batch) ok += write_one(q) ? 1 : 0;
          if (!exec("COMMIT")) {
            exec("ROLLBACK");
            ok = 0;
          }
        }
        written.fetch_add(ok, std::memory_order_relaxed);
        dropped.fetch_add(batch.size() - ok, std::memory_order_relaxed);
        {
          MutexLock lock(mu);
          finished += batch.size();
        }
        done_cv.notify_all();
        batch.clear();
      }
      if (std::chrono::steady_clock::now() - last_retention > std::chrono::seconds(10)) {
        retain();
        last_retention = std::chrono::steady_clock::now();
      }
    }
  }
};

Result<std::unique_ptr<EventStore>> EventStore::open(const EventStoreOptions& options) {
  std::unique_ptr<EventStore> store(new EventStore());
  store->impl_ = std::make_unique<Impl>();
  store->impl_->options = options;
  store->impl_->run = options.run.empty() ? run_name() : options.run;
  VIGIL_RETURN_IF_ERROR(store->impl_->open());
  Impl* impl = store->impl_.get();
  impl->writer = std::thread([impl] { impl->loop(); });
  return store;
}

EventStore::~EventStore() = default;

void EventStore::attach(EventBus& bus) {
  Impl& s = *impl_;
  if (s.bus) s.bus->unsubscribe(s.subscription);
  s.bus = &bus;
  bus.continue_after(s.last_id);
  s.subscription = bus.subscribe([impl = &s](const Event& e) { impl->offer(e, e.face_jpeg); });
}

std::uint64_t EventStore::last_id() const { return impl_->last_id; }

Result<StoredEvents> EventStore::query(const EventQuery& q) const {
  bool known_type = true;
  if (!q.type.empty()) kind_from(q.type, &known_type);
  if (!known_type) return Error{ErrorCode::invalid_argument, "unknown event type '" + q.type + "'"};
  Impl& s = *impl_;
  MutexLock lock(s.read_mu);
  sqlite3_stmt* stmt = nullptr;
  const char* sql =
      "SELECT e.id, e.run, e.at, e.type, e.camera, e.track_id, e.frame_seq, e.x1, e.y1, e.x2, e.y2, e.from_state, "
      "e.to_state, e.detail, e.similarity, e.known, f.event_id IS NOT NULL, (SELECT coalesce(min(id), 0) FROM events), "
      "coalesce(e.people, 0) "
      "FROM events e LEFT JOIN faces f ON f.event_id = e.id "
      "WHERE e.id > ?1 AND (?2 = '' OR e.camera = ?2) AND (?3 = '' OR e.type = ?3) ORDER BY e.id LIMIT ?4";
  if (sqlite3_prepare_v2(s.reader, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    return Error{ErrorCode::unavailable, std::string("event store: cannot query: ") + sqlite3_errmsg(s.reader)};
  }
  sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(q.after_id));
  sqlite3_bind_text(stmt, 2, q.camera.c_str(), -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 3, q.type.c_str(), -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 4, static_cast<sqlite3_int64>(q.limit));
  StoredEvents out;
  int rc;
  std::uint64_t oldest = 0;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    StoredEvent row;
    Event& e = row.event;
    e.id = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 0));
    row.run = column_text(stmt, 1);
    e.at = SystemTime(std::chrono::duration_cast<SystemTime::duration>(std::chrono::duration<double>(sqlite3_column_double(stmt, 2))));
    bool ok = true;
    e.kind = kind_from(column_text(stmt, 3), &ok);
    e.camera = column_text(stmt, 4);
    if (e.kind == EventKind::camera_state) {
      e.from = state_from(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 11)));
      e.to = state_from(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 12)));
    } else {
      e.track_id = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 5));
      e.frame_seq = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 6));
      e.bbox = {static_cast<float>(sqlite3_column_double(stmt, 7)), static_cast<float>(sqlite3_column_double(stmt, 8)),
                static_cast<float>(sqlite3_column_double(stmt, 9)), static_cast<float>(sqlite3_column_double(stmt, 10))};
    }
    e.detail = column_text(stmt, 13);
    e.similarity = static_cast<float>(sqlite3_column_double(stmt, 14));
    e.known = sqlite3_column_int(stmt, 15) != 0;
    row.has_face = sqlite3_column_int(stmt, 16) != 0;
    oldest = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 17));
    e.people = static_cast<std::uint32_t>(sqlite3_column_int64(stmt, 18));
    out.events.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) {
    const std::string message = sqlite3_errmsg(s.reader);
    sqlite3_finalize(stmt);
    return Error{ErrorCode::unavailable, "event store: cannot query: " + message};
  }
  sqlite3_finalize(stmt);
  if (out.events.empty()) oldest = static_cast<std::uint64_t>(std::max<std::int64_t>(0, s.query_int_on(s.reader, "SELECT coalesce(min(id), 0) FROM events")));
  // Events after `after_id` were deleted by retention when the oldest kept one is further on.
  out.complete = oldest == 0 || q.after_id + 1 >= oldest;
  return out;
}

Result<std::vector<std::uint8_t>> EventStore::face(std::uint64_t event_id) const {
  Impl& s = *impl_;
  MutexLock lock(s.read_mu);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(s.reader, "SELECT jpeg FROM faces WHERE event_id = ?", -1, &stmt, nullptr) != SQLITE_OK) {
    return Error{ErrorCode::unavailable, std::string("event store: cannot query: ") + sqlite3_errmsg(s.reader)};
  }
  sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(event_id));
  std::vector<std::uint8_t> jpeg;
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt, 0));
    jpeg.assign(data, data + sqlite3_column_bytes(stmt, 0));
  }
  sqlite3_finalize(stmt);
  if (rc == SQLITE_ROW) return jpeg;
  if (rc == SQLITE_DONE) return Error{ErrorCode::not_found, "no face stored for event " + std::to_string(event_id)};
  return Error{ErrorCode::unavailable, "event store: cannot read a face"};
}

bool EventStore::offer(const Event& event, std::shared_ptr<const std::vector<std::uint8_t>> face_jpeg) {
  return impl_->offer(event, std::move(face_jpeg));
}

void EventStore::flush() {
  Impl& s = *impl_;
  MutexLock lock(s.mu);
  const std::uint64_t target = s.accepted;
  s.cv.notify_one();
  while (s.finished < target) s.done_cv.wait(s.mu);
}

void EventStore::compact() { impl_->retain(); }

std::uint64_t EventStore::written() const { return impl_->written.load(std::memory_order_relaxed); }
std::uint64_t EventStore::dropped() const { return impl_->dropped.load(std::memory_order_relaxed); }
const std::string& EventStore::run() const { return impl_->run; }

}  // namespace vigil
