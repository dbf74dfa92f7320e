// Model weights: matrices are zero-copy views into the mapped GGUF file;
// 1-D tensors (norms, biases, rope factors) are converted to f32 copies at
// load, whatever their stored type.
#pragma once

#include "core/status.h"
#include "gguf/reader.h"
#include "kernels/matmul.h"
#include "model/config.h"

#include <vector>

namespace tandem::model {

struct LayerWeights {
  std::vector<float> attn_norm;          // [dim]
  kernels::Matrix wq, wk, wv, wo;        // [q_dim x dim], [kv_dim x dim] x2, [dim x q_dim]
  std::vector<float> bq, bk, bv;         // qwen2, gpt-oss: [q_dim], [kv_dim], [kv_dim]
  std::vector<float> bo;                 // gpt-oss: [dim]
  std::vector<float> sinks;              // gpt-oss: [n_heads] softmax sink logits
  std::vector<float> q_norm, k_norm;     // qwen3, gemma3: [head_dim]
  std::vector<float> post_attn_norm;     // gemma3: [dim]
  std::vector<float> ffn_norm;           // [dim]
  kernels::Matrix w_gate, w_up, w_down;  // [ffn x dim] x2, [dim x ffn]; empty with experts
  // Mixture of experts: the router [n_experts x dim] and each expert's
  // matrices, views into the 3-D tensors (expert e at e x its size).
  kernels::Matrix router;
  std::vector<kernels::Matrix> exp_gate, exp_up, exp_down;  // [expert_ffn x dim] x2, [dim x expert_ffn]
  // gpt-oss: router [n_experts] and expert biases [n_experts][expert_ffn] x2, [n_experts][dim].
  std::vector<float> router_bias, exp_gate_bias, exp_up_bias, exp_down_bias;
  std::vector<float> post_ffn_norm;  // gemma3: [dim]
};

struct Weights {
  kernels::Matrix token_embd;       // [vocab x dim]
  kernels::Matrix output;           // [vocab x dim]; the embedding when tied
  std::vector<float> output_norm;   // [dim]
  std::vector<float> rope_factors;  // llama 3 rope scaling, [n_rot / 2] or empty
  std::vector<LayerWeights> layers;
};

// Checks every tensor's presence, shape and type; errors name the tensor.
// Sets config->vocab from the embedding.
Result<Weights> load_weights(const gguf::GgufFile& file, ModelConfig* config);

}  // namespace tandem::model
