#include "hf/folder_writer.h"

#include "core/fp16.h"
#include "gguf/quant.h"
#include "hf/convert.h"
#include "hf/hf_config.h"
#include "hf/mlx.h"
#include "hf/nibbles.h"
#include "hf/safetensors.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/vocab.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <tuple>

namespace tandem::hf {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// config.json of SRC (the keys read_hf_config reads back).
Result<json> config_of(const gguf::GgufFile& src, const FolderWriteOptions& o) {
  const std::string a = src.get_string("general.architecture").value_or("");
  const std::map<std::string, std::string> types = {
      {"llama", "llama"},         {"qwen2", "qwen2"},          {"qwen3", "qwen3"},
      {"qwen3moe", "qwen3_moe"}, {"gemma3", "gemma3_text"}, {"gpt-oss", "gpt_oss"}};
  if (!types.contains(a)) {
    return Status::errorf("the folder writer handles llama, qwen2, qwen3, qwen3moe, gemma3 and gpt-oss, not '{}'", a);
  }
  if (a == "gpt-oss" && o.mlx_bits > 0) return Status::error("gpt-oss folders keep their MXFP4 experts: no --mlx-bits");
  if (src.find_tensor("rope_freqs.weight")) return Status::error("the folder writer does not write llama 3 rope scaling");
  auto u = [&](const std::string& key) { return src.get_uint(a + "." + key).value_or(0); };
  json c;
  c["model_type"] = types.at(a);
  c["num_hidden_layers"] = u("block_count");
  c["hidden_size"] = u("embedding_length");
  c["intermediate_size"] = u("feed_forward_length");
  c["num_attention_heads"] = u("attention.head_count");
  c["num_key_value_heads"] = src.get_uint(a + ".attention.head_count_kv").value_or(u("attention.head_count"));
  if (u("attention.head_count") == 0 || u("block_count") == 0) return Status::error("the model has no heads or layers");
  c["head_dim"] = src.get_uint(a + ".attention.key_length").value_or(u("embedding_length") / u("attention.head_count"));
  c["max_position_embeddings"] = u("context_length");
  c["rms_norm_eps"] = src.get_float(a + ".attention.layer_norm_rms_epsilon").value_or(1e-5);
  c["rope_theta"] = src.get_float(a + ".rope.freq_base").value_or(10000.0);
  c["tie_word_embeddings"] = src.find_tensor("output.weight") == nullptr;
  if (auto w = src.get_uint(a + ".attention.sliding_window")) c["sliding_window"] = *w;
  if (a == "qwen3moe") {
    c["num_experts"] = u("expert_count");
    c["num_experts_per_tok"] = u("expert_used_count");
    c["moe_intermediate_size"] = u("expert_feed_forward_length");
    c["norm_topk_prob"] = true;
  }
  const std::string scaling = src.get_string(a + ".rope.scaling.type").value_or("");
  if (scaling == "linear") {
    c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", src.get_float(a + ".rope.scaling.factor").value_or(1)}};
  } else if (scaling == "yarn") {
    c["rope_scaling"] = {{"rope_type", "yarn"},
                         {"factor", src.get_float(a + ".rope.scaling.factor").value_or(1)},
                         {"original_max_position_embeddings", u("rope.scaling.original_context_length")},
                         {"beta_fast", 32.0},
                         {"beta_slow", 1.0}};
  }
  if (a == "gpt-oss") {
    c["num_local_experts"] = u("expert_count");
    c["num_experts_per_tok"] = u("expert_used_count");
    c["intermediate_size"] = u("expert_feed_forward_length");
    c["swiglu_limit"] = 7.0;
    json types = json::array();
    for (uint64_t l = 0; l < u("block_count"); ++l) types.push_back(l % 2 == 0 ? "sliding_attention" : "full_attention");
    c["layer_types"] = types;
  }
  c["torch_dtype"] = o.floats == FolderWriteOptions::Floats::kF32 ? "float32" : "bfloat16";
  if (o.mlx_bits > 0) {
    c["quantization"] = {{"group_size", o.mlx_group}, {"bits", o.mlx_bits}};
    c["quantization_config"] = c["quantization"];
  }
  return c;
}

// HF BPE merges of a SentencePiece vocabulary: every split of a token into
// two tokens, the best-scored tokens' splits first.
std::vector<std::string> spm_merges(const tokenizer::Vocab& v) {
  std::vector<std::tuple<float, int32_t, int32_t, std::string>> found;
  for (size_t id = 0; id < v.size(); ++id) {
    if (v.types[id] != tokenizer::TokenType::kNormal) continue;
    const std::string& t = v.tokens[id];
    for (size_t cut = 1; cut < t.size(); ++cut) {
      if ((static_cast<uint8_t>(t[cut]) & 0xC0) == 0x80) continue;  // inside a UTF-8 character
      const int32_t a = v.find(std::string_view(t).substr(0, cut)), b = v.find(std::string_view(t).substr(cut));
      if (a != tokenizer::kNoToken && b != tokenizer::kNoToken)
        found.emplace_back(-(v.scores.empty() ? 0.0f : v.scores[id]), a, b, t.substr(0, cut) + " " + t.substr(cut));
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> merges;
  for (auto& f : found) merges.push_back(std::move(std::get<3>(f)));
  return merges;
}

Status write_tokenizer(const gguf::GgufFile& src, const std::string& dir) {
  auto v = tokenizer::load_vocab(src);
  if (!v) return v.status();
  json vocab = json::object(), added = json::array();
  for (size_t id = 0; id < v->size(); ++id) {
    vocab[v->tokens[id]] = id;
    const auto type = v->types[id];
    if (type == tokenizer::TokenType::kControl || type == tokenizer::TokenType::kUserDefined) {
      added.push_back({{"id", id},
                       {"content", v->tokens[id]},
                       {"special", type == tokenizer::TokenType::kControl},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false}});
    }
  }
  json tok = {{"version", "1.0"}, {"added_tokens", added}};
  json model = {{"type", "BPE"}, {"vocab", vocab}, {"fuse_unk", true}};
  if (v->kind == tokenizer::VocabKind::kSpm) {
    const std::string space = "\xE2\x96\x81";
    json norms = json::array();
    if (v->add_space_prefix) norms.push_back({{"type", "Prepend"}, {"prepend", space}});
    norms.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", space}});
    tok["normalizer"] = {{"type", "Sequence"}, {"normalizers", norms}};
    tok["pre_tokenizer"] = nullptr;
    model["merges"] = spm_merges(*v);
    model["byte_fallback"] = true;
    if (v->unk != tokenizer::kNoToken) model["unk_token"] = v->tokens[static_cast<size_t>(v->unk)];
  } else {
    json pre = json::array();
    for (const auto& re : tokenizer::PreTokenizer::patterns_for(v->pre))
      pre.push_back({{"type", "Split"}, {"pattern", {{"Regex", re}}}, {"behavior", "Isolated"}, {"invert", false}});
    pre.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}});
    tok["normalizer"] = nullptr;
    tok["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", pre}};
    model["merges"] = v->merges;
  }
  tok["model"] = model;
  json cfg = {{"add_bos_token", v->add_bos}, {"add_eos_token", v->add_eos}};
  auto text_of = [&](tokenizer::TokenId id) { return v->tokens[static_cast<size_t>(id)]; };
  if (v->bos != tokenizer::kNoToken) cfg["bos_token"] = text_of(v->bos);
  if (v->eos != tokenizer::kNoToken) cfg["eos_token"] = text_of(v->eos);
  if (v->unk != tokenizer::kNoToken) cfg["unk_token"] = text_of(v->unk);
  if (!v->chat_template.empty()) cfg["chat_template"] = v->chat_template;
  TANDEM_RETURN_IF_ERROR(write_text_atomic(dir + "/tokenizer.json", tok.dump(1)));
  return write_text_atomic(dir + "/tokenizer_config.json", cfg.dump(1));
}

// A written tensor's bytes.
struct Out {
  std::string name;
  Dtype dtype;
  std::vector<uint64_t> shape;
  std::vector<uint8_t> bytes;
};

template <typename T>
std::vector<uint8_t> as_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// gpt-oss: GGUF MXFP4 experts (T, and PARTNER's rows in between when the
// HF tensor interleaves gate and up) as HF "<x>_blocks" and "<x>_scales".
void write_mxfp4(const gguf::TensorInfo& t, const gguf::TensorInfo* partner, const std::string& blocks_name,
                 std::vector<Out>* out) {
  const uint64_t n_blocks = t.dims[0] / 32, rows = t.dims[1], experts = t.dims[2], ways = partner ? 2 : 1;
  std::vector<uint8_t> blocks(experts * rows * ways * n_blocks * 16), scales(experts * rows * ways * n_blocks);
  for (uint64_t e = 0; e < experts; ++e) {
    for (uint64_t r = 0; r < rows * ways; ++r) {
      const gguf::TensorInfo& src = (r % ways == 1) ? *partner : t;
      const uint64_t from = e * rows + r / ways, to = e * rows * ways + r;
      for (uint64_t b = 0; b < n_blocks; ++b) {
        const uint8_t* in = src.data + (from * n_blocks + b) * 17;
        scales[to * n_blocks + b] = in[0];
        ggml_to_pairs_nibbles(in + 1, blocks.data() + (to * n_blocks + b) * 16);
      }
    }
  }
  const std::string base = blocks_name.substr(0, blocks_name.size() - std::string("_blocks").size());
  out->push_back({blocks_name, Dtype::kU8, {experts, rows * ways, n_blocks, 16}, std::move(blocks)});
  out->push_back({base + "_scales", Dtype::kU8, {experts, rows * ways, n_blocks}, std::move(scales)});
}

// The HF tensor(s) of M from SRC: floats (transform undone), or MLX's three.
Status convert_tensor(const gguf::GgufFile& src, const TensorMap& m, const FolderWriteOptions& o, std::vector<Out>* out) {
  const gguf::TensorInfo* t = src.find_tensor(m.gguf);
  if (t == nullptr) return Status::errorf("tensor {} is missing", m.gguf);
  // gpt-oss: gate (parity 0) brings up's rows along; up is then done.
  const gguf::TensorInfo* partner = nullptr;
  if (m.parity == 1) return {};
  if (m.parity == 0) {
    std::string up = m.gguf;
    up.replace(up.find("ffn_gate_exps"), std::string("ffn_gate_exps").size(), "ffn_up_exps");
    partner = src.find_tensor(up);
    if (partner == nullptr) return Status::errorf("tensor {} is missing", up);
  }
  if (partner && (partner->type != t->type || partner->dims != t->dims))
    return Status::errorf("tensors {} and {} differ in type or shape", m.gguf, partner->name);
  if (m.transform == Transform::kMxfp4) {
    if (t->type != gguf::TensorType::MXFP4 || t->dims.size() != 3)
      return Status::errorf("tensor {}: the folder writer writes gpt-oss experts from 3-D MXFP4 only", m.gguf);
    write_mxfp4(*t, partner, m.hf, out);
    return {};
  }
  if (m.transform == Transform::kHalfOfPairs) {  // [ffn, experts] x2 -> HF [experts, 2 x ffn]
    const uint64_t half = t->dims[0], experts = t->dims[1];
    std::vector<float> g(t->n_elements), u(t->n_elements), both(2 * t->n_elements);
    TANDEM_RETURN_IF_ERROR(gguf::dequantize(t->type, t->data, g.data(), static_cast<int64_t>(g.size())));
    TANDEM_RETURN_IF_ERROR(gguf::dequantize(partner->type, partner->data, u.data(), static_cast<int64_t>(u.size())));
    for (uint64_t i = 0; i < t->n_elements; ++i) {
      both[2 * i] = g[i];
      both[2 * i + 1] = u[i];
    }
    out->push_back({m.hf, Dtype::kF32, {experts, 2 * half}, as_bytes(both)});
    return {};
  }
  std::vector<uint64_t> shape(t->dims.rbegin(), t->dims.rend());
  if (!m.stacked.empty() && (shape.size() != 3 || shape[0] != m.stacked.size()))
    return Status::errorf("tensor {} {} is not a stack of {} experts", m.gguf, t->shape_string(), m.stacked.size());
  if (m.transform == Transform::kInterleaveHeads && (shape.size() != 2 || shape[0] % (2 * static_cast<uint64_t>(m.heads)) != 0))
    return Status::errorf("tensor {} {}: rows are not {} heads of even size", m.gguf, t->shape_string(), m.heads);
  std::vector<float> v(t->n_elements);
  if (shape.size() >= 2) {  // (with an MLX folder's group offsets)
    auto view = matrix_view(src, *t);
    if (!view) return view.status();
    const kernels::Matrix mat = *view;
    for (int64_t r = 0; r < mat.rows; ++r) kernels::dequantize_row(mat, r, v.data() + r * mat.cols);
  } else {
    TANDEM_RETURN_IF_ERROR(gguf::dequantize(t->type, t->data, v.data(), static_cast<int64_t>(v.size())));
  }
  if (!m.stacked.empty() && o.mlx_bits == 0) {  // experts: one HF tensor each
    const size_t per = v.size() / m.stacked.size();
    for (size_t e = 0; e < m.stacked.size(); ++e) {
      std::vector<float> part(v.begin() + static_cast<ptrdiff_t>(e * per), v.begin() + static_cast<ptrdiff_t>((e + 1) * per));
      out->push_back({m.stacked[e], Dtype::kF32, {shape[1], shape[2]}, as_bytes(part)});
    }
    return {};
  }
  std::string hf_name = m.hf;
  if (!m.stacked.empty()) {  // MLX: stacked as mlx-lm saves them, "mlp.experts.0.x" -> "mlp.switch_mlp.x"
    const size_t at = hf_name.find("experts.0.");
    hf_name.replace(at, std::string("experts.0.").size(), "switch_mlp.");
  }
  if (m.transform == Transform::kAddOne)
    for (float& x : v) x -= 1.0f;
  if (m.transform == Transform::kInterleaveHeads) {
    const uint64_t rows = shape[0], cols = v.size() / rows;
    std::vector<float> hf(v.size());
    for (uint64_t r = 0; r < rows; ++r)
      std::memcpy(hf.data() + r * cols, v.data() + interleaved_row(r, rows, static_cast<uint64_t>(m.heads)) * cols,
                  cols * sizeof(float));
    v.swap(hf);
  }
  // As mlx-lm: matrices whose rows are not whole groups stay unquantized.
  if (o.mlx_bits > 0 && shape.size() >= 2 && shape.back() % static_cast<uint64_t>(o.mlx_group) == 0) {
    const MlxQuant q{o.mlx_bits, o.mlx_group};
    const uint64_t cols = shape.back(), rows = v.size() / cols;
    const uint64_t words = cols * static_cast<uint64_t>(q.bits) / 32, groups = cols / static_cast<uint64_t>(q.group);
    std::vector<uint32_t> packed(rows * words);
    std::vector<uint16_t> scales(rows * groups), biases(rows * groups);
    for (uint64_t r = 0; r < rows; ++r) {
      mlx_quantize_row(v.data() + r * cols, static_cast<int64_t>(cols), q, packed.data() + r * words,
                       scales.data() + r * groups, biases.data() + r * groups);
    }
    const std::string module = hf_name.substr(0, hf_name.size() - std::string(".weight").size());
    auto with_last = [&](uint64_t last) {
      std::vector<uint64_t> s(shape.begin(), shape.end() - 1);
      s.push_back(last);
      return s;
    };
    out->push_back({hf_name, Dtype::kU32, with_last(words), as_bytes(packed)});
    out->push_back({module + ".scales", Dtype::kBF16, with_last(groups), as_bytes(scales)});
    out->push_back({module + ".biases", Dtype::kBF16, with_last(groups), as_bytes(biases)});
    return {};
  }
  if (o.floats == FolderWriteOptions::Floats::kF32) {
    out->push_back({hf_name, Dtype::kF32, shape, as_bytes(v)});
  } else {
    std::vector<uint16_t> b(v.size());
    for (size_t i = 0; i < v.size(); ++i) b[i] = f32_to_bf16(v[i]);
    out->push_back({hf_name, Dtype::kBF16, shape, as_bytes(b)});
  }
  return {};
}

}  // namespace

Status write_folder(const gguf::GgufFile& src, const std::string& dir, const FolderWriteOptions& o) {
  auto cfg = config_of(src, o);
  if (!cfg) return cfg.status();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::errorf("cannot create {}: {}", dir, ec.message());
  auto plan = read_hf_config(*cfg, [&](const std::string& name) {
    return name == "model.embed_tokens.weight" || (name == "lm_head.weight" && src.find_tensor("output.weight"));
  });
  if (!plan) return plan.status();
  std::vector<Out> tensors;
  for (const TensorMap& m : plan->tensors) TANDEM_RETURN_IF_ERROR(convert_tensor(src, m, o, &tensors));
  TANDEM_RETURN_IF_ERROR(write_text_atomic(dir + "/config.json", cfg->dump(1)));
  TANDEM_RETURN_IF_ERROR(write_tokenizer(src, dir));

  const int shards = std::max(1, o.shards);
  json weight_map = json::object();
  for (int s = 0; s < shards; ++s) {
    const std::string name =
        shards == 1 ? "model.safetensors" : fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, shards);
    std::vector<StWrite> part;
    for (size_t i = static_cast<size_t>(s); i < tensors.size(); i += static_cast<size_t>(shards)) {
      part.push_back({tensors[i].name, tensors[i].dtype, tensors[i].shape, tensors[i].bytes});
      weight_map[tensors[i].name] = name;
    }
    TANDEM_RETURN_IF_ERROR(write_safetensors(dir + "/" + name, part, {{"format", o.mlx_bits ? "mlx" : "pt"}}));
  }
  if (shards > 1) {
    TANDEM_RETURN_IF_ERROR(write_text_atomic(dir + "/model.safetensors.index.json",
                                             json{{"metadata", json::object()}, {"weight_map", weight_map}}.dump(1)));
  }
  return {};
}

}  // namespace tandem::hf
