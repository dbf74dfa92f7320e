#include "kernels/simd_limit.h"

#include "kernels/amx.h"

#include <hwy/targets.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace tandem::kernels {
namespace {

// The x86 targets from best to worst (Highway: a better target has a lower bit).
// (Highway 1.0.3, Debian 12's, has no ZEN4 / SPR targets.)
constexpr int64_t kX86Targets[] = {HWY_AVX3_DL, HWY_AVX3, HWY_AVX2, HWY_SSE4};

std::string lower(std::string s) {
  std::ranges::transform(s, s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

Status limit_simd(const std::string& name) {
  std::string choices;
  for (int64_t t : kX86Targets) {
    const std::string tn = lower(hwy::TargetName(t));
    if (tn == lower(name)) {
      // Every target better than T (lower bits) goes.
      hwy::DisableTargets(t - 1);
      if (t != HWY_AVX3_DL) set_amx_mode(AmxMode::kOff);  // the AMX paths run from the AVX3_DL target
      return {};
    }
    choices += (choices.empty() ? "" : ", ") + tn;
  }
  return Status::errorf("TANDEM_SIMD={}: unknown SIMD target (one of {})", name, choices);
}

Status limit_simd_from_env() {
  const char* v = std::getenv("TANDEM_SIMD");
  if (v == nullptr || *v == '\0') return {};
  return limit_simd(v);
}

}  // namespace tandem::kernels
