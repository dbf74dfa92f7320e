// Vector dot products, dispatched at run time to the best SIMD target of
// the CPU (Highway). The summation order depends only on N and the target.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tandem::kernels {

float dot_f32(const float* a, const float* b, size_t n);
// Attention scores of one query against the T keys of a block stored
// transposed, K_T[d * T + t]: OUT[t] = sum_d Q[d] * K_T[d][t], summed over d
// in order, 8 keys per vector (no horizontal sums).
void scores_block_f32(const float* q, const float* k_t, size_t d, size_t t, float* out);
// OUT[d] += sum over t in [T0, T1] of P[t] * V[t * D + d], t in order,
// accumulated in registers per 8 dims (the same arithmetic as one
// axpy per t, without storing OUT in between).
void pv_block_f32(const float* p, const float* v, size_t t0, size_t t1, size_t d, float* out);
// The same for two queries against the same keys (each query's scores are
// bit-identical to scores_block_f32's: the pair only shares the K loads).
void scores_block2_f32(const float* q0, const float* q1, const float* k_t, size_t d, size_t t, float* out0,
                       float* out1);
// pv_block_f32 for two queries over the same key range (bit-identical per query).
void pv_block2_f32(const float* p0, const float* p1, const float* v, size_t t0, size_t t1, size_t d, float* out0,
                   float* out1);
// S[t] *= SCALE for t in [T0, T1]; returns their max.
float scale_max_f32(float* s, size_t t0, size_t t1, float scale);
// S[t] = exp(S[t] - M) for t in [T0, T1] (vector exp, ~1 ulp); returns their
// sum in an order fixed by T0 and T1.
float exp_sum_f32(float* s, size_t t0, size_t t1, float m);
// OUT[i] = half B[i] as f32.
void f16_to_f32_row(const uint16_t* b, float* out, size_t n);
// Name of the SIMD target chosen for this CPU ("AVX2", "AVX3", "SSE4", ...).
const char* simd_target_name();

}  // namespace tandem::kernels
