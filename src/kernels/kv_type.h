// KV cache element types and the byte layout of one KV head inside a block:
// the one place that defines them (the pool allocates with it, attention and
// its reference twin read with it, the CLI parses names with it).
//
// Per layer a block holds K then V, each [kv_head]{...} with T = block
// tokens, D = head_dim. f16 / f32: K[D][T], V[T][D] (K transposed, so a
// query's scores against many keys accumulate in one vector).
//
// q8_0: 8-bit values with one f16 scale per group of G consecutive head_dim
// values of one token (G = 32; G = D when the head is 8 or 16 values long,
// so a group never crosses heads). Each token's K row and V row is
// quantized on its own per KV head: its bytes depend only on that row, so
// chunked, whole and batched prefill write identical bytes. Per KV head
// (NG = D / G groups):
//
//   K: | int8 q[D][T] | f16 d[NG][T] |     key t, dim i = q[i][t] * d[i / G][t]
//   V: | int8 q[T][D] | f16 d[T][NG] |     key t, dim i = q[t][i] * d[t][i / G]
//
// so K stays transposed (int8 keys side by side) and its scales line up
// with the keys they scale. D + 2 * D / G bytes per token and head: 136
// bytes for D = 128 against 256 in f16 (53%; f32 scales would be 56%).
//
// bf16: the operand layout of the AMX tile unit (pairs side by side), so
// attention loads tiles straight from the blocks (attention_amx.cpp):
//
//   K: bf16 [D / 2][T][2]     key t, dim i at ((i / 2) * T + t) * 2 + i % 2
//   V: bf16 [T / 2][D][2]     key t, dim i at ((t / 2) * D + i) * 2 + t % 2
//
// (a row of K pairs dims 2j and 2j + 1 of T keys; a row of V pairs keys 2j
// and 2j + 1 over all dims). D and T must be even. The bytes of f16, the
// range of f32, 8 significant bits (f16 has 11).
//
// The numeric values of KvType are stable ids: the prefix cache folds them
// into its root key and the disk tier records them in its files and index
// (f32 = 1 and f16 = 2 since the disk tier's first version), so never
// renumber; 0 is no type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tandem::kernels {

enum class KvType : uint8_t { kF32 = 1, kF16 = 2, kQ8_0 = 3, kBF16 = 4 };

// The stable id of TYPE (prefix-cache keys, disk-store files).
inline uint32_t kv_type_id(KvType type) { return static_cast<uint32_t>(type); }

// "f16", "f32", "q8_0", "bf16".
const char* kv_type_name(KvType type);
// The type named NAME (as kv_type_name prints it), nullopt for anything else.
std::optional<KvType> parse_kv_type(std::string_view name);
// "f32, f16, bf16, q8_0": the accepted names, for help texts and errors.
const char* kv_type_names();

// q8_0 values per scale for heads of HEAD_DIM (32, or HEAD_DIM when it is 8
// or 16); 0 when q8_0 cannot store such heads (not a multiple of 32 and
// not 8 or 16).
int kv_q8_group(int head_dim);

// Bytes of one KV head's K (or V) in one block: D * T * 2 (f16, bf16), * 4
// (f32), D * T + 2 * (D / G) * T (q8_0); 0 when TYPE cannot store such
// heads or blocks (q8_0: kv_q8_group() is 0; bf16: D or T odd).
size_t kv_head_bytes(KvType type, int head_dim, int block_tokens);

// Element index of key T, dim I in a bf16 K (IS_K) or V head (layout above).
inline size_t kv_bf16_index(bool is_k, size_t head_dim, size_t block_tokens, size_t t, size_t i) {
  return is_k ? ((i / 2) * block_tokens + t) * 2 + i % 2 : ((t / 2) * head_dim + i) * 2 + t % 2;
}

// Scalar read of one value: dim I of token T of the K (IS_K) or V of the
// KV head whose bytes start at HEAD (kv_head_bytes() of them), dequantized.
// For references and tests; the kernels have their own vector loads.
float kv_load(KvType type, const uint8_t* head, bool is_k, int head_dim, int block_tokens, int t, int i);

}  // namespace tandem::kernels
