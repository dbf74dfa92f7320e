// config.json of a Hugging Face model folder in GGUF terms: the
// architecture's metadata keys and which stored tensor becomes which GGUF
// tensor, as llama.cpp's converter names them (folder.h reads the tensors).
#pragma once

#include "core/status.h"
#include "gguf/value.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace tandem::hf {

enum class Transform {
  kNone,
  kInterleaveHeads,  // llama Q/K rows: HF half-split pairs -> GGUF adjacent pairs
  kAddOne,           // gemma3 norms: HF w -> GGUF 1 + w (as F32)
  kMxfp4,            // gpt-oss experts: HF "<x>_blocks" + "<x>_scales" -> GGUF MXFP4 blocks (parity: rows)
  kHalfOfPairs,      // gpt-oss gate/up biases: every other element of the last dimension (parity)
};

struct TensorMap {
  std::string hf;    // "model.layers.0.self_attn.q_proj.weight"
  std::string gguf;  // "blk.0.attn_q.weight"
  Transform transform = Transform::kNone;
  int heads = 0;  // kInterleaveHeads
  bool optional = false;
  // Mixture of experts: HF stores each expert's matrix apart (HF is the
  // first of them); GGUF stacks them in this order into one 3-D tensor.
  std::vector<std::string> stacked;
  // kMxfp4, kHalfOfPairs: -1 all rows, 0 the even ones (gate), 1 the odd (up).
  int parity = -1;
};

// A tensor GGUF holds that HF computes from config.json (llama 3 rope factors).
struct ComputedTensor {
  std::string name;
  std::vector<float> values;
};

struct ArchPlan {
  std::string name;  // GGUF general.architecture
  std::vector<std::pair<std::string, gguf::Value>> metadata;
  std::string embedding;  // HF name of the token embedding
  std::vector<TensorMap> tensors;
  std::vector<ComputedTensor> computed;
};

// Supported model_type values: llama, mistral, qwen2, qwen3, qwen3_moe,
// gemma3_text (and gemma3 with a text_config), gpt_oss (MXFP4 experts). HAS_TENSOR tells which optional tensors
// the folder stores (an untied output, biases) and the name prefix in use.
Result<ArchPlan> read_hf_config(const nlohmann::json& cfg, const std::function<bool(const std::string&)>& has_tensor);

// Row permutation of kInterleaveHeads, ROWS rows in HEADS heads: out row
// (h, j, k) = in row (h, k, j) for j < rows / heads / 2, k < 2. Where row
// FROM goes, and the permutation of whole rows of ROW_BYTES.
uint64_t interleaved_row(uint64_t from, uint64_t rows, uint64_t heads);
void interleave_head_rows(const uint8_t* in, uint8_t* out, uint64_t rows, size_t row_bytes, size_t heads);

}  // namespace tandem::hf
