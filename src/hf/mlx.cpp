#include "hf/mlx.h"

#include "core/fp16.h"
#include "hf/nibbles.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace tandem::hf {
namespace {

using json = nlohmann::json;

bool is_float(Dtype d) { return d == Dtype::kF32 || d == Dtype::kF16 || d == Dtype::kBF16; }

}  // namespace

Result<MlxQuant> mlx_quant_of(const json& cfg, const std::string& module) {
  const json* q = nullptr;
  for (const char* key : {"quantization", "quantization_config"}) {
    if (cfg.contains(key) && cfg[key].is_object()) {
      q = &cfg[key];
      break;
    }
  }
  if (q == nullptr) return MlxQuant{};
  const json* entry = q;
  if (q->contains(module)) {
    if ((*q)[module].is_boolean() && !(*q)[module].get<bool>()) return MlxQuant{};  // left unquantized
    if ((*q)[module].is_object()) entry = &(*q)[module];
  }
  if (entry->contains("mode") && entry->value("mode", "affine") != "affine") {
    return Status::errorf("{}: quantization mode '{}' is not supported (MLX affine only)", module,
                          entry->value("mode", ""));
  }
  const auto bits = entry->find("bits"), group = entry->find("group_size");
  if (bits == entry->end() || group == entry->end() || !bits->is_number_integer() || !group->is_number_integer()) {
    return Status::errorf("{}: quantization without integer \"bits\" and \"group_size\"", module);
  }
  MlxQuant out{bits->get<int>(), group->get<int>()};
  if (out.bits != 4 && out.bits != 8) {
    return Status::errorf("{}: {}-bit MLX quantization is not supported (4 and 8)", module, out.bits);
  }
  if (out.group != 32 && out.group != 64 && out.group != 128) {
    return Status::errorf("{}: MLX group size {} is not supported (32, 64, 128)", module, out.group);
  }
  return out;
}

Status check_mlx_matrix(MlxMatrix* m) {
  const StTensor& w = *m->weight;
  if (w.dtype != Dtype::kU32 || w.shape.size() < 2 || w.shape.size() > 3) {
    return Status::errorf("tensor '{}' is {} {}, not MLX-packed U32 [(experts,) out, in * bits / 32]", w.name,
                          dtype_name(w.dtype), w.shape_string());
  }
  const int per_word = 32 / m->quant.bits;
  m->rows = 1;
  for (size_t d = 0; d + 1 < w.shape.size(); ++d) m->rows *= static_cast<int64_t>(w.shape[d]);
  m->cols = static_cast<int64_t>(w.shape.back()) * per_word;
  if (m->rows == 0 || m->cols == 0) return Status::errorf("tensor '{}' {} is empty", w.name, w.shape_string());
  std::vector<uint64_t> want(w.shape.begin(), w.shape.end() - 1);
  want.push_back(static_cast<uint64_t>(m->cols / m->quant.group));
  for (const StTensor* t : {m->scales, m->biases}) {
    if (!is_float(t->dtype) || t->shape != want || m->cols % m->quant.group != 0) {
      StTensor shape_of_want;
      shape_of_want.shape = want;
      return Status::errorf("tensor '{}' is {} {}: {}-bit groups of {} over {} need a float {}", t->name,
                            dtype_name(t->dtype), t->shape_string(), m->quant.bits, m->quant.group, w.name,
                            shape_of_want.shape_string());
    }
  }
  return {};
}

gguf::TensorType mlx_block_type(const MlxQuant& q) { return q.bits == 4 ? gguf::TensorType::Q4_0 : gguf::TensorType::Q8_0; }

int64_t mlx_convert_row(const MlxMatrix& m, int64_t r, uint8_t* blocks, float* offsets, int64_t stride) {
  const int64_t groups = m.cols / m.quant.group;
  const bool eight = m.quant.bits == 8;
  const size_t block_bytes = eight ? 34 : 18, packed_block = eight ? 32 : 16;  // bytes of 32 codes
  // The packed row: byte k holds code k (8-bit), or codes 2k (low nibble) and 2k + 1 (4-bit).
  const uint8_t* packed = m.weight->data.data() + static_cast<size_t>(r) * static_cast<size_t>(m.cols / 32) * packed_block;
  int64_t inexact = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const float scale = element_f32(*m.scales, static_cast<uint64_t>(r * groups + g));
    const float bias = element_f32(*m.biases, static_cast<uint64_t>(r * groups + g));
    offsets[g * stride] = bias + (eight ? 128.0f : 8.0f) * scale;
    const uint16_t d = f32_to_f16(scale);
    inexact += f16_to_f32(d) != scale;
    for (int64_t b = g * m.quant.group / 32; b < (g + 1) * m.quant.group / 32; ++b) {
      uint8_t* block = blocks + static_cast<size_t>(b) * block_bytes;
      const uint8_t* in = packed + static_cast<size_t>(b) * packed_block;
      std::memcpy(block, &d, 2);
      if (eight) {
        for (int j = 0; j < 32; ++j) block[2 + j] = in[j] ^ 0x80;  // q - 128 as int8
        continue;
      }
      pairs_to_ggml_nibbles(in, block + 2);
    }
  }
  return inexact;
}

void mlx_quantize_row(const float* w, int64_t cols, const MlxQuant& q, uint32_t* packed, uint16_t* scales_bf16,
                      uint16_t* biases_bf16) {
  const int per_word = 32 / q.bits;
  const float max_code = static_cast<float>((1 << q.bits) - 1);
  std::fill(packed, packed + cols / per_word, 0u);
  for (int64_t g = 0; g < cols / q.group; ++g) {
    const float* x = w + g * q.group;
    const auto [lo, hi] = std::minmax_element(x, x + q.group);
    const uint16_t s = f32_to_bf16(std::max(*hi - *lo, 1e-7f) / max_code), b = f32_to_bf16(*lo);
    scales_bf16[g] = s;
    biases_bf16[g] = b;
    const float scale = bf16_to_f32(s), bias = bf16_to_f32(b);
    for (int64_t j = 0; j < q.group; ++j) {
      const int64_t i = g * q.group + j;
      const auto c = static_cast<uint32_t>(std::clamp(std::nearbyint((x[j] - bias) / scale), 0.0f, max_code));
      packed[i / per_word] |= c << ((i % per_word) * q.bits);
    }
  }
}

}  // namespace tandem::hf
