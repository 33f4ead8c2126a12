// harvest() in process on a short clip of the real Megamind.avi: the model workers change the
// speed, never the outputs (also run under ThreadSanitizer).
#include "vigil/harvest/harvester.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "support/test_support.h"

namespace vigil {
namespace {

HarvestOptions options_for(const std::string& clip, const std::string& out, double cpu_budget) {
  HarvestOptions o;
  o.inputs = {clip};
  o.out_dir = out;
  o.detector.settings.model_path = test::data_file("models/blazeface_back_256_dyn.onnx");
  o.detector.settings.input_size = 256;
  o.detector.settings.max_batch = 2;
  o.embedder.settings.model_path = test::data_file("models/face_recognition_128.onnx");
  o.embedder.settings.max_batch = 4;
  o.select.all_faces = true;  // several embedder calls in flight
  o.cpu_budget = cpu_budget;
  return o;
}

TEST(HarvesterTest, TwoModelWorkersGiveTheOutputsOfOne) {
  test::TempDir dir;
  const std::string clip = dir.file("clip.mkv");
  ASSERT_TRUE(test::cut_megamind(clip, 24, 3));
  std::vector<HarvestProgress> reports;
  auto one = harvest(options_for(clip, dir.file("one"), 1), [&](const HarvestProgress& p) { reports.push_back(p); });
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(one->model_workers, 1);
  EXPECT_EQ(one->frames, 24u);
  ASSERT_GT(one->faces_embedded, 8u) << "a face in nearly every frame, all embedded";
  EXPECT_GE(one->embedder_calls, 3u);
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports.back().frames_done, 24u);

  auto two = harvest(options_for(clip, dir.file("two"), 2));
  ASSERT_TRUE(two.ok()) << two.error().message;
  EXPECT_EQ(two->model_workers, 2);
  EXPECT_EQ(two->faces_embedded, one->faces_embedded);
  EXPECT_EQ(two->embedder_calls, one->embedder_calls);
  for (const char* name : {"faces.jsonl", "tracks.jsonl", "identities.json", "embeddings.npy"}) {
    EXPECT_EQ(test::read_file(dir.file("two/") + name), test::read_file(dir.file("one/") + name)) << name;
  }
}

TEST(HarvesterTest, AModelThatFailsIsAnErrorNotACrash) {
  test::TempDir dir;
  const std::string clip = dir.file("clip.mkv");
  ASSERT_TRUE(test::cut_megamind(clip, 4));
  HarvestOptions o = options_for(clip, dir.file("out"), 2);
  o.embedder.settings.model_path = o.detector.settings.model_path;  // a detector where the embedder should be
  auto result = harvest(o);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("embedder"), std::string::npos) << result.error().message;
}

}  // namespace
}  // namespace vigil
