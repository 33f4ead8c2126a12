#include "vigil/harvest/progress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace vigil {

void ProgressMeter::update(HarvestProgress& p, double now_s, double cpu_s) {
  samples_.push_back({now_s, cpu_s, p.frames_done});
  // Keep one sample at or before the window's start, so the window spans window_s when it can.
  while (samples_.size() > 2 && samples_[1].t <= now_s - window_s_) samples_.pop_front();
  p.elapsed_s = now_s;
  const Sample& first = samples_.front();
  const double dt = now_s - first.t;
  if (dt > 0) {
    p.fps = static_cast<double>(p.frames_done - first.frames) / dt;
    p.cpu_percent = 100.0 * (cpu_s - first.cpu) / dt;
  }
  p.eta_s = -1;
  if (p.frames_total > 0 && p.frames_done >= p.frames_total) {
    p.eta_s = 0;
  } else if (p.frames_total > 0 && p.fps > 0) {
    p.eta_s = static_cast<double>(p.frames_total - p.frames_done) / p.fps;
  }
}

std::string progress_json(const HarvestProgress& p) {
  const auto round1 = [](double v) { return std::round(v * 10) / 10; };
  nlohmann::json j = {{"phase", p.phase},
                      {"frames_done", p.frames_done},
                      {"frames_total", p.frames_total},
                      {"faces", p.faces},
                      {"tracks", p.tracks},
                      {"embedder_calls", p.embedder_calls},
                      {"files_uploaded", p.files_uploaded},
                      {"files_to_upload", p.files_to_upload},
                      {"elapsed_s", round1(p.elapsed_s)},
                      {"fps", round1(p.fps)},
                      {"eta_s", p.eta_s < 0 ? nlohmann::json(nullptr) : nlohmann::json(round1(p.eta_s))},
                      {"cpu_percent", round1(p.cpu_percent)},
                      {"threads", p.threads},
                      {"rss_mb", round1(p.rss_mb)}};
  return j.dump() + "\n";
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0)) return "?";
  const auto total = static_cast<long long>(std::llround(seconds));
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
  } else {
    std::snprintf(text, sizeof text, "%lld:%02lld", total / 60, total % 60);
  }
  return text;
}

namespace {

bool uploading(const HarvestProgress& p) { return p.phase == "upload" && p.files_to_upload > 0; }

std::string frames_part(const HarvestProgress& p) {
  char text[96];
  if (uploading(p)) {
    std::snprintf(text, sizeof text, "%llu/%llu files", static_cast<unsigned long long>(p.files_uploaded),
                  static_cast<unsigned long long>(p.files_to_upload));
  } else if (p.frames_total > 0) {
    std::snprintf(text, sizeof text, "%llu/%llu frames", static_cast<unsigned long long>(p.frames_done),
                  static_cast<unsigned long long>(p.frames_total));
  } else {
    std::snprintf(text, sizeof text, "%llu frames", static_cast<unsigned long long>(p.frames_done));
  }
  return text;
}

std::string rates_part(const HarvestProgress& p) {
  char text[160];
  std::snprintf(text, sizeof text, "%llu faces %llu tracks | %.1f fps | ETA %s | CPU %.0f%%",
                static_cast<unsigned long long>(p.faces), static_cast<unsigned long long>(p.tracks), p.fps,
                format_duration(p.eta_s).c_str(), p.cpu_percent);
  return text;
}

int percent(const HarvestProgress& p) {
  if (uploading(p)) return static_cast<int>(std::min<std::uint64_t>(100, p.files_uploaded * 100 / p.files_to_upload));
  if (p.frames_total == 0) return -1;
  return static_cast<int>(std::min<std::uint64_t>(100, p.frames_done * 100 / p.frames_total));
}

}  // namespace

std::string progress_bar(const HarvestProgress& p, int width) {
  const int pct = percent(p);
  std::string tail = " " + frames_part(p) + " | " + rates_part(p);
  std::string head = p.phase;
  if (pct >= 0) {
    const int cells = 20;
    const int filled = pct * cells / 100;
    head += " [" + std::string(static_cast<std::size_t>(filled), '#') + std::string(static_cast<std::size_t>(cells - filled), '.') +
            "] " + std::to_string(pct) + "%";
  }
  std::string line = head + tail;
  if (width > 0 && line.size() > static_cast<std::size_t>(width)) line.resize(static_cast<std::size_t>(width));
  return line;
}

std::string progress_line(const HarvestProgress& p) {
  const int pct = percent(p);
  std::string line = "harvest: " + p.phase + " " + frames_part(p);
  if (pct >= 0) line += " (" + std::to_string(pct) + "%)";
  return line + ", " + rates_part(p);
}

}  // namespace vigil
