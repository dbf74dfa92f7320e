// On/off switches from the environment (A/B runs: TANDEM_NO_AMX,
// TANDEM_MMAP_WEIGHTS, ...).
#pragma once

#include <cstdlib>
#include <cstring>

namespace tandem {

// True when NAME is set to anything but "" or "0".
inline bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

}  // namespace tandem
