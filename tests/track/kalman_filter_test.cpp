#include "vigil/track/kalman_filter.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

TEST(KalmanFilterTest, BoxRoundTripsThroughTheState) {
  KalmanFilter filter;
  const BBox box{10, 20, 50, 100};
  const KalmanState s = filter.initiate(KalmanFilter::to_measurement(box));
  const BBox back = KalmanFilter::to_box(s);
  EXPECT_NEAR(back.x1, 10, 1e-4);
  EXPECT_NEAR(back.y1, 20, 1e-4);
  EXPECT_NEAR(back.x2, 50, 1e-4);
  EXPECT_NEAR(back.y2, 100, 1e-4);
}

TEST(KalmanFilterTest, LearnsAConstantVelocityAndExtrapolatesIt) {
  KalmanFilter filter;
  KalmanState s = filter.initiate(KalmanFilter::to_measurement({0, 0, 40, 40}));
  for (int t = 1; t <= 30; ++t) {  // moves 5 px right per frame
    filter.predict(s);
    const float x = 5.0f * static_cast<float>(t);
    filter.update(s, KalmanFilter::to_measurement({x, 0, x + 40, 40}));
  }
  EXPECT_NEAR(s.mean(4), 5.0, 0.25) << "velocity in x";
  EXPECT_NEAR(s.mean(5), 0.0, 0.25) << "velocity in y";
  for (int t = 0; t < 3; ++t) filter.predict(s);
  EXPECT_NEAR(KalmanFilter::to_box(s).x1, 5.0f * 33, 2.0);
}

TEST(KalmanFilterTest, UpdateMovesTowardsTheMeasurementAndShrinksUncertainty) {
  KalmanFilter filter;
  KalmanState s = filter.initiate(KalmanFilter::to_measurement({0, 0, 40, 40}));
  filter.predict(s);
  const float before = s.covariance(0, 0);
  filter.update(s, KalmanFilter::to_measurement({10, 0, 50, 40}));
  EXPECT_GT(s.mean(0), 20.0f);  // centre moved from 20 towards 30
  EXPECT_LT(s.mean(0), 30.0f);
  EXPECT_LT(s.covariance(0, 0), before);
}

}  // namespace
}  // namespace vigil
