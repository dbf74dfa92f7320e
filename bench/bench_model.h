// Shared by the end-to-end benchmarks: command-line options and the model
// they run on (a file, or a real-shaped synthetic model made once into
// bench-models/).
//
//   --model FILE | --like PRESET --type T     --threads N
//   forward_bench only: --batches 1,8 (decode batch sizes), --prefill 0|1; engine_bench only: --concurrency 0,
//                       --kv-type auto|f16|bf16|q8_0|f32, --decode-ctx N (context of each decoding sequence),
//                       --steps N (decode steps per batch size, default 32)
#pragma once

#include "core/mapped_file.h"
#include "kernels/attention.h"
#include "kernels/simd_limit.h"
#include "model/model.h"
#include "model/synth.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace tandem::bench {

struct BenchArgs {
  std::string model_path, like = "qwen3-0.6b", type = "q8_0";
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  std::vector<int> batches{1, 2, 4, 8, 16};  // forward_bench: decode batch sizes
  bool prefill = true;                       // forward_bench: run the 512-token prefill
  std::string kv_type = "auto";              // KV cache type (auto: as tandem serve chooses)
  bool concurrency = true;                   // engine_bench: run the concurrent vs sequential part
  int decode_ctx = 64;                       // forward_bench: context of each decoding sequence
  int steps = 32;                            // forward_bench: decode steps per batch size (more for profiling)
};

// Parses the options; prints an error and returns nullopt on a bad one.
inline std::optional<BenchArgs> parse_args(int argc, char** argv) {
  if (Status s = kernels::limit_simd_from_env(); !s.ok()) {
    fmt::print(stderr, "{}\n", s.message());
    return std::nullopt;
  }
  BenchArgs a;
  for (int i = 1; i < argc; i += 2) {
    const std::string opt = argv[i];
    if (i + 1 >= argc) {
      fmt::print(stderr, "option {} needs a value\n", opt);
      return std::nullopt;
    }
    if (opt == "--model") a.model_path = argv[i + 1];
    else if (opt == "--like") a.like = argv[i + 1];
    else if (opt == "--type") a.type = argv[i + 1];
    else if (opt == "--threads") a.threads = std::atoi(argv[i + 1]);
    else if (opt == "--prefill") a.prefill = std::atoi(argv[i + 1]) != 0;
    else if (opt == "--kv-type") a.kv_type = argv[i + 1];
    else if (opt == "--concurrency") a.concurrency = std::atoi(argv[i + 1]) != 0;
    else if (opt == "--decode-ctx") a.decode_ctx = std::max(1, std::atoi(argv[i + 1]));
    else if (opt == "--steps") a.steps = std::max(2, std::atoi(argv[i + 1]));
    else if (opt == "--batches") {
      a.batches.clear();
      for (const char* p = argv[i + 1]; *p != '\0';) {
        char* end = nullptr;
        const long v = std::strtol(p, &end, 10);
        if (end == p || v < 1 || v > 16) {
          fmt::print(stderr, "--batches wants a list like 1,8 (each 1..16)\n");
          return std::nullopt;
        }
        a.batches.push_back(static_cast<int>(v));
        p = *end == ',' ? end + 1 : end;
      }
    } else {
      fmt::print(stderr,
                 "unknown option {} (--model FILE | --like PRESET --type T, --threads N, --batches 1,8, --prefill 0, "
                 "--kv-type T, --decode-ctx N, --steps N)\n",
                 opt);
      return std::nullopt;
    }
  }
  return a;
}

// The KV type --kv-type names for M ("auto": bf16 where attention runs on
// AMX tiles, else f16, as tandem serve picks); prints an error and returns
// nullopt for an unknown name.
inline std::optional<kernels::KvType> kv_type_for(const BenchArgs& a, const model::Model& m) {
  if (a.kv_type == "auto") return kernels::auto_kv_type(m.config().head_dim, 32);
  const auto t = kernels::parse_kv_type(a.kv_type);
  if (!t) fmt::print(stderr, "unknown --kv-type '{}' (auto, {})\n", a.kv_type, kernels::kv_type_names());
  return t;
}

// Loads the model (synthesizing it first when no --model is given).
inline std::unique_ptr<model::Model> load_model(BenchArgs& a, int64_t ctx, int max_tokens, int max_sequences) {
  if (a.model_path.empty()) {
    a.model_path = "bench-models/" + a.like + "-" + a.type + ".gguf";
    if (!std::filesystem::exists(a.model_path)) {
      std::filesystem::create_directories("bench-models");
      auto shape = model::make_shape(a.like, {});
      auto t = gguf::parse_type(a.type);
      if (!shape || !t) {
        fmt::print(stderr, "bad --like or --type\n");
        return nullptr;
      }
      fmt::print("synthesizing {} ...\n", a.model_path);
      Status st = model::write_synth(*shape, *t, 1, {}, a.model_path);
      if (!st.ok()) {
        fmt::print(stderr, "{}\n", st.message());
        return nullptr;
      }
    }
  }
  model::Model::Options mo;
  mo.n_threads = a.threads;
  mo.ctx = ctx;
  mo.limits.max_tokens = max_tokens;
  mo.limits.max_sequences = max_sequences;
  auto loaded = model::Model::load(a.model_path, mo);
  if (!loaded) {
    fmt::print(stderr, "{}\n", loaded.message());
    return nullptr;
  }
  // Steady state, as tandem serve runs (it reads big weights in before
  // serving): every page of the weights mapped, none faulted in while timed.
  (*loaded)->bring_weights_in(UINT64_MAX, nullptr);
  return std::move(*loaded);
}

}  // namespace tandem::bench
