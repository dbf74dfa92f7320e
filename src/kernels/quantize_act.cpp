// Scalar twin of the activation quantization in matmul-inl.h (same IEEE
// operations in the same order), for tests.
#include "kernels/quantize_act.h"

#include <cmath>

namespace tandem::kernels {

int act_block_elems(gguf::TensorType type) {
  switch (type) {
    case gguf::TensorType::Q8_0:
    case gguf::TensorType::Q4_0:
    case gguf::TensorType::MXFP4: return 32;
    case gguf::TensorType::Q4_K:
    case gguf::TensorType::Q5_K:
    case gguf::TensorType::Q6_K: return 256;
    default: return 0;
  }
}

void act_q8_dequantized(const float* x, int64_t k, int block, float* out) {
  for (int64_t b0 = 0; b0 + block <= k; b0 += block) {
    float amax = 0.0f;
    for (int i = 0; i < block; ++i) amax = std::fmax(amax, std::fabs(x[b0 + i]));
    const bool ok = amax >= 1e-30f;
    const float d = ok ? amax / 127.0f : 0.0f;
    const float id = ok ? 127.0f / amax : 0.0f;
    for (int i = 0; i < block; ++i) {
      const float scaled = x[b0 + i] * id;
      out[b0 + i] = d * std::nearbyint(scaled);
    }
  }
}

}  // namespace tandem::kernels
