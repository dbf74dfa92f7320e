// Hugging Face model folders, served without a conversion step:
//
//   config.json                      architecture and shape
//   tokenizer.json (+ tokenizer_config.json: special tokens, chat template)
//   model.safetensors, or shards model-0000N-of-0000M.safetensors listed in
//   model.safetensors.index.json ("weight_map": tensor -> shard)
//
// The folder becomes a gguf::GgufFile (GgufFile::assemble) with the metadata
// and tensor names llama.cpp's converter would write, so everything past
// loading (config, weights, tokenizer, templates) has one code path. F32,
// F16 and BF16 matrices stay zero-copy views into the mapped shards; tensors
// whose layout differs are converted once at load into one buffer:
// - llama Q/K rows: HF keeps each head's halves apart for the rotate-half
//   RoPE, GGUF "llama" interleaves them (row (h, j, half) <- (h, half, j));
// - gemma3 norm weights: HF stores w, the model multiplies by 1 + w (GGUF
//   stores 1 + w);
// - MLX affine-quantized matrices (mlx.h).
#pragma once

#include "core/status.h"
#include "gguf/reader.h"

#include <string>
#include <utility>
#include <vector>

namespace tandem::hf {

// A folder read into GGUF terms: metadata, tensors (views into STORAGE).
struct FolderModel {
  std::vector<std::pair<std::string, gguf::Value>> metadata;
  std::vector<gguf::TensorSource> tensors;
  gguf::TensorStorage storage;
  std::string summary;  // "llama, 2 layers, F32 safetensors (1 file)"
};

// Metadata key of an assembled folder holding FolderModel::summary (shown
// by serve and inspect; convert does not copy it).
inline constexpr const char* kSourceKey = "tandem.source";

// True when PATH is a directory (a model folder or not: read_folder says why not).
bool is_folder(const std::string& path);

// Reads DIR. Errors say in one line what is missing or unsupported
// (architecture, tokenizer, dtype, quantization) and name the file and tensor.
Result<FolderModel> read_folder(const std::string& dir);

// A GGUF file, or a Hugging Face folder assembled into one.
Result<gguf::GgufFile> open_model(const std::string& path);

}  // namespace tandem::hf
