// Intel AMX (Advanced Matrix Extensions) for the batched int8 matmuls:
// whether this process may use the tile unit, and the process-wide switch.
//
// amx_available() is true when the CPU reports AMX-TILE and AMX-INT8
// (CPUID leaf 7, EDX bits 24 and 25), the OS enabled tile state in XCR0
// (bits 17 and 18) and Linux granted this process the tile data feature
// (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA); without it the
// first tile instruction raises SIGILL). The check runs once per process;
// whatever is missing, the kernels silently keep their AVX paths.
//
// TANDEM_NO_AMX=1 in the environment (any value but "0") disables AMX at
// start-up, for A/B measurements or to rule it out.
//
// AMX never changes results: the AMX kernels produce the same integer
// block sums and then the same f32 operations, in the same order, as the
// AVX-512 VNNI kernels, so outputs are bit-identical whichever path a
// batch size takes (tests/kernels/matmul_amx_test.cpp).
#pragma once

#include "gguf/tensor_type.h"

#include <cstdint>

namespace tandem::kernels {

enum class AmxMode {
  kOff,     // never (no AMX, or TANDEM_NO_AMX)
  kAuto,    // for batches of at least amx_min_rows(type) rows (the default)
  kAlways,  // for every batch size (tests: bit-identity at M = 1..35)
};

// CPU, OS and permission all allow tile instructions in this process.
bool amx_available();
// amx_available() and the CPU also has AMX-BF16 and AVX512-BF16 (attention).
bool amx_bf16_available();

// The current mode; kOff when AMX is not available.
AmxMode amx_mode();
// Changes the mode for the whole process (ignored without AMX). Not for
// use while matmuls run on other threads.
void set_amx_mode(AmxMode mode);

// Smallest batch (activation rows) for which the AMX path of TYPE pays off
// in kAuto mode (measured, docs/BENCHMARKS.md); 0 when TYPE has none.
int64_t amx_min_rows(gguf::TensorType type);

// "on", "off (TANDEM_NO_AMX)", "off" (set_amx_mode) or "not available":
// for start-up summaries and benchmark headers.
const char* amx_status();

// True when a matmul of M activation rows of TYPE weights should take the
// AMX path (the caller still checks that TYPE has one).
bool amx_use(gguf::TensorType type, int64_t m);

}  // namespace tandem::kernels
