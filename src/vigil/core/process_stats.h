// Process and machine facts for status lines and benchmarks: CPU time from getrusage (never
// wall time x threads), thread count, the machine's description.
#pragma once

#include <string>

namespace vigil {

// User + system CPU seconds this process has used.
double process_cpu_seconds();
// Threads in this process (from /proc/self/status); -1 if unknown.
int process_thread_count();
// Resident memory in MiB (VmRSS from /proc/self/status); -1 if unknown.
double process_rss_mb();
// "2 cores, Intel(R) Xeon(R) ..." from /proc/cpuinfo.
std::string machine_description();
int hardware_cores();

}  // namespace vigil
