// Attention of one query token over a sequence's paged KV cache.
//
// The cache of one layer is a list of blocks; block b holds positions
// [b * block_tokens, (b + 1) * block_tokens). Inside a block, K is stored
// transposed, [kv_head][head_dim][token], so one query's scores against 8
// keys accumulate in one vector; V is [kv_head][token][head_dim]:
//
//   block b:  K: | head 0: dim 0: tok 0..T-1 | dim 1: ... | head 1: ... |   (T = block_tokens)
//             V: | head 0: tok 0: dim 0..D-1 | tok 1: ... | head 1: ... |
//
// Keys are visited in position order, block by block, with an online
// softmax (running max and sum), so the result for a position is the same
// however its prompt was chunked. GQA: query head h reads KV head
// h / (n_heads / n_kv_heads); nothing is copied.
//
// A call serves N_QUERIES consecutive positions of one sequence (a prefill
// chunk, or one decode token): each block's K and V rows are converted to
// f32 once for all of them, and each query's arithmetic is the same
// whatever the group, so chunking never changes a result.
//
// KV types (layouts in kv_type.h): f32; f16; bf16 (on the AMX tile unit
// where the CPU has one, attention_amx.h; else through f32 scratch); q8_0, int8 values with an f16
// scale per group of 32 dims of one token, read straight from the blocks
// (int8 times scale in registers, or into the same per-block f32 scratch as
// f16 when many queries share a block). An int8 times an f16 is exact in
// f32, so a q8_0 cache gives bit for bit what an f32 cache holding its
// dequantized values gives, on every path.
#pragma once

#include "kernels/kv_type.h"

#include <cstddef>
#include <cstdint>

namespace tandem::kernels {

struct AttentionArgs {
  const float* q = nullptr;              // query i: q + i * q_stride, [n_heads][head_dim]
  float* out = nullptr;                  // query i: out + i * out_stride, [n_heads][head_dim]
  int n_queries = 1;                     // consecutive positions pos, pos + 1, ...
  int64_t q_stride = 0, out_stride = 0;  // floats
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  float scale = 1.0f;                        // applied to q.k
  int64_t pos = 0;                           // position of the first query; query i sees keys 0..pos+i
  int64_t window = 0;                        // sliding window (keys pos-window+1..pos), 0 = none
  const uint8_t* const* k_blocks = nullptr;  // per block: this layer's K, [kv_head] of kv_head_bytes()
  const uint8_t* const* v_blocks = nullptr;  // per block: this layer's V, likewise
  int block_tokens = 32;
  KvType kv_type = KvType::kF16;
  // gpt-oss: per query head, a learned logit that joins every softmax
  // denominator (a key with no value); null for none. Such calls take the
  // f32 path, never the tile unit.
  const float* sinks = nullptr;
  float* scratch = nullptr;  // attention_scratch_floats() floats
};

// Scratch a call needs: converted K and V of one block, its q8_0 V scales,
// the scores of one block for six items, and each query's running max and sum.
// GROUP: query heads per KV head that one call may serve together.
size_t attention_scratch_floats(int block_tokens, int head_dim, int n_queries, int group = 1);

// Runs heads [head_begin, head_end). Heads of one KV head in the range share
// its K/V blocks (converted to f32 once per block when more than six
// queries x heads share them, else read as f16 in registers) and go through
// the kernels in tiles of up to six (query, head) items sharing every K and
// V load; the scratch must be sized for that many heads per KV head.
void attention(const AttentionArgs& a, int head_begin, int head_end);

// Which arithmetic f16 and bf16 caches get ("amx-bf16" when the tile unit
// runs them, attention_amx.h; else "f32"), for the model fingerprint: KV
// computed one way is never mixed with the other.
const char* attention_path_name();

// The KV type a cache should default to for heads of HEAD_DIM in blocks of
// BLOCK_TOKENS: bf16 where its attention runs on the AMX tile unit
// (attention_amx.h: 1.6-2x faster prefill and cached turns, the same
// decode speed), else f16.
KvType auto_kv_type(int head_dim, int block_tokens);

// True when a cache of TYPE with heads of HEAD_DIM in blocks of BLOCK_TOKENS
// has its attention on the AMX tile unit (else the f32 SIMD path).
bool attention_runs_on_tiles(KvType type, int head_dim, int block_tokens);

// Scalar reference twin: K and V dequantized (kv_load), full softmax in
// double (one query: n_queries is ignored).
void attention_reference(const AttentionArgs& a);

// The per-block building blocks attention() inlines, exported for the tests.
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

}  // namespace tandem::kernels
