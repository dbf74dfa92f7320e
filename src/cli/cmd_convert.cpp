// tandem convert: a model tandem loads (GGUF file, Hugging Face or MLX
// folder) written as a GGUF file (optionally requantized) or as a Hugging
// Face / MLX folder.
#include "cli/commands.h"
#include "gguf/quant.h"
#include "hf/convert.h"
#include "hf/folder.h"
#include "hf/folder_writer.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>

namespace tandem::cli {
namespace {

struct ConvertOptions {
  std::string source, output, type;
  bool folder = false;
  int mlx_bits = 0, mlx_group = 64, shards = 1;
};

int write_gguf(const gguf::GgufFile& src, const ConvertOptions& o) {
  hf::GgufConvertOptions go;
  if (!o.type.empty()) {
    const auto type = gguf::parse_type(o.type);
    const gguf::TensorType allowed[] = {gguf::TensorType::F32,  gguf::TensorType::F16,  gguf::TensorType::BF16,
                                        gguf::TensorType::Q8_0, gguf::TensorType::Q4_0, gguf::TensorType::Q4_K,
                                        gguf::TensorType::Q5_K, gguf::TensorType::Q6_K};
    if (!type || std::find(std::begin(allowed), std::end(allowed), *type) == std::end(allowed))
      return fail(fmt::format("unsupported --type '{}' (f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k)", o.type));
    go.type = *type;
  }
  go.progress = [](size_t done, size_t total, const std::string& name) {
    if (done % 16 == 0 || done == total) fmt::print(stderr, "\rconvert: tensor {}/{} {:<40}", done, total, name);
  };
  auto n = hf::convert_to_gguf(src, o.output, go);
  fmt::print(stderr, "\n");
  if (!n) return fail(n.message());
  if (!o.type.empty()) {
    fmt::print(stderr, "convert: {} matrices as {}\n", *n, o.type);
  } else if (*n > 0) {
    fmt::print(stderr, "convert: {} MLX matrices as q8_0 (GGUF has no affine codes; --type picks another)\n", *n);
  }
  return 0;
}

int run_convert(const ConvertOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  auto src = hf::open_model(o.source);
  if (!src) return fail(src.message());
  int rc = 0;
  if (o.folder || o.mlx_bits > 0) {
    if (o.mlx_bits != 0 && o.mlx_bits != 4 && o.mlx_bits != 8) return fail("--mlx-bits must be 4 or 8");
    if (o.mlx_group != 32 && o.mlx_group != 64 && o.mlx_group != 128) return fail("--mlx-group must be 32, 64 or 128");
    hf::FolderWriteOptions fo;
    if (o.type == "bf16") {
      fo.floats = hf::FolderWriteOptions::Floats::kBF16;
    } else if (!o.type.empty() && o.type != "f32") {
      return fail("a folder holds f32 or bf16 floats (--type), or MLX codes (--mlx-bits)");
    }
    fo.mlx_bits = o.mlx_bits;
    fo.mlx_group = o.mlx_group;
    fo.shards = o.shards;
    if (Status s = hf::write_folder(*src, o.output, fo); !s.ok()) return fail(s.message());
  } else {
    rc = write_gguf(*src, o);
  }
  if (rc == 0) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print(stderr, "convert: wrote {} in {:.1f} s\n", o.output, secs);
  }
  return rc;
}

}  // namespace

void register_convert(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "convert", "Write a model (GGUF file, Hugging Face or MLX folder) as a GGUF file or as a Hugging Face folder");
  auto o = std::make_shared<ConvertOptions>();
  cmd->add_option("source", o->source, "GGUF file or Hugging Face / MLX model folder")->required();
  cmd->add_option("-o,--output", o->output, "Output GGUF file (or folder, with --folder / --mlx-bits)")->required();
  cmd->add_option("--type", o->type,
                  "Matrix type: f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k (default: as stored; MLX codes become "
                  "q8_0). With --folder: f32 or bf16");
  cmd->add_flag("--folder", o->folder, "Write a Hugging Face folder instead of a GGUF file");
  cmd->add_option("--mlx-bits", o->mlx_bits, "Write an MLX folder with 4- or 8-bit affine codes");
  cmd->add_option("--mlx-group", o->mlx_group, "MLX group size: 32, 64, 128")->capture_default_str();
  cmd->add_option("--shards", o->shards, "Folder: number of safetensors files")->capture_default_str();
  cmd->callback([=, &action] { action = [=] { return run_convert(*o); }; });
}

}  // namespace tandem::cli
