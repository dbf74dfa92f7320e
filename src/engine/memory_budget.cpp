#include "engine/memory_budget.h"

#include "core/mapped_file.h"

#include <fstream>
#include <sstream>

namespace tandem::engine {

Result<size_t> parse_mem_available(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream fields(line.substr(13));
    size_t kb = 0;
    std::string unit;
    if (!(fields >> kb >> unit) || unit != "kB") return Status::errorf("cannot parse '{}'", line);
    return kb * 1024;
  }
  return Status::error("MemAvailable is missing from /proc/meminfo");
}

Result<size_t> available_memory_bytes(const std::string& meminfo_path) {
  std::ifstream f(meminfo_path);
  if (!f) return Status::errorf("cannot read {}", meminfo_path);
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_mem_available(ss.str());
}

Result<size_t> kv_budget_bytes(double mb, double fraction, const std::string& meminfo_path) {
  if (mb < 0) return Status::errorf("--kv-memory-mb must be positive, got {}", mb);
  if (mb > 0) return static_cast<size_t>(mb * 1024 * 1024);
  if (!(fraction > 0) || fraction > 0.95) {
    return Status::errorf("--kv-memory-percent must be a fraction in (0, 0.95], got {}", fraction);
  }
  auto avail = available_memory_bytes(meminfo_path);
  if (!avail) return Status::errorf("{}: give --kv-memory-mb", avail.message());
  return static_cast<size_t>(static_cast<double>(*avail) * fraction);
}

}  // namespace tandem::engine
