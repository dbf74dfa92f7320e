#include "hf/folder.h"

#include "core/fp16.h"
#include "hf/hf_config.h"
#include "hf/mlx.h"
#include "hf/nibbles.h"
#include "hf/safetensors.h"
#include "tokenizer/hf_import.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <unordered_map>

namespace tandem::hf {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The safetensors files of a folder and where each tensor is.
class TensorSet {
 public:
  Status open(const std::string& dir) {
    const std::string index_path = dir + "/model.safetensors.index.json";
    if (fs::exists(index_path)) return open_shards(dir, index_path);
    if (!fs::exists(dir + "/model.safetensors")) {
      return Status::errorf("{}: no model.safetensors or model.safetensors.index.json (the weights of a Hugging Face "
                            "model folder)",
                            dir);
    }
    TANDEM_RETURN_IF_ERROR(add_file(dir + "/model.safetensors"));
    return {};
  }

  // NAME, or the tensor __metadata__ says NAME is stored as (tied embeddings).
  const StTensor* find(const std::string& name) const {
    if (auto it = by_name_.find(name); it != by_name_.end()) return it->second;
    for (const auto& f : files_) {
      if (auto alias = f.metadata().find(name); alias != f.metadata().end()) {
        if (auto it = by_name_.find(alias->second); it != by_name_.end()) return it->second;
      }
    }
    return nullptr;
  }
  bool has(const std::string& name) const { return find(name) != nullptr; }

  std::vector<SafetensorsFile>& files() { return files_; }
  std::string dtypes() const {
    std::set<std::string> names;
    for (const auto& [name, t] : by_name_) names.insert(std::string(dtype_name(t->dtype)));
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : "+") + n;
    return s;
  }

 private:
  Status open_shards(const std::string& dir, const std::string& index_path) {
    auto text = read_file(index_path);
    if (!text) return text.status();
    const json index = json::parse(*text, nullptr, false);
    if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") ||
        !index["weight_map"].is_object()) {
      return Status::errorf("{}: not a safetensors index (no \"weight_map\" object)", index_path);
    }
    std::set<std::string> shards;
    for (const auto& [tensor, shard] : index["weight_map"].items()) {
      if (!shard.is_string()) return Status::errorf("{}: shard of '{}' is not a file name", index_path, tensor);
      const std::string name = shard.get<std::string>();
      // Only files of this folder: a name with a slash or a leading dot could point anywhere.
      if (name.empty() || name.find('/') != std::string::npos || name[0] == '.') {
        return Status::errorf("{}: shard name '{}' is not a file of the folder", index_path, name);
      }
      shards.insert(name);
    }
    files_.reserve(shards.size());
    for (const auto& name : shards) TANDEM_RETURN_IF_ERROR(add_file(dir + "/" + name));
    for (const auto& [tensor, shard] : index["weight_map"].items()) {
      const std::string path = dir + "/" + shard.get<std::string>();
      const auto in_shard = std::find_if(files_.begin(), files_.end(), [&](const SafetensorsFile& f) {
        return f.name() == path && f.find(tensor) != nullptr;
      });
      if (in_shard == files_.end()) {
        return Status::errorf("{}: tensor '{}' is listed in {} but not stored there", index_path, tensor,
                              shard.get<std::string>());
      }
    }
    return {};
  }

  Status add_file(const std::string& path) {
    auto f = SafetensorsFile::open(path);
    if (!f) return f.status();
    files_.push_back(std::move(*f));
    for (const auto& t : files_.back().tensors()) {
      if (!by_name_.emplace(t.name, &t).second) {
        return Status::errorf("{}: tensor '{}' is stored in two files", path, t.name);
      }
    }
    return {};
  }

  std::vector<SafetensorsFile> files_;
  std::unordered_map<std::string, const StTensor*> by_name_;
};

// A tensor of the assembled model: a view of a stored one, or bytes
// converted once at load into the shared buffer.
struct Planned {
  gguf::TensorSource source;
  size_t bytes = 0;                   // converted size (0: a view)
  std::function<void(uint8_t*)> fill;  // writes the converted bytes
};

Result<gguf::TensorType> float_type(const StTensor& t) {
  switch (t.dtype) {
    case Dtype::kF32: return gguf::TensorType::F32;
    case Dtype::kF16: return gguf::TensorType::F16;
    case Dtype::kBF16: return gguf::TensorType::BF16;
    default:
      return Status::errorf("tensor '{}' is {}: tandem reads F32, F16 and BF16 tensors and MLX-quantized matrices",
                            t.name, dtype_name(t.dtype));
  }
}

// GGML dims of a row-major shape (innermost first).
std::vector<uint64_t> ggml_dims(const std::vector<uint64_t>& shape) { return {shape.rbegin(), shape.rend()}; }

// What the load converted of MLX-quantized matrices, for the summary.
struct MlxStats {
  int64_t matrices = 0, inexact_scales = 0;
  std::set<std::string> kinds;  // "4-bit groups of 64"
};

// An MLX-quantized matrix (mlx.h) as a Q4_0/Q8_0 tensor and its offsets
// tensor ("<name>.offsets", F32 GGML dims [rows, in / group]: group-major;
// stacked experts count all their rows), rows interleaved as M says.
Result<std::vector<Planned>> plan_mlx(const TensorSet& set, const TensorMap& m, const json& cfg, MlxStats* stats) {
  const std::string suffix = ".weight";
  if (!m.hf.ends_with(suffix) || m.transform == Transform::kAddOne) {
    return Status::errorf("tensor '{}' is U32: only the weights of linear layers and embeddings may be quantized", m.hf);
  }
  const std::string module = m.hf.substr(0, m.hf.size() - suffix.size());
  auto quant = mlx_quant_of(cfg, module);
  if (!quant) return quant.status();
  if (quant->bits == 0) return Status::errorf("tensor '{}' is U32 but config.json has no quantization for it", m.hf);
  MlxMatrix mm{set.find(m.hf), set.find(module + ".scales"), set.find(module + ".biases"), *quant};
  if (mm.scales == nullptr || mm.biases == nullptr) {
    return Status::errorf("tensor '{}' is U32 without {}.scales and {}.biases", m.hf, module, module);
  }
  TANDEM_RETURN_IF_ERROR(check_mlx_matrix(&mm));
  const auto type = mlx_block_type(*quant);
  const size_t row_bytes = gguf::row_bytes(type, static_cast<uint64_t>(mm.cols)).value();
  const int64_t groups = mm.cols / quant->group;
  auto dest = [mm, heads = m.transform == Transform::kInterleaveHeads ? m.heads : 0](int64_t r) {
    return heads > 0 ? static_cast<int64_t>(interleaved_row(static_cast<uint64_t>(r), static_cast<uint64_t>(mm.rows),
                                                            static_cast<uint64_t>(heads)))
                     : r;
  };
  if (m.transform == Transform::kInterleaveHeads && (m.heads <= 0 || mm.rows % (2 * m.heads) != 0)) {
    return Status::errorf("tensor '{}': {} rows are not {} heads of even size", m.hf, mm.rows, m.heads);
  }
  ++stats->matrices;
  stats->kinds.insert(fmt::format("{}-bit groups of {}", quant->bits, quant->group));
  // The weights' fill converts every row and keeps the offsets for the
  // offsets' fill, which runs right after it.
  auto offsets = std::make_shared<std::vector<float>>();
  std::vector<Planned> out(2);
  std::vector<uint64_t> dims = ggml_dims(mm.weight->shape);  // experts: [in, out, experts]
  dims[0] = static_cast<uint64_t>(mm.cols);
  out[0].source = {m.gguf, type, dims, {}};
  out[0].bytes = row_bytes * static_cast<size_t>(mm.rows);
  out[0].fill = [mm, dest, row_bytes, groups, offsets, stats](uint8_t* o) {
    offsets->assign(static_cast<size_t>(mm.rows * groups), 0.0f);
    for (int64_t r = 0; r < mm.rows; ++r) {
      const int64_t to = dest(r);
      stats->inexact_scales +=
          mlx_convert_row(mm, r, o + static_cast<size_t>(to) * row_bytes, offsets->data() + to, mm.rows);
    }
  };
  out[1].source = {m.gguf + ".offsets", gguf::TensorType::F32,
                   {static_cast<uint64_t>(mm.rows), static_cast<uint64_t>(groups)}, {}};
  out[1].bytes = static_cast<size_t>(mm.rows * groups) * sizeof(float);
  out[1].fill = [offsets](uint8_t* o) {
    std::memcpy(o, offsets->data(), offsets->size() * sizeof(float));
    offsets->clear();
    offsets->shrink_to_fit();
  };
  return out;
}

// Experts stored apart (M.stacked), copied one after the other into the
// 3-D tensor GGUF holds.
Result<std::vector<Planned>> plan_stacked(const TensorSet& set, const TensorMap& m) {
  std::vector<const StTensor*> parts;
  for (const auto& name : m.stacked) {
    const StTensor* t = set.find(name);
    if (t == nullptr) return Status::errorf("tensor '{}' is missing", name);
    if (t->dtype == Dtype::kU32) return Status::errorf("tensor '{}': MLX-quantized experts are not supported yet", name);
    if (!parts.empty() && (t->dtype != parts[0]->dtype || t->shape != parts[0]->shape)) {
      return Status::errorf("tensor '{}' is {} {}, unlike '{}' ({} {})", name, dtype_name(t->dtype), t->shape_string(),
                            parts[0]->name, dtype_name(parts[0]->dtype), parts[0]->shape_string());
    }
    parts.push_back(t);
  }
  auto type = float_type(*parts[0]);
  if (!type) return type.status();
  Planned p;
  p.source = {m.gguf, *type, ggml_dims(parts[0]->shape), {}};
  p.source.dims.push_back(parts.size());
  p.bytes = parts[0]->data.size() * parts.size();
  p.fill = [parts](uint8_t* out) {
    for (const StTensor* t : parts) out = std::copy(t->data.begin(), t->data.end(), out);
  };
  std::vector<Planned> out;
  out.push_back(std::move(p));
  return out;
}

// gpt-oss experts (M.hf "<x>_blocks" U8 [experts, rows, in / 32, 16] and
// "<x>_scales" U8 [experts, rows, in / 32]) as GGUF MXFP4 blocks (the
// scale byte, then 16 bytes): all rows, or the even (gate) or odd (up) ones
// of the interleaved gate_up, codes repacked (nibbles.h).
Result<std::vector<Planned>> plan_mxfp4(const TensorSet& set, const TensorMap& m) {
  const std::string scales_name = m.hf.substr(0, m.hf.size() - std::string("_blocks").size()) + "_scales";
  const StTensor* blocks = set.find(m.hf);
  const StTensor* scales = set.find(scales_name);
  if (scales == nullptr) return Status::errorf("tensor '{}' is missing", scales_name);
  const auto& bs = blocks->shape;
  if (blocks->dtype != Dtype::kU8 || scales->dtype != Dtype::kU8 || bs.size() != 4 || bs[3] != 16 ||
      scales->shape != std::vector<uint64_t>(bs.begin(), bs.end() - 1) || (m.parity >= 0 && bs[1] % 2 != 0)) {
    return Status::errorf("tensors '{}' {} and '{}' {} are not MXFP4 blocks and scales", m.hf, blocks->shape_string(),
                          scales_name, scales->shape_string());
  }
  const uint64_t experts = bs[0], rows_in = bs[1], n_blocks = bs[2], rows = m.parity < 0 ? rows_in : rows_in / 2;
  Planned p;
  p.source = {m.gguf, gguf::TensorType::MXFP4, {n_blocks * 32, rows, experts}, {}};
  p.bytes = experts * rows * n_blocks * 17;
  p.fill = [blocks, scales, experts, rows_in, n_blocks, rows, parity = m.parity](uint8_t* out) {
    for (uint64_t e = 0; e < experts; ++e) {
      for (uint64_t r = 0; r < rows; ++r) {
        const uint64_t from = e * rows_in + (parity < 0 ? r : 2 * r + static_cast<uint64_t>(parity));
        for (uint64_t b = 0; b < n_blocks; ++b, out += 17) {
          out[0] = scales->data[from * n_blocks + b];
          pairs_to_ggml_nibbles(blocks->data.data() + (from * n_blocks + b) * 16, out + 1);
        }
      }
    }
  };
  std::vector<Planned> out;
  out.push_back(std::move(p));
  return out;
}

// gpt-oss's gate/up biases [experts, 2 x ffn]: the even (gate) or odd (up)
// elements of each expert's row, as F32 [ffn, experts].
Result<std::vector<Planned>> plan_half_of_pairs(const TensorSet& set, const TensorMap& m) {
  const StTensor* t = set.find(m.hf);
  if (t->shape.size() != 2 || t->shape[1] % 2 != 0 || !float_type(*t).ok())
    return Status::errorf("tensor '{}' {} is not a float [experts, 2 x ffn]", m.hf, t->shape_string());
  const uint64_t experts = t->shape[0], half = t->shape[1] / 2;
  Planned p;
  p.source = {m.gguf, gguf::TensorType::F32, {half, experts}, {}};
  p.bytes = experts * half * 4;
  p.fill = [t, experts, half, parity = static_cast<uint64_t>(m.parity)](uint8_t* out) {
    for (uint64_t i = 0; i < experts * half; ++i) {
      const float v = element_f32(*t, (i / half) * 2 * half + 2 * (i % half) + parity);
      std::memcpy(out + 4 * i, &v, 4);
    }
  };
  std::vector<Planned> out;
  out.push_back(std::move(p));
  return out;
}

// The plan of one tensor: M.hf as M.gguf, transformed as M says.
Result<std::vector<Planned>> plan_tensor(const TensorSet& set, const TensorMap& m, const json& cfg, MlxStats* stats) {
  if (!m.stacked.empty()) return plan_stacked(set, m);
  if (m.transform == Transform::kMxfp4) return plan_mxfp4(set, m);
  if (m.transform == Transform::kHalfOfPairs) return plan_half_of_pairs(set, m);
  const StTensor* t = set.find(m.hf);
  if (t->dtype == Dtype::kU32) return plan_mlx(set, m, cfg, stats);
  Planned p;
  p.source.name = m.gguf;
  auto type = float_type(*t);
  if (!type) return type.status();
  p.source.type = *type;
  p.source.dims = ggml_dims(t->shape);
  const uint64_t esize = dtype_bytes(t->dtype);
  switch (m.transform) {
    case Transform::kNone:
      if (reinterpret_cast<uintptr_t>(t->data.data()) % esize == 0) {
        p.source.data = t->data;
        break;
      }
      p.bytes = t->data.size();  // misaligned for its element type: copied
      p.fill = [t](uint8_t* out) { std::memcpy(out, t->data.data(), t->data.size()); };
      break;
    case Transform::kAddOne:
      p.source.type = gguf::TensorType::F32;
      p.bytes = t->n_elements * 4;
      p.fill = [t](uint8_t* out) {
        for (uint64_t i = 0; i < t->n_elements; ++i) {
          const float v = element_f32(*t, i) + 1.0f;
          std::memcpy(out + 4 * i, &v, 4);
        }
      };
      break;
    case Transform::kMxfp4:
    case Transform::kHalfOfPairs: break;  // planned above
    case Transform::kInterleaveHeads: {
      if (t->shape.empty() || t->shape[0] == 0 || m.heads <= 0 || t->shape[0] % (2 * static_cast<uint64_t>(m.heads)) != 0) {
        return Status::errorf("tensor '{}' {}: rows are not {} heads of even size", t->name, t->shape_string(),
                              m.heads);
      }
      p.bytes = t->data.size();
      const size_t row = t->data.size() / t->shape[0];
      p.fill = [t, row, heads = static_cast<size_t>(m.heads)](uint8_t* out) {
        interleave_head_rows(t->data.data(), out, t->shape[0], row, heads);
      };
      break;
    }
  }
  std::vector<Planned> out;
  out.push_back(std::move(p));
  return out;
}

// Files kept only for a few small views (an MLX folder's norms) are not
// kept: those views become copies, so the packed codes are neither held nor
// made resident. Returns which files no view needs any more.
std::vector<bool> drop_thin_files(TensorSet& set, std::vector<Planned>& plan) {
  const size_t n = set.files().size();
  auto file_of = [&](std::span<const uint8_t> data) {
    for (size_t f = 0; f < n; ++f) {
      const auto bytes = set.files()[f].mapping().bytes();
      if (data.data() >= bytes.data() && data.data() < bytes.data() + bytes.size()) return f;
    }
    return n;  // (views always point into a file)
  };
  std::vector<size_t> view_bytes(n + 1, 0);
  for (const auto& p : plan)
    if (!p.fill) view_bytes[file_of(p.source.data)] += p.source.data.size();
  std::vector<bool> dropped(n);
  for (size_t f = 0; f < n; ++f) dropped[f] = view_bytes[f] * 10 < set.files()[f].mapping().size();
  for (auto& p : plan) {
    const size_t f = file_of(p.source.data);
    if (p.fill || f == n || !dropped[f]) continue;
    p.bytes = p.source.data.size();
    p.fill = [data = p.source.data](uint8_t* o) { std::memcpy(o, data.data(), data.size()); };
  }
  return dropped;
}

// Runs every fill into one buffer (each tensor at a 64-byte boundary) and
// appends the tensors, in plan order, to OUT.
Result<HugeBuffer> place_converted(std::vector<Planned>& plan, FolderModel* out) {
  size_t total = 0;
  for (const auto& p : plan) total += (p.bytes + 63) / 64 * 64;
  HugeBuffer buffer;
  if (total > 0) {
    buffer = HugeBuffer::allocate(total);
    if (!buffer) return Status::errorf("cannot allocate {} bytes for converted tensors", total);
  }
  size_t at = 0;
  for (auto& p : plan) {
    if (p.fill) {
      p.fill(buffer.data() + at);
      p.source.data = {buffer.data() + at, p.bytes};
      at += (p.bytes + 63) / 64 * 64;
    }
    out->tensors.push_back(std::move(p.source));
  }
  return buffer;
}

}  // namespace

uint64_t interleaved_row(uint64_t from, uint64_t rows, uint64_t heads) {
  const uint64_t half = rows / heads / 2, h = from / (2 * half), k = from % (2 * half) / half, j = from % half;
  return (h * half + j) * 2 + k;
}

void interleave_head_rows(const uint8_t* in, uint8_t* out, uint64_t rows, size_t row_bytes, size_t heads) {
  for (uint64_t r = 0; r < rows; ++r) std::memcpy(out + interleaved_row(r, rows, heads) * row_bytes, in + r * row_bytes, row_bytes);
}

bool is_folder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

Result<FolderModel> read_folder_unchecked(const std::string& dir);

Result<FolderModel> read_folder(const std::string& dir) {
  // config.json is untrusted: a field of the wrong type makes nlohmann throw.
  try {
    return read_folder_unchecked(dir);
  } catch (const json::exception& e) {
    return Status::errorf("{}/config.json: {}", dir, e.what());
  }
}

Result<FolderModel> read_folder_unchecked(const std::string& dir) {
  auto config_text = read_file(dir + "/config.json");
  if (!config_text) {
    return Status::errorf("{}: no config.json (not a Hugging Face model folder; tandem also reads .gguf files)", dir);
  }
  const json cfg = json::parse(*config_text, nullptr, false);
  if (cfg.is_discarded() || !cfg.is_object()) return Status::errorf("{}/config.json is not a JSON object", dir);
  if (!fs::exists(dir + "/tokenizer.json")) {
    return Status::errorf("{}: no tokenizer.json (tandem needs the model's tokenizer from its repository)", dir);
  }
  TensorSet set;
  TANDEM_RETURN_IF_ERROR(set.open(dir));
  auto arch = read_hf_config(cfg, [&](const std::string& name) { return set.has(name); });
  if (!arch) return arch.status().with_context(dir + "/config.json");

  FolderModel out;
  out.metadata = arch->metadata;
  const std::string name = fs::path(dir).filename().string();
  out.metadata.emplace_back("general.name", gguf::Value::string(name.empty() ? dir : name));
  // The embedding's rows give the vocabulary the tokenizer is padded to.
  const StTensor* embd = set.find(arch->embedding);
  if (embd == nullptr || embd->shape.empty()) return Status::errorf("{}: tensor {} is missing", dir, arch->embedding);
  if (embd->shape[0] == 0 || embd->shape[0] > (1u << 24)) {
    return Status::errorf("{}: tensor {} {} is not a vocabulary of embeddings", dir, arch->embedding, embd->shape_string());
  }
  tokenizer::HfImportOptions topt;
  topt.pad_vocab_to = static_cast<uint32_t>(embd->shape[0]);
  auto tok = tokenizer::import_hf_tokenizer(dir, topt);
  if (!tok) return tok.status();
  out.metadata.insert(out.metadata.end(), tok->begin(), tok->end());

  std::vector<Planned> plan;
  MlxStats mlx;
  for (const TensorMap& m : arch->tensors) {
    if (!set.has(m.hf)) {
      if (m.optional) continue;
      return Status::errorf("{}: tensor '{}' is missing ({} needs it)", dir, m.hf, arch->name);
    }
    auto p = plan_tensor(set, m, cfg, &mlx);
    if (!p) return p.status().with_context(dir);
    for (auto& x : *p) plan.push_back(std::move(x));
  }
  for (auto& extra : arch->computed) {
    Planned p;
    p.source = {extra.name, gguf::TensorType::F32, {extra.values.size()}, {}};
    p.bytes = extra.values.size() * 4;
    p.fill = [values = extra.values](uint8_t* o) { std::memcpy(o, values.data(), values.size() * 4); };
    plan.push_back(std::move(p));
  }

  const std::vector<bool> dropped = drop_thin_files(set, plan);
  auto buffer = place_converted(plan, &out);
  if (!buffer) return buffer.status().with_context(dir);
  out.summary = fmt::format("{} from {} safetensors ({} file{})", arch->name, set.dtypes(), set.files().size(),
                            set.files().size() == 1 ? "" : "s");
  if (mlx.matrices > 0) {
    std::string kinds;
    for (const auto& k : mlx.kinds) kinds += (kinds.empty() ? "" : ", ") + k;
    out.summary += fmt::format("; {} MLX matrices ({}) as Q4_0/Q8_0 + group offsets", mlx.matrices, kinds);
    if (mlx.inexact_scales > 0) out.summary += fmt::format(", {} scales rounded to F16", mlx.inexact_scales);
  }
  for (size_t f = 0; f < set.files().size(); ++f)
    if (!dropped[f]) out.storage.files.push_back(std::move(set.files()[f].mapping()));
  out.metadata.emplace_back(kSourceKey, gguf::Value::string(out.summary));
  if (*buffer) out.storage.buffers.push_back(std::move(*buffer));
  return out;
}

Result<gguf::GgufFile> open_model(const std::string& path) {
  if (!is_folder(path)) return gguf::GgufFile::open(path);
  auto folder = read_folder(path);
  if (!folder) return folder.status();
  auto file = gguf::GgufFile::assemble(folder->metadata, folder->tensors, std::move(folder->storage));
  if (!file) return file.status().with_context(path);
  return file;
}

}  // namespace tandem::hf
