#include "vigil/core/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

namespace vigil {

std::shared_ptr<Counter> MetricsRegistry::counter(const std::string& name, const std::string& help, MetricLabels labels) {
  auto c = std::make_shared<Counter>();
  add({name, help, MetricType::counter, std::move(labels), c, nullptr, nullptr, {}});
  return c;
}

std::shared_ptr<Gauge> MetricsRegistry::gauge(const std::string& name, const std::string& help, MetricLabels labels) {
  auto g = std::make_shared<Gauge>();
  add({name, help, MetricType::gauge, std::move(labels), nullptr, g, nullptr, {}});
  return g;
}

std::shared_ptr<Histogram> MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                                      MetricLabels labels, double min, double scale) {
  auto h = std::make_shared<Histogram>(min);
  add({name, help, MetricType::summary, std::move(labels), nullptr, nullptr, h, {}, scale});
  return h;
}

void MetricsRegistry::callback(const std::string& name, const std::string& help, MetricType type, MetricLabels labels,
                               std::function<double()> read) {
  add({name, help, type, std::move(labels), nullptr, nullptr, nullptr, std::move(read)});
}

void MetricsRegistry::add(Series series) {
  MutexLock lock(mu_);
  series_.push_back(std::move(series));
}

void MetricsRegistry::remove_matching(const std::string& key, const std::string& value) {
  std::vector<Series> removed;  // destroyed outside the lock (callbacks may own things)
  {
    MutexLock lock(mu_);
    auto it = std::stable_partition(series_.begin(), series_.end(), [&](const Series& s) {
      return std::none_of(s.labels.begin(), s.labels.end(), [&](const auto& l) { return l.first == key && l.second == value; });
    });
    removed.assign(std::make_move_iterator(it), std::make_move_iterator(series_.end()));
    series_.erase(it, series_.end());
  }
}

double MetricsRegistry::read_value(const Series& s) const {
  if (s.counter) return static_cast<double>(s.counter->value());
  if (s.gauge) return s.gauge->value();
  if (s.read) return s.read();
  return 0;
}

std::vector<MetricSample> MetricsRegistry::snapshot() const {
  MutexLock lock(mu_);
  // Group by name, keeping the order in which names first appeared.
  std::map<std::string, std::size_t> first_seen;
  for (const auto& s : series_) first_seen.emplace(s.name, first_seen.size());
  std::vector<const Series*> ordered;
  for (const auto& s : series_) ordered.push_back(&s);
  std::stable_sort(ordered.begin(), ordered.end(),
                   [&](const Series* a, const Series* b) { return first_seen[a->name] < first_seen[b->name]; });
  std::vector<MetricSample> out;
  out.reserve(ordered.size());
  for (const Series* s : ordered) {
    MetricSample m{s->name, s->help, s->type, s->labels};
    if (s->histogram) {
      m.p50 = s->histogram->percentile(0.5) * s->scale;
      m.p90 = s->histogram->percentile(0.9) * s->scale;
      m.p99 = s->histogram->percentile(0.99) * s->scale;
      m.count = s->histogram->count();
      m.sum = s->histogram->sum() * s->scale;
    } else {
      m.value = read_value(*s);
    }
    out.push_back(std::move(m));
  }
  return out;
}

double MetricsRegistry::total(const std::string& name, const MetricLabels& filter) const {
  MutexLock lock(mu_);
  double sum = 0;
  for (const auto& s : series_) {
    if (s.name != name || s.histogram) continue;
    const bool match = std::all_of(filter.begin(), filter.end(), [&](const auto& f) {
      return std::find(s.labels.begin(), s.labels.end(), f) != s.labels.end();
    });
    if (match) sum += read_value(s);
  }
  return sum;
}

namespace {

void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof(buf), static_cast<long long>(v));
    out.append(buf, r.ptr);
  } else {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general, 6);
    out.append(buf, r.ptr);
  }
}

// Label values escape backslash, double quote and newline; HELP text backslash and newline.
void append_escaped(std::string& out, const std::string& s, bool quotes) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

void append_labels(std::string& out, const MetricLabels& labels, const char* extra_key = nullptr,
                   const char* extra_value = nullptr) {
  if (labels.empty() && !extra_key) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    append_escaped(out, v, true);
    out += '"';
  }
  if (extra_key) {
    if (!first) out += ',';
    out += extra_key;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

const char* type_name(MetricType t) {
  switch (t) {
    case MetricType::counter: return "counter";
    case MetricType::gauge: return "gauge";
    case MetricType::summary: return "summary";
  }
  return "untyped";
}

}  // namespace

std::string prometheus_text(const std::vector<MetricSample>& samples) {
  std::string out;
  const std::string* last_name = nullptr;
  for (const MetricSample& m : samples) {
    if (!last_name || *last_name != m.name) {
      out += "# HELP " + m.name + ' ';
      append_escaped(out, m.help, false);
      out += "\n# TYPE " + m.name + ' ' + type_name(m.type) + '\n';
      last_name = &m.name;
    }
    if (m.type == MetricType::summary) {
      const std::pair<const char*, double> quantiles[] = {{"0.5", m.p50}, {"0.9", m.p90}, {"0.99", m.p99}};
      for (const auto& [q, v] : quantiles) {
        out += m.name;
        append_labels(out, m.labels, "quantile", q);
        out += ' ';
        append_value(out, v);
        out += '\n';
      }
      out += m.name + "_sum";
      append_labels(out, m.labels);
      out += ' ';
      append_value(out, m.sum);
      out += '\n';
      out += m.name + "_count";
      append_labels(out, m.labels);
      out += ' ';
      append_value(out, static_cast<double>(m.count));
      out += '\n';
      continue;
    }
    out += m.name;
    append_labels(out, m.labels);
    out += ' ';
    append_value(out, m.value);
    out += '\n';
  }
  return out;
}

}  // namespace vigil
