// A Hugging Face LlamaForCausalLM folder (config.json, model.safetensors
// with F32 tensors, tokenizer.json) as a GGUF file tandem loads, for
// benchmarks on small real checkpoints that only exist in that form
// (tests/data/story656k). Not a general converter: F32 weights only,
// no tokenizer metadata (the benchmark works on token ids).
//
// Facts of the two formats this relies on:
// - safetensors: u64 little-endian header length, a JSON header naming each
//   tensor's dtype, shape (row-major, outer first) and byte range in the
//   data that follows; tied embeddings appear once, aliased in __metadata__.
// - GGUF "llama" rotates adjacent pairs in RoPE, so Q/K rows are stored
//   permuted: GGUF row (head h, j, half) = HF row (head h, half, j) for
//   j < head_dim / 2 (HF rotates x[j] with x[j + head_dim / 2]).
// - GGUF dims list the contiguous dimension first: HF [out][in] is [in, out].
#pragma once

#include "core/mapped_file.h"
#include "core/status.h"
#include "gguf/writer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <string>
#include <vector>

namespace tandem::bench {

// Writes DIR's model to OUT_PATH.
inline Status convert_hf_llama(const std::string& dir, const std::string& out_path) {
  auto config_text = read_file(dir + "/config.json");
  if (!config_text) return config_text.status();
  const auto cfg = nlohmann::json::parse(*config_text, nullptr, false);
  if (cfg.is_discarded() || cfg.value("model_type", "") != "llama")
    return Status::errorf("{}: not a llama config", dir);
  auto st_text = read_file(dir + "/model.safetensors");
  if (!st_text) return st_text.status();
  const std::string& st = *st_text;
  uint64_t header_len = 0;
  if (st.size() < 8) return Status::error("safetensors file too short");
  std::memcpy(&header_len, st.data(), 8);
  if (header_len > st.size() - 8) return Status::error("safetensors header past the end");
  const auto header = nlohmann::json::parse(st.substr(8, header_len), nullptr, false);
  if (header.is_discarded()) return Status::error("safetensors header is not JSON");
  const size_t data0 = 8 + header_len;

  const int n_layers = cfg.at("num_hidden_layers"), dim = cfg.at("hidden_size"),
            n_heads = cfg.at("num_attention_heads");
  const int n_kv = cfg.value("num_key_value_heads", n_heads), ffn = cfg.at("intermediate_size");
  const int head_dim = dim / n_heads;
  gguf::GgufWriter w;
  w.set("general.architecture", gguf::Value::string("llama"));
  w.set("general.name", gguf::Value::string("converted from " + dir));
  w.set("llama.block_count", gguf::Value::u32(static_cast<uint32_t>(n_layers)));
  w.set("llama.context_length", gguf::Value::u32(cfg.value("max_position_embeddings", 2048u)));
  w.set("llama.embedding_length", gguf::Value::u32(static_cast<uint32_t>(dim)));
  w.set("llama.feed_forward_length", gguf::Value::u32(static_cast<uint32_t>(ffn)));
  w.set("llama.attention.head_count", gguf::Value::u32(static_cast<uint32_t>(n_heads)));
  w.set("llama.attention.head_count_kv", gguf::Value::u32(static_cast<uint32_t>(n_kv)));
  w.set("llama.attention.layer_norm_rms_epsilon", gguf::Value::f32(cfg.value("rms_norm_eps", 1e-5f)));
  w.set("llama.rope.freq_base", gguf::Value::f32(cfg.value("rope_theta", 10000.0f)));
  w.set("llama.rope.dimension_count", gguf::Value::u32(static_cast<uint32_t>(head_dim)));

  // Tensor NAME as F32 rows (HF row-major), optionally Q/K-permuted for HEADS heads.
  auto add = [&](const std::string& hf, const std::string& gg, int permute_heads) -> Status {
    std::string name = hf;
    if (!header.contains(name) && header.contains("__metadata__") && header["__metadata__"].contains(hf)) {
      name = header["__metadata__"][hf].get<std::string>();  // tied: stored under its alias
    }
    if (!header.contains(name)) return Status::errorf("tensor {} is missing", hf);
    const auto& t = header[name];
    if (t.at("dtype") != "F32") return Status::errorf("tensor {}: only F32 is supported", hf);
    const std::vector<uint64_t> shape = t.at("shape").get<std::vector<uint64_t>>();
    const uint64_t b = t.at("data_offsets")[0], e = t.at("data_offsets")[1];
    if (data0 + e > st.size() || b > e) return Status::errorf("tensor {}: bytes past the end", hf);
    std::vector<uint8_t> bytes(st.begin() + static_cast<ptrdiff_t>(data0 + b),
                               st.begin() + static_cast<ptrdiff_t>(data0 + e));
    if (permute_heads > 0) {
      const size_t rows = shape[0], cols = shape.size() > 1 ? shape[1] : 1,
                   half = rows / static_cast<size_t>(permute_heads) / 2;
      std::vector<uint8_t> out(bytes.size());
      for (size_t h = 0; h < static_cast<size_t>(permute_heads); ++h) {
        for (size_t j = 0; j < half; ++j) {
          for (size_t k = 0; k < 2; ++k) {
            const size_t from = (h * 2 + k) * half + j, to = (h * half + j) * 2 + k;
            std::memcpy(out.data() + to * cols * 4, bytes.data() + from * cols * 4, cols * 4);
          }
        }
      }
      bytes.swap(out);
    }
    std::vector<uint64_t> dims(shape.rbegin(), shape.rend());
    return w.add_tensor(gg, gguf::TensorType::F32, dims, std::move(bytes));
  };
  TANDEM_RETURN_IF_ERROR(add("model.embed_tokens.weight", "token_embd.weight", 0));
  if (!cfg.value("tie_word_embeddings", false)) TANDEM_RETURN_IF_ERROR(add("lm_head.weight", "output.weight", 0));
  TANDEM_RETURN_IF_ERROR(add("model.norm.weight", "output_norm.weight", 0));
  for (int l = 0; l < n_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l), g = fmt::format("blk.{}.", l);
    TANDEM_RETURN_IF_ERROR(add(p + "input_layernorm.weight", g + "attn_norm.weight", 0));
    TANDEM_RETURN_IF_ERROR(add(p + "self_attn.q_proj.weight", g + "attn_q.weight", n_heads));
    TANDEM_RETURN_IF_ERROR(add(p + "self_attn.k_proj.weight", g + "attn_k.weight", n_kv));
    TANDEM_RETURN_IF_ERROR(add(p + "self_attn.v_proj.weight", g + "attn_v.weight", 0));
    TANDEM_RETURN_IF_ERROR(add(p + "self_attn.o_proj.weight", g + "attn_output.weight", 0));
    TANDEM_RETURN_IF_ERROR(add(p + "post_attention_layernorm.weight", g + "ffn_norm.weight", 0));
    TANDEM_RETURN_IF_ERROR(add(p + "mlp.gate_proj.weight", g + "ffn_gate.weight", 0));
    TANDEM_RETURN_IF_ERROR(add(p + "mlp.up_proj.weight", g + "ffn_up.weight", 0));
    TANDEM_RETURN_IF_ERROR(add(p + "mlp.down_proj.weight", g + "ffn_down.weight", 0));
  }
  return w.write(out_path);
}

// The token strings of DIR/tokenizer.json by id ("\u2581" shown as a space),
// to print a converted model's text.
inline std::vector<std::string> hf_vocab(const std::string& dir) {
  std::vector<std::string> v;
  auto text = read_file(dir + "/tokenizer.json");
  if (!text) return v;
  const auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.contains("model") || !j["model"].contains("vocab")) return v;
  for (const auto& [piece, id] : j["model"]["vocab"].items()) {
    const size_t i = id.get<size_t>();
    if (i >= v.size()) v.resize(i + 1);
    std::string s;
    for (size_t p = 0; p < piece.size(); ++p) {
      if (piece.compare(p, 3, "\xe2\x96\x81") == 0) {
        s += ' ';
        p += 2;
      } else {
        s += piece[p];
      }
    }
    v[i] = std::move(s);
  }
  return v;
}

}  // namespace tandem::bench
