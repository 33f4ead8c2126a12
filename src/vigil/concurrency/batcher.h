// Batcher<T>: the input edge of a batching stage. Members (cameras) that have work wait in
// arrival order; at any instant `now`, decide() says whether a batch closes and of how many
// (the pure policy in batch_policy.h), or until when to wait; take() hands out the oldest.
//
//   Batcher<CameraRef> edge({8, 2ms});
//   edge.push(camera, now);
//   BatchDecision d = edge.decide(now, idle_workers, members, in_flight, workers);
//   if (d.close) edge.take(d.take, batch);
//
// The same class serves every model stage (detectors, embedders): the scheduler owns one
// per stage and serves them all from one worker pool. No clock, no lock: the caller passes
// `now` and guards the batcher with its own mutex.
#pragma once

#include <algorithm>
#include <deque>
#include <vector>

#include "vigil/concurrency/batch_policy.h"

namespace vigil {

template <class T>
class Batcher {
 public:
  explicit Batcher(BatchPolicy policy = {}) : policy_(policy) {}

  void push(T item, SteadyTime now) { ready_.push_back({std::move(item), now}); }
  bool empty() const { return ready_.empty(); }
  std::size_t size() const { return ready_.size(); }
  const BatchPolicy& policy() const { return policy_; }

  // members: sources that feed this stage; in_flight: of them, inside the stage now;
  // idle_workers: workers free to run a batch (the caller included); workers: all of them.
  // A batch takes at most a fair share of the members (ceil(members / workers)).
  BatchDecision decide(SteadyTime now, std::size_t idle_workers, std::size_t members, std::size_t in_flight,
                       std::size_t workers) const {
    if (ready_.empty()) return {};
    const std::size_t busy = ready_.size() + in_flight;
    const std::size_t could_join = members > busy ? members - busy : 0;
    const std::size_t w = std::max<std::size_t>(1, workers);
    const std::size_t fair_share = std::max<std::size_t>(1, (members + w - 1) / w);
    return decide_batch(policy_, ready_.size(), ready_.front().since, now, idle_workers, could_join, fair_share);
  }

  // Moves the n oldest members into `out` (cleared first).
  void take(std::size_t n, std::vector<T>& out) {
    out.clear();
    n = std::min(n, ready_.size());
    for (std::size_t i = 0; i < n; ++i) {
      out.push_back(std::move(ready_.front().item));
      ready_.pop_front();
    }
  }

  // Moves up to n of the members for which `eligible` holds into `out` (cleared first),
  // oldest first; the others keep their places.
  template <class Pred>
  void take_if(std::size_t n, std::vector<T>& out, Pred eligible) {
    out.clear();
    for (auto it = ready_.begin(); it != ready_.end() && out.size() < n;) {
      if (eligible(it->item)) {
        out.push_back(std::move(it->item));
        it = ready_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // When the oldest member arrived (the batcher must not be empty).
  SteadyTime oldest() const { return ready_.front().since; }
  template <class F>
  void for_each(F f) const {
    for (const Entry& e : ready_) f(e.item);
  }

  // Drops the members matching `pred`; returns how many.
  template <class Pred>
  std::size_t remove_if(Pred pred) {
    const auto it = std::remove_if(ready_.begin(), ready_.end(), [&](const Entry& e) { return pred(e.item); });
    const auto n = static_cast<std::size_t>(std::distance(it, ready_.end()));
    ready_.erase(it, ready_.end());
    return n;
  }

 private:
  struct Entry {
    T item;
    SteadyTime since;
  };
  BatchPolicy policy_;
  std::deque<Entry> ready_;
};

}  // namespace vigil
