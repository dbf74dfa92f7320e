// Shapes and metadata of real model families for `tandem synth`: exact
// tensor names, shapes and GGUF keys as llama.cpp's converter writes them,
// so a synthetic file loads and runs like the real model.
#pragma once

#include "core/status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace tandem::model {

struct ModelShape {
  std::string preset;        // "qwen3-0.6b"
  std::string architecture;  // GGUF general.architecture: llama, qwen2, qwen3
  std::string name;          // general.name
  uint32_t n_layers = 0;
  uint32_t dim = 0;  // embedding_length
  uint32_t n_heads = 0;
  uint32_t n_kv_heads = 0;
  uint32_t head_dim = 0;  // key_length = value_length
  uint32_t ffn_dim = 0;
  uint32_t vocab = 0;  // embedding rows (>= tokenizer size)
  uint32_t ctx = 0;
  float rms_eps = 1e-6f;
  float rope_base = 10000.f;
  bool tied_embeddings = true;
  bool qkv_bias = false;        // qwen2
  bool qk_norm = false;         // qwen3, gemma3
  bool post_norms = false;      // gemma3: post-attention and post-FFN norms
  uint32_t sliding_window = 0;  // gemma3
  // Llama 3 rope scaling (written as the rope_freqs.weight tensor).
  float rope_scale_factor = 0, rope_low_freq_factor = 0, rope_high_freq_factor = 0;
  uint32_t rope_original_ctx = 0;
  // Mixture of experts (qwen3moe, gpt-oss): 0 experts for a dense FFN.
  uint32_t n_experts = 0, n_experts_used = 0, expert_ffn_dim = 0;
  // gpt-oss: output bias, attention sinks, router and expert biases, YaRN,
  // experts stored MXFP4 whatever the other matrices' type.
  bool gpt_oss = false;
  float yarn_factor = 0;
  uint32_t yarn_original_ctx = 0;
};

// Overrides for small test models; 0 keeps the preset's value.
struct ShapeOverrides {
  uint32_t n_layers = 0, dim = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, ffn_dim = 0, ctx = 0, vocab = 0;
  uint32_t n_experts = 0, n_experts_used = 0, expert_ffn_dim = 0;
};

// Known presets: qwen3-0.6b, qwen2.5-0.5b, llama-3.2-1b, gemma3-1b,
// qwen3-30b-a3b, qwen3-coder-30b-a3b, gpt-oss-20b.
std::vector<std::string> preset_names();
Result<ModelShape> make_shape(const std::string& preset, const ShapeOverrides& overrides);

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> dims;                                           // GGML order: dims[0] contiguous
  enum class Init { kMatrix, kNorm, kBias, kRopeFreqs, kRouter } init;  // kRouter: a matrix stored f32
  bool mxfp4 = false;  // gpt-oss experts: MXFP4 whatever the requested type
};

// Every tensor of the model, in file order.
std::vector<TensorSpec> tensor_specs(const ModelShape& shape);

// Llama 3 rope frequency factors (head_dim / 2 values).

}  // namespace tandem::model
