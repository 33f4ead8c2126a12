// Sink: where results go (JSONL today; SQLite and Redis streams later).
//
// The engine calls write() once per result (core/frame_result.h), in per-camera order, from any of its
// worker threads: write() must allow concurrent calls. A sink must not hold the frame
// beyond the call unless it keeps the FrameRef. flush() makes everything written so far durable to the sink's medium; close()
// flushes and releases the medium (called once, at shutdown).
#pragma once

#include <string_view>

#include "vigil/core/frame_result.h"
#include "vigil/core/status.h"

namespace vigil {

class Sink {
 public:
  virtual ~Sink() = default;
  virtual Status write(const FrameResult& result) = 0;
  virtual Status flush() = 0;
  virtual Status close() = 0;
};

}  // namespace vigil
