// Attention of an f16 KV cache on the AMX tile unit (attention_amx.cpp).
// attention() takes this path for every call it fits while it is on, so a
// position's result never depends on how many queries shared its call.
#pragma once

#include "kernels/attention.h"

#include <cstddef>

namespace tandem::kernels::detail {

// f16 attention runs on the tile unit: the CPU has AMX-BF16 and
// AVX512-BF16, AMX is on (amx.h), and the path is enabled. Its results
// differ (within the rounding bound in attention_test.cpp) from the f32 FMA
// path's, so the model fingerprint includes it (attention_path_name()).
//
// Off by default: prefill and cached turns run 1.3-1.6x faster on it, but
// a decode step must convert every block it reads to bf16 tiles and runs
// at half the f32 path's speed (docs/BENCHMARKS.md, "AMX attention").
// TANDEM_AMX_ATTENTION=1 in the environment enables it at start-up.
bool attention_amx_on();
// Tests: enables or disables the path for the whole process (not while
// attention runs on other threads).
void set_attention_amx(bool on);

// Shapes the kernel handles: f16 KV, head_dim and block_tokens multiples of 32.
bool attention_amx_fits(const AttentionArgs& a);

// Scratch (floats) for N_QUERIES x GROUP rows of one KV head.
size_t attention_amx_scratch_floats(int head_dim, int n_queries, int group);

void attention_amx(const AttentionArgs& a, int head_begin, int head_end);

}  // namespace tandem::kernels::detail
