// The KV cache's memory budget: an explicit size in MiB, or a fraction of
// the memory available on this machine (default 20%, the share users of
// memory-aware caches expect), read from /proc/meminfo.
#pragma once

#include "core/status.h"

#include <cstddef>
#include <string>

namespace tandem::engine {

// MemAvailable from MEMINFO_TEXT (the contents of /proc/meminfo), in bytes.
Result<size_t> parse_mem_available(const std::string& meminfo_text);

// MB > 0 wins; else PERCENT (0 < percent <= 0.95, a fraction) of the
// available memory. Errors name the bad value.
// MemAvailable of this machine now, in bytes.
Result<size_t> available_memory_bytes(const std::string& meminfo_path = "/proc/meminfo");

Result<size_t> kv_budget_bytes(double mb, double fraction, const std::string& meminfo_path = "/proc/meminfo");

}  // namespace tandem::engine
