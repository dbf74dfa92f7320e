// tandem's own Hugging Face folder writer: a GGUF model as the folder
// mlx-lm or transformers would save (config.json, tokenizer.json,
// tokenizer_config.json, safetensors), in F32, BF16, or MLX affine 4/8-bit.
// It is the inverse of folder.h, so tests can take a model with known
// outputs (the tiny goldens) through a folder of any layout, and it makes
// the MLX-quantized folders the MLX loader is tested on.
//
// The tokenizer is written as an HF BPE tokenizer.json: byte-level ones
// with their pre-tokenizer regexes; SentencePiece ones with the merges
// derived from the scores (each token's splits into two tokens, by the
// token's score, as Hugging Face's SentencePiece converter does).
#pragma once

#include "core/status.h"
#include "gguf/reader.h"

#include <string>

namespace tandem::hf {

struct FolderWriteOptions {
  enum class Floats { kF32, kBF16 } floats = Floats::kF32;  // matrices and norms
  int mlx_bits = 0;     // 4 or 8: MLX-quantize every matrix and the embedding
  int mlx_group = 64;   // 32, 64, 128
  int shards = 1;       // > 1: model-0000N-of-0000M.safetensors + index
};

// Writes SRC (llama, qwen2, qwen3 or gemma3) into DIR (created if needed).
Status write_folder(const gguf::GgufFile& src, const std::string& dir, const FolderWriteOptions& options);

}  // namespace tandem::hf
