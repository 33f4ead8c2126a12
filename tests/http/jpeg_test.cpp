// JpegEncoder's annotations: a person's 17 keypoints are drawn as a skeleton, limbs only
// between the keypoints the model sees.
#include "vigil/http/jpeg.h"

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <vector>

#include "vigil/core/frame.h"

namespace vigil {
namespace {

cv::Mat annotated(const Detection& person) {
  auto pool = make_frame_pool();
  std::vector<std::uint8_t> pixels(320 * 240 * 3, 40);
  FrameRef ref = pool->acquire();
  Frame& f = *ref.mutable_get();
  f.image.format = PixelFormat::bgr24;
  f.image.width = 320;
  f.image.height = 240;
  f.image.planes[0] = {pixels.data(), 320 * 3};
  FrameResult result;
  result.frame = ref;
  result.detected = true;
  result.detections.push_back(person);
  JpegEncoder encoder;
  std::vector<std::uint8_t> jpeg;
  JpegOptions options;
  options.annotate = true;
  options.quality = 95;
  EXPECT_TRUE(encoder.encode(result, options, jpeg).ok());
  return cv::imdecode(jpeg, cv::IMREAD_COLOR);
}

// Brightness at (x, y), the picture's background being 40.
double at(const cv::Mat& m, int x, int y) {
  const cv::Vec3b v = m.at<cv::Vec3b>(y, x);
  return (v[0] + v[1] + v[2]) / 3.0;
}

TEST(JpegEncoderTest, APersonsKeypointsAreDrawnAsASkeletonBetweenTheOnesSeen) {
  Detection person;
  person.bbox = {100, 20, 220, 230};
  person.score = 0.8f;
  person.track_id = 3;
  person.keypoint_count = 17;
  // Left shoulder (5) at (130, 80), left hip (11) at (130, 160): a limb down x = 130. Right
  // shoulder (6) at (190, 80) and right hip (12) at (190, 160), the hip not seen.
  person.keypoints[5] = {130, 80};
  person.keypoints[11] = {130, 160};
  person.keypoints[6] = {190, 80};
  person.keypoints[12] = {190, 160};
  person.keypoint_scores[5] = person.keypoint_scores[11] = person.keypoint_scores[6] = 0.9f;
  person.keypoint_scores[12] = 0.05f;
  for (int k : {0, 1, 2, 3, 4, 7, 8, 9, 10, 13, 14, 15, 16}) person.keypoints[static_cast<std::size_t>(k)] = {160, 120};
  const cv::Mat picture = annotated(person);
  ASSERT_FALSE(picture.empty());
  EXPECT_GT(at(picture, 130, 120), 80) << "the left side's limb, between two keypoints seen";
  EXPECT_LT(at(picture, 190, 120), 60) << "no limb to a keypoint not seen";
  EXPECT_LT(at(picture, 190, 160), 60) << "no point where a keypoint is not seen";
}

}  // namespace
}  // namespace vigil
