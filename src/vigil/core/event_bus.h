// EventBus: the engine's events (camera state changes, tracks started, lost, refound and
// removed; identities matched) in one ordered stream that sinks and the HTTP/SSE
// server read.
//
// Every event gets the next id (1, 2, 3, ... per bus, or continuing after a store's last id) and goes into a bounded ring of recent
// events (capacity, drop_oldest, counted), so a reader that polls with "after id N" or an SSE
// client resuming with Last-Event-ID gets what it missed, or learns that it fell behind.
// Subscribers registered with subscribe() are called synchronously on the publishing thread,
// in id order, and must be quick (a sink's write); slow readers use read()/wait() instead and
// can never hold up the engine.
//
// Events are per change, not per frame: publishing takes this bus's mutex (never a global one).
// Threading: all methods from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vigil/core/mutex.h"
#include "vigil/core/camera_state.h"
#include "vigil/core/detection.h"
#include "vigil/core/frame.h"

namespace vigil {

enum class EventKind : std::uint8_t {
  camera_state,   // from -> to, detail: the last error when there is one
  track_started,  // track_id, bbox
  track_lost,
  track_refound,
  track_removed,
  identity_matched,  // track_id, detail: the name (or anon id), similarity, margin
  // People (a COCO person track of a people or object model): a person's track confirmed,
  // and removed; `people` is how many are on the camera after it.
  person_entered,  // track_id, bbox, people
  person_left,     // track_id, bbox (last known), people
};
// Every kind, in order (for parsers and lists of types).
inline constexpr EventKind kEventKinds[] = {EventKind::camera_state,  EventKind::track_started,    EventKind::track_lost,
                                            EventKind::track_refound, EventKind::track_removed,    EventKind::identity_matched,
                                            EventKind::person_entered, EventKind::person_left};
const char* to_string(EventKind kind);

struct Event {
  std::uint64_t id = 0;  // set by publish()
  SystemTime at{};       // set by publish() when left empty
  EventKind kind = EventKind::camera_state;
  std::string camera;
  CameraState from = CameraState::connecting;  // camera_state
  CameraState to = CameraState::connecting;    // camera_state
  std::string detail;
  std::uint64_t track_id = 0;  // track events
  std::uint64_t frame_seq = 0;  // track events: the frame it happened in
  BBox bbox;                    // track events
  float similarity = 0;         // identity_matched
  float margin = 0;             // identity_matched (gallery names)
  bool known = false;           // identity_matched: a gallery name, else anonymous
  std::uint32_t people = 0;     // person events: people on the camera after it
  // identity_matched: the face the identity came from, as a small JPEG (null if none).
  std::shared_ptr<const std::vector<std::uint8_t>> face_jpeg;
};

class EventBus {
 public:
  using Subscriber = std::function<void(const Event&)>;
  using SubscriptionId = std::uint64_t;

  explicit EventBus(std::size_t capacity = 4096);

  // Assigns the event its id (and time), keeps it in the ring, calls the subscribers and
  // wakes waiting readers. Returns the id.
  std::uint64_t publish(Event event);

  SubscriptionId subscribe(Subscriber subscriber);
  void unsubscribe(SubscriptionId id);

  // Appends to `out` the events with id > after_id still in the ring (at most max), oldest
  // first. Returns false when some events after after_id were already dropped.
  bool read(std::uint64_t after_id, std::size_t max, std::vector<Event>& out) const;
  // Waits until an event with id > after_id exists, the deadline passes or close() is called;
  // returns whether one exists.
  bool wait(std::uint64_t after_id, SteadyTime deadline) const;
  // Wakes every waiter for good (shutdown).
  void close();

  // Makes the next ids greater than `id` (a store's last id, so ids stay unique across
  // runs); never lowers them.
  void continue_after(std::uint64_t id);
  std::uint64_t last_id() const;
  std::uint64_t dropped() const;

 private:
  const std::size_t capacity_;
  mutable Mutex mu_;
  mutable CondVar cv_;
  std::deque<Event> ring_ GUARDED_BY(mu_);
  std::uint64_t next_id_ GUARDED_BY(mu_) = 1;
  std::uint64_t dropped_ GUARDED_BY(mu_) = 0;
  std::uint64_t evicted_through_ GUARDED_BY(mu_) = 0;  // the id of the last event dropped from the ring
  bool closed_ GUARDED_BY(mu_) = false;
  // Subscribers are called under deliver_mu_ so they see events one at a time, in id order.
  Mutex deliver_mu_;
  std::vector<std::pair<SubscriptionId, Subscriber>> subscribers_ GUARDED_BY(deliver_mu_);
  SubscriptionId next_subscription_ GUARDED_BY(deliver_mu_) = 1;
};

}  // namespace vigil
