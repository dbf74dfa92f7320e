// GGUF v2/v3 reader. The file is memory-mapped; metadata is parsed into
// owned values and tensors are zero-copy views into the map.
//
// Files are untrusted input: every count, length, offset and size is checked
// against the file before use, and a bad file gives an error naming the
// problem, never a crash or an out-of-bounds read.
//
// Layout (little-endian):
//   "GGUF" u32 version  u64 n_tensors  u64 n_kv
//   n_kv x   { string key, u32 value_type, value }
//   n_tensors x { string name, u32 n_dims, u64 dims[n_dims], u32 type, u64 offset }
//   padding to `general.alignment` (default 32)
//   tensor data; each tensor at data_start + offset (offset aligned)
// string = u64 length + bytes (no terminator); array = u32 elem type, u64 count, elems.
#pragma once

#include "core/huge_buffer.h"
#include "core/mapped_file.h"
#include "core/status.h"
#include "gguf/tensor_type.h"
#include "gguf/value.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tandem::gguf {

inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr uint32_t kMaxDims = 4;

struct TensorInfo {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<uint64_t> dims;  // dims[0] is the contiguous (innermost) one, as GGML's ne[]
  uint64_t offset = 0;         // from the start of the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // view into the mapped file

  uint64_t rows() const { return dims.empty() || dims[0] == 0 ? 0 : n_elements / dims[0]; }
  std::string shape_string() const;  // "[896, 151936]"
};

struct KeyValue {
  std::string key;
  Value value;
};

// A tensor of a model assembled in memory: its bytes stay where DATA points.
struct TensorSource {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<uint64_t> dims;  // GGML order
  std::span<const uint8_t> data;
};

// What keeps an assembled model's tensor bytes alive: the mapped files they
// are views into and the buffers of tensors converted at load.
struct TensorStorage {
  std::vector<MappedFile> files;
  std::vector<HugeBuffer> buffers;
};

class GgufFile {
 public:
  // Maps and parses PATH.
  static Result<GgufFile> open(const std::string& path);
  // Parses BYTES, which the caller keeps alive as long as the result.
  static Result<GgufFile> parse(std::span<const uint8_t> bytes);
  // A model that is not one GGUF file (hf/ reads Hugging Face folders into
  // one): METADATA and TENSORS as a GGUF file would hold them, their bytes
  // kept alive by STORAGE. header_bytes() is the GGUF header such a file
  // would start with; errors name a tensor whose bytes do not fit its shape.
  static Result<GgufFile> assemble(const std::vector<std::pair<std::string, Value>>& metadata,
                                   const std::vector<TensorSource>& tensors, TensorStorage storage);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return data_offset_ + data_size_; }
  // Everything before the tensor data: header, metadata, tensor infos.
  std::span<const uint8_t> header_bytes() const { return bytes_.first(static_cast<size_t>(data_offset_)); }
  // Bytes of tensor data (of an assembled model: of its files and buffers).
  uint64_t tensor_data_size() const { return data_size_; }
  // The tensors' bytes on 2 MiB pages at the same addresses (MappedFile::make_resident
  // of the file, or of each file of an assembled model).
  Status make_resident(const std::function<void(uint64_t done, uint64_t total)>& progress);
  // After make_resident(): the tensors' bytes writable or read-only again
  // (MappedFile::set_writable; an assembled model's buffers always are).
  Status set_writable(bool on);
  // Reads the tensors' bytes ahead of use (core/mapped_file.h page_in).
  void page_in(const std::function<void(uint64_t done, uint64_t total)>& progress) const;
  bool assembled() const { return storage_ != nullptr; }

  const std::vector<KeyValue>& metadata() const { return kvs_; }
  const Value* find(std::string_view key) const;
  // Typed look-ups: nullopt when the key is missing or holds another type.
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<uint64_t> get_uint(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  const Array* get_array(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

 private:
  MappedFile map_;
  std::span<const uint8_t> bytes_;  // the file, or an assembled model's header
  std::unique_ptr<TensorStorage> storage_;  // assembled models
  std::vector<uint8_t> header_;             // assembled models: bytes_ views it
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  uint64_t data_size_ = 0;
  std::vector<KeyValue> kvs_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> kv_index_;      // keys view kvs_ strings
  std::unordered_map<std::string_view, size_t> tensor_index_;  // names view tensors_ strings

  friend class Parser;
};

}  // namespace tandem::gguf
