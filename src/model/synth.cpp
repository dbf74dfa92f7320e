// Synthetic models: a GGUF with the exact shape and metadata of a real
// model and seeded random weights (see synth.h).
#include "model/synth.h"

#include "gguf/quant.h"
#include "kernels/ops.h"

#include <fmt/format.h>

#include <cmath>
#include <thread>

namespace tandem::model {
using gguf::TensorType;
using gguf::Value;

namespace {

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
// requested type's block fall back (gguf::fit_type).
TensorType storage_type(const TensorSpec& spec, TensorType requested) {
  // Routers and every bias stay f32, as in llama.cpp's files.
  if (spec.dims.size() == 1 || spec.init == TensorSpec::Init::kRouter || spec.init == TensorSpec::Init::kBias) {
    return TensorType::F32;
  }
  if (spec.mxfp4) return TensorType::MXFP4;
  return gguf::fit_type(requested, spec.dims[0]);
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
  uint64_t rows = 1;  // every row of every matrix of a 3-D (expert) tensor
  for (size_t d = 1; d < spec.dims.size(); ++d) rows *= spec.dims[d];
  const uint64_t row_bytes = *gguf::row_bytes(type, cols);
  if (spec.init == TensorSpec::Init::kRopeFreqs) {
    const auto factors =
        kernels::llama3_rope_factors(static_cast<int>(shape.head_dim), shape.rope_base, shape.rope_scale_factor,
                                     shape.rope_low_freq_factor, shape.rope_high_freq_factor, shape.rope_original_ctx);
    return gguf::quantize(type, factors.data(), out.data(), static_cast<int64_t>(factors.size()));
  }
  // Matrices: N(0, 1/fan_in), so each projection keeps unit variance and the
  // residual stream stays finite over every layer. Norm weights 1 + N(0, 0.02^2).
  const bool matrix = spec.init == TensorSpec::Init::kMatrix || spec.init == TensorSpec::Init::kRouter;
  const float std_dev = matrix ? 1.0f / std::sqrt(static_cast<float>(cols)) : 0.02f;
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

}  // namespace

void set_synth_metadata(gguf::GgufWriter& w, const ModelShape& s, TensorType type, uint64_t seed) {
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
  if (s.sliding_window > 0) w.set(a + "attention.sliding_window", Value::u32(s.sliding_window));
  if (s.yarn_factor > 0) {
    w.set(a + "rope.scaling.type", Value::string("yarn"));
    w.set(a + "rope.scaling.factor", Value::f32(s.yarn_factor));
    w.set(a + "rope.scaling.original_context_length", Value::u32(s.yarn_original_ctx));
  }
  if (s.n_experts > 0) {
    w.set(a + "expert_count", Value::u32(s.n_experts));
    w.set(a + "expert_used_count", Value::u32(s.n_experts_used));
    w.set(a + "expert_feed_forward_length", Value::u32(s.expert_ffn_dim));
  }
  if (s.architecture == "qwen3" || s.architecture == "qwen3moe" || s.architecture == "gemma3" || s.gpt_oss ||
      s.head_dim * s.n_heads != s.dim) {
    w.set(a + "attention.key_length", Value::u32(s.head_dim));
    w.set(a + "attention.value_length", Value::u32(s.head_dim));
  }
  if (s.architecture == "llama") {
    w.set(a + "vocab_size", Value::u32(s.vocab));
    w.set(a + "rope.dimension_count", Value::u32(s.head_dim));
  }
}

bool synth_supports(gguf::TensorType type) {
  const TensorType allowed[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,
                                TensorType::Q4_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};
  return std::find(std::begin(allowed), std::end(allowed), type) != std::end(allowed);
}

Status write_synth(const ModelShape& shape, gguf::TensorType type, uint64_t seed, const SynthMetadata& extra,
                   const std::string& path, const SynthProgress& progress) {
  if (!synth_supports(type)) {
    return Status::errorf("unsupported type '{}' (supported: f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k)",
                          gguf::type_name(type));
  }
  gguf::GgufWriter w;
  set_synth_metadata(w, shape, type, seed);
  for (const auto& [key, value] : extra) w.set(key, value);
  const auto specs = tensor_specs(shape);
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorType t = storage_type(specs[i], type);
    TANDEM_RETURN_IF_ERROR(w.add_tensor(specs[i].name, t, specs[i].dims, [&, i, t](std::span<uint8_t> out) {
      if (progress) progress(i, specs.size(), specs[i].name);
      return fill_tensor(specs[i], shape, t, seed, out);
    }));
  }
  return w.write(path);
}

}  // namespace tandem::model
