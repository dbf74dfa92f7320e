// Attention of an f16 or bf16 KV cache on the AMX tile unit (attention_amx.cpp).
// attention() takes this path for every call it fits while it is on, so a
// position's result never depends on how many queries shared its call.
#pragma once

#include "kernels/attention.h"

#include <cstddef>

namespace tandem::kernels::detail {

// Attention of a TYPE cache runs on the tile unit: the CPU has AMX-BF16
// and AVX512-BF16, AMX is on (amx.h), and the path is enabled for TYPE.
// Its results differ (within the rounding bound in attention_test.cpp)
// from the f32 FMA path's, so the model fingerprint includes it
// (attention_path_name()).
//
// bf16 caches: on by default. Their blocks are stored in the tiles' pair
// layout (kv_type.h): tiles load straight from the cache, no conversion.
// f16 caches: off by default. Prefill and cached turns run 1.3-1.6x faster
// on it, but a decode step must convert every block it reads to bf16 tiles
// and runs at half the f32 path's speed (docs/BENCHMARKS.md, "AMX
// attention"). TANDEM_AMX_ATTENTION=1 in the environment puts f16 on tiles
// too, =0 keeps both types off them.
bool attention_amx_on(KvType type);
// Tests: enables or disables the path for both types, for the whole
// process (not while attention runs on other threads).
void set_attention_amx(bool on);
// Tests: back to the setting the environment gave at start-up.
void reset_attention_amx();

// Shapes the kernel handles: f16 or bf16 KV, head_dim and block_tokens multiples of 32.
bool attention_amx_fits(const AttentionArgs& a);

// Scratch (floats) for N_QUERIES x GROUP rows of one KV head.
size_t attention_amx_scratch_floats(int head_dim, int n_queries, int group);

void attention_amx(const AttentionArgs& a, int head_begin, int head_end);

}  // namespace tandem::kernels::detail
