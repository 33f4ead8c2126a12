// MetricsRegistry: every number vigil reports (counters, gauges, histograms) under one
// name and label set, aggregated only when read: the status line, `vigil run`'s summary, the
// Prometheus endpoint and the benchmarks read the same registry.
//
// Writers hold a handle (Counter, Gauge, Histogram) made once, when a camera or model is
// added, and update it with relaxed atomics: no lock, no allocation, no string on the
// per-frame path. Values that already live elsewhere (a queue's drop count, a camera's
// state) are registered as callbacks and read at scrape time. remove_matching() drops a
// camera's series when it goes away.
//
//   auto frames = registry.counter("vigil_frames_decoded_total", "Frames decoded", {{"camera", "lobby"}});
//   frames->add();                         // per frame
//   std::string text = prometheus_text(registry.snapshot());
//
// Threading: all methods from any thread; a per-registry mutex guards the list of series
// (taken when series are added, removed or read, never when a value is updated).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vigil/core/mutex.h"
#include "vigil/core/histogram.h"

namespace vigil {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

enum class MetricType : std::uint8_t { counter, gauge, summary };

class Counter {
 public:
  void add(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// One series as read at one instant.
struct MetricSample {
  std::string name;
  std::string help;
  MetricType type = MetricType::gauge;
  MetricLabels labels;
  double value = 0;  // counter and gauge
  // summary (from a Histogram): quantiles 0.5, 0.9, 0.99, the count and the sum
  double p50 = 0, p90 = 0, p99 = 0, sum = 0;
  std::uint64_t count = 0;
};

class MetricsRegistry {
 public:
  std::shared_ptr<Counter> counter(const std::string& name, const std::string& help, MetricLabels labels = {});
  std::shared_ptr<Gauge> gauge(const std::string& name, const std::string& help, MetricLabels labels = {});
  // scale multiplies what was recorded when it is read: a histogram fed milliseconds is
  // exposed in seconds (Prometheus' base unit) with scale 0.001.
  std::shared_ptr<Histogram> histogram(const std::string& name, const std::string& help, MetricLabels labels = {},
                                       double min = 0.01, double scale = 1.0);
  // A value computed when read (it must be cheap and thread-safe).
  void callback(const std::string& name, const std::string& help, MetricType type, MetricLabels labels,
                std::function<double()> read);

  // Forgets every series that has label `key` with value `value` (e.g. camera=lobby).
  void remove_matching(const std::string& key, const std::string& value);

  // Every series, grouped by name in the order names were first registered, then by labels
  // in registration order.
  std::vector<MetricSample> snapshot() const;
  // The sum of a counter or gauge over all its series whose labels include `filter`
  // (e.g. all cameras' decoded frames); 0 if there is none.
  double total(const std::string& name, const MetricLabels& filter = {}) const;

 private:
  struct Series {
    std::string name;
    std::string help;
    MetricType type;
    MetricLabels labels;
    std::shared_ptr<Counter> counter;
    std::shared_ptr<Gauge> gauge;
    std::shared_ptr<Histogram> histogram;
    std::function<double()> read;
    double scale = 1.0;  // histograms
  };
  void add(Series series);
  double read_value(const Series& s) const;

  mutable Mutex mu_;
  std::vector<Series> series_ GUARDED_BY(mu_);
};

// Prometheus text exposition format 0.0.4: one HELP and TYPE line per name, then its series;
// label values escaped; histograms as summaries (quantiles, _sum, _count).
std::string prometheus_text(const std::vector<MetricSample>& samples);

}  // namespace vigil
