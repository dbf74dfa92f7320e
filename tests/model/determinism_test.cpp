// A sequence's logits must not depend on what else is in the batch, on how
// its prompt was chunked, or on the number of threads: bit for bit.
#include "kernels/amx.h"
#include "kernels/matmul_internal.h"
#include "model/synth.h"
#include "kernels/q8_pack.h"
#include "model_test_util.h"

#include <cstring>
#include <map>
#include <random>
#include <string>

namespace tandem::model {
namespace {

using tandem::test::data_path;
using Logits = SequenceBatch::Logits;

// Logits per position of one sequence: position p -> the row that predicts token p+1.
using Trace = std::map<int64_t, std::vector<float>>;

std::vector<int32_t> random_tokens(std::mt19937& rng, int n, int vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(3 + rng() % static_cast<uint32_t>(vocab - 3));
  return t;
}

// Runs a set of sequences together. Each step every unfinished sequence
// contributes a prefill chunk (random size, all logits) or one decode token
// (its greedy next); returns the trace of every sequence.
std::vector<Trace> run_together(Model& m, kv::KvPool& pool, std::vector<std::vector<int32_t>> prompts, int n_new,
                                std::mt19937& rng, int max_chunk) {
  const int vocab = m.config().vocab;
  std::vector<test::Seq> seqs(prompts.size());
  std::vector<Trace> traces(prompts.size());
  std::vector<int> generated(prompts.size(), 0);
  for (size_t i = 0; i < prompts.size(); ++i) seqs[i].tokens = prompts[i];
  std::vector<float> logits;
  for (;;) {
    std::vector<SequenceBatch> batch;
    std::vector<size_t> who;
    for (size_t i = 0; i < seqs.size(); ++i) {
      if (generated[i] >= n_new) continue;
      const int64_t left = static_cast<int64_t>(seqs[i].tokens.size()) - seqs[i].computed;
      const int64_t n = left > 1 ? 1 + static_cast<int64_t>(rng() % static_cast<uint32_t>(max_chunk)) : 1;
      batch.push_back(seqs[i].next(pool, n, Logits::kAll));
      who.push_back(i);
    }
    if (batch.empty()) break;
    // Shuffle the order of sequences in the batch: rows land in other places.
    std::vector<size_t> order(batch.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<SequenceBatch> shuffled;
    std::vector<size_t> shuffled_who;
    for (size_t o : order) {
      shuffled.push_back(batch[o]);
      shuffled_who.push_back(who[o]);
    }
    auto r = m.forward(shuffled, pool, logits);
    EXPECT_TRUE(r.ok()) << r.message();
    if (!r.ok()) return traces;
    size_t row = 0;
    for (size_t b = 0; b < shuffled.size(); ++b) {
      const size_t i = shuffled_who[b];
      for (size_t t = 0; t < shuffled[b].tokens.size(); ++t, ++row) {
        const float* l = logits.data() + row * static_cast<size_t>(vocab);
        traces[i][shuffled[b].start_pos + static_cast<int64_t>(t)].assign(l, l + vocab);
      }
      // Prompt done: append the greedy next token.
      if (seqs[i].computed == static_cast<int64_t>(seqs[i].tokens.size())) {
        const float* last = logits.data() + (row - 1) * static_cast<size_t>(vocab);
        seqs[i].tokens.push_back(test::argmax(last, vocab));
        ++generated[i];
      }
    }
  }
  for (auto& s : seqs) s.release(pool);
  return traces;
}

void expect_same(const Trace& a, const Trace& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (const auto& [pos, row] : a) {
    ASSERT_TRUE(b.count(pos)) << what << " position " << pos;
    ASSERT_EQ(std::memcmp(row.data(), b.at(pos).data(), row.size() * sizeof(float)), 0)
        << what << ": logits differ at position " << pos;
  }
}

void check_determinism(const std::string& path, kernels::KvType kv_type) {
  auto m = test::load(path, 2, 256, 16);
  auto m1 = test::load(path, 1, 256, 16);
  ASSERT_TRUE(m && m1);
  auto pool = test::make_pool(*m, kv_type, 1024);
  std::mt19937 rng(1234);
  const int vocab = m->config().vocab;
  const auto prompt = random_tokens(rng, 45, vocab);

  // Alone, whole prompt at once.
  std::mt19937 r0(1);
  const Trace alone = run_together(*m, *pool, {prompt}, 6, r0, 1 << 20)[0];
  ASSERT_EQ(alone.size(), prompt.size() + 5);

  // Prompt chunked by 1, 7, 32 (run_together draws chunk sizes up to max_chunk;
  // max_chunk 1 means one token at a time).
  for (int chunk : {1, 7, 32}) {
    std::mt19937 rc(static_cast<unsigned>(chunk));
    expect_same(alone, run_together(*m, *pool, {prompt}, 6, rc, chunk)[0], "chunk " + std::to_string(chunk));
  }
  // One thread instead of two.
  std::mt19937 r1(1);
  auto pool1 = test::make_pool(*m1, kv_type, 1024);
  expect_same(alone, run_together(*m1, *pool1, {prompt}, 6, r1, 1 << 20)[0], "1 thread");

  // Inside batches of 2..16 sequences with other prompts, mixed prefill and
  // decode, random chunk sizes and order.
  for (int n : {2, 3, 5, 8, 16}) {
    std::vector<std::vector<int32_t>> prompts{prompt};
    for (int i = 1; i < n; ++i) prompts.push_back(random_tokens(rng, 5 + static_cast<int>(rng() % 40), vocab));
    std::mt19937 rb(static_cast<unsigned>(n));
    const auto traces = run_together(*m, *pool, prompts, 6, rb, 9);
    expect_same(alone, traces[0], "batch of " + std::to_string(n));
  }
  EXPECT_EQ(pool->blocks().n_free(), pool->n_blocks());
}

// Every KV type keeps the guarantees: a q8_0 token's bytes depend only on
// its own K/V rows, and attention's per-query arithmetic on the tiling.
class Determinism : public ::testing::TestWithParam<std::tuple<const char*, kernels::KvType>> {};

TEST_P(Determinism, BatchChunkingAndThreadsDoNotChangeLogits) {
  check_determinism(data_path(std::get<0>(GetParam())), std::get<1>(GetParam()));
}

// Quantized weights go through the integer matmul kernels (activations
// quantized per row): the same guarantees hold.
TEST(Determinism, QuantizedWeights) {
  for (auto type : {gguf::TensorType::Q8_0, gguf::TensorType::Q4_K, gguf::TensorType::Q6_K, gguf::TensorType::F16}) {
    ShapeOverrides o;
    o.n_layers = 2, o.dim = 256, o.n_heads = 4, o.n_kv_heads = 2, o.head_dim = 64, o.ffn_dim = 512, o.vocab = 1000;
    auto shape = make_shape("qwen3-0.6b", o);
    ASSERT_TRUE(shape.ok());
    const std::string path = tandem::test::scratch_dir("determinism_" + std::string(gguf::type_name(type))) + "/m.gguf";
    ASSERT_TRUE(write_synth(*shape, type, 5, {}, path).ok());
    SCOPED_TRACE(std::string(gguf::type_name(type)));
    const uint64_t amx_calls = kernels::detail::amx_call_count();
    const uint64_t kq_vnni_calls = kernels::detail::kq_vnni_call_count();
    check_determinism(path, kernels::KvType::kF16);
    // On AVX-512 VNNI the K-quants' chunks of 1 token take the decode path
    // of matmul_kq_vnni.cpp, the chunks of 7 the rows-in-lanes kernel.
    const bool kq = type == gguf::TensorType::Q4_K || type == gguf::TensorType::Q6_K;
    if (kq && std::string(kernels::matmul_target_name()) == "AVX3_DL" && kernels::detail::kq_vnni_enabled()) {
      EXPECT_GT(kernels::detail::kq_vnni_call_count(), kq_vnni_calls);
    }
    // With AMX, batches of >= amx_min_rows() rows (the 45-token prompt
    // alone) take the tile path and chunks of 1 or 7 the AVX one: the
    // comparisons above span both.
    if (kernels::amx_min_rows(type) > 0 && kernels::amx_mode() == kernels::AmxMode::kAuto) {
      EXPECT_GT(kernels::detail::amx_call_count(), amx_calls);
    }
    // q8_0 KV with heads of 64 (two scale groups per head) on integer-kernel models.
    if (type == gguf::TensorType::Q8_0 || type == gguf::TensorType::Q4_K) {
      SCOPED_TRACE("q8_0 KV");
      check_determinism(path, kernels::KvType::kQ8_0);
    }
  }
}

// Q8_0 and Q4_0 matrices repacked at load for the decode kernels (kernels/q8_pack.h,
// in groups of 16 rows on AVX-512 VNNI, 8 on AVX2 and AVX-512, none with AMX) give the same logits as the
// file's layout, in batches with chunked prompts; dense and experts (each
// expert's rows packed on their own), tied embeddings (the lookup unpacks).
TEST(Determinism, PackedWeightsGiveTheSameLogits) {
  for (auto [preset, type] : {std::pair<const char*, gguf::TensorType>{"qwen3-0.6b", gguf::TensorType::Q8_0},
                              {"qwen3-30b-a3b", gguf::TensorType::Q8_0},
                              {"qwen3-0.6b", gguf::TensorType::Q4_0}}) {
    ShapeOverrides o;
    o.n_layers = 2, o.dim = 256, o.n_heads = 4, o.n_kv_heads = 2, o.head_dim = 64, o.ffn_dim = 512, o.vocab = 1000;
    if (std::string(preset) != "qwen3-0.6b") {
      o.n_experts = 8, o.n_experts_used = 2, o.expert_ffn_dim = 96;  // experts of 96 rows: 6 groups of 16
    }
    auto shape = make_shape(preset, o);
    ASSERT_TRUE(shape.ok()) << shape.message();
    const std::string name = std::string(preset) + "_" + std::string(gguf::type_name(type));
    const std::string path = tandem::test::scratch_dir("packed_" + name) + "/m.gguf";
    ASSERT_TRUE(write_synth(*shape, type, 5, {}, path).ok());
    SCOPED_TRACE(name);
    auto plain = test::load(path, 2, 256, 16);
    auto packed = test::load(path, 2, 256, 16);
    ASSERT_TRUE(plain && packed);
    ::setenv("TANDEM_NO_PACK", "1", 1);
    const auto r0 = plain->bring_weights_in(UINT64_MAX, nullptr);
    ::unsetenv("TANDEM_NO_PACK");
    const auto r1 = packed->bring_weights_in(UINT64_MAX, nullptr);
    EXPECT_EQ(r0.packed_matrices, 0);
    if (kernels::packing_group() > 0) {
      EXPECT_GT(r1.packed_matrices, 0) << r1.note;
    } else {
      std::printf("  packing does not pay on this CPU (%s): both models keep the GGUF layout\n",
                  kernels::matmul_target_name());
    }
    EXPECT_EQ(plain->fingerprint(), packed->fingerprint()) << "the fingerprint hashes the file's bytes";
    std::mt19937 rng(77);
    const int vocab = plain->config().vocab;
    std::vector<std::vector<int32_t>> prompts;
    for (int n : {45, 9, 23}) prompts.push_back(random_tokens(rng, n, vocab));
    auto pool0 = test::make_pool(*plain, kernels::KvType::kF16, 512);
    auto pool1 = test::make_pool(*packed, kernels::KvType::kF16, 512);
    std::mt19937 ra(5), rb(5), rc(6);
    const auto want = run_together(*plain, *pool0, prompts, 6, ra, 9);
    const auto got = run_together(*packed, *pool1, prompts, 6, rb, 9);
    for (size_t i = 0; i < prompts.size(); ++i) expect_same(want[i], got[i], "sequence " + std::to_string(i));
    // And one token at a time (the decode kernel throughout).
    const Trace one_by_one = run_together(*packed, *pool1, {prompts[0]}, 6, rc, 1)[0];
    expect_same(want[0], one_by_one, "packed, one token at a time");
  }
}

INSTANTIATE_TEST_SUITE_P(Models, Determinism,
                         ::testing::Combine(::testing::Values("stories260K.gguf", "qwen2-tiny-random.gguf",
                                                              "qwen3-tiny-random.gguf", "gemma3-tiny-random.gguf",
                                                              "qwen3moe-tiny-random.gguf", "gptoss-tiny-random.gguf"),
                                            ::testing::Values(kernels::KvType::kF16, kernels::KvType::kQ8_0,
                                                              kernels::KvType::kBF16)),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param);
                           return n.substr(0, n.find_first_of("-.")) + "_" +
                                  kernels::kv_type_name(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace tandem::model
