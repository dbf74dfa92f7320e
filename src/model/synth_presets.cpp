#include "model/synth_presets.h"

#include <cmath>
#include <numbers>

namespace tandem::model {

std::vector<std::string> preset_names() {
  return {"qwen3-0.6b",    "qwen2.5-0.5b",        "llama-3.2-1b", "gemma3-1b",
          "qwen3-30b-a3b", "qwen3-coder-30b-a3b", "gpt-oss-20b"};
}

Result<ModelShape> make_shape(const std::string& preset, const ShapeOverrides& o) {
  ModelShape s;
  s.preset = preset;
  // Values from the models' config.json files on Hugging Face.
  if (preset == "qwen3-0.6b") {
    s.architecture = "qwen3";
    s.name = "Qwen3 0.6B";
    s.n_layers = 28, s.dim = 1024, s.n_heads = 16, s.n_kv_heads = 8, s.head_dim = 128, s.ffn_dim = 3072;
    s.vocab = 151936, s.ctx = 40960, s.rms_eps = 1e-6f, s.rope_base = 1000000.f;
    s.qk_norm = true;
  } else if (preset == "qwen2.5-0.5b") {
    s.architecture = "qwen2";
    s.name = "Qwen2.5 0.5B Instruct";
    s.n_layers = 24, s.dim = 896, s.n_heads = 14, s.n_kv_heads = 2, s.head_dim = 64, s.ffn_dim = 4864;
    s.vocab = 151936, s.ctx = 32768, s.rms_eps = 1e-6f, s.rope_base = 1000000.f;
    s.qkv_bias = true;
  } else if (preset == "llama-3.2-1b") {
    s.architecture = "llama";
    s.name = "Llama 3.2 1B Instruct";
    s.n_layers = 16, s.dim = 2048, s.n_heads = 32, s.n_kv_heads = 8, s.head_dim = 64, s.ffn_dim = 8192;
    s.vocab = 128256, s.ctx = 131072, s.rms_eps = 1e-5f, s.rope_base = 500000.f;
    s.rope_scale_factor = 32.f, s.rope_low_freq_factor = 1.f, s.rope_high_freq_factor = 4.f;
    s.rope_original_ctx = 8192;
  } else if (preset == "gemma3-1b") {
    s.architecture = "gemma3";
    s.name = "Gemma 3 1B";
    s.n_layers = 26, s.dim = 1152, s.n_heads = 4, s.n_kv_heads = 1, s.head_dim = 256, s.ffn_dim = 6912;
    s.vocab = 262144, s.ctx = 32768, s.rms_eps = 1e-6f, s.rope_base = 1000000.f;
    s.qk_norm = true;
    s.post_norms = true;
    s.sliding_window = 512;
  } else if (preset == "qwen3-30b-a3b" || preset == "qwen3-coder-30b-a3b") {
    const bool coder = preset == "qwen3-coder-30b-a3b";
    s.architecture = "qwen3moe";
    s.name = coder ? "Qwen3 Coder 30B A3B Instruct" : "Qwen3 30B A3B";
    s.n_layers = 48, s.dim = 2048, s.n_heads = 32, s.n_kv_heads = 4, s.head_dim = 128;
    s.ffn_dim = coder ? 5472 : 6144;  // the dense size in the metadata; every layer uses experts
    s.n_experts = 128, s.n_experts_used = 8, s.expert_ffn_dim = 768;
    s.vocab = 151936, s.ctx = coder ? 262144 : 40960, s.rms_eps = 1e-6f, s.rope_base = coder ? 10000000.f : 1000000.f;
    s.qk_norm = true;
    s.tied_embeddings = false;
  } else if (preset == "gpt-oss-20b") {
    s.architecture = "gpt-oss";
    s.name = "gpt-oss 20b";
    s.n_layers = 24, s.dim = 2880, s.n_heads = 64, s.n_kv_heads = 8, s.head_dim = 64, s.ffn_dim = 2880;
    s.n_experts = 32, s.n_experts_used = 4, s.expert_ffn_dim = 2880;
    s.vocab = 201088, s.ctx = 131072, s.rms_eps = 1e-5f, s.rope_base = 150000.f;
    s.qkv_bias = true;
    s.sliding_window = 128;
    s.gpt_oss = true;
    s.yarn_factor = 32, s.yarn_original_ctx = 4096;
    s.tied_embeddings = false;
  } else {
    std::string known;
    for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    return Status::errorf("unknown model '{}' (known: {})", preset, known);
  }
  if (o.n_layers) s.n_layers = o.n_layers;
  if (o.dim) s.dim = o.dim;
  if (o.n_heads) s.n_heads = o.n_heads;
  if (o.n_kv_heads) s.n_kv_heads = o.n_kv_heads;
  if (o.ffn_dim) s.ffn_dim = o.ffn_dim;
  if (o.ctx) s.ctx = o.ctx;
  if (o.vocab) s.vocab = o.vocab;
  if (o.n_experts) s.n_experts = o.n_experts;
  if (o.n_experts_used) s.n_experts_used = o.n_experts_used;
  if (o.expert_ffn_dim) s.expert_ffn_dim = o.expert_ffn_dim;
  if (s.n_experts > 0 && (s.n_experts_used == 0 || s.n_experts_used > s.n_experts || s.expert_ffn_dim == 0)) {
    return Status::errorf("{} experts used of {} (expert ffn {}) is not a valid mixture", s.n_experts_used, s.n_experts,
                          s.expert_ffn_dim);
  }
  if (o.head_dim) {
    s.head_dim = o.head_dim;
  } else if (o.dim || o.n_heads) {
    // Changing the width without a head size: keep dim = heads x head_dim (qwen2/llama need it).
    s.head_dim = s.dim / s.n_heads;
  }
  if (s.n_heads == 0 || s.n_kv_heads == 0 || s.n_heads % s.n_kv_heads != 0) {
    return Status::errorf("heads ({}) must be a positive multiple of kv heads ({})", s.n_heads, s.n_kv_heads);
  }
  if (s.head_dim == 0 || s.head_dim % 2 != 0)
    return Status::errorf("head size {} must be even and positive", s.head_dim);
  if (s.architecture != "qwen3" && s.architecture != "qwen3moe" && s.architecture != "gemma3" &&
      s.architecture != "gpt-oss" && s.head_dim * s.n_heads != s.dim) {
    return Status::errorf("{} needs heads x head size = dim ({} x {} != {})", s.architecture, s.n_heads, s.head_dim,
                          s.dim);
  }
  if (s.n_layers == 0 || s.dim == 0 || s.ffn_dim == 0 || s.ctx == 0 || s.vocab == 0) {
    return Status::error("layers, dim, ffn, ctx and vocab must be positive");
  }
  return s;
}

std::vector<TensorSpec> tensor_specs(const ModelShape& s) {
  using I = TensorSpec::Init;
  const uint64_t q_dim = uint64_t{s.n_heads} * s.head_dim;
  const uint64_t kv_dim = uint64_t{s.n_kv_heads} * s.head_dim;
  std::vector<TensorSpec> out;
  out.push_back({"token_embd.weight", {s.dim, s.vocab}, I::kMatrix});
  if (s.rope_scale_factor > 0) out.push_back({"rope_freqs.weight", {s.head_dim / 2}, I::kRopeFreqs});
  for (uint32_t l = 0; l < s.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    out.push_back({p + "attn_norm.weight", {s.dim}, I::kNorm});
    out.push_back({p + "attn_q.weight", {s.dim, q_dim}, I::kMatrix});
    out.push_back({p + "attn_k.weight", {s.dim, kv_dim}, I::kMatrix});
    out.push_back({p + "attn_v.weight", {s.dim, kv_dim}, I::kMatrix});
    if (s.qkv_bias) {
      out.push_back({p + "attn_q.bias", {q_dim}, I::kBias});
      out.push_back({p + "attn_k.bias", {kv_dim}, I::kBias});
      out.push_back({p + "attn_v.bias", {kv_dim}, I::kBias});
    }
    if (s.qk_norm) {
      out.push_back({p + "attn_q_norm.weight", {s.head_dim}, I::kNorm});
      out.push_back({p + "attn_k_norm.weight", {s.head_dim}, I::kNorm});
    }
    out.push_back({p + "attn_output.weight", {q_dim, s.dim}, I::kMatrix});
    if (s.gpt_oss) {
      out.push_back({p + "attn_output.bias", {s.dim}, I::kBias});
      out.push_back({p + "attn_sinks.weight", {s.n_heads}, I::kBias});
    }
    if (s.post_norms) out.push_back({p + "post_attention_norm.weight", {s.dim}, I::kNorm});
    // gpt-oss names its FFN input norm post_attention_norm.
    out.push_back({p + (s.gpt_oss ? "post_attention_norm.weight" : "ffn_norm.weight"), {s.dim}, I::kNorm});
    if (s.n_experts > 0) {
      const uint64_t ef = s.expert_ffn_dim, ne = s.n_experts;
      out.push_back({p + "ffn_gate_inp.weight", {s.dim, ne}, I::kRouter});
      out.push_back({p + "ffn_gate_exps.weight", {s.dim, ef, ne}, I::kMatrix, s.gpt_oss});
      out.push_back({p + "ffn_down_exps.weight", {ef, s.dim, ne}, I::kMatrix, s.gpt_oss});
      out.push_back({p + "ffn_up_exps.weight", {s.dim, ef, ne}, I::kMatrix, s.gpt_oss});
      if (s.gpt_oss) {
        out.push_back({p + "ffn_gate_inp.bias", {ne}, I::kBias});
        out.push_back({p + "ffn_gate_exps.bias", {ef, ne}, I::kBias});
        out.push_back({p + "ffn_up_exps.bias", {ef, ne}, I::kBias});
        out.push_back({p + "ffn_down_exps.bias", {s.dim, ne}, I::kBias});
      }
      continue;
    }
    out.push_back({p + "ffn_gate.weight", {s.dim, s.ffn_dim}, I::kMatrix});
    out.push_back({p + "ffn_up.weight", {s.dim, s.ffn_dim}, I::kMatrix});
    out.push_back({p + "ffn_down.weight", {s.ffn_dim, s.dim}, I::kMatrix});
    if (s.post_norms) out.push_back({p + "post_ffw_norm.weight", {s.dim}, I::kNorm});
  }
  out.push_back({"output_norm.weight", {s.dim}, I::kNorm});
  if (!s.tied_embeddings) out.push_back({"output.weight", {s.dim, s.vocab}, I::kMatrix});
  return out;
}

}  // namespace tandem::model
