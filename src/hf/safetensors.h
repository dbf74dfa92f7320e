// safetensors, the tensor file of Hugging Face checkpoints:
//
//   u64 little-endian N | N bytes of JSON header | data
//   header = {"<tensor>": {"dtype": "BF16", "shape": [rows, cols],
//                          "data_offsets": [begin, end]}, ...,
//             "__metadata__": {"<key>": "<string>", ...}}   (optional)
//
// Offsets count from the first byte after the header; shapes list the
// outermost dimension first (row-major). Files are untrusted input: the
// header length, the JSON, every dtype, shape and byte range are checked
// (shape x dtype size = the range, inside the data, no two tensors
// overlapping) and errors name the file and the tensor. Tensors are
// zero-copy views into the mapping.
#pragma once

#include "core/mapped_file.h"
#include "core/status.h"

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tandem::hf {

enum class Dtype { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU64, kU32, kU16, kU8, kBool, kF8E4M3, kF8E5M2 };

// "BF16" -> kBF16; false when the name is not a safetensors dtype.
bool parse_dtype(std::string_view name, Dtype* out);
std::string_view dtype_name(Dtype d);
uint64_t dtype_bytes(Dtype d);

struct StTensor {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<uint64_t> shape;  // outermost first
  uint64_t n_elements = 0;
  std::span<const uint8_t> data;

  std::string shape_string() const;  // "[151936, 1024]"
};

// Element I of an F32, F16 or BF16 tensor as f32.
float element_f32(const StTensor& t, uint64_t i);

// Largest header accepted (real ones are a few MB at most).
inline constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

class SafetensorsFile {
 public:
  // Maps and parses PATH.
  static Result<SafetensorsFile> open(const std::string& path);
  // Parses BYTES, which the caller keeps alive; NAME is used in errors.
  static Result<SafetensorsFile> parse(std::span<const uint8_t> bytes, const std::string& name);

  const std::string& name() const { return name_; }
  const std::vector<StTensor>& tensors() const { return tensors_; }
  const StTensor* find(std::string_view tensor) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  MappedFile& mapping() { return map_; }

 private:
  std::string name_;
  MappedFile map_;
  std::vector<StTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Writing (tests, MLX folders from tandem's own writer): tensors in the
// given order, each NAME with DTYPE and SHAPE over DATA (its exact size).
struct StWrite {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<uint64_t> shape;
  std::span<const uint8_t> data;
};
// The file's bytes: the header is padded with spaces to 8 bytes, as
// Hugging Face's writer does, so the data starts aligned.
Result<std::vector<uint8_t>> safetensors_bytes(const std::vector<StWrite>& tensors,
                                                const std::map<std::string, std::string>& metadata = {});
Status write_safetensors(const std::string& path, const std::vector<StWrite>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

}  // namespace tandem::hf
