#include "vigil/core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <string>

namespace vigil {

void setup_logging(std::string_view level) {
  auto logger = spdlog::stderr_color_mt("vigil");
  logger->set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") parsed = spdlog::level::info;
  logger->set_level(parsed);
  spdlog::set_default_logger(logger);
}

}  // namespace vigil
