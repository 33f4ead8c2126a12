// Files that are whole or absent: written under a temporary name in the same folder, synced,
// then renamed over the final name (and the folder synced), so a crash or SIGKILL at any
// moment leaves either the old file or the new one, never half of one.
//
// Threading: any thread; two writers of one path at once are the caller's problem.
#pragma once

#include <string>
#include <string_view>

#include "vigil/core/status.h"

namespace vigil {

// Errors: unavailable (cannot create or write; ENOSPC says "No space left on device"),
// with the path in the message. On error the final name is untouched and nothing is left.
Status write_file_atomically(const std::string& path, std::string_view bytes);

// Removes temporary files that a killed writer left in `folder` (ones this module names).
void remove_stale_temporaries(const std::string& folder);

}  // namespace vigil
