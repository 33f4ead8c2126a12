#include "vigil/track/kalman_filter.h"

#include <Eigen/Cholesky>
#include <algorithm>

namespace vigil {

namespace {
using Mat8 = Eigen::Matrix<float, 8, 8>;
using Mat4 = Eigen::Matrix<float, 4, 4>;
using Mat48 = Eigen::Matrix<float, 4, 8>;
using Vec8 = Eigen::Matrix<float, 8, 1>;
using Vec4 = Eigen::Matrix<float, 4, 1>;

// The constant-velocity transition: position += velocity, one frame step.
const Mat8& transition() {
  static const Mat8 f = [] {
    Mat8 m = Mat8::Identity();
    for (int i = 0; i < 4; ++i) m(i, 4 + i) = 1;
    return m;
  }();
  return f;
}
}  // namespace

KalmanFilter::Measurement KalmanFilter::to_measurement(const BBox& box) {
  const float h = std::max(box.height(), 1e-3f);
  return {(box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2, box.width() / h, h};
}

BBox KalmanFilter::to_box(const KalmanState& state) {
  const float h = state.mean(3);
  const float w = state.mean(2) * h;
  const float cx = state.mean(0), cy = state.mean(1);
  return {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2};
}

KalmanState KalmanFilter::initiate(const Measurement& m) const {
  KalmanState s;
  s.mean << m, Vec4::Zero();
  const float h = m(3);
  Vec8 std;
  std << 2 * kPositionWeight * h, 2 * kPositionWeight * h, 1e-2f, 2 * kPositionWeight * h,
      10 * kVelocityWeight * h, 10 * kVelocityWeight * h, 1e-5f, 10 * kVelocityWeight * h;
  s.covariance = std.array().square().matrix().asDiagonal();
  return s;
}

void KalmanFilter::predict(KalmanState& s) const {
  const float h = s.mean(3);
  Vec8 std;
  std << kPositionWeight * h, kPositionWeight * h, 1e-2f, kPositionWeight * h, kVelocityWeight * h,
      kVelocityWeight * h, 1e-5f, kVelocityWeight * h;
  const Mat8& f = transition();
  s.mean = f * s.mean;
  s.covariance = f * s.covariance * f.transpose();
  s.covariance.diagonal() += std.array().square().matrix();
}

void KalmanFilter::update(KalmanState& s, const Measurement& m) const {
  const float h = s.mean(3);
  Vec4 std;
  std << kPositionWeight * h, kPositionWeight * h, 1e-1f, kPositionWeight * h;
  // Projection to measurement space is the first four rows of the state.
  const Vec4 projected_mean = s.mean.head<4>();
  Mat4 projected_cov = s.covariance.topLeftCorner<4, 4>();
  projected_cov.diagonal() += std.array().square().matrix();
  // Kalman gain K = P H^T S^-1, solved through the Cholesky factor of S (symmetric positive).
  const Mat48 pht_t = s.covariance.topRows<4>();  // (P H^T)^T = H P
  const Eigen::LLT<Mat4> llt(projected_cov);
  const Mat48 gain_t = llt.solve(pht_t);  // K^T
  const Vec4 innovation = m - projected_mean;
  s.mean += gain_t.transpose() * innovation;
  s.covariance -= gain_t.transpose() * projected_cov * gain_t;
}

}  // namespace vigil
