// EventStore: the engine's events (camera states, tracks, identities) kept in SQLite.
//
// offer() never blocks and never touches the disk: it puts the event on a bounded queue, or
// counts it as dropped when the queue is full. One writer thread takes what is queued and
// writes it in one transaction, so a burst costs one commit. WAL mode, synchronous=NORMAL:
// a crash (even SIGKILL) loses at most the last transactions and never corrupts the file.
// Retention by age and by size runs on the writer thread; the WAL is checkpointed and
// truncated so it stays bounded.
//
// Schema (PRAGMA user_version = 2), readable with the sqlite3 shell:
//   events(id INTEGER PRIMARY KEY AUTOINCREMENT, run TEXT, bus_id INTEGER, at REAL (Unix seconds), type TEXT,
//          camera TEXT, track_id INTEGER, frame_seq INTEGER, x1, y1, x2, y2 REAL,
//          from_state TEXT, to_state TEXT, detail TEXT, similarity REAL, known INTEGER,
//          UNIQUE(run, bus_id))
//   faces(event_id INTEGER PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE, jpeg BLOB)
// `id` is the event's id as the API and the SSE stream give it: attach() makes the bus continue
// after the store's last id, so ids keep increasing across runs and are never reused. `run`
// names the process that wrote the row (start time and pid); `bus_id` equals `id` (in rows
// written by schema v1 it was the id on that run's bus). One process writes a store at a time
// (a second gets failed_precondition); any number may read it.
//
// Threading: offer() from any thread (the bus's publishing threads); query() and face() from
// any thread (their own connection); the rest from one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vigil/core/event_bus.h"
#include "vigil/core/status.h"

namespace vigil {

struct StoredEvent {
  Event event;  // face_jpeg left empty: face() reads it
  std::string run;
  bool has_face = false;
};
struct StoredEvents {
  std::vector<StoredEvent> events;
  bool complete = true;  // false when retention deleted events after the asked id
};
struct EventQuery {
  std::uint64_t after_id = 0;
  std::string camera;  // empty: all
  std::string type;    // to_string(EventKind); empty: all
  std::size_t limit = 100;
};

struct EventStoreOptions {
  std::string path = "out/vigil.db";
  double max_age_s = 7 * 24 * 3600.0;  // older events are deleted; 0: keep forever
  std::int64_t max_bytes = 1LL << 30;  // beyond this the oldest events go; 0: no limit
  std::size_t queue_capacity = 10000;  // events waiting for the writer
  std::string run = "";                // the rows' `run`; "" : this process's start time and pid
};

class EventStore {
 public:
  // Opens (creating the file, its folder and the schema as needed) and starts the writer.
  // Errors: failed_precondition for a file that is not a vigil store or has a newer schema,
  // unavailable for a path that cannot be written.
  static Result<std::unique_ptr<EventStore>> open(const EventStoreOptions& options);
  ~EventStore();  // writes what is queued, then stops

  // Stores every event published on `bus` from now until the store is destroyed (which must
  // happen before the bus goes). First makes the bus's ids continue after last_id().
  void attach(EventBus& bus);
  // The highest event id in the store when it was opened (0 for a new one).
  std::uint64_t last_id() const;

  // Queues an event (with the JPEG of its face when there is one). False when the queue is
  // full: the event is counted as dropped. An id not above the ones stored is ignored.
  bool offer(const Event& event, std::shared_ptr<const std::vector<std::uint8_t>> face_jpeg = {});
  // Blocks until everything offered so far is written (tests, shutdown).
  void flush();
  // Applies the age and size limits now (the writer also does every 10 s).
  void compact();

  // Events with id > after_id, oldest first, filtered; what has been written so far (a prefix
  // of the ids offered: batches commit in order). invalid_argument for an unknown type.
  Result<StoredEvents> query(const EventQuery& query) const;
  // The face JPEG stored with an event; not_found when it has none.
  Result<std::vector<std::uint8_t>> face(std::uint64_t event_id) const;

  std::uint64_t written() const;
  std::uint64_t dropped() const;
  const std::string& run() const;

 private:
  EventStore() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil
