#include "vigil/infer/graph_backend.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <string>

#include "vigil/core/mutex.h"

namespace vigil {

namespace {

// Calibrations made in this process: "backend|threads|input dims|path" -> max_chunk.
struct Calibrations {
  Mutex mu;
  std::map<std::string, int> chunks GUARDED_BY(mu);
  std::uint64_t measured GUARDED_BY(mu) = 0;
};

Calibrations& calibrations() {
  static Calibrations* kept = new Calibrations;  // never destroyed: backends may load during exit
  return *kept;
}

}  // namespace

GraphBackend::GraphBackend(ModelGraph graph, int max_chunk, bool power_of_two, int threads)
    : graph_(std::move(graph)), max_chunk_(max_chunk), power_of_two_(power_of_two), threads_(threads) {}

Error GraphBackend::fail(const std::string& what, const GraphOp* op) const {
  return Error{ErrorCode::invalid_argument, graph_.path + ": " + name() + ": " + what + (op ? " (" + op->describe() + ")" : "")};
}

Status GraphBackend::check_input(const Tensor& input) const {
  const Dims& expected = graph_.input_dims;
  bool fits = input.rank() == expected.size() && input.rank() > 0 && input.dim(0) > 0;
  for (std::size_t i = 0; fits && i < expected.size(); ++i) fits = expected[i] < 0 || expected[i] == input.dim(i);
  if (!fits) {
    return Error{ErrorCode::invalid_argument,
                 graph_.path + ": input " + input.shape_string() + " does not fit the model's " + dims_string(expected)};
  }
  return {};
}

std::int64_t GraphBackend::chunk_for(std::int64_t left) const {
  if (max_chunk_ > 0) left = std::min<std::int64_t>(left, max_chunk_);
  return power_of_two_ ? std::int64_t{1} << static_cast<int>(std::log2(static_cast<double>(left))) : left;
}

Status GraphBackend::infer(const Tensor& input, std::vector<Tensor>& outputs) {
  VIGIL_RETURN_IF_ERROR(check_input(input));
  const std::int64_t batch = input.dim(0);
  outputs.resize(graph_.outputs.size());
  std::int64_t done = 0;
  while (done < batch) {
    const std::int64_t chunk = graph_.dynamic_batch() ? chunk_for(batch - done) : batch;
    auto dims = prepare(chunk);
    if (!dims.ok()) return dims.error();
    if (done == 0) {
      for (std::size_t i = 0; i < outputs.size(); ++i) {
        Dims d = (**dims)[i];
        if (graph_.dynamic_batch()) d[0] = batch;
        outputs[i].reshape(std::span<const std::int64_t>(d.data(), d.size()));
      }
    }
    VIGIL_RETURN_IF_ERROR(run_chunk(chunk, input, done, outputs, chunk == batch));
    done += chunk;
  }
  return {};
}

Status GraphBackend::load() {
  auto planned = prepare(graph_.dynamic_batch() ? 1 : graph_.input_dims[0]);
  if (!planned.ok()) return planned.error();
  for (std::size_t i = 0; i < (*planned)->size(); ++i) {
    const Dims& d = (**planned)[i];
    if (graph_.dynamic_batch() && (d.empty() || d[0] != 1)) {
      return fail("output '" + graph_.outputs[i] + "' " + dims_string(d) + " does not follow the batch");
    }
  }
  return calibrate();
}

Status GraphBackend::calibrate() {
  if (!graph_.dynamic_batch() || max_chunk_ > 0) return {};
  const std::string key = name() + "|" + std::to_string(threads_) + "|" + dims_string(graph_.input_dims) + "|" + graph_.path;
  Calibrations& kept = calibrations();
  {
    MutexLock lock(kept.mu);
    const auto it = kept.chunks.find(key);
    if (it != kept.chunks.end()) {
      max_chunk_ = it->second;
      return {};
    }
  }
  VIGIL_RETURN_IF_ERROR(measure_chunk());
  MutexLock lock(kept.mu);
  kept.chunks.emplace(key, max_chunk_);
  ++kept.measured;
  return {};
}

std::uint64_t GraphBackend::calibrations_measured() {
  Calibrations& kept = calibrations();
  MutexLock lock(kept.mu);
  return kept.measured;
}

Status GraphBackend::measure_chunk() {
  Dims dims = graph_.input_dims;
  dims[0] = 4;
  Tensor input;
  input.reshape(std::span<const std::int64_t>(dims.data(), dims.size()));
  std::fill(input.data(), input.data() + input.size(), 0.0f);
  std::vector<Tensor> outputs;
  double one_by_one = 1e9, batched = 1e9;
  for (int round = 0; round < 3; ++round) {
    for (const int chunk : {1, 4}) {
      max_chunk_ = chunk;
      VIGIL_RETURN_IF_ERROR(infer(input, outputs));  // plans on first use
      const auto start = std::chrono::steady_clock::now();
      VIGIL_RETURN_IF_ERROR(infer(input, outputs));
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      double& best = chunk == 1 ? one_by_one : batched;
      best = std::min(best, s);
    }
  }
  max_chunk_ = batched < 0.95 * one_by_one ? 1 << 30 : 1;
  if (max_chunk_ == 1) forget(4);
  return {};
}

}  // namespace vigil
