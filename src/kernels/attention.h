// Attention of one query token over a sequence's paged KV cache.
//
// The cache of one layer is a list of blocks; block b holds positions
// [b * block_tokens, (b + 1) * block_tokens). Inside a block, K (and V) are
// laid out [kv_head][token][head_dim]:
//
//   block b:  K: | head 0: tok 0 .. tok T-1 | head 1: ... |   (T = block_tokens)
//             V: | head 0: tok 0 .. tok T-1 | head 1: ... |
//
// Keys are visited in position order, block by block, with an online
// softmax (running max and sum), so the result for a position is the same
// however its prompt was chunked. GQA: query head h reads KV head
// h / (n_heads / n_kv_heads); nothing is copied.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tandem::kernels {

enum class KvType { kF16, kF32 };

struct AttentionArgs {
  const float* q = nullptr;  // [n_heads][head_dim]
  float* out = nullptr;      // [n_heads][head_dim]
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  float scale = 1.0f;        // applied to q.k
  int64_t pos = 0;           // position of this query; keys 0..pos are visible
  int64_t window = 0;        // sliding window (keys pos-window+1..pos), 0 = none
  const uint8_t* const* k_blocks = nullptr;  // per block: this layer's K
  const uint8_t* const* v_blocks = nullptr;  // per block: this layer's V
  int block_tokens = 32;
  KvType kv_type = KvType::kF16;
  float* scratch = nullptr;  // block_tokens floats
};

// Runs heads [head_begin, head_end).
void attention(const AttentionArgs& a, int head_begin, int head_end);

// Scalar reference twin: full softmax in double.
void attention_reference(const AttentionArgs& a);

}  // namespace tandem::kernels
