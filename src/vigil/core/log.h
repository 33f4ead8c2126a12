// Logging set-up, done once by main. Modules log through spdlog's default logger, and never
// on the per-frame path.
#pragma once

#include <string_view>

namespace vigil {

// Configures the default logger: stderr, "[time] [level] message", at the given level
// ("trace", "debug", "info", "warn", "error", "off"). Unknown levels mean "info".
void setup_logging(std::string_view level);

}  // namespace vigil
