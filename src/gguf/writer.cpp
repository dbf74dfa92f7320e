#include "gguf/writer.h"

#include "gguf/reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace tandem::gguf {
namespace {

class ByteSink {
 public:
  template <typename T>
  void put(T v) {
    append(&v, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    append(s.data(), s.size());
  }
  // resize + memcpy rather than insert: GCC 12 reports a false
  // stringop-overflow for small inserts into a vector<uint8_t>.
  void append(const void* p, size_t n) {
    if (n == 0) return;
    const size_t at = out_.size();
    out_.resize(at + n);
    std::memcpy(out_.data() + at, p, n);
  }
  void put_value(const Value& v) {
    switch (v.type) {
      case ValueType::STRING: put_string(v.str); return;
      case ValueType::ARRAY: put_array(*v.arr); return;
      case ValueType::FLOAT32: put<float>(static_cast<float>(v.f)); return;
      case ValueType::FLOAT64: put<double>(v.f); return;
      default: put_integer(v.type, v.i); return;
    }
  }
  void put_integer(ValueType type, int64_t i) {
    switch (type) {
      case ValueType::UINT8:
      case ValueType::BOOL: put<uint8_t>(static_cast<uint8_t>(i)); return;
      case ValueType::INT8: put<int8_t>(static_cast<int8_t>(i)); return;
      case ValueType::UINT16: put<uint16_t>(static_cast<uint16_t>(i)); return;
      case ValueType::INT16: put<int16_t>(static_cast<int16_t>(i)); return;
      case ValueType::UINT32: put<uint32_t>(static_cast<uint32_t>(i)); return;
      case ValueType::INT32: put<int32_t>(static_cast<int32_t>(i)); return;
      default: put<int64_t>(i); return;  // UINT64 is stored bit-cast
    }
  }
  void put_array(const Array& a) {
    put<uint32_t>(static_cast<uint32_t>(a.elem_type));
    put<uint64_t>(a.size());
    switch (a.elem_type) {
      case ValueType::STRING:
        for (const auto& s : a.strings) put_string(s);
        return;
      case ValueType::ARRAY:
        for (const auto& v : a.arrays) put_array(*v.arr);
        return;
      case ValueType::FLOAT32:
        for (double f : a.floats) put<float>(static_cast<float>(f));
        return;
      case ValueType::FLOAT64:
        for (double f : a.floats) put<double>(f);
        return;
      default:
        for (int64_t i : a.ints) put_integer(a.elem_type, i);
        return;
    }
  }
  void pad_to(uint64_t alignment) {
    while (out_.size() % alignment != 0) out_.push_back(0);
  }
  std::vector<uint8_t>& bytes() { return out_; }

 private:
  std::vector<uint8_t> out_;
};

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

void GgufWriter::set(const std::string& key, Value value) {
  if (key == "general.alignment") {
    if (auto a = value.as_uint()) alignment_ = static_cast<uint32_t>(*a);
  }
  for (auto& kv : kvs_) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  kvs_.emplace_back(key, std::move(value));
}

void GgufWriter::set_alignment(uint32_t alignment) { set("general.alignment", Value::u32(alignment)); }

Status GgufWriter::check_tensor(const std::string& name, TensorType type, const std::vector<uint64_t>& dims,
                                uint64_t* n_bytes) const {
  if (name.empty()) return Status::error("tensor name is empty");
  for (const auto& t : tensors_) {
    if (t.name == name) return Status::errorf("duplicate tensor name '{}'", name);
  }
  if (dims.empty() || dims.size() > kMaxDims) {
    return Status::errorf("tensor '{}' has {} dimensions (1..{} allowed)", name, dims.size(), kMaxDims);
  }
  uint64_t n = 1;
  for (uint64_t d : dims) {
    if (d != 0 && n > INT64_MAX / d) return Status::errorf("tensor '{}' shape overflows", name);
    n *= d;
  }
  if (dims[0] % type_info(type).block_size != 0) {
    return Status::errorf("tensor '{}' row length {} is not a multiple of the {} block size", name, dims[0],
                          type_name(type));
  }
  auto bytes = row_bytes(type, n);
  if (!bytes) return bytes.status().with_context(name);
  *n_bytes = *bytes;
  return {};
}

Status GgufWriter::add_tensor(std::string name, TensorType type, std::vector<uint64_t> dims,
                              std::vector<uint8_t> data) {
  uint64_t n_bytes = 0;
  TANDEM_RETURN_IF_ERROR(check_tensor(name, type, dims, &n_bytes));
  if (data.size() != n_bytes) {
    return Status::errorf("tensor '{}' needs {} bytes, got {}", name, n_bytes, data.size());
  }
  tensors_.push_back({std::move(name), type, std::move(dims), n_bytes, 0, std::move(data), nullptr});
  return {};
}

Status GgufWriter::add_tensor(std::string name, TensorType type, std::vector<uint64_t> dims, FillFn fill) {
  uint64_t n_bytes = 0;
  TANDEM_RETURN_IF_ERROR(check_tensor(name, type, dims, &n_bytes));
  tensors_.push_back({std::move(name), type, std::move(dims), n_bytes, 0, {}, std::move(fill)});
  return {};
}

std::vector<uint8_t> GgufWriter::header_bytes() const {
  ByteSink s;
  s.put<uint32_t>(0x46554747u);  // "GGUF" little-endian
  s.put<uint32_t>(3);
  s.put<uint64_t>(tensors_.size());
  s.put<uint64_t>(kvs_.size());
  for (const auto& [key, value] : kvs_) {
    s.put_string(key);
    s.put<uint32_t>(static_cast<uint32_t>(value.type));
    s.put_value(value);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    s.put_string(t.name);
    s.put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) s.put<uint64_t>(d);
    s.put<uint32_t>(static_cast<uint32_t>(t.type));
    s.put<uint64_t>(offset);
    offset = align_up(offset + t.n_bytes, alignment_);
  }
  s.pad_to(alignment_);
  return std::move(s.bytes());
}

Status GgufWriter::write_to(const std::function<Status(std::span<const uint8_t>)>& sink) const {
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0) {
    return Status::errorf("alignment {} is not a power of two", alignment_);
  }
  TANDEM_RETURN_IF_ERROR(sink(header_bytes()));
  std::vector<uint8_t> buffer;
  const std::vector<uint8_t> zeros(alignment_, 0);
  for (const auto& t : tensors_) {
    std::span<const uint8_t> data = t.data;
    if (t.fill) {
      buffer.assign(t.n_bytes, 0);
      Status st = t.fill(buffer);
      if (!st.ok()) return st.with_context(t.name);
      data = buffer;
    }
    TANDEM_RETURN_IF_ERROR(sink(data));
    const uint64_t pad = align_up(t.n_bytes, alignment_) - t.n_bytes;
    TANDEM_RETURN_IF_ERROR(sink(std::span<const uint8_t>(zeros.data(), pad)));
  }
  return {};
}

Result<std::vector<uint8_t>> GgufWriter::to_bytes() const {
  std::vector<uint8_t> out;
  Status st = write_to([&](std::span<const uint8_t> b) {
    out.insert(out.end(), b.begin(), b.end());
    return Status();
  });
  if (!st.ok()) return st;
  return out;
}

Status GgufWriter::write(const std::string& path) const {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return Status::errorf("cannot create {}: {}", tmp, std::strerror(errno));
  Status st = write_to([&](std::span<const uint8_t> b) {
    if (!b.empty() && std::fwrite(b.data(), 1, b.size(), f) != b.size()) {
      return Status::errorf("cannot write {}: {}", tmp, std::strerror(errno));
    }
    return Status();
  });
  if (st.ok() && (std::fflush(f) != 0 || fsync(fileno(f)) != 0)) {
    st = Status::errorf("cannot flush {}: {}", tmp, std::strerror(errno));
  }
  if (std::fclose(f) != 0 && st.ok()) st = Status::errorf("cannot close {}: {}", tmp, std::strerror(errno));
  if (st.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    st = Status::errorf("cannot rename {} to {}: {}", tmp, path, std::strerror(errno));
  }
  if (!st.ok()) std::remove(tmp.c_str());
  return st;
}

}  // namespace tandem::gguf
