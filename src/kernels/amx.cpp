// AMX detection and the process-wide mode (amx.h).
#include "kernels/amx.h"

#include "core/env.h"

#include <atomic>

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define TANDEM_AMX_PLATFORM 1
#else
#define TANDEM_AMX_PLATFORM 0
#endif

namespace tandem::kernels {
namespace {

#if TANDEM_AMX_PLATFORM
constexpr unsigned kCpuidOsxsave = 1u << 27;    // leaf 1 ECX: XGETBV usable
constexpr unsigned kCpuidAmxTile = 1u << 24;    // leaf 7.0 EDX
constexpr unsigned kCpuidAmxInt8 = 1u << 25;    // leaf 7.0 EDX
constexpr unsigned kCpuidAmxBf16 = 1u << 22;    // leaf 7.0 EDX
constexpr unsigned kCpuidAvx512Bf16 = 1u << 5;  // leaf 7.1 EAX
constexpr uint64_t kXcr0Tile = 3ull << 17;      // XTILECFG | XTILEDATA
constexpr long kArchReqXcompPerm = 0x1023;      // arch_prctl code (asm/prctl.h)
constexpr long kXfeatureXtiledata = 18;

uint64_t read_xcr0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

bool detect() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || (c & kCpuidOsxsave) == 0) return false;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  if ((d & kCpuidAmxTile) == 0 || (d & kCpuidAmxInt8) == 0) return false;
  if ((read_xcr0() & kXcr0Tile) != kXcr0Tile) return false;
  // Linux (5.16+) keeps tile data disabled until a process asks; the grant
  // is per process, so it covers the pool's threads too.
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

bool detect_bf16() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || (d & kCpuidAmxBf16) == 0) return false;
  return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & kCpuidAvx512Bf16) != 0;
}
#else
bool detect() { return false; }
bool detect_bf16() { return false; }
#endif

bool disabled_by_env() { return env_flag("TANDEM_NO_AMX"); }

std::atomic<AmxMode>& mode_slot() {
  static std::atomic<AmxMode> mode{amx_available() && !disabled_by_env() ? AmxMode::kAuto : AmxMode::kOff};
  return mode;
}

}  // namespace

bool amx_available() {
  static const bool available = detect();
  return available;
}

bool amx_bf16_available() {
  static const bool available = amx_available() && detect_bf16();
  return available;
}

AmxMode amx_mode() { return mode_slot().load(std::memory_order_relaxed); }

void set_amx_mode(AmxMode mode) {
  if (!amx_available()) return;
  mode_slot().store(mode, std::memory_order_relaxed);
}

const char* amx_status() {
  if (!amx_available()) return "not available";
  if (amx_mode() != AmxMode::kOff) return "on";
  return disabled_by_env() ? "off (TANDEM_NO_AMX)" : "off";
}

int64_t amx_min_rows(gguf::TensorType type) {
  // Single thread, hot weights, Qwen3-0.6B FFN shapes (1024x3072 and
  // 3072x1024): Q8_0 AMX at M = 9 (one half-empty 16-row panel) already
  // beats the VNNI kernel's second pass (254 vs 267 us). The others pay a
  // fixed cost per call to unpack every weight tile (Q4_0 to int8, the
  // K-quants to two digit planes, ~350 us for 3M weights): Q6_K wins from
  // M = 12 (458 vs 501-535 us), Q4_K from 14 (345-385 vs 416-450), Q4_0
  // from 16.
  switch (type) {
    case gguf::TensorType::Q8_0: return 9;
    case gguf::TensorType::Q6_K: return 12;
    case gguf::TensorType::Q4_K: return 14;
    case gguf::TensorType::Q4_0: return 16;
    default: return 0;
  }
}

bool amx_use(gguf::TensorType type, int64_t m) {
  const int64_t min_rows = amx_min_rows(type);
  switch (amx_mode()) {
    case AmxMode::kAlways: return min_rows > 0;
    case AmxMode::kAuto: return min_rows > 0 && m >= min_rows;
    case AmxMode::kOff: break;
  }
  return false;
}

}  // namespace tandem::kernels
