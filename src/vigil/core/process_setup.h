// Process-wide settings that main() applies once, before any thread or library starts.
#pragma once

namespace vigil {

// Idle OpenMP threads (in any library that uses OpenMP) sleep instead of spinning.
void configure_process();

// Gives freed heap memory back to the system (glibc malloc_trim). Called after a camera is
// removed: its pictures and frame buffers are large, and without this, resident memory
// creeps up as cameras come and go. Not for hot paths.
void release_free_memory();

}  // namespace vigil
