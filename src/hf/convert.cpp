#include "hf/convert.h"

#include "gguf/quant.h"
#include "gguf/writer.h"
#include "hf/folder.h"
#include "kernels/matmul.h"

namespace tandem::hf {
namespace {

// Matrices tandem computes with: 2-D "*.weight" tensors but routers, and
// the 3-D stacks of experts (requantized row by row).
bool is_matrix(const gguf::TensorInfo& t) {
  return t.dims.size() >= 2 && t.name.ends_with(".weight") && t.name.find("ffn_gate_inp") == std::string::npos;
}

}  // namespace

Result<kernels::Matrix> matrix_view(const gguf::GgufFile& f, const gguf::TensorInfo& t) {
  if (!gguf::can_dequantize(t.type) || t.dims.empty() || t.dims[0] == 0 || t.n_elements == 0) {
    return Status::errorf("tensor {} ({} {}) is not a matrix tandem can decode", t.name, gguf::type_name(t.type),
                          t.shape_string());
  }
  kernels::Matrix m;
  m.data = t.data;
  m.type = t.type;
  m.cols = static_cast<int64_t>(t.dims[0]);
  m.rows = static_cast<int64_t>(t.n_elements / t.dims[0]);
  m.row_bytes = static_cast<size_t>(t.n_bytes / static_cast<uint64_t>(m.rows));
  const gguf::TensorInfo* o = f.find_tensor(t.name + ".offsets");
  if (o == nullptr) return m;
  const uint64_t groups = o->dims.size() == 2 ? o->dims[1] : 0;
  if (o->type != gguf::TensorType::F32 || groups == 0 || o->dims[0] != static_cast<uint64_t>(m.rows) ||
      static_cast<uint64_t>(m.cols) % groups != 0 || (static_cast<uint64_t>(m.cols) / groups) % 32 != 0) {
    return Status::errorf("tensor {} {} does not fit {} {} (F32 [rows, columns / group], groups of 32n)", o->name,
                          o->shape_string(), t.name, t.shape_string());
  }
  m.offsets = reinterpret_cast<const float*>(o->data);
  m.offset_group = m.cols / static_cast<int64_t>(groups);
  m.offset_stride = m.rows;
  return m;
}

Result<size_t> convert_to_gguf(const gguf::GgufFile& src, const std::string& path, const GgufConvertOptions& o) {
  gguf::GgufWriter w;
  for (const auto& kv : src.metadata()) {
    // general.file_type would name the old type once matrices are requantized.
    if (kv.key == "general.alignment" || kv.key == kSourceKey || (o.type && kv.key == "general.file_type")) continue;
    w.set(kv.key, kv.value);
  }
  size_t requantized = 0, done = 0, total = 0;
  for (const auto& t : src.tensors()) total += !t.name.ends_with(".offsets");
  for (const auto& t : src.tensors()) {
    if (t.name.ends_with(".offsets")) continue;  // folded into their matrix below
    const gguf::TensorInfo* offsets = src.find_tensor(t.name + ".offsets");
    std::optional<gguf::TensorType> target;
    if (is_matrix(t) && (o.type || offsets)) target = gguf::fit_type(o.type.value_or(gguf::TensorType::Q8_0), t.dims[0]);
    if (!is_matrix(t) && offsets) target = gguf::TensorType::F32;  // an MLX router: f32, as routers are in GGUF
    if (target && *target == t.type && offsets == nullptr) target.reset();
    if (!target) {
      TANDEM_RETURN_IF_ERROR(w.add_tensor(t.name, t.type, t.dims, [&](std::span<uint8_t> out) {
        std::copy(t.data, t.data + out.size(), out.begin());
        if (o.progress) o.progress(++done, total, t.name);
        return Status();
      }));
      continue;
    }
    if (!gguf::can_quantize(*target)) return Status::errorf("cannot write {} as {}", t.name, gguf::type_name(*target));
    ++requantized;
    auto view = matrix_view(src, t);
    if (!view) return view.status();
    const kernels::Matrix m = *view;
    const gguf::TensorType type = *target;
    TANDEM_RETURN_IF_ERROR(w.add_tensor(t.name, type, t.dims, [m, type, &o, &t, &done, total](std::span<uint8_t> out) {
      std::vector<float> row(static_cast<size_t>(m.cols));
      const size_t out_row = out.size() / static_cast<size_t>(m.rows);
      for (int64_t r = 0; r < m.rows; ++r) {
        kernels::dequantize_row(m, r, row.data());
        TANDEM_RETURN_IF_ERROR(gguf::quantize(type, row.data(), out.data() + static_cast<size_t>(r) * out_row, m.cols));
      }
      if (o.progress) o.progress(++done, total, t.name);
      return Status();
    }));
  }
  TANDEM_RETURN_IF_ERROR(w.write(path));
  return requantized;
}

}  // namespace tandem::hf
