#include "vigil/core/event_bus.h"

#include <algorithm>
#include <chrono>

namespace vigil {

const char* to_string(EventKind kind) {
  switch (kind) {
    case EventKind::camera_state: return "camera_state";
    case EventKind::track_started: return "track_started";
    case EventKind::track_lost: return "track_lost";
    case EventKind::track_refound: return "track_refound";
    case EventKind::track_removed: return "track_removed";
    case EventKind::identity_matched: return "identity_matched";
    case EventKind::person_entered: return "person_entered";
    case EventKind::person_left: return "person_left";
  }
  return "unknown";
}

EventBus::EventBus(std::size_t capacity) : capacity_(std::max<std::size_t>(1, capacity)) {}

std::uint64_t EventBus::publish(Event event) {
  if (event.at == SystemTime{}) event.at = std::chrono::system_clock::now();
  // Delivery order equals id order: ids are assigned under deliver_mu_ too.
  MutexLock deliver(deliver_mu_);
  {
    MutexLock lock(mu_);
    event.id = next_id_++;
    ring_.push_back(event);
    if (ring_.size() > capacity_) {
      evicted_through_ = ring_.front().id;
      ring_.pop_front();
      ++dropped_;
    }
  }
  cv_.notify_all();
  for (const auto& [id, subscriber] : subscribers_) subscriber(event);
  return event.id;
}

EventBus::SubscriptionId EventBus::subscribe(Subscriber subscriber) {
  MutexLock deliver(deliver_mu_);
  const SubscriptionId id = next_subscription_++;
  subscribers_.emplace_back(id, std::move(subscriber));
  return id;
}

void EventBus::unsubscribe(SubscriptionId id) {
  MutexLock deliver(deliver_mu_);
  std::erase_if(subscribers_, [id](const auto& s) { return s.first == id; });
}

bool EventBus::read(std::uint64_t after_id, std::size_t max, std::vector<Event>& out) const {
  MutexLock lock(mu_);
  // Ids increase along the ring but may jump (continue_after), so the start is searched.
  auto it = std::upper_bound(ring_.begin(), ring_.end(), after_id, [](std::uint64_t id, const Event& e) { return id < e.id; });
  for (; it != ring_.end() && max > 0; ++it, --max) out.push_back(*it);
  return after_id >= evicted_through_;
}

bool EventBus::wait(std::uint64_t after_id, SteadyTime deadline) const {
  MutexLock lock(mu_);
  while (!closed_ && next_id_ - 1 <= after_id) {
    if (!cv_.wait_until(mu_, deadline)) break;
  }
  return next_id_ - 1 > after_id;
}

void EventBus::close() {
  {
    MutexLock lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

void EventBus::continue_after(std::uint64_t id) {
  MutexLock lock(mu_);
  if (id >= next_id_) next_id_ = id + 1;
}

std::uint64_t EventBus::last_id() const {
  MutexLock lock(mu_);
  return next_id_ - 1;
}

std::uint64_t EventBus::dropped() const {
  MutexLock lock(mu_);
  return dropped_;
}

}  // namespace vigil
