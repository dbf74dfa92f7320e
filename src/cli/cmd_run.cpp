// tandem run: generate text from a prompt with one sequence, streaming it
// as it comes, then report prompt and generation speed.
#include "cli/commands.h"
#include "engine/sampler.h"
#include "model/model.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>

namespace tandem::cli {
namespace {

struct RunOptions {
  std::string model, prompt, kv_type = "f16";
  int n_predict = 128;
  int64_t ctx = 0;
  int threads = 0;
  bool json = false, special = false, ignore_eos = false;
  engine::SamplingParams sampling;
  int64_t seed = -1;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int run_generate(RunOptions o) {
  if (o.n_predict < 0) return fail("-n must be >= 0");
  if (o.kv_type != "f16" && o.kv_type != "f32") return fail(fmt::format("unknown --kv-type '{}' (f16, f32)", o.kv_type));
  model::Model::Options mo;
  mo.ctx = o.ctx;
  mo.n_threads = o.threads;
  mo.limits.max_tokens = 512;
  mo.limits.max_sequences = 1;
  auto loaded = model::Model::load(o.model, mo);
  if (!loaded) return fail(loaded.message());
  model::Model& m = **loaded;
  auto tok = tokenizer::Tokenizer::from_gguf(m.file());
  if (!tok) return fail(tok.message());

  tokenizer::EncodeOptions eo;
  eo.add_bos = tok->adds_bos();
  eo.special = o.special ? tokenizer::SpecialTokens::kParse : tokenizer::SpecialTokens::kAsText;
  std::vector<int32_t> tokens = tok->encode(o.prompt, eo);
  if (tokens.empty()) return fail("the prompt is empty (and the model adds no BOS token)");
  const int64_t total = static_cast<int64_t>(tokens.size()) + o.n_predict;
  if (total > m.config().ctx) {
    return fail(fmt::format("prompt ({} tokens) + {} new tokens exceeds the context of {}", tokens.size(), o.n_predict,
                            m.config().ctx));
  }
  const auto shape = m.kv_shape(o.kv_type == "f32" ? kernels::KvType::kF32 : kernels::KvType::kF16);
  const int64_t n_blocks = (total + shape.block_tokens - 1) / shape.block_tokens;
  auto pool = kv::KvPool::create(shape, shape.block_bytes() * static_cast<size_t>(n_blocks));
  if (!pool) return fail(pool.message());
  std::vector<kv::BlockId> blocks;
  for (int64_t i = 0; i < n_blocks; ++i) blocks.push_back(*(*pool)->allocate());

  o.sampling.seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}();
  engine::Sampler sampler(o.sampling, m.config().vocab);
  for (int32_t t : tokens) sampler.accept(t);
  tokenizer::StreamingDetokenizer detok(*tok, /*at_text_start=*/false);
  const std::vector<int32_t> prompt_ids = tokens;
  std::vector<int32_t> generated;
  std::string text;
  std::vector<float> logits;

  // Prefill in chunks of the forward limit.
  const auto t0 = std::chrono::steady_clock::now();
  int64_t done = 0;
  while (done < static_cast<int64_t>(tokens.size())) {
    model::SequenceBatch sb;
    const int64_t n = std::min<int64_t>(512, static_cast<int64_t>(tokens.size()) - done);
    sb.tokens = std::span<const int32_t>(tokens).subspan(static_cast<size_t>(done), static_cast<size_t>(n));
    sb.start_pos = done;
    sb.blocks = blocks;
    auto r = m.forward(std::span<const model::SequenceBatch>(&sb, 1), **pool, logits);
    if (!r) return fail(r.message());
    done += n;
  }
  const double prefill_s = seconds_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  const bool tty = isatty(fileno(stdout));
  for (int i = 0; i < o.n_predict; ++i) {
    const int32_t next = sampler.sample(std::span<const float>(logits.data(), static_cast<size_t>(m.config().vocab))).token;
    if (!o.ignore_eos && tok->vocab().is_end_of_generation(next)) break;
    generated.push_back(next);
    sampler.accept(next);
    const std::string delta = detok.push(next);
    text += delta;
    if (!o.json && !delta.empty()) {
      std::fwrite(delta.data(), 1, delta.size(), stdout);
      if (tty) std::fflush(stdout);
    }
    if (i + 1 == o.n_predict) break;
    tokens.push_back(next);
    model::SequenceBatch sb;
    sb.tokens = std::span<const int32_t>(tokens).subspan(tokens.size() - 1, 1);
    sb.start_pos = static_cast<int64_t>(tokens.size()) - 1;
    sb.blocks = blocks;
    auto r = m.forward(std::span<const model::SequenceBatch>(&sb, 1), **pool, logits);
    if (!r) return fail(r.message());
  }
  const std::string rest = detok.finish();
  text += rest;
  const double gen_s = seconds_since(t1);
  if (o.json) {
    nlohmann::json j{{"prompt_ids", prompt_ids}, {"ids", generated}, {"text", text}, {"seed", o.sampling.seed}};
    fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    fmt::print("{}\n", rest);
  }
  std::fflush(stdout);
  fmt::print(stderr, "\nprompt: {} tokens in {:.3f} s ({:.1f} tokens/s)\n", prompt_ids.size(), prefill_s,
             static_cast<double>(prompt_ids.size()) / std::max(prefill_s, 1e-9));
  fmt::print(stderr, "generation: {} tokens in {:.3f} s ({:.1f} tokens/s)\n", generated.size(), gen_s,
             static_cast<double>(generated.size()) / std::max(gen_s, 1e-9));
  return 0;
}

}  // namespace

// The model shipped in the repository: models/ next to the build folder.
std::string default_model_path() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (auto dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
      const auto candidate = dir / "models" / "stories260K.gguf";
      if (std::filesystem::exists(candidate, ec)) return candidate.string();
    }
  }
  return "models/stories260K.gguf";
}

void register_run(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("run", "Generate text from a prompt, streaming it");
  auto o = std::make_shared<RunOptions>();
  o->model = default_model_path();
  o->sampling.temperature = 0.8f;
  o->sampling.top_k = 40;
  o->sampling.top_p = 0.95f;
  o->sampling.min_p = 0.05f;
  cmd->add_option("-m,--model", o->model, "GGUF model (default: the model shipped in models/)");
  cmd->add_option("-p,--prompt", o->prompt, "Prompt text")->required();
  cmd->add_option("-n,--n-predict", o->n_predict, "Tokens to generate")->capture_default_str();
  cmd->add_option("--temp", o->sampling.temperature, "Temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "Top-k (0: off)")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "Top-p (1: off)")->capture_default_str();
  cmd->add_option("--min-p", o->sampling.min_p, "Min-p (0: off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", o->sampling.repetition_penalty, "Repetition penalty (1: off)")->capture_default_str();
  cmd->add_option("--presence-penalty", o->sampling.presence_penalty, "Presence penalty")->capture_default_str();
  cmd->add_option("--frequency-penalty", o->sampling.frequency_penalty, "Frequency penalty")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Random seed (default: random)");
  cmd->add_option("--ctx", o->ctx, "Context length (default: the model's)");
  cmd->add_option("-t,--threads", o->threads, "Threads (default: one per core)");
  cmd->add_option("--kv-type", o->kv_type, "KV cache type: f16 or f32")->capture_default_str();
  cmd->add_flag("--special", o->special, "Recognize special tokens written in the prompt");
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep generating after an end-of-generation token");
  cmd->add_flag("--json", o->json,
                "Print {\"prompt_ids\":[...],\"ids\":[...],\"text\":\"...\"} (generated part) at the end");
  cmd->callback([=, &action] { action = [=] { return run_generate(*o); }; });
}

}  // namespace tandem::cli
