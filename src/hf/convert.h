// tandem convert: any model tandem loads (a GGUF file, a Hugging Face or
// MLX folder) written as a GGUF file other tools read too, optionally
// requantized; or as a Hugging Face / MLX folder (folder_writer.h).
#pragma once

#include "core/status.h"
#include "gguf/reader.h"
#include "kernels/matmul.h"

#include <functional>
#include <optional>
#include <string>

namespace tandem::hf {

struct GgufConvertOptions {
  // The matrices' type; nullopt keeps each as it is, except MLX matrices
  // (block format + group offsets, which GGUF readers do not know): those
  // become Q8_0. Rows that are not whole blocks of the type fall back
  // (gguf::fit_type). Norms, biases and routers stay as they are.
  std::optional<gguf::TensorType> type;
  std::function<void(size_t done, size_t total, const std::string& tensor)> progress;
};

// Tensor T of F as a matrix of rows of dims[0] (a 3-D stack of experts: all
// their rows), with its group offsets when F has "<name>.offsets" (an
// MLX-quantized folder). An error when tandem cannot decode T's type or
// the offsets do not fit it (F32, one row per row, groups of a multiple
// of 32 columns).
Result<kernels::Matrix> matrix_view(const gguf::GgufFile& f, const gguf::TensorInfo& t);

// Writes SRC to PATH (atomically). Returns how many matrices were requantized.
Result<size_t> convert_to_gguf(const gguf::GgufFile& src, const std::string& path, const GgufConvertOptions& options);

}  // namespace tandem::hf
