// What an 8-bit KV cache costs in quality: q8_0, bf16 (and f32) against
// f16 on the same tokens, per model.
//
//   build/bench/kv_quality_bench [--tokens N] [--model FILE]... [--hf DIR]...
//
// Default models (tests/data): stories260K.gguf and story656k (its Hugging
// Face folder, loaded as it is), the qwen3 and gemma3 tiny
// random-weight goldens, and bench-models/qwen3-0.6b-q8_0.gguf when present
// (`tandem synth --like qwen3-0.6b --type q8_0`, or forward_bench makes it).
//
// Per model: the f16 cache's greedy continuation of a prompt (N tokens) is
// the reference sequence. Every KV type then reads that same sequence
// (teacher forcing: chunks of 64 tokens with all logits, which give the
// bits of decoding token by token) and its next-token distributions are
// compared with f16's: mean and max KL(f16 || type) in nats, and the share
// of positions whose argmax is f16's token. f32 vs f16 gives the scale of
// f16's own rounding. Then q8_0 and bf16 generate on their own (free
// running): the first position where their greedy tokens leave f16's, and
// the share of positions with the same token. Also the KV bytes per token of each type.
#include "kv/kv_pool.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

using namespace tandem;
using Logits = model::SequenceBatch::Logits;
using kernels::KvType;

namespace {

constexpr int kChunk = 64;

struct Seq {
  std::vector<kv::BlockId> blocks;
  int64_t computed = 0;
};

// Runs TOKENS[seq.computed, +n) through the model into POOL; LOGITS gets
// every row's logits (ALL) or the last one's.
bool feed(model::Model& m, kv::KvPool& pool, Seq& s, std::span<const int32_t> tokens, int64_t n, bool all,
          std::vector<float>& logits) {
  const int bt = pool.shape().block_tokens;
  while (static_cast<int64_t>(s.blocks.size()) * bt < s.computed + n) {
    auto b = pool.blocks().allocate();
    if (!b) return false;
    s.blocks.push_back(*b);
  }
  model::SequenceBatch sb;
  sb.tokens = tokens.subspan(static_cast<size_t>(s.computed), static_cast<size_t>(n));
  sb.start_pos = s.computed;
  sb.blocks = s.blocks;
  sb.logits = all ? Logits::kAll : Logits::kLast;
  auto r = m.forward(std::span<const model::SequenceBatch>(&sb, 1), pool, logits);
  if (!r.ok()) {
    fmt::print(stderr, "forward: {}\n", r.message());
    return false;
  }
  s.computed += n;
  return true;
}

void release(kv::KvPool& pool, Seq& s) {
  for (auto b : s.blocks) pool.blocks().release(b);
  s = {};
}

int argmax(const float* x, int n) { return static_cast<int>(std::max_element(x, x + n) - x); }

// PROMPT then N greedy tokens; returns prompt + generated.
std::vector<int32_t> greedy(model::Model& m, kv::KvPool& pool, std::vector<int32_t> tokens, int n) {
  Seq s;
  std::vector<float> logits;
  const int vocab = m.config().vocab;
  while (s.computed < static_cast<int64_t>(tokens.size())) {
    const int64_t left = static_cast<int64_t>(tokens.size()) - s.computed;
    if (!feed(m, pool, s, tokens, std::min<int64_t>(left, kChunk), false, logits)) return tokens;
  }
  for (int i = 0; i < n; ++i) {
    tokens.push_back(argmax(logits.data(), vocab));
    if (i + 1 < n && !feed(m, pool, s, tokens, 1, false, logits)) break;
  }
  release(pool, s);
  return tokens;
}

// log softmax in double.
void log_softmax(const float* x, int n, std::vector<double>& out) {
  out.resize(static_cast<size_t>(n));
  const double mx = *std::max_element(x, x + n);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - mx);
  const double lse = mx + std::log(sum);
  for (int i = 0; i < n; ++i) out[static_cast<size_t>(i)] = static_cast<double>(x[i]) - lse;
}

// KL(P || Q) from log-probabilities.
double kl(const std::vector<double>& lp, const std::vector<double>& lq) {
  double d = 0;
  for (size_t i = 0; i < lp.size(); ++i) d += std::exp(lp[i]) * (lp[i] - lq[i]);
  return std::max(d, 0.0);
}

struct Compare {
  double kl_sum = 0, kl_max = 0;
  int64_t top1_same = 0, n = 0;
};

// Text of token ids: the model's tokenizer, else ids.
struct Decoder {
  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::string text(std::span<const int32_t> ids) const {
    std::string s;
    for (int32_t id : ids) s += tok ? tok->decode(std::vector<int32_t>{id}) : fmt::format("[{}]", id);
    for (auto& c : s) c = c == '\n' ? ' ' : c;
    return s.size() > 160 ? s.substr(0, 160) + "..." : s;
  }
};

void run_model(const std::string& path, const std::string& label, Decoder dec, int n_new) {
  model::Model::Options mo;
  mo.n_threads = 2;
  mo.limits.max_tokens = kChunk;
  mo.limits.max_sequences = 1;
  auto loaded = model::Model::load(path, mo);
  if (!loaded) {
    fmt::print("{}: {}\n", label, loaded.message());
    return;
  }
  model::Model& m = **loaded;
  const auto& c = m.config();
  if (!dec.tok) {
    auto t = tokenizer::Tokenizer::from_gguf(m.file());
    if (t) dec.tok = std::make_unique<tokenizer::Tokenizer>(std::move(*t));
  }
  std::vector<int32_t> prompt{1};  // BOS
  if (dec.tok) {
    tokenizer::EncodeOptions enc;
    enc.add_bos = dec.tok->adds_bos();
    prompt = dec.tok->encode("Once upon a time", enc);
  }
  const int64_t total = static_cast<int64_t>(prompt.size()) + n_new;
  if (total > c.ctx) {
    fmt::print("{}: {} tokens exceed the context of {}\n", label, total, c.ctx);
    return;
  }
  const KvType types[] = {KvType::kF16, KvType::kQ8_0, KvType::kF32, KvType::kBF16};
  constexpr int kTypes = 4;
  std::vector<std::unique_ptr<kv::KvPool>> pools;
  for (KvType t : types) {
    const kv::KvShape shape = m.kv_shape(t);
    auto pool = kv::KvPool::create(shape, shape.block_bytes() * static_cast<size_t>(total / shape.block_tokens + 2));
    if (!pool) {
      fmt::print("{}: {}\n", label, pool.message());
      return;
    }
    pools.push_back(std::move(*pool));
  }
  const size_t f16_bytes = pools[0]->shape().block_bytes() / 32, q8_bytes = pools[1]->shape().block_bytes() / 32;
  fmt::print("\n{} ({} layers, {} KV heads of {}): KV bytes per token f16 {}, q8_0 {} ({:.1f}%)\n", label, c.n_layers,
             c.n_kv_heads, c.head_dim, f16_bytes, q8_bytes,
             100.0 * static_cast<double>(q8_bytes) / static_cast<double>(f16_bytes));

  // The reference sequence: f16's greedy continuation.
  const std::vector<int32_t> seq = greedy(m, *pools[0], prompt, n_new);
  const int64_t P = static_cast<int64_t>(prompt.size());

  // Teacher forcing: every type over SEQ in lockstep chunks; rows P-1 .. total-2 predict seq[row + 1].
  const int vocab = c.vocab;
  Seq s[kTypes];
  std::vector<float> logits[kTypes];
  Compare q8_vs_f16, f32_vs_f16, q8_vs_f32, bf16_vs_f16;
  int64_t f16_self = 0;
  std::vector<double> lp[kTypes];
  const std::span<const int32_t> all_tokens(seq);
  for (int64_t start = 0; start < total - 1; start += kChunk) {
    const int64_t n = std::min<int64_t>(kChunk, total - 1 - start);
    for (int t = 0; t < kTypes; ++t) {
      if (!feed(m, *pools[static_cast<size_t>(t)], s[t], all_tokens, n, true, logits[t])) return;
    }
    for (int64_t r = 0; r < n; ++r) {
      const int64_t pos = start + r;
      if (pos < P - 1) continue;
      for (int t = 0; t < kTypes; ++t) log_softmax(logits[t].data() + r * vocab, vocab, lp[t]);
      const int32_t next = seq[static_cast<size_t>(pos + 1)];
      f16_self += argmax(logits[0].data() + r * vocab, vocab) == next;
      auto add = [&](Compare& cmp, int p, int q) {
        const double d = kl(lp[p], lp[q]);
        cmp.kl_sum += d;
        cmp.kl_max = std::max(cmp.kl_max, d);
        cmp.top1_same += argmax(logits[p].data() + r * vocab, vocab) == argmax(logits[q].data() + r * vocab, vocab);
        ++cmp.n;
      };
      add(q8_vs_f16, 0, 1);
      add(f32_vs_f16, 0, 2);
      add(q8_vs_f32, 2, 1);
      add(bf16_vs_f16, 0, 3);
    }
  }
  for (int t = 0; t < kTypes; ++t) release(*pools[static_cast<size_t>(t)], s[t]);
  if (f16_self != n_new)
    fmt::print("  (!) teacher-forced f16 disagrees with its own greedy run at {} positions\n", n_new - f16_self);

  // Free running: q8_0's and bf16's own greedy continuations.
  struct Run {
    const char* name;
    std::vector<int32_t> seq;
    int64_t first = 0, same = 0;
  };
  std::vector<Run> runs;
  for (int t : {1, 3}) {
    Run r{kernels::kv_type_name(types[t]), greedy(m, *pools[static_cast<size_t>(t)], prompt, n_new)};
    while (r.first < n_new && r.seq[static_cast<size_t>(P + r.first)] == seq[static_cast<size_t>(P + r.first)])
      ++r.first;
    for (int64_t i = 0; i < n_new; ++i) r.same += r.seq[static_cast<size_t>(P + i)] == seq[static_cast<size_t>(P + i)];
    runs.push_back(std::move(r));
  }

  auto row = [](const char* what, const Compare& cmp) {
    fmt::print("  {:<16} mean KL {:.2e}  max KL {:.2e}  same argmax {:.1f}%\n", what,
               cmp.kl_sum / static_cast<double>(cmp.n), cmp.kl_max,
               100.0 * static_cast<double>(cmp.top1_same) / static_cast<double>(cmp.n));
  };
  fmt::print("  teacher-forced over f16's {} greedy tokens:\n", n_new);
  row("q8_0 vs f16", q8_vs_f16);
  row("f32 vs f16", f32_vs_f16);
  row("q8_0 vs f32", q8_vs_f32);
  row("bf16 vs f16", bf16_vs_f16);
  for (const Run& r : runs) {
    fmt::print("  free-running {} greedy: first divergence at token {} of {}, {:.1f}% of tokens identical\n", r.name,
               r.first, n_new, 100.0 * static_cast<double>(r.same) / static_cast<double>(n_new));
    // The texts from a few tokens before they part.
    const size_t from = static_cast<size_t>(P + std::max<int64_t>(0, r.first - 8));
    fmt::print("    f16  [{}..]: {}\n", from - static_cast<size_t>(P),
               dec.text(std::span<const int32_t>(seq).subspan(from)));
    fmt::print("    {:<4} [{}..]: {}\n", r.name, from - static_cast<size_t>(P),
               dec.text(std::span<const int32_t>(r.seq).subspan(from)));
  }
}

}  // namespace

int main(int argc, char** argv) {
  int n_new = 300;
  std::vector<std::string> models, hf_dirs;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string opt = argv[i];
    if (opt == "--tokens") n_new = std::atoi(argv[i + 1]);
    else if (opt == "--model") models.push_back(argv[i + 1]);
    else if (opt == "--hf") hf_dirs.push_back(argv[i + 1]);
    else {
      fmt::print(stderr, "usage: kv_quality_bench [--tokens N] [--model FILE]... [--hf DIR]...\n");
      return 1;
    }
  }
  const std::string data = TANDEM_TEST_DATA;
  if (models.empty() && hf_dirs.empty()) {
    models = {data + "/stories260K.gguf", data + "/qwen3-tiny-random.gguf", data + "/gemma3-tiny-random.gguf"};
    hf_dirs = {data + "/story656k"};
    if (std::filesystem::exists("bench-models/qwen3-0.6b-q8_0.gguf"))
      models.push_back("bench-models/qwen3-0.6b-q8_0.gguf");
  }
  fmt::print("KV cache quality, {} greedy tokens per model (KL in nats per token)\n", n_new);
  for (const std::string& path : models) run_model(path, std::filesystem::path(path).filename().string(), {}, n_new);
  // Hugging Face folders load as they are (hf/folder.h).
  for (const std::string& dir : hf_dirs)
    run_model(dir, std::filesystem::path(dir).filename().string() + " (safetensors folder)", {}, n_new);
  return 0;
}
