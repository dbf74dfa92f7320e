// 32 four-bit codes in 16 bytes, in the two orders the formats use:
//   pairs (MLX, Hugging Face MXFP4): byte k holds codes 2k (low nibble) and 2k + 1 (high);
//   GGML  (Q4_0, MXFP4 blocks):      byte j holds codes j (low nibble) and j + 16 (high).
#pragma once

#include <cstdint>

namespace tandem::hf {

inline void pairs_to_ggml_nibbles(const uint8_t in[16], uint8_t out[16]) {
  uint8_t codes[32];
  for (int k = 0; k < 16; ++k) {
    codes[2 * k] = in[k] & 0x0f;
    codes[2 * k + 1] = in[k] >> 4;
  }
  for (int j = 0; j < 16; ++j) out[j] = static_cast<uint8_t>(codes[j] | (codes[j + 16] << 4));
}

inline void ggml_to_pairs_nibbles(const uint8_t in[16], uint8_t out[16]) {
  uint8_t codes[32];
  for (int j = 0; j < 16; ++j) {
    codes[j] = in[j] & 0x0f;
    codes[j + 16] = in[j] >> 4;
  }
  for (int k = 0; k < 16; ++k) out[k] = static_cast<uint8_t>(codes[2 * k] | (codes[2 * k + 1] << 4));
}

}  // namespace tandem::hf
