// KalmanFilter: constant-velocity model of a box in image space, as in SORT, DeepSORT and
// ByteTrack. State (cx, cy, a, h, vcx, vcy, va, vh): centre, aspect ratio (w / h), height,
// and their velocities per frame step; measurements are (cx, cy, a, h).
//
// Noise scales with the box height (ByteTrack's weights: 1/20 for position, 1/160 for
// velocity), so a small face and a large one are tracked with the same relative certainty.
// Fixed-size Eigen matrices: no allocation on any call.
// Threading: stateless apart from constants; the state lives in KalmanState, owned by a track.
#pragma once

#include <Eigen/Core>

#include "vigil/core/detection.h"

namespace vigil {

struct KalmanState {
  Eigen::Matrix<float, 8, 1> mean = Eigen::Matrix<float, 8, 1>::Zero();
  Eigen::Matrix<float, 8, 8> covariance = Eigen::Matrix<float, 8, 8>::Identity();
};

class KalmanFilter {
 public:
  using Measurement = Eigen::Matrix<float, 4, 1>;

  static Measurement to_measurement(const BBox& box);
  static BBox to_box(const KalmanState& state);

  // A new track at this measurement, with zero velocity and a wide velocity uncertainty.
  KalmanState initiate(const Measurement& measurement) const;
  // Moves the state one frame step ahead.
  void predict(KalmanState& state) const;
  // Corrects the state with a measurement (after predict for the same step).
  void update(KalmanState& state, const Measurement& measurement) const;

 private:
  static constexpr float kPositionWeight = 1.0f / 20;
  static constexpr float kVelocityWeight = 1.0f / 160;
};

}  // namespace vigil
