#include "model/config.h"

#include <fmt/format.h>

#include <cmath>

namespace tandem::model {
namespace {

// A required positive integer key "<arch>.<name>".
Status read_int(const gguf::GgufFile& f, const std::string& arch, const char* name, int* out) {
  const std::string key = arch + "." + name;
  auto v = f.get_uint(key);
  if (!v) return Status::errorf("missing or invalid metadata key {}", key);
  if (*v == 0 || *v > (1u << 30)) return Status::errorf("{} = {} is out of range", key, *v);
  *out = static_cast<int>(*v);
  return {};
}

// The mixture keys "<arch>.expert_count" and friends.
Status read_experts(const gguf::GgufFile& f, const std::string& arch, ModelConfig* c) {
  TANDEM_RETURN_IF_ERROR(read_int(f, arch, "expert_count", &c->n_experts));
  TANDEM_RETURN_IF_ERROR(read_int(f, arch, "expert_used_count", &c->n_experts_used));
  TANDEM_RETURN_IF_ERROR(read_int(f, arch, "expert_feed_forward_length", &c->expert_ffn_dim));
  if (c->n_experts_used > c->n_experts || c->n_experts > 1024 || c->n_experts_used > kMaxExpertsUsed) {
    return Status::errorf("{} experts used of {} is not a valid mixture (tandem runs up to {} experts per token)",
                          c->n_experts_used, c->n_experts, kMaxExpertsUsed);
  }
  return {};
}

}  // namespace

Result<ModelConfig> read_config(const gguf::GgufFile& f, int64_t ctx_override) {
  ModelConfig c;
  auto arch = f.get_string("general.architecture");
  if (!arch) return Status::error("general.architecture is missing");
  c.arch_name = *arch;
  if (*arch == "llama") {
    c.arch = Arch::kLlama;
  } else if (*arch == "qwen2") {
    c.arch = Arch::kQwen2;
  } else if (*arch == "qwen3") {
    c.arch = Arch::kQwen3;
  } else if (*arch == "gemma3") {
    c.arch = Arch::kGemma3;
  } else if (*arch == "qwen3moe") {
    c.arch = Arch::kQwen3Moe;
  } else if (*arch == "gpt-oss") {
    c.arch = Arch::kGptOss;
  } else {
    return Status::errorf(
        "architecture '{}' is not supported (supported: llama, qwen2, qwen3, gemma3, qwen3moe, gpt-oss)", *arch);
  }
  const std::string& a = *arch;
  TANDEM_RETURN_IF_ERROR(read_int(f, a, "block_count", &c.n_layers));
  TANDEM_RETURN_IF_ERROR(read_int(f, a, "embedding_length", &c.dim));
  TANDEM_RETURN_IF_ERROR(read_int(f, a, "feed_forward_length", &c.ffn_dim));
  TANDEM_RETURN_IF_ERROR(read_int(f, a, "attention.head_count", &c.n_heads));
  c.n_kv_heads = c.n_heads;
  if (f.find(a + ".attention.head_count_kv"))
    TANDEM_RETURN_IF_ERROR(read_int(f, a, "attention.head_count_kv", &c.n_kv_heads));
  if (c.n_heads % c.n_kv_heads != 0) {
    return Status::errorf("{} heads is not a multiple of {} KV heads", c.n_heads, c.n_kv_heads);
  }
  c.head_dim = c.dim / c.n_heads;
  if (f.find(a + ".attention.key_length")) TANDEM_RETURN_IF_ERROR(read_int(f, a, "attention.key_length", &c.head_dim));
  if (auto vl = f.get_uint(a + ".attention.value_length"); vl && static_cast<int>(*vl) != c.head_dim) {
    return Status::errorf("value length {} differs from key length {} (not supported)", *vl, c.head_dim);
  }
  int ctx = 0;
  TANDEM_RETURN_IF_ERROR(read_int(f, a, "context_length", &ctx));
  c.train_ctx = ctx;
  c.ctx = ctx_override > 0 ? ctx_override : ctx;
  c.rms_eps = static_cast<float>(f.get_float(a + ".attention.layer_norm_rms_epsilon").value_or(1e-5));
  c.n_rot = static_cast<int>(f.get_uint(a + ".rope.dimension_count").value_or(static_cast<uint64_t>(c.head_dim)));
  if (c.n_rot <= 0 || c.n_rot > c.head_dim || c.n_rot % 2 != 0) {
    return Status::errorf("rope dimension count {} does not fit head size {}", c.n_rot, c.head_dim);
  }
  c.rope_base = static_cast<float>(f.get_float(a + ".rope.freq_base").value_or(10000.0));
  const std::string scaling = f.get_string(a + ".rope.scaling.type").value_or("none");
  if (scaling == "linear") {
    c.rope_linear_scale = static_cast<float>(f.get_float(a + ".rope.scaling.factor").value_or(1.0));
    if (!(c.rope_linear_scale > 0)) return Status::error("rope scaling factor must be positive");
  } else if (scaling == "yarn") {
    c.yarn_factor = static_cast<float>(f.get_float(a + ".rope.scaling.factor").value_or(1.0));
    c.yarn_original_ctx = static_cast<int64_t>(f.get_uint(a + ".rope.scaling.original_context_length").value_or(0));
    if (!(c.yarn_factor >= 1) || c.yarn_original_ctx <= 0) {
      return Status::errorf("YaRN rope scaling needs a factor >= 1 and the original context length (got {}, {})",
                            c.yarn_factor, c.yarn_original_ctx);
    }
  } else if (scaling != "none") {
    return Status::errorf("rope scaling '{}' is not supported (none, linear, yarn)", scaling);
  }
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

  switch (c.arch) {
    case Arch::kLlama: c.rope_pairing = kernels::RopePairing::kAdjacent; break;
    case Arch::kQwen2:
      c.rope_pairing = kernels::RopePairing::kNeox;
      c.qkv_bias = true;
      break;
    case Arch::kQwen3:
      c.rope_pairing = kernels::RopePairing::kNeox;
      c.qk_norm = true;
      break;
    case Arch::kQwen3Moe:
      c.rope_pairing = kernels::RopePairing::kNeox;
      c.qk_norm = true;
      TANDEM_RETURN_IF_ERROR(read_experts(f, a, &c));
      break;
    case Arch::kGptOss:
      // Every other layer slides (layers 0, 2, ...), all with the same (YaRN) rope.
      c.rope_pairing = kernels::RopePairing::kNeox;
      c.qkv_bias = true;
      c.attn_out_bias = true;
      c.attn_sinks = true;
      c.moe_bias = true;
      c.swiglu_oai = true;
      c.sliding_window = static_cast<int64_t>(f.get_uint(a + ".attention.sliding_window").value_or(0));
      c.sliding_pattern = 2;
      TANDEM_RETURN_IF_ERROR(read_experts(f, a, &c));
      break;
    case Arch::kGemma3:
      c.rope_pairing = kernels::RopePairing::kNeox;
      c.qk_norm = true;
      c.post_norms = true;
      c.gelu = true;
      c.embed_scale = std::sqrt(static_cast<float>(c.dim));
      c.sliding_window = static_cast<int64_t>(f.get_uint(a + ".attention.sliding_window").value_or(0));
      c.sliding_pattern = 6;  // 5 sliding layers, then a global one
      c.rope_base_local = 10000.0f;
      c.local_rope = true;
      break;
  }
  if (c.n_layers > 4096 || c.dim > (1 << 16) || c.ffn_dim > (1 << 20) || c.head_dim > 1024) {
    return Status::errorf("implausible model shape ({} layers, dim {}, ffn {}, head {})", c.n_layers, c.dim, c.ffn_dim,
                          c.head_dim);
  }
  return c;
}

std::string describe(const ModelConfig& c) {
  std::string ffn = fmt::format("ffn {}", c.ffn_dim);
  if (c.moe()) ffn = fmt::format("{} of {} experts of ffn {}", c.n_experts_used, c.n_experts, c.expert_ffn_dim);
  return fmt::format("{}: {} layers, dim {}, {} heads / {} kv (head {}), {}, vocab {}, ctx {}", c.arch_name, c.n_layers,
                     c.dim, c.n_heads, c.n_kv_heads, c.head_dim, ffn, c.vocab, c.ctx);
}

}  // namespace tandem::model
