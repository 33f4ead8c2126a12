// Helper for EventStoreTest.SurvivesSigkillWhileWriting: writes events (every third with a
// face JPEG-sized blob) to the store at argv[1] as fast as it can, until it is killed.
// Prints "writing" once the store is open.
#include <chrono>
#include <cstdio>
#include <vector>

#include "vigil/sink/event_store.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  vigil::EventStoreOptions options;
  options.path = argv[1];
  options.max_bytes = 4 << 20;  // retention runs too
  auto store = vigil::EventStore::open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.error().message.c_str());
    return 1;
  }
  auto face = std::make_shared<const std::vector<std::uint8_t>>(3000, std::uint8_t{0xab});
  std::printf("writing\n");
  std::fflush(stdout);
  const std::uint64_t base = (*store)->last_id();  // ids continue after the last run's
  for (std::uint64_t i = 1;; ++i) {
    vigil::Event e;
    e.id = base + i;
    e.at = std::chrono::system_clock::now();  // the bus would stamp it; an unset time is 1970, which age retention deletes
    e.kind = i % 3 == 0 ? vigil::EventKind::identity_matched : vigil::EventKind::track_started;
    e.camera = "cam" + std::to_string(i % 4);
    e.track_id = i;
    e.bbox = {1, 2, 3, 4};
    (*store)->offer(e, i % 3 == 0 ? face : nullptr);
    if (i % 50 == 0) (*store)->flush();
  }
}
