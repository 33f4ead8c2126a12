// GraphBackend: what the backends that lower an imported ModelGraph (model_graph.h) share,
// so that each keeps only its lowering: the input check, the split of a call's batch into the
// chunks their plans are built for, and the calibration of the largest chunk.
//
// A backend builds one plan per chunk size on first use (prepare) and runs items
// [first, first + chunk) of a call through it (run_chunk). Batches larger than max_chunk are
// split; a graph with a fixed batch runs whole. calibrate() measures four items as one chunk
// against four chunks of one (best of three): small convolutional models often run faster
// item by item, their activations staying in cache. The choice is kept for the process, by
// backend, model file and thread count, so the next instance of the same model (one per
// worker, one per harvest input) loads without measuring again.
//
// Threading: one caller at a time, like every Backend.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vigil/infer/backend.h"
#include "vigil/infer/model_graph.h"

namespace vigil {

class GraphBackend : public Backend {
 public:
  Status infer(const Tensor& input, std::vector<Tensor>& outputs) final;
  const std::vector<std::string>& output_names() const final { return graph_.outputs; }
  // Plans the first chunk (so a graph the backend cannot lower fails at load, not on the first
  // frame), then calibrates.
  Status load();
  int max_chunk() const { return max_chunk_; }
  // How many calibrations this process measured (the others were taken from earlier ones).
  static std::uint64_t calibrations_measured();

 protected:
  // power_of_two: chunks are the largest power of two that fits (a backend whose plans are
  // costly to make keeps at most log2(max batch) + 1 of them).
  // threads: the instance's intra-op threads (part of what its calibration is kept under).
  GraphBackend(ModelGraph graph, int max_chunk, bool power_of_two, int threads);
  const ModelGraph& graph() const { return graph_; }
  int threads() const { return threads_; }

  // The dims of every output at a chunk of `batch` items, planning it on first use.
  virtual Result<const std::vector<Dims>*> prepare(std::int64_t batch) = 0;
  // Items [first, first + batch) of the call; `whole`: they are the whole call.
  virtual Status run_chunk(std::int64_t batch, const Tensor& input, std::int64_t first, std::vector<Tensor>& outputs,
                           bool whole) = 0;
  // Drops the plan for chunks of `batch` (calibration found it not worth keeping).
  virtual void forget(std::int64_t batch) = 0;

  // An error of this backend at `op`: "PATH: NAME: what (Conv 'x')".
  Error fail(const std::string& what, const GraphOp* op = nullptr) const;

 private:
  Status check_input(const Tensor& input) const;
  // Chooses max_chunk when the options left it 0 and the batch is dynamic.
  Status calibrate();
  Status measure_chunk();
  std::int64_t chunk_for(std::int64_t left) const;

  ModelGraph graph_;
  int max_chunk_;
  bool power_of_two_;
  int threads_;
};

}  // namespace vigil
