// Data paths: where fetched models and media live, and expansion of ${VAR} in config paths.
#pragma once

#include <string>
#include <string_view>

namespace vigil {

// The data cache filled by scripts/fetch_models.sh: $VIGIL_DATA, else ~/.cache/vigil.
std::string data_dir();

// Expands ${VIGIL_DATA} (to data_dir()), other ${NAME} environment variables and a leading
// "~/" in a path from a config file. An unset variable expands to nothing.
std::string expand_path(std::string_view path);

}  // namespace vigil
