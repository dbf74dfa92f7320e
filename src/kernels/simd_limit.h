// TANDEM_SIMD=NAME caps the SIMD target the kernels dispatch to, so one
// machine can measure and test the code paths of older CPUs: on an AVX-512
// machine, TANDEM_SIMD=avx2 runs every kernel as an AVX2-only CPU would
// (AMX, which needs AVX-512, goes off with it). Names are Highway's target
// names, case-insensitive: avx3_dl (AVX-512 VNNI), avx3, avx2, sse4.
// A name the CPU is below changes nothing (the CPU's best target is lower
// already). Call before the first kernel runs.
#pragma once

#include "core/status.h"

#include <string>

namespace tandem::kernels {

// Applies TANDEM_SIMD if set; an unknown name is an error naming the choices.
Status limit_simd_from_env();

// Caps the targets at NAME (as above).
Status limit_simd(const std::string& name);

}  // namespace tandem::kernels
