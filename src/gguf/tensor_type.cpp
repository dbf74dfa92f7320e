#include "gguf/tensor_type.h"

#include <array>
#include <cctype>
#include <string>

namespace tandem::gguf {
namespace {

constexpr std::array kTypes = {
    TypeInfo{TensorType::F32, "f32", 1, 4},
    TypeInfo{TensorType::F16, "f16", 1, 2},
    TypeInfo{TensorType::Q4_0, "q4_0", 32, 18},
    TypeInfo{TensorType::Q4_1, "q4_1", 32, 20},
    TypeInfo{TensorType::Q5_0, "q5_0", 32, 22},
    TypeInfo{TensorType::Q5_1, "q5_1", 32, 24},
    TypeInfo{TensorType::Q8_0, "q8_0", 32, 34},
    TypeInfo{TensorType::Q8_1, "q8_1", 32, 36},
    TypeInfo{TensorType::Q2_K, "q2_k", 256, 84},
    TypeInfo{TensorType::Q3_K, "q3_k", 256, 110},
    TypeInfo{TensorType::Q4_K, "q4_k", 256, 144},
    TypeInfo{TensorType::Q5_K, "q5_k", 256, 176},
    TypeInfo{TensorType::Q6_K, "q6_k", 256, 210},
    TypeInfo{TensorType::Q8_K, "q8_k", 256, 292},
    TypeInfo{TensorType::IQ2_XXS, "iq2_xxs", 256, 66},
    TypeInfo{TensorType::IQ2_XS, "iq2_xs", 256, 74},
    TypeInfo{TensorType::IQ3_XXS, "iq3_xxs", 256, 98},
    TypeInfo{TensorType::IQ1_S, "iq1_s", 256, 50},
    TypeInfo{TensorType::IQ4_NL, "iq4_nl", 32, 18},
    TypeInfo{TensorType::IQ3_S, "iq3_s", 256, 110},
    TypeInfo{TensorType::IQ2_S, "iq2_s", 256, 82},
    TypeInfo{TensorType::IQ4_XS, "iq4_xs", 256, 136},
    TypeInfo{TensorType::I8, "i8", 1, 1},
    TypeInfo{TensorType::I16, "i16", 1, 2},
    TypeInfo{TensorType::I32, "i32", 1, 4},
    TypeInfo{TensorType::I64, "i64", 1, 8},
    TypeInfo{TensorType::F64, "f64", 1, 8},
    TypeInfo{TensorType::IQ1_M, "iq1_m", 256, 56},
    TypeInfo{TensorType::BF16, "bf16", 1, 2},
    TypeInfo{TensorType::TQ1_0, "tq1_0", 256, 54},
    TypeInfo{TensorType::TQ2_0, "tq2_0", 256, 66},
    TypeInfo{TensorType::MXFP4, "mxfp4", 32, 17},
};

}  // namespace

std::optional<TypeInfo> type_info(uint32_t raw_type) {
  for (const auto& t : kTypes) {
    if (static_cast<uint32_t>(t.type) == raw_type) return t;
  }
  return std::nullopt;
}

TypeInfo type_info(TensorType type) { return *type_info(static_cast<uint32_t>(type)); }

std::string_view type_name(TensorType type) { return type_info(type).name; }

std::optional<TensorType> parse_type(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& t : kTypes) {
    if (t.name == lower) return t.type;
  }
  return std::nullopt;
}

Result<uint64_t> row_bytes(TensorType type, uint64_t n) {
  const TypeInfo info = type_info(type);
  if (n % info.block_size != 0) {
    return Status::errorf("{} elements is not a multiple of the {} block size {}", n, info.name, info.block_size);
  }
  const uint64_t blocks = n / info.block_size;
  if (blocks > UINT64_MAX / info.block_bytes) return Status::errorf("size of {} x {} overflows", n, info.name);
  return blocks * info.block_bytes;
}

}  // namespace tandem::gguf
