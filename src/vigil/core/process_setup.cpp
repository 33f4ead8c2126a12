#include "vigil/core/process_setup.h"

#include <malloc.h>

#include <cstdlib>

namespace vigil {

void configure_process() {
  setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);  // an explicit setting wins
}

void release_free_memory() { malloc_trim(0); }

}  // namespace vigil
