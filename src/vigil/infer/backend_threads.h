// Intra-op thread settings of each inference library (set_inference_threads sets them all).
#pragma once

namespace vigil {

void set_opencv_threads(int threads);
void set_xnnpack_threads(int threads);  // read when a backend is created
void set_onednn_threads(int threads);   // read when a backend is created

}  // namespace vigil
