// Engine benchmark (no HTTP), on a real-shaped synthetic model:
//   - aggregate decode throughput with 1, 2, 4, 5, 8, 16 concurrent greedy
//     requests (64 new tokens each) vs the same requests one after another;
//   - time to first token of the second turn of a 3,000-token conversation,
//     with the first turn's prefix cached vs cold.
//
//   build/bench/engine_bench [--model FILE | --like qwen3-0.6b --type q8_0] [--threads N] [--kv-type
//   auto|f16|bf16|q8_0]
//
// TANDEM_NO_AMX=1 runs without the AMX matmuls (kernels/amx.h), for A/B.
#include "engine/engine.h"
#include "kernels/amx.h"
#include "bench_model.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

using namespace tandem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<int32_t> random_prompt(std::mt19937& rng, int n, int vocab) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (auto& t : p) t = static_cast<int32_t>(100 + rng() % static_cast<uint32_t>(std::min(vocab, 30000) - 100));
  return p;
}

engine::Request greedy(std::vector<int32_t> prompt, int n) {
  engine::Request r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0;
  r.max_tokens = n;
  r.ignore_eos = true;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  auto args = bench::parse_args(argc, argv);
  if (!args) return 2;
  auto loaded = bench::load_model(*args, 8192, 512, 16);
  if (!loaded) return 1;
  const int threads = args->threads;
  const std::string& model_path = args->model_path;
  model::Model& m = *loaded;
  // The benchmark feeds token ids; the engine's tokenizer only turns them
  // into text, so a placeholder vocabulary of the model's size does (the
  // synthetic file may have no tokenizer).
  tokenizer::Vocab v;
  v.kind = tokenizer::VocabKind::kSpm;
  v.model = "llama";
  for (int i = 0; i < m.config().vocab; ++i) {
    v.tokens.push_back(fmt::format("t{}", i));
    v.token_to_id.emplace(v.tokens.back(), i);
  }
  v.scores.assign(v.tokens.size(), 0.0f);
  v.types.assign(v.tokens.size(), tokenizer::TokenType::kNormal);
  auto tok = tokenizer::Tokenizer::from_vocab(std::move(v));
  engine::EngineOptions eo;
  const auto kv_type = bench::kv_type_for(*args, m);
  if (!kv_type) return 2;
  eo.kv_type = *kv_type;
  eo.kv_bytes = 1024u << 20;
  eo.max_batch_tokens = 512;
  eo.max_batch_size = 16;
  auto e = engine::Engine::create(m, *tok, eo);
  if (!e) return 1;
  const int vocab = m.config().vocab;
  fmt::print("model {} ({}), {} threads, {} KV, AMX {}\n", model_path, model::describe(m.config()), threads,
             kernels::kv_type_name(eo.kv_type), kernels::amx_status());

  std::mt19937 rng(1);
  // One after another.
  const int n_new = 64;
  {
    auto r = greedy(random_prompt(rng, 32, vocab), 8);
    (*e)->submit(r)->wait();  // warm-up
  }
  const auto t0 = Clock::now();
  for (int i = 0; i < 2 && args->concurrency; ++i) (*e)->submit(greedy(random_prompt(rng, 32, vocab), n_new))->wait();
  const double sequential = 2 * n_new / seconds(t0);
  if (args->concurrency) fmt::print("sequential: {:.1f} tokens/s\n", sequential);
  for (int c : args->concurrency ? std::vector<int>{1, 2, 4, 5, 8, 16} : std::vector<int>{}) {
    std::vector<std::shared_ptr<engine::Stream>> streams;
    const auto t1 = Clock::now();
    for (int i = 0; i < c; ++i) streams.push_back((*e)->submit(greedy(random_prompt(rng, 32, vocab), n_new)));
    int64_t generated = 0;
    for (auto& s : streams) generated += s->wait().usage.generated_tokens;
    const double tps = static_cast<double>(generated) / seconds(t1);
    fmt::print("{:>2} concurrent: {:7.1f} tokens/s aggregate, {:.2f}x sequential\n", c, tps, tps / sequential);
  }
  // Second turn of a 3,000-token conversation: cached vs cold.
  const auto turn1 = random_prompt(rng, 3000, vocab);
  const auto first = (*e)->submit(greedy(turn1, 16))->wait();
  auto turn2 = turn1;
  turn2.insert(turn2.end(), first.tokens.begin(), first.tokens.end());
  for (auto t : random_prompt(rng, 40, vocab)) turn2.push_back(t);
  const auto warm = (*e)->submit(greedy(turn2, 1))->wait();
  auto cold_req = greedy(turn2, 1);
  cold_req.cache_namespace = 12345;  // nothing cached in this namespace
  const auto cold = (*e)->submit(cold_req)->wait();
  fmt::print("second turn of {} tokens: TTFT cached {:.1f} ms ({} tokens from cache) vs cold {:.1f} ms: {:.1f}x\n",
             turn2.size(), warm.usage.ttft_ms, warm.usage.cached_tokens, cold.usage.ttft_ms,
             cold.usage.ttft_ms / warm.usage.ttft_ms);
  return 0;
}
