// Model hyperparameters and per-family conventions, read from GGUF metadata.
// The conventions GGUF files do not spell out (docs/inference.md)
// are decided here, once, by architecture.
#pragma once

#include "core/status.h"
#include "gguf/reader.h"
#include "kernels/ops.h"

#include <cstdint>
#include <string>

namespace tandem::model {

enum class Arch { kLlama, kQwen2, kQwen3, kGemma3, kQwen3Moe, kGptOss };

// Experts per token tandem runs (real models use 4-10; the loader refuses more).
constexpr int kMaxExpertsUsed = 64;

struct ModelConfig {
  Arch arch = Arch::kLlama;
  std::string arch_name;  // general.architecture
  int n_layers = 0;
  int dim = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;  // key_length (qwen3, gemma3) or dim / heads
  int ffn_dim = 0;
  int vocab = 0;
  int64_t ctx = 0;        // context length used (metadata, or the --ctx override)
  int64_t train_ctx = 0;  // context length in the metadata
  float rms_eps = 1e-5f;

  // RoPE.
  int n_rot = 0;  // rotated dimensions per head (rope.dimension_count, default head_dim)
  float rope_base = 10000.0f;
  float rope_base_local = 10000.0f;  // gemma3 sliding layers
  float rope_linear_scale = 1.0f;    // positions divided by this (linear scaling)
  // YaRN scaling (gpt-oss): FACTOR > 0 turns it on (kernels::YarnParams).
  float yarn_factor = 0.0f;
  int64_t yarn_original_ctx = 0;
  kernels::RopePairing rope_pairing = kernels::RopePairing::kAdjacent;

  // Family features.
  bool qkv_bias = false;       // qwen2
  bool qk_norm = false;        // qwen3, gemma3
  bool post_norms = false;     // gemma3: norms on the attention and FFN outputs
  bool gelu = false;           // gemma3: GELU (tanh) gate, else SiLU
  float embed_scale = 1.0f;    // gemma3: sqrt(dim)
  float attn_scale = 0.0f;     // q.k scale: 1/sqrt(head_dim)
  int64_t sliding_window = 0;  // gemma3: window of sliding layers (0: none)
  int sliding_pattern = 0;     // gemma3: layer il slides when il % pattern < pattern - 1
  bool local_rope = false;     // gemma3: sliding layers use rope_base_local without scaling

  // gpt-oss.
  bool attn_out_bias = false;  // attn_output.bias
  bool attn_sinks = false;     // a learned logit per head in every softmax denominator
  bool moe_bias = false;       // router and expert biases
  bool swiglu_oai = false;     // clamped SwiGLU: kernels::swiglu_oai (else SiLU-gated)

  // Mixture of experts (qwen3moe): every layer's FFN is N_EXPERTS SwiGLU
  // experts of EXPERT_FFN_DIM; each token takes the N_EXPERTS_USED with the
  // largest router probabilities, weighted by those renormalized to sum 1.
  int n_experts = 0;       // 0: a dense FFN
  int n_experts_used = 0;  // at most kMaxExpertsUsed
  int expert_ffn_dim = 0;

  bool moe() const { return n_experts > 0; }
  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  bool is_sliding(int layer) const {
    return sliding_window > 0 && sliding_pattern > 0 && layer % sliding_pattern < sliding_pattern - 1;
  }
};

// CTX_OVERRIDE: 0 keeps the metadata's context length.
Result<ModelConfig> read_config(const gguf::GgufFile& file, int64_t ctx_override = 0);

std::string describe(const ModelConfig& c);

}  // namespace tandem::model
