#include "vigil/core/paths.h"

#include <cstdlib>

namespace vigil {

namespace {
std::string env_or(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::string(value) : std::move(fallback);
}
}  // namespace

std::string data_dir() { return env_or("VIGIL_DATA", env_or("HOME", "/tmp") + "/.cache/vigil"); }

std::string expand_path(std::string_view path) {
  std::string out;
  std::size_t i = 0;
  if (path.substr(0, 2) == "~/") {
    out = env_or("HOME", "");
    i = 1;
  }
  while (i < path.size()) {
    if (path[i] == '$' && i + 1 < path.size() && path[i + 1] == '{') {
      const auto end = path.find('}', i + 2);
      if (end != std::string_view::npos) {
        const std::string name(path.substr(i + 2, end - i - 2));
        out += name == "VIGIL_DATA" ? data_dir() : env_or(name.c_str(), "");
        i = end + 1;
        continue;
      }
    }
    out += path[i++];
  }
  return out;
}

}  // namespace vigil
