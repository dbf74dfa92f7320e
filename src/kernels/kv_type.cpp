#include "kernels/kv_type.h"

#include "core/fp16.h"

#include <cstring>

namespace tandem::kernels {

const char* kv_type_name(KvType type) {
  switch (type) {
    case KvType::kF16: return "f16";
    case KvType::kF32: return "f32";
    case KvType::kQ8_0: return "q8_0";
    case KvType::kBF16: return "bf16";
  }
  return "?";
}

std::optional<KvType> parse_kv_type(std::string_view name) {
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kBF16, KvType::kQ8_0}) {
    if (name == kv_type_name(t)) return t;
  }
  return std::nullopt;
}

const char* kv_type_names() { return "f32, f16, bf16, q8_0"; }

int kv_q8_group(int head_dim) {
  if (head_dim > 0 && head_dim % 32 == 0) return 32;
  // Heads shorter than a group (tiny test models): one scale per head row.
  if (head_dim == 8 || head_dim == 16) return head_dim;
  return 0;
}

size_t kv_head_bytes(KvType type, int head_dim, int block_tokens) {
  const size_t d = static_cast<size_t>(head_dim), t = static_cast<size_t>(block_tokens);
  switch (type) {
    case KvType::kF16: return d * t * 2;
    case KvType::kF32: return d * t * 4;
    case KvType::kQ8_0: {
      const int g = kv_q8_group(head_dim);
      return g == 0 ? 0 : d * t + 2 * (d / static_cast<size_t>(g)) * t;
    }
    case KvType::kBF16: return d % 2 == 0 && t % 2 == 0 ? d * t * 2 : 0;
  }
  return 0;
}

float kv_load(KvType type, const uint8_t* head, bool is_k, int head_dim, int block_tokens, int t, int i) {
  const size_t d = static_cast<size_t>(head_dim), bt = static_cast<size_t>(block_tokens);
  const size_t ti = static_cast<size_t>(t), ii = static_cast<size_t>(i);
  // K is [dim][token], V [token][dim] (scales likewise: [group][token], [token][group]).
  const size_t idx = is_k ? ii * bt + ti : ti * d + ii;
  switch (type) {
    case KvType::kF32: {
      float f;
      std::memcpy(&f, head + idx * 4, 4);
      return f;
    }
    case KvType::kF16: {
      uint16_t h;
      std::memcpy(&h, head + idx * 2, 2);
      return f16_to_f32(h);
    }
    case KvType::kQ8_0: {
      const size_t g = static_cast<size_t>(kv_q8_group(head_dim)), ng = d / g;
      const size_t sidx = is_k ? (ii / g) * bt + ti : ti * ng + ii / g;
      uint16_t h;
      std::memcpy(&h, head + d * bt + sidx * 2, 2);
      return static_cast<float>(static_cast<int8_t>(head[idx])) * f16_to_f32(h);
    }
    case KvType::kBF16: {
      uint16_t h;
      std::memcpy(&h, head + kv_bf16_index(is_k, d, bt, ti, ii) * 2, 2);
      return bf16_to_f32(h);
    }
  }
  return 0.0f;
}

}  // namespace tandem::kernels
