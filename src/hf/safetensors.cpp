#include "hf/safetensors.h"

#include "core/fp16.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstring>

namespace tandem::hf {
namespace {

using json = nlohmann::json;

struct DtypeInfo {
  Dtype dtype;
  std::string_view name;
  uint64_t bytes;
};

constexpr std::array<DtypeInfo, 15> kDtypes = {{
    {Dtype::kF64, "F64", 8},
    {Dtype::kF32, "F32", 4},
    {Dtype::kF16, "F16", 2},
    {Dtype::kBF16, "BF16", 2},
    {Dtype::kI64, "I64", 8},
    {Dtype::kI32, "I32", 4},
    {Dtype::kI16, "I16", 2},
    {Dtype::kI8, "I8", 1},
    {Dtype::kU64, "U64", 8},
    {Dtype::kU32, "U32", 4},
    {Dtype::kU16, "U16", 2},
    {Dtype::kU8, "U8", 1},
    {Dtype::kBool, "BOOL", 1},
    {Dtype::kF8E4M3, "F8_E4M3", 1},
    {Dtype::kF8E5M2, "F8_E5M2", 1},
}};

// Tensors of more dimensions than this are refused (real ones have <= 5).
constexpr size_t kMaxRank = 8;

// One header entry NAME: ENTRY, checked against DATA_SIZE bytes of data.
// Sets T's fields but its data, and *BEGIN to its offset.
Status read_entry(const std::string& name, const json& entry, uint64_t data_size, StTensor* t, uint64_t* begin_out) {
  t->name = name;
  if (!entry.is_object()) return Status::errorf("tensor '{}': entry is not an object", name);
  const auto dtype = entry.find("dtype");
  if (dtype == entry.end() || !dtype->is_string()) return Status::errorf("tensor '{}': no dtype", name);
  if (!parse_dtype(dtype->get_ref<const std::string&>(), &t->dtype)) {
    return Status::errorf("tensor '{}': unknown dtype '{}'", name, dtype->get_ref<const std::string&>());
  }
  const auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array() || shape->size() > kMaxRank) {
    return Status::errorf("tensor '{}': shape is missing or not a list of at most {} sizes", name, kMaxRank);
  }
  uint64_t n = 1;
  for (const auto& d : *shape) {
    if (!d.is_number_unsigned()) return Status::errorf("tensor '{}': shape {} is not a list of sizes", name, shape->dump());
    const uint64_t v = d.get<uint64_t>();
    if (__builtin_mul_overflow(n, v, &n)) return Status::errorf("tensor '{}': shape {} overflows", name, shape->dump());
    t->shape.push_back(v);
  }
  t->n_elements = n;
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(n, dtype_bytes(t->dtype), &bytes)) {
    return Status::errorf("tensor '{}': shape {} overflows", name, shape->dump());
  }
  const auto offsets = entry.find("data_offsets");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned()) {
    return Status::errorf("tensor '{}': data_offsets is not [begin, end]", name);
  }
  const uint64_t begin = (*offsets)[0].get<uint64_t>(), end = (*offsets)[1].get<uint64_t>();
  if (begin > end || end > data_size) {
    return Status::errorf("tensor '{}': bytes [{}, {}) are outside the data ({} bytes)", name, begin, end, data_size);
  }
  if (end - begin != bytes) {
    return Status::errorf("tensor '{}': {} {} needs {} bytes, data_offsets give {}", name, dtype_name(t->dtype),
                          t->shape_string(), bytes, end - begin);
  }
  *begin_out = begin;
  return {};
}

}  // namespace

bool parse_dtype(std::string_view name, Dtype* out) {
  for (const auto& d : kDtypes) {
    if (d.name == name) {
      *out = d.dtype;
      return true;
    }
  }
  return false;
}

std::string_view dtype_name(Dtype d) {
  for (const auto& i : kDtypes)
    if (i.dtype == d) return i.name;
  return "?";
}

uint64_t dtype_bytes(Dtype d) {
  for (const auto& i : kDtypes)
    if (i.dtype == d) return i.bytes;
  return 1;
}

std::string StTensor::shape_string() const {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + "]";
}

float element_f32(const StTensor& t, uint64_t i) {
  if (t.dtype == Dtype::kF32) {
    float v;
    std::memcpy(&v, t.data.data() + 4 * i, 4);
    return v;
  }
  uint16_t h;
  std::memcpy(&h, t.data.data() + 2 * i, 2);
  return t.dtype == Dtype::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
}

const StTensor* SafetensorsFile::find(std::string_view tensor) const {
  const auto it = index_.find(std::string(tensor));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Result<SafetensorsFile> SafetensorsFile::parse(std::span<const uint8_t> bytes, const std::string& name) {
  SafetensorsFile f;
  f.name_ = name;
  auto fail = [&](const Status& s) { return s.with_context(name); };
  if (bytes.size() < 8) return fail(Status::error("not a safetensors file (shorter than its 8-byte header length)"));
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  if (header_len > bytes.size() - 8) {
    return fail(Status::errorf("header length {} runs past the end of the file ({} bytes)", header_len, bytes.size()));
  }
  if (header_len > kMaxHeaderBytes) return fail(Status::errorf("header length {} is implausibly large", header_len));
  const auto* text = reinterpret_cast<const char*>(bytes.data() + 8);
  const json header = json::parse(text, text + header_len, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return fail(Status::error("header is not valid JSON"));
  if (!header.is_object()) return fail(Status::error("header is not a JSON object"));
  const uint8_t* data = bytes.data() + 8 + header_len;
  const uint64_t data_size = bytes.size() - 8 - header_len;

  for (const auto& [key, entry] : header.items()) {
    if (key == "__metadata__") {
      if (!entry.is_object()) return fail(Status::error("__metadata__ is not an object"));
      for (const auto& [mk, mv] : entry.items()) {
        if (!mv.is_string()) return fail(Status::errorf("__metadata__ value of '{}' is not a string", mk));
        f.metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    StTensor t;
    uint64_t begin = 0;
    if (Status s = read_entry(key, entry, data_size, &t, &begin); !s.ok()) return fail(s);
    t.data = {data + begin, static_cast<size_t>(t.n_elements * dtype_bytes(t.dtype))};
    f.index_[t.name] = f.tensors_.size();
    f.tensors_.push_back(std::move(t));
  }
  // No two tensors may share a byte (empty tensors share nothing).
  std::vector<const StTensor*> by_start;
  for (const auto& t : f.tensors_)
    if (!t.data.empty()) by_start.push_back(&t);
  std::sort(by_start.begin(), by_start.end(),
            [](const StTensor* a, const StTensor* b) { return a->data.data() < b->data.data(); });
  for (size_t i = 1; i < by_start.size(); ++i) {
    const StTensor& prev = *by_start[i - 1];
    if (by_start[i]->data.data() < prev.data.data() + prev.data.size()) {
      return fail(Status::errorf("tensors '{}' and '{}' overlap", prev.name, by_start[i]->name));
    }
  }
  return f;
}

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto map = MappedFile::open(path);
  if (!map) return map.status();
  auto f = parse(map->bytes(), path);
  if (!f) return f.status();
  f->map_ = std::move(*map);  // the mapping's address does not change
  return f;
}

Result<std::vector<uint8_t>> safetensors_bytes(const std::vector<StWrite>& tensors,
                                                const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t at = 0;
  for (const auto& t : tensors) {
    uint64_t n = 1;
    for (uint64_t d : t.shape) n *= d;
    if (n * dtype_bytes(t.dtype) != t.data.size()) {
      return Status::errorf("tensor '{}': {} bytes for {} elements of {}", t.name, t.data.size(), n,
                            dtype_name(t.dtype));
    }
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {at, at + t.data.size()}}};
    at += t.data.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::vector<uint8_t> out(8 + text.size() + at);
  const uint64_t len = text.size();
  std::memcpy(out.data(), &len, 8);
  std::memcpy(out.data() + 8, text.data(), text.size());
  size_t pos = 8 + text.size();
  for (const auto& t : tensors) {
    if (!t.data.empty()) std::memcpy(out.data() + pos, t.data.data(), t.data.size());
    pos += t.data.size();
  }
  return out;
}

Status write_safetensors(const std::string& path, const std::vector<StWrite>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  auto bytes = safetensors_bytes(tensors, metadata);
  if (!bytes) return bytes.status().with_context(path);
  return write_file_atomic(path, *bytes);
}

}  // namespace tandem::hf
