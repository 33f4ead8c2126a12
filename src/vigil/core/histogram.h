// Histogram: counts of values in fixed logarithmic buckets, with atomic counters, so hot
// paths record with one relaxed increment (no lock, no allocation) and readers aggregate
// percentiles on demand.
//
// Buckets grow by 2^(1/8) (about 9%) from `min` upward: 8 per doubling, so a percentile
// read back is within about 5% of the true value.
#pragma once

#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>

namespace vigil {

class Histogram {
 public:
  static constexpr int kBuckets = 8 * 32;  // 32 doublings above min

  explicit Histogram(double min = 0.01) : min_(min) {}

  void record(double value) {
    int bucket = 0;
    if (value > min_) bucket = std::min(kBuckets - 1, 1 + static_cast<int>(std::log2(value / min_) * 8.0));
    counts_[bucket].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
  }

  // The sum of every value recorded (exact, not from the buckets).
  double sum() const { return sum_.load(std::memory_order_relaxed); }

  std::uint64_t count() const {
    std::uint64_t n = 0;
    for (const auto& c : counts_) n += c.load(std::memory_order_relaxed);
    return n;
  }

  // The value below which fraction q (0..1) of the recorded values lie; 0 if empty.
  double percentile(double q) const {
    std::array<std::uint64_t, kBuckets> snapshot{};
    std::uint64_t total = 0;
    for (int i = 0; i < kBuckets; ++i) total += snapshot[i] = counts_[i].load(std::memory_order_relaxed);
    if (total == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total)));
    std::uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += snapshot[i];
      if (seen >= rank && snapshot[i] > 0) return upper_bound(i);
    }
    return upper_bound(kBuckets - 1);
  }

  // Forgets everything recorded so far (e.g. after a benchmark's warm-up). Records that
  // race with it may land on either side.
  void reset() {
    for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
    sum_.store(0, std::memory_order_relaxed);
  }

  // Upper edge of bucket i.
  double upper_bound(int i) const { return i == 0 ? min_ : min_ * std::exp2(static_cast<double>(i) / 8.0); }
  std::uint64_t bucket_count(int i) const { return counts_[i].load(std::memory_order_relaxed); }

 private:
  double min_;
  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
  std::atomic<double> sum_{0};
};

}  // namespace vigil
