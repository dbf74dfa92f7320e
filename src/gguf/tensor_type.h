// The GGML tensor types a GGUF file can hold: ids as stored in the file,
// block sizes and block byte counts. Every id GGML defines is known, so
// `tandem inspect` can describe any file; dequantization is available for
// the subset in quant.h.
#pragma once

#include "core/status.h"

#include <cstdint>
#include <optional>
#include <string_view>

namespace tandem::gguf {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

struct TypeInfo {
  TensorType type;
  std::string_view name;  // lower case, as llama.cpp prints it: "q4_k", "bf16"
  uint32_t block_size;    // elements per block
  uint32_t block_bytes;   // bytes per block
};

// Info for a raw type id read from a file; nullopt when the id is unknown.
std::optional<TypeInfo> type_info(uint32_t raw_type);
TypeInfo type_info(TensorType type);
std::string_view type_name(TensorType type);

// Parses a type name ("q4_k", "Q4_K", "f16"); nullopt when unknown.
std::optional<TensorType> parse_type(std::string_view name);

// Bytes of a row of N elements; an error when N is not a multiple of the
// block size. Overflow-checked.
Result<uint64_t> row_bytes(TensorType type, uint64_t n);

}  // namespace tandem::gguf
