// GGUF v3 writer: metadata in insertion order, tensor infos, then aligned
// tensor data. Tensor bytes come from memory or from a callback that fills
// one tensor at a time, so writing a multi-GB model needs one tensor of RAM.
// The file is written to a temporary name, fsynced and renamed into place.
#pragma once

#include "core/status.h"
#include "gguf/tensor_type.h"
#include "gguf/value.h"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace tandem::gguf {

class GgufWriter {
 public:
  // Fills OUT (exactly the tensor's byte size) with the tensor's data.
  using FillFn = std::function<Status(std::span<uint8_t> out)>;

  // Sets KEY (replacing an earlier value, keeping its position).
  void set(const std::string& key, Value value);
  // general.alignment, also used for the layout (power of two).
  void set_alignment(uint32_t alignment);

  // Adds a tensor; dims[0] is the contiguous dimension (GGML order).
  Status add_tensor(std::string name, TensorType type, std::vector<uint64_t> dims, std::vector<uint8_t> data);
  Status add_tensor(std::string name, TensorType type, std::vector<uint64_t> dims, FillFn fill);

  // Writes the file to PATH (atomically).
  Status write(const std::string& path) const;
  // Serializes to memory (for tests and small files).
  Result<std::vector<uint8_t>> to_bytes() const;
  // The header alone (metadata, tensor infos, padding): what precedes the data.
  std::vector<uint8_t> header_bytes() const;

 private:
  struct PendingTensor {
    std::string name;
    TensorType type;
    std::vector<uint64_t> dims;
    uint64_t n_bytes = 0;
    uint64_t offset = 0;
    std::vector<uint8_t> data;  // used when fill is empty
    FillFn fill;
  };
  Status check_tensor(const std::string& name, TensorType type, const std::vector<uint64_t>& dims,
                      uint64_t* n_bytes) const;
  Status write_to(const std::function<Status(std::span<const uint8_t>)>& sink) const;

  uint32_t alignment_ = 32;
  std::vector<std::pair<std::string, Value>> kvs_;
  std::vector<PendingTensor> tensors_;
  uint64_t data_size_ = 0;
};

}  // namespace tandem::gguf
