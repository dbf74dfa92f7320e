#include "hf/hf_config.h"

#include "kernels/ops.h"

#include <fmt/format.h>

namespace tandem::hf {
namespace {

using json = nlohmann::json;
using gguf::Value;

// A positive integer field of CFG, at most MAX (counts of layers, heads
// and experts are small; a huge one would only make the loader build
// names or divide by a truncated zero).
Status positive(const json& cfg, const char* key, int64_t* out, int64_t max = int64_t{1} << 24) {
  const auto it = cfg.find(key);
  if (it == cfg.end() || !it->is_number_integer() || it->get<int64_t>() <= 0 || it->get<int64_t>() > max) {
    return Status::errorf("{} is missing or not a positive integer up to {}", key, max);
  }
  *out = it->get<int64_t>();
  return {};
}

// A number field of CFG, or FALLBACK when absent or null.
double number_or(const json& cfg, const char* key, double fallback) {
  const auto it = cfg.find(key);
  return it != cfg.end() && it->is_number() ? it->get<double>() : fallback;
}

struct Shape {
  int64_t layers = 0, dim = 0, ffn = 0, heads = 0, kv_heads = 0, head_dim = 0, ctx = 0;
};

Status read_shape(const json& cfg, Shape* s) {
  TANDEM_RETURN_IF_ERROR(positive(cfg, "num_hidden_layers", &s->layers, 4096));
  TANDEM_RETURN_IF_ERROR(positive(cfg, "hidden_size", &s->dim));
  TANDEM_RETURN_IF_ERROR(positive(cfg, "intermediate_size", &s->ffn));
  TANDEM_RETURN_IF_ERROR(positive(cfg, "num_attention_heads", &s->heads, 4096));
  s->kv_heads = s->heads;
  if (cfg.contains("num_key_value_heads") && !cfg["num_key_value_heads"].is_null())
    TANDEM_RETURN_IF_ERROR(positive(cfg, "num_key_value_heads", &s->kv_heads, 4096));
  s->head_dim = s->dim / s->heads;
  if (cfg.contains("head_dim") && !cfg["head_dim"].is_null())
    TANDEM_RETURN_IF_ERROR(positive(cfg, "head_dim", &s->head_dim));
  s->ctx = 2048;
  if (cfg.contains("max_position_embeddings")) TANDEM_RETURN_IF_ERROR(positive(cfg, "max_position_embeddings", &s->ctx));
  if (s->heads % s->kv_heads != 0) {
    return Status::errorf("{} attention heads is not a multiple of {} KV heads", s->heads, s->kv_heads);
  }
  return {};
}

// rope_scaling of CFG as GGUF keys (linear, yarn) or rope factors (llama3).
Status read_rope_scaling(const json& cfg, const std::string& a, const Shape& s, double base, ArchPlan* plan) {
  const auto it = cfg.find("rope_scaling");
  if (it == cfg.end() || it->is_null()) return {};
  const json& rs = *it;
  if (!rs.is_object()) return Status::error("rope_scaling is not an object");
  const std::string type = rs.value("rope_type", rs.value("type", std::string("default")));
  const double factor = number_or(rs, "factor", 1.0);
  auto& md = plan->metadata;
  if (type == "default") return {};
  if (type == "linear") {
    md.emplace_back(a + ".rope.scaling.type", Value::string("linear"));
    md.emplace_back(a + ".rope.scaling.factor", Value::f32(static_cast<float>(factor)));
    return {};
  }
  if (type == "yarn") {
    md.emplace_back(a + ".rope.scaling.type", Value::string("yarn"));
    md.emplace_back(a + ".rope.scaling.factor", Value::f32(static_cast<float>(factor)));
    md.emplace_back(a + ".rope.scaling.original_context_length",
                    Value::u32(static_cast<uint32_t>(number_or(rs, "original_max_position_embeddings", 0))));
    return {};
  }
  if (type == "llama3") {
    plan->computed.push_back(
        {"rope_freqs.weight",
         kernels::llama3_rope_factors(static_cast<int>(s.head_dim), base, factor, number_or(rs, "low_freq_factor", 1),
                                      number_or(rs, "high_freq_factor", 4),
                                      number_or(rs, "original_max_position_embeddings", 8192))});
    return {};
  }
  return Status::errorf("rope_scaling type '{}' is not supported (linear, llama3, yarn)", type);
}

// The GGUF keys of a mixture: qwen3_moe's and gpt_oss's names for them.
Status read_experts(const json& cfg, const std::string& a, ArchPlan* plan, int64_t* experts) {
  int64_t used = 0, ffn = 0;
  auto& md = plan->metadata;
  auto u32 = [](int64_t v) { return Value::u32(static_cast<uint32_t>(v)); };
  if (a == "qwen3moe") {
    TANDEM_RETURN_IF_ERROR(positive(cfg, "num_experts", experts, 1024));
    TANDEM_RETURN_IF_ERROR(positive(cfg, "num_experts_per_tok", &used));
    TANDEM_RETURN_IF_ERROR(positive(cfg, "moe_intermediate_size", &ffn));
    // Every layer a mixture, routed weights renormalized: what tandem's qwen3moe runs.
    if (cfg.contains("mlp_only_layers") && cfg["mlp_only_layers"].is_array() && !cfg["mlp_only_layers"].empty())
      return Status::error("mlp_only_layers (dense layers among the experts) is not supported");
    if (cfg.value("decoder_sparse_step", 1) != 1) return Status::error("decoder_sparse_step other than 1 is not supported");
    if (!cfg.value("norm_topk_prob", true)) return Status::error("norm_topk_prob false is not supported");
  } else {  // gpt-oss
    TANDEM_RETURN_IF_ERROR(positive(cfg, "num_local_experts", experts, 1024));
    TANDEM_RETURN_IF_ERROR(positive(cfg, cfg.contains("num_experts_per_tok") ? "num_experts_per_tok" : "experts_per_token",
                                    &used));
    TANDEM_RETURN_IF_ERROR(positive(cfg, "intermediate_size", &ffn));
    // What tandem's gpt-oss runs: clamped SwiGLU at 7, every other layer
    // sliding (the first one), YaRN with beta 32 / 1.
    if (number_or(cfg, "swiglu_limit", 7.0) != 7.0) return Status::error("swiglu_limit other than 7 is not supported");
    if (cfg.contains("layer_types") && cfg["layer_types"].is_array()) {
      for (size_t l = 0; l < cfg["layer_types"].size(); ++l) {
        if (cfg["layer_types"][l] != (l % 2 == 0 ? "sliding_attention" : "full_attention"))
          return Status::error("layer_types other than sliding and full layers in turn are not supported");
      }
    }
    if (const auto rs = cfg.find("rope_scaling"); rs != cfg.end() && rs->is_object() &&
                                                  (number_or(*rs, "beta_fast", 32) != 32 || number_or(*rs, "beta_slow", 1) != 1)) {
      return Status::error("YaRN beta_fast / beta_slow other than 32 / 1 are not supported");
    }
    int64_t window = 0;
    TANDEM_RETURN_IF_ERROR(positive(cfg, "sliding_window", &window));
    md.emplace_back(a + ".attention.sliding_window", u32(window));
  }
  md.emplace_back(a + ".expert_count", u32(*experts));
  md.emplace_back(a + ".expert_used_count", u32(used));
  md.emplace_back(a + ".expert_feed_forward_length", u32(ffn));
  return {};
}

// gpt-oss's layer P (GGUF G) after its attention: biases, sinks, the router
// and the MXFP4 experts (gate and up rows interleaved in one HF tensor).
void gpt_oss_layer(const std::string& p, const std::string& g, std::vector<TensorMap>& t) {
  t.push_back({p + "self_attn.o_proj.bias", g + "attn_output.bias"});
  t.push_back({p + "self_attn.sinks", g + "attn_sinks.weight"});
  t.push_back({p + "post_attention_layernorm.weight", g + "post_attention_norm.weight"});
  t.push_back({p + "mlp.router.weight", g + "ffn_gate_inp.weight"});
  t.push_back({p + "mlp.router.bias", g + "ffn_gate_inp.bias"});
  const std::string e = p + "mlp.experts.";
  for (auto [x, parity] : {std::pair{"gate", 0}, {"up", 1}}) {
    TensorMap w{e + "gate_up_proj_blocks", g + "ffn_" + x + "_exps.weight", Transform::kMxfp4};
    w.parity = parity;
    t.push_back(w);
    TensorMap b{e + "gate_up_proj_bias", g + "ffn_" + x + "_exps.bias", Transform::kHalfOfPairs};
    b.parity = parity;
    t.push_back(b);
  }
  t.push_back({e + "down_proj_blocks", g + "ffn_down_exps.weight", Transform::kMxfp4});
  t.push_back({e + "down_proj_bias", g + "ffn_down_exps.bias"});
}

}  // namespace

Result<ArchPlan> read_hf_config(const json& root, const std::function<bool(const std::string&)>& has_tensor) {
  std::string model_type = root.value("model_type", "");
  const json* cfgp = &root;
  // Multimodal gemma3 checkpoints nest the language model's config.
  if (model_type == "gemma3" && root.contains("text_config") && root["text_config"].is_object()) {
    cfgp = &root["text_config"];
    model_type = "gemma3_text";
  }
  const json& cfg = *cfgp;
  ArchPlan plan;
  if (model_type == "llama" || model_type == "mistral") {
    plan.name = "llama";
  } else if (model_type == "qwen2" || model_type == "qwen3") {
    plan.name = model_type;
  } else if (model_type == "gemma3_text") {
    plan.name = "gemma3";
  } else if (model_type == "qwen3_moe") {
    plan.name = "qwen3moe";
  } else if (model_type == "gpt_oss") {
    plan.name = "gpt-oss";
  } else {
    return Status::errorf("model_type '{}' is not supported from a folder (supported: llama, mistral, qwen2, qwen3, "
                          "qwen3_moe, gemma3, gpt_oss; convert others to GGUF with llama.cpp)",
                          model_type);
  }
  Shape s;
  TANDEM_RETURN_IF_ERROR(read_shape(cfg, &s));
  const std::string& a = plan.name;
  const bool gemma = a == "gemma3", oss = a == "gpt-oss";
  const double base = number_or(cfg, "rope_theta", gemma ? 1e6 : 10000.0);
  auto& md = plan.metadata;
  auto u32 = [](int64_t v) { return Value::u32(static_cast<uint32_t>(v)); };
  md.emplace_back("general.architecture", Value::string(a));
  md.emplace_back(a + ".block_count", u32(s.layers));
  md.emplace_back(a + ".context_length", u32(s.ctx));
  md.emplace_back(a + ".embedding_length", u32(s.dim));
  md.emplace_back(a + ".feed_forward_length", u32(s.ffn));
  md.emplace_back(a + ".attention.head_count", u32(s.heads));
  md.emplace_back(a + ".attention.head_count_kv", u32(s.kv_heads));
  md.emplace_back(a + ".attention.key_length", u32(s.head_dim));
  md.emplace_back(a + ".attention.value_length", u32(s.head_dim));
  md.emplace_back(a + ".attention.layer_norm_rms_epsilon",
                  Value::f32(static_cast<float>(number_or(cfg, "rms_norm_eps", 1e-6))));
  md.emplace_back(a + ".rope.freq_base", Value::f32(static_cast<float>(base)));
  md.emplace_back(a + ".rope.dimension_count", u32(s.head_dim));
  if (gemma) {
    // What tandem's gemma3 runs: 5 sliding layers then a global one, local rope base 10000.
    if (cfg.value("sliding_window_pattern", 6) != 6) return Status::error("sliding_window_pattern other than 6 is not supported");
    if (number_or(cfg, "rope_local_base_freq", 10000) != 10000)
      return Status::error("rope_local_base_freq other than 10000 is not supported");
    if (cfg.contains("sliding_window") && cfg["sliding_window"].is_number_unsigned())
      md.emplace_back(a + ".attention.sliding_window", u32(cfg["sliding_window"].get<int64_t>()));
  }
  TANDEM_RETURN_IF_ERROR(read_rope_scaling(cfg, a, s, base, &plan));
  int64_t experts = 0;
  if (a == "qwen3moe" || oss) TANDEM_RETURN_IF_ERROR(read_experts(cfg, a, &plan, &experts));

  // Where the language model's tensors live.
  std::string prefix = "model.";
  for (const char* p : {"model.", "language_model.model.", "model.language_model."}) {
    if (has_tensor(std::string(p) + "embed_tokens.weight")) {
      prefix = p;
      break;
    }
  }
  plan.embedding = prefix + "embed_tokens.weight";
  const Transform norm = gemma ? Transform::kAddOne : Transform::kNone;
  auto& t = plan.tensors;
  t.push_back({plan.embedding, "token_embd.weight"});
  t.push_back({prefix + "norm.weight", "output_norm.weight", norm});
  // An untied output matrix (a tied one may still be stored, as an alias).
  const bool tied = root.value("tie_word_embeddings", cfg.value("tie_word_embeddings", gemma));
  if (!tied && has_tensor("lm_head.weight")) t.push_back({"lm_head.weight", "output.weight"});
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string p = fmt::format("{}layers.{}.", prefix, l), g = fmt::format("blk.{}.", l);
    const bool llama = a == "llama";
    t.push_back({p + "input_layernorm.weight", g + "attn_norm.weight", norm});
    t.push_back({p + "self_attn.q_proj.weight", g + "attn_q.weight", llama ? Transform::kInterleaveHeads : Transform::kNone,
                 static_cast<int>(s.heads)});
    t.push_back({p + "self_attn.k_proj.weight", g + "attn_k.weight", llama ? Transform::kInterleaveHeads : Transform::kNone,
                 static_cast<int>(s.kv_heads)});
    t.push_back({p + "self_attn.v_proj.weight", g + "attn_v.weight"});
    t.push_back({p + "self_attn.o_proj.weight", g + "attn_output.weight"});
    if (a == "qwen2" || oss) {
      for (const char* x : {"q", "k", "v"})
        t.push_back({fmt::format("{}self_attn.{}_proj.bias", p, x), fmt::format("{}attn_{}.bias", g, x)});
    }
    if (oss) {
      gpt_oss_layer(p, g, t);
      continue;
    }
    if (a == "qwen3" || a == "qwen3moe" || gemma) {
      t.push_back({p + "self_attn.q_norm.weight", g + "attn_q_norm.weight", norm});
      t.push_back({p + "self_attn.k_norm.weight", g + "attn_k_norm.weight", norm});
    }
    if (gemma) {
      t.push_back({p + "post_attention_layernorm.weight", g + "post_attention_norm.weight", norm});
      t.push_back({p + "pre_feedforward_layernorm.weight", g + "ffn_norm.weight", norm});
      t.push_back({p + "post_feedforward_layernorm.weight", g + "post_ffw_norm.weight", norm});
    } else {
      t.push_back({p + "post_attention_layernorm.weight", g + "ffn_norm.weight"});
    }
    if (experts > 0) {
      t.push_back({p + "mlp.gate.weight", g + "ffn_gate_inp.weight"});
      // mlx-lm saves the experts already stacked, [experts, out, in].
      if (has_tensor(p + "mlp.switch_mlp.gate_proj.weight")) {
        for (const char* x : {"gate", "up", "down"})
          t.push_back({fmt::format("{}mlp.switch_mlp.{}_proj.weight", p, x), fmt::format("{}ffn_{}_exps.weight", g, x)});
        continue;
      }
      for (const char* x : {"gate", "up", "down"}) {
        TensorMap m{"", fmt::format("{}ffn_{}_exps.weight", g, x)};
        for (int64_t e = 0; e < experts; ++e) m.stacked.push_back(fmt::format("{}mlp.experts.{}.{}_proj.weight", p, e, x));
        m.hf = m.stacked[0];
        t.push_back(std::move(m));
      }
      continue;
    }
    t.push_back({p + "mlp.gate_proj.weight", g + "ffn_gate.weight"});
    t.push_back({p + "mlp.up_proj.weight", g + "ffn_up.weight"});
    t.push_back({p + "mlp.down_proj.weight", g + "ffn_down.weight"});
  }
  return plan;
}

}  // namespace tandem::hf
