#include "gguf/reader.h"

#include "gguf/writer.h"

#include <cstring>
#include <limits>

namespace tandem::gguf {

// Nesting limit for arrays of arrays: real files use at most 1 level; a
// limit keeps a hostile file from exhausting the stack.
constexpr int kMaxArrayDepth = 8;

// A bounds-checked cursor over the file bytes.
class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> b) : b_(b) {}
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return b_.size() - pos_; }

  template <typename T>
  Status read(T* out, const char* what) {
    if (remaining() < sizeof(T)) {
      return Status::errorf("file truncated at byte {} while reading {}", pos_, what);
    }
    std::memcpy(out, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return {};
  }

  Status read_string(std::string* out, const char* what) {
    uint64_t len = 0;
    TANDEM_RETURN_IF_ERROR(read(&len, what));
    if (len > remaining()) {
      return Status::errorf("{} length {} at byte {} runs past the end of the file ({} bytes left)", what, len,
                            pos_ - 8, remaining());
    }
    out->assign(reinterpret_cast<const char*>(b_.data() + pos_), len);
    pos_ += len;
    return {};
  }

 private:
  std::span<const uint8_t> b_;
  uint64_t pos_ = 0;
};

class Parser {
 public:
  Parser(std::span<const uint8_t> bytes, GgufFile* file) : cur_(bytes), file_(file) {}

  // PLACE: point tensors into the bytes (a header alone has none to point at).
  Status run(bool place = true) {
    TANDEM_RETURN_IF_ERROR(read_header());
    TANDEM_RETURN_IF_ERROR(read_metadata());
    TANDEM_RETURN_IF_ERROR(read_alignment());
    TANDEM_RETURN_IF_ERROR(read_tensor_infos());
    if (!place) {
      file_->data_offset_ = file_->bytes_.size();
      return {};
    }
    return place_tensors();
  }

 private:
  Status read_header() {
    uint32_t magic = 0;
    TANDEM_RETURN_IF_ERROR(cur_.read(&magic, "magic"));
    if (std::memcmp(&magic, "GGUF", 4) != 0) return Status::error("not a GGUF file (bad magic)");
    TANDEM_RETURN_IF_ERROR(cur_.read(&file_->version_, "version"));
    const uint32_t v = file_->version_;
    if (v == 1) return Status::error("GGUF version 1 is not supported (only 2 and 3)");
    if (v == 0x02000000u || v == 0x03000000u) return Status::error("big-endian GGUF files are not supported");
    if (v != 2 && v != 3) return Status::errorf("unsupported GGUF version {} (only 2 and 3)", v);
    TANDEM_RETURN_IF_ERROR(cur_.read(&n_tensors_, "tensor count"));
    TANDEM_RETURN_IF_ERROR(cur_.read(&n_kv_, "metadata count"));
    // Each key-value takes at least 8 (key length) + 4 (type) + 1 bytes and
    // each tensor info at least 8 + 4 + 4 + 8: counts beyond that are lies.
    if (n_kv_ > cur_.remaining() / 13) {
      return Status::errorf("metadata count {} is larger than the file can hold", n_kv_);
    }
    if (n_tensors_ > cur_.remaining() / 24) {
      return Status::errorf("tensor count {} is larger than the file can hold", n_tensors_);
    }
    return {};
  }

  Status read_metadata() {
    file_->kvs_.reserve(n_kv_);
    for (uint64_t k = 0; k < n_kv_; ++k) {
      KeyValue kv;
      TANDEM_RETURN_IF_ERROR(cur_.read_string(&kv.key, "metadata key"));
      if (kv.key.empty()) return Status::errorf("metadata entry {} has an empty key", k);
      uint32_t raw_type = 0;
      TANDEM_RETURN_IF_ERROR(cur_.read(&raw_type, "metadata value type"));
      Status st = read_value(raw_type, &kv.value, 0);
      if (!st.ok()) return st.with_context(fmt::format("metadata key '{}'", kv.key));
      file_->kvs_.push_back(std::move(kv));
    }
    for (size_t k = 0; k < file_->kvs_.size(); ++k) {
      if (!file_->kv_index_.emplace(file_->kvs_[k].key, k).second) {
        return Status::errorf("duplicate metadata key '{}'", file_->kvs_[k].key);
      }
    }
    return {};
  }

  Status read_value(uint32_t raw_type, Value* out, int depth) {
    if (!is_valid_value_type(raw_type)) return Status::errorf("unknown value type {}", raw_type);
    const auto type = static_cast<ValueType>(raw_type);
    out->type = type;
    switch (type) {
      case ValueType::STRING: return cur_.read_string(&out->str, "string value");
      case ValueType::ARRAY: {
        Array arr;
        TANDEM_RETURN_IF_ERROR(read_array(&arr, depth + 1));
        out->arr = std::make_shared<const Array>(std::move(arr));
        return {};
      }
      case ValueType::FLOAT32: {
        float f = 0;
        TANDEM_RETURN_IF_ERROR(cur_.read(&f, "f32 value"));
        out->f = f;
        return {};
      }
      case ValueType::FLOAT64: return cur_.read(&out->f, "f64 value");
      default: return read_integer(type, &out->i);
    }
  }

  Status read_integer(ValueType type, int64_t* out) {
    switch (type) {
      case ValueType::UINT8: return read_as<uint8_t>(out);
      case ValueType::INT8: return read_as<int8_t>(out);
      case ValueType::UINT16: return read_as<uint16_t>(out);
      case ValueType::INT16: return read_as<int16_t>(out);
      case ValueType::UINT32: return read_as<uint32_t>(out);
      case ValueType::INT32: return read_as<int32_t>(out);
      case ValueType::UINT64: return read_as<uint64_t>(out);
      case ValueType::INT64: return read_as<int64_t>(out);
      case ValueType::BOOL: {
        uint8_t b = 0;
        TANDEM_RETURN_IF_ERROR(cur_.read(&b, "bool value"));
        if (b > 1) return Status::errorf("bool value {} is neither 0 nor 1", b);
        *out = b;
        return {};
      }
      default: return Status::errorf("{} is not an integer type", value_type_name(type));
    }
  }

  template <typename T>
  Status read_as(int64_t* out) {
    T v{};
    TANDEM_RETURN_IF_ERROR(cur_.read(&v, "integer value"));
    *out = static_cast<int64_t>(v);  // UINT64 is kept bit-cast
    return {};
  }

  Status read_array(Array* arr, int depth) {
    if (depth > kMaxArrayDepth) return Status::errorf("arrays nested deeper than {}", kMaxArrayDepth);
    uint32_t raw_elem = 0;
    uint64_t count = 0;
    TANDEM_RETURN_IF_ERROR(cur_.read(&raw_elem, "array element type"));
    TANDEM_RETURN_IF_ERROR(cur_.read(&count, "array length"));
    if (!is_valid_value_type(raw_elem)) return Status::errorf("unknown array element type {}", raw_elem);
    arr->elem_type = static_cast<ValueType>(raw_elem);
    const size_t min_elem = arr->elem_type == ValueType::STRING  ? 8
                            : arr->elem_type == ValueType::ARRAY ? 12
                                                                 : scalar_size(arr->elem_type);
    if (count > cur_.remaining() / min_elem) {
      return Status::errorf("array of {} {} at byte {} is larger than the rest of the file", count,
                            value_type_name(arr->elem_type), cur_.pos() - 12);
    }
    switch (arr->elem_type) {
      case ValueType::STRING:
        arr->strings.resize(count);
        for (auto& s : arr->strings) TANDEM_RETURN_IF_ERROR(cur_.read_string(&s, "array string"));
        return {};
      case ValueType::ARRAY:
        arr->arrays.resize(count);
        for (auto& v : arr->arrays) TANDEM_RETURN_IF_ERROR(read_value(raw_elem, &v, depth));
        return {};
      case ValueType::FLOAT32:
        arr->floats.resize(count);
        for (auto& f : arr->floats) {
          float x = 0;
          TANDEM_RETURN_IF_ERROR(cur_.read(&x, "array f32"));
          f = x;
        }
        return {};
      case ValueType::FLOAT64:
        arr->floats.resize(count);
        for (auto& f : arr->floats) TANDEM_RETURN_IF_ERROR(cur_.read(&f, "array f64"));
        return {};
      default:
        arr->ints.resize(count);
        for (auto& v : arr->ints) TANDEM_RETURN_IF_ERROR(read_integer(arr->elem_type, &v));
        return {};
    }
  }

  Status read_alignment() {
    const Value* v = file_->find("general.alignment");
    if (v == nullptr) return {};
    auto a = v->as_uint();
    if (v->type != ValueType::UINT32 || !a || *a == 0 || (*a & (*a - 1)) != 0) {
      return Status::errorf("general.alignment must be a power-of-two u32, got {}", v->describe());
    }
    file_->alignment_ = static_cast<uint32_t>(*a);
    return {};
  }

  Status read_tensor_infos() {
    file_->tensors_.reserve(n_tensors_);
    for (uint64_t t = 0; t < n_tensors_; ++t) {
      TensorInfo info;
      TANDEM_RETURN_IF_ERROR(cur_.read_string(&info.name, "tensor name"));
      Status st = read_tensor_info(&info);
      if (!st.ok()) return st.with_context(fmt::format("tensor {} '{}'", t, info.name));
      file_->tensors_.push_back(std::move(info));
    }
    for (size_t t = 0; t < file_->tensors_.size(); ++t) {
      if (!file_->tensor_index_.emplace(file_->tensors_[t].name, t).second) {
        return Status::errorf("duplicate tensor name '{}'", file_->tensors_[t].name);
      }
    }
    return {};
  }

  Status read_tensor_info(TensorInfo* info) {
    uint32_t n_dims = 0;
    TANDEM_RETURN_IF_ERROR(cur_.read(&n_dims, "tensor dimension count"));
    if (n_dims == 0 || n_dims > kMaxDims) return Status::errorf("has {} dimensions (1..{} allowed)", n_dims, kMaxDims);
    info->dims.resize(n_dims);
    uint64_t n = 1;
    for (auto& d : info->dims) {
      TANDEM_RETURN_IF_ERROR(cur_.read(&d, "tensor dimension"));
      if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || (d != 0 && n > INT64_MAX / d)) {
        return Status::errorf("shape {} overflows", info->shape_string());
      }
      n *= d;
    }
    info->n_elements = n;
    uint32_t raw_type = 0;
    TANDEM_RETURN_IF_ERROR(cur_.read(&raw_type, "tensor type"));
    auto ti = type_info(raw_type);
    if (!ti) return Status::errorf("has unknown tensor type id {}", raw_type);
    info->type = ti->type;
    if (info->dims[0] % ti->block_size != 0) {
      return Status::errorf("row length {} is not a multiple of the {} block size {}", info->dims[0], ti->name,
                            ti->block_size);
    }
    auto bytes = row_bytes(info->type, n);
    if (!bytes) return bytes.status();
    info->n_bytes = *bytes;
    return cur_.read(&info->offset, "tensor offset");
  }

  // The data section starts at the first aligned byte after the tensor
  // infos; every tensor must lie inside the file.
  Status place_tensors() {
    const uint64_t align = file_->alignment_;
    const uint64_t end_of_infos = cur_.pos();
    const uint64_t size = file_->bytes_.size();
    const uint64_t data_offset = (end_of_infos + align - 1) / align * align;
    file_->data_offset_ = data_offset;
    file_->data_size_ = size > data_offset ? size - data_offset : 0;
    if (file_->tensors_.empty()) return {};
    if (data_offset > size) return Status::errorf("file truncated before its data section (byte {})", data_offset);
    const uint64_t data_size = size - data_offset;
    for (auto& t : file_->tensors_) {
      if (t.offset % align != 0) {
        return Status::errorf("tensor '{}' offset {} is not aligned to {}", t.name, t.offset, align);
      }
      if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
        return Status::errorf("tensor '{}' ({} bytes at data offset {}) runs past the end of the file", t.name,
                              t.n_bytes, t.offset);
      }
      t.data = file_->bytes_.data() + data_offset + t.offset;
    }
    return {};
  }

  Cursor cur_;
  GgufFile* file_;
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
};

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (size_t k = 0; k < dims.size(); ++k) s += (k ? ", " : "") + std::to_string(dims[k]);
  return s + "]";
}

Result<GgufFile> GgufFile::open(const std::string& path) {
  auto map = MappedFile::open(path);
  if (!map) return map.status();
  auto bytes = map->bytes();
  auto file = parse(bytes);
  if (!file) return file.status().with_context(path);
  file->map_ = std::move(*map);  // the mapping's address does not change
  return file;
}

Result<GgufFile> GgufFile::parse(std::span<const uint8_t> bytes) {
  GgufFile file;
  file.bytes_ = bytes;
  Parser parser(bytes, &file);
  TANDEM_RETURN_IF_ERROR(parser.run());
  return file;
}

Result<GgufFile> GgufFile::assemble(const std::vector<std::pair<std::string, Value>>& metadata,
                                   const std::vector<TensorSource>& tensors, TensorStorage storage) {
  GgufWriter w;
  for (const auto& [key, value] : metadata) w.set(key, value);
  for (const auto& t : tensors) {
    TANDEM_RETURN_IF_ERROR(w.add_tensor(t.name, t.type, t.dims, [](std::span<uint8_t>) { return Status(); }));
  }
  GgufFile file;
  file.header_ = w.header_bytes();
  file.bytes_ = file.header_;
  Parser parser(file.bytes_, &file);
  TANDEM_RETURN_IF_ERROR(parser.run(/*place=*/false));
  for (size_t i = 0; i < tensors.size(); ++i) {
    TensorInfo& info = file.tensors_[i];
    if (info.n_bytes != tensors[i].data.size()) {
      return Status::errorf("tensor '{}': {} bytes for {} {} (needs {})", info.name, tensors[i].data.size(),
                            type_name(info.type), info.shape_string(), info.n_bytes);
    }
    info.data = tensors[i].data.data();
  }
  file.storage_ = std::make_unique<TensorStorage>(std::move(storage));
  for (const auto& f : file.storage_->files) file.data_size_ += f.size();
  for (const auto& b : file.storage_->buffers) file.data_size_ += b.size();
  return file;
}

Status GgufFile::make_resident(const std::function<void(uint64_t done, uint64_t total)>& progress) {
  if (!storage_) return map_.make_resident(progress);
  for (auto& f : storage_->files) TANDEM_RETURN_IF_ERROR(f.make_resident(progress));
  return {};
}

Status GgufFile::set_writable(bool on) {
  if (!storage_) return map_.set_writable(on);
  for (auto& f : storage_->files) TANDEM_RETURN_IF_ERROR(f.set_writable(on));
  return {};
}

void GgufFile::page_in(const std::function<void(uint64_t done, uint64_t total)>& progress) const {
  if (!storage_) return tandem::page_in(bytes_.subspan(static_cast<size_t>(data_offset_)), progress);
  for (const auto& f : storage_->files) tandem::page_in(f.bytes(), progress);
  for (const auto& b : storage_->buffers) tandem::page_in({b.data(), b.size()}, progress);
}

const Value* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr || v->as_string() == nullptr) return std::nullopt;
  return v->str;
}

std::optional<uint64_t> GgufFile::get_uint(std::string_view key) const {
  const Value* v = find(key);
  return v == nullptr ? std::nullopt : v->as_uint();
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const Value* v = find(key);
  return v == nullptr ? std::nullopt : v->as_float();
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const Value* v = find(key);
  return v == nullptr ? std::nullopt : v->as_bool();
}

const Array* GgufFile::get_array(std::string_view key) const {
  const Value* v = find(key);
  return v == nullptr ? nullptr : v->as_array();
}

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace tandem::gguf
