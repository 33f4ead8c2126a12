// `vigil worker --config F --redis URL`: serves the config's models to the cluster's ingest
// nodes (cluster/worker.h) until a signal or --duration; prints what it served.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "vigil/cli/cluster_support.h"
#include "vigil/cli/commands.h"
#include "vigil/cli/config_loader.h"
#include "vigil/cli/signal_watcher.h"
#include "vigil/cluster/worker.h"
#include "vigil/core/log.h"
#include "vigil/core/metrics.h"
#include "vigil/core/process_stats.h"
#include "vigil/http/http_server.h"
#include "vigil/infer/backend.h"

namespace vigil {

std::string default_cluster_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == 0) std::snprintf(host, sizeof host, "host");
  return std::string(host) + "-" + std::to_string(getpid());
}

namespace {

Result<WorkerOptions> worker_options(const EngineConfig& config, const WorkerCommandOptions& options) {
  auto url = parse_redis_url(options.redis_url);
  if (!url.ok()) return url.error();
  WorkerOptions w;
  w.url = *url;
  w.prefix = config.cluster.prefix;
  w.consumer = options.consumer.empty() ? default_cluster_name() : options.consumer;
  w.shards = config.cluster.shards;
  w.block = std::chrono::milliseconds(config.cluster.block_ms);
  w.claim_idle = std::chrono::milliseconds(config.cluster.claim_idle_ms);
  w.max_deliveries = config.cluster.max_deliveries;
  w.max_age = std::chrono::milliseconds(config.cluster.max_age_ms);
  w.reply_max_len = config.cluster.max_len;
  for (const auto& name : options.models) {
    if (!config.models.count(name)) return Error{ErrorCode::invalid_argument, "--models: the config has no model '" + name + "'"};
  }
  for (const auto& [name, model] : config.models) {
    if (!options.models.empty() && std::find(options.models.begin(), options.models.end(), name) == options.models.end()) continue;
    const ModelSettings& s = model.settings;
    BackendOptions backend;
    backend.model_path = s.model_path;
    backend.kind = s.backend;
    backend.precision = s.precision;
    backend.threads = s.threads;
    w.models.push_back({name, backend, std::max(1, s.max_batch)});
  }
  return w;
}

WorkerCounters total(const std::vector<std::unique_ptr<InferenceWorker>>& workers) {
  WorkerCounters c;
  for (const auto& worker : workers) {
    const WorkerCounters one = worker->counters();
    c.served += one.served;
    c.batches += one.batches;
    c.deadline += one.deadline;
    c.claimed += one.claimed;
    c.retried += one.retried;
    c.dead_lettered += one.dead_lettered;
    c.trimmed += one.trimmed;
    c.reconnects += one.reconnects;
    c.round_trips += one.round_trips;
    c.bytes += one.bytes;
  }
  return c;
}

// The worker's /metrics (its counters, summed over its serving threads, and the process's
// CPU and threads) and /healthz, on `listen`. Null when listen is "off".
Result<std::unique_ptr<HttpServer>> serve_metrics(const std::string& listen, const std::vector<std::unique_ptr<InferenceWorker>>& workers,
                                                  MetricsRegistry& metrics) {
  if (listen == "off") return std::unique_ptr<HttpServer>();
  auto address = parse_listen_address(listen);
  if (!address.ok()) return Error{ErrorCode::invalid_argument, "--http " + listen + ": " + address.error().message};
  const auto counter = [&](const char* name, const char* help, std::uint64_t WorkerCounters::*field) {
    metrics.callback(name, help, MetricType::counter, {}, [&workers, field] { return static_cast<double>(total(workers).*field); });
  };
  counter("vigil_worker_items_served_total", "Requests the model ran on and replied to.", &WorkerCounters::served);
  counter("vigil_worker_batches_total", "Model calls.", &WorkerCounters::batches);
  counter("vigil_worker_items_late_total", "Live requests older than max_age_ms, replied 'dropped: deadline' without running.",
          &WorkerCounters::deadline);
  counter("vigil_worker_items_taken_over_total", "Requests taken over from idle consumers (dead workers) or retried.",
          &WorkerCounters::claimed);
  counter("vigil_worker_items_retried_total", "Requests left pending for a retry after the model failed on them.", &WorkerCounters::retried);
  counter("vigil_worker_items_dead_lettered_total", "Requests moved to the dead-letter stream after max_deliveries.",
          &WorkerCounters::dead_lettered);
  counter("vigil_worker_items_trimmed_total", "Pending requests found trimmed away from their stream.", &WorkerCounters::trimmed);
  counter("vigil_worker_redis_reconnects_total", "Redis connections made again after one broke.", &WorkerCounters::reconnects);
  counter("vigil_worker_redis_round_trips_total", "Redis round trips.", &WorkerCounters::round_trips);
  counter("vigil_worker_redis_bytes_total", "Request and reply payload bytes.", &WorkerCounters::bytes);
  metrics.callback("process_cpu_seconds_total", "CPU time of the process, seconds.", MetricType::counter, {}, [] { return process_cpu_seconds(); });
  metrics.callback("vigil_process_threads", "Threads of the process.", MetricType::gauge, {},
                   [] { return static_cast<double>(process_thread_count()); });
  HttpServerOptions options;
  options.host = address->first;
  options.port = address->second;
  options.threads = 1;
  options.max_connections = 64;
  return HttpServer::start(options, [&metrics](const HttpRequest& request, HttpResponse& response) {
    if (request.method != "GET" && request.method != "HEAD") return json_error(response, 405, "only GET");
    if (request.path == "/metrics") {
      response.content_type = "text/plain; version=0.0.4";
      response.body = prometheus_text(metrics.snapshot());
    } else if (request.path == "/healthz") {
      response.body = R"({"status":"ok"})";
    } else {
      json_error(response, 404, "a worker serves /metrics and /healthz");
    }
  });
}

}  // namespace

int worker_command(const WorkerCommandOptions& options) {
  auto config = load_config_file(options.config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", config.error().message.c_str());
    return 2;
  }
  setup_logging(config->log_level);
  SignalWatcher::block_in_this_thread();
  auto w = worker_options(*config, options);
  if (!w.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", w.error().message.c_str());
    return 2;
  }
  // Two single-threaded model instances beat one with two threads on vigil's small models
  // (engine.cpp says why): by default one serving thread per core, one intra-op thread each.
  const int cores = std::max(1, static_cast<int>(hardware_cores()));
  const int threads = options.threads > 0 ? options.threads : cores;
  set_inference_threads(options.inference_threads > 0   ? options.inference_threads
                        : config->inference_threads > 0 ? config->inference_threads
                                                        : std::max(1, cores / threads));
  std::vector<std::unique_ptr<InferenceWorker>> workers;
  for (int i = 0; i < threads; ++i) {
    WorkerOptions one = *w;
    if (threads > 1) one.consumer += "/" + std::to_string(i);
    auto worker = InferenceWorker::create(std::move(one));
    if (!worker.ok()) {
      std::fprintf(stderr, "vigil: error: %s\n", worker.error().message.c_str());
      return 2;
    }
    workers.push_back(std::move(worker).value());
  }
  MetricsRegistry metrics;
  auto http = serve_metrics(options.http, workers, metrics);  // before the workers go (it reads them)
  if (!http.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", http.error().message.c_str());
    return 2;
  }
  std::string http_url;
  if (*http) {
    auto address = parse_listen_address(options.http);
    const std::string host = address->first.find(':') != std::string::npos ? "[" + address->first + "]" : address->first;
    http_url = "http://" + host + ":" + std::to_string((*http)->port());
  }
  auto registry = join_cluster(w->url, *config, "worker", w->consumer, http_url,
                               [&workers, last = std::make_shared<std::pair<std::uint64_t, std::chrono::steady_clock::time_point>>()] {
                                 std::uint64_t served = 0, batches = 0;
                                 for (const auto& worker : workers) {
                                   served += worker->counters().served;
                                   batches += worker->counters().batches;
                                 }
                                 const auto now = std::chrono::steady_clock::now();
                                 const double s = std::chrono::duration<double>(now - last->second).count();
                                 const double rate = last->first == 0 || s <= 0 ? 0.0 : static_cast<double>(served - last->first) / s;
                                 *last = {served, now};
                                 char line[96];
                                 std::snprintf(line, sizeof line, "%.1f items/s, %.2f per batch", rate,
                                               batches ? static_cast<double>(served) / static_cast<double>(batches) : 0.0);
                                 return std::string(line);
                               },
                               options.models);
  if (!registry.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", registry.error().message.c_str());
    return 2;
  }
  std::string names;
  for (const auto& m : w->models) names += (names.empty() ? "" : ", ") + m.name;
  std::printf("vigil worker: %s serving %s from %s on %d threads%s%s\n", w->consumer.c_str(), names.c_str(), w->url.redacted().c_str(),
              threads, http_url.empty() ? "" : ", metrics at ", http_url.empty() ? "" : (http_url + "/metrics").c_str());
  std::fflush(stdout);
  std::atomic<bool> stop{false};
  const double cpu_start = process_cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  Status status;
  {
    SignalWatcher watcher([&] { stop.store(true); });
    std::vector<Status> statuses(workers.size());
    std::vector<std::thread> serving;
    for (std::size_t i = 0; i < workers.size(); ++i) {
      serving.emplace_back([&, i] {
        statuses[i] = workers[i]->run(stop);
        stop.store(true);  // one thread's fault that cannot pass stops the worker
      });
    }
    std::thread timer;
    if (options.duration_s) {
      timer = std::thread([&] {
        const auto end = start + std::chrono::duration<double>(*options.duration_s);
        while (!stop.load() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        stop.store(true);
      });
    }
    for (auto& t : serving) t.join();
    if (timer.joinable()) timer.join();
    for (const Status& s : statuses) {
      if (!s.ok() && status.ok()) status = s;
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const WorkerCounters c = total(workers);
  std::printf("vigil worker: %llu items served in %llu batches (%.2f per batch) in %.1f s, %llu dropped as late, %llu taken over, "
              "%llu left for a retry, %llu dead-lettered, %llu found trimmed, %llu reconnects, CPU %.2f cores\n",
              static_cast<unsigned long long>(c.served), static_cast<unsigned long long>(c.batches),
              c.batches ? static_cast<double>(c.served) / static_cast<double>(c.batches) : 0.0, wall,
              static_cast<unsigned long long>(c.deadline), static_cast<unsigned long long>(c.claimed),
              static_cast<unsigned long long>(c.retried), static_cast<unsigned long long>(c.dead_lettered),
              static_cast<unsigned long long>(c.trimmed), static_cast<unsigned long long>(c.reconnects),
              wall > 0 ? (process_cpu_seconds() - cpu_start) / wall : 0.0);
  std::fflush(stdout);
  if (!status.ok()) {
    std::fprintf(stderr, "vigil: error: %s\n", status.error().message.c_str());
    return status.error().code == ErrorCode::invalid_argument ? 2 : 1;
  }
  return 0;
}

}  // namespace vigil
