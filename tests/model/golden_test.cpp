// Greedy ids and first-position logits against the reference outputs in
// tests/data/reference (each agrees with an independent implementation;
// tests/data/README.md says how they were made and what they pin down).
#include "core/mapped_file.h"
#include "model_test_util.h"

#include <nlohmann/json.hpp>

namespace tandem::model {
namespace {

using tandem::test::data_path;

struct Golden {
  const char* model;
  const char* reference;
};

class GoldenTest : public ::testing::TestWithParam<Golden> {};

nlohmann::json reference(const Golden& g) {
  return nlohmann::json::parse(read_file(data_path(std::string("reference/") + g.reference)).value());
}

// Exact greedy ids with the default f16 KV cache.
TEST_P(GoldenTest, GreedyIdsWithF16Kv) {
  auto m = test::load(data_path(GetParam().model));
  ASSERT_NE(m, nullptr);
  auto pool = test::make_pool(*m, kernels::KvType::kF16);
  const nlohmann::json ref = reference(GetParam());  // (a temporary would die before the loop)
  for (const auto& r : ref["results"]) {
    const auto prompt = r["prompt_ids"].get<std::vector<int32_t>>();
    const auto want = r["generated_ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(test::greedy(*m, *pool, prompt, static_cast<int>(want.size())), want) << r["prompt"];
  }
}

// Top-5 logits at the first generated position within TOLERANCE with an f32 KV cache.
void check_first_logits(const Golden& g, double tolerance) {
  auto m = test::load(data_path(g.model));
  ASSERT_NE(m, nullptr);
  auto pool = test::make_pool(*m, kernels::KvType::kF32);
  const nlohmann::json ref = reference(g);  // (a temporary would die before the loop)
  for (const auto& r : ref["results"]) {
    std::vector<float> logits;
    const auto want = r["generated_ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(test::greedy(*m, *pool, r["prompt_ids"].get<std::vector<int32_t>>(), static_cast<int>(want.size()),
                           1 << 30, &logits),
              want);
    for (const auto& t : r["top5_first"]) {
      EXPECT_NEAR(logits[t[0].get<size_t>()], t[1].get<double>(), tolerance) << r["prompt"] << " token " << t[0];
    }
  }
}

// The references compute in f32/f64 without rounding activations; the
// integer kernels round each matmul's input to 8 bits (as llama.cpp does).
// With f32 activations every model is within 1e-3 of its reference.
TEST_P(GoldenTest, FirstLogitsWithF32Kv) {
  kernels::set_f32_activations(true);
  check_first_logits(GetParam(), 1e-3);
  kernels::set_f32_activations(false);
}

// With the integer kernels the quantized models move by the rounding of
// their activations: gpt-oss's MXFP4 experts by up to 0.044 here (llama.cpp
// by up to 0.07 on the same file); the f32 models are untouched.
TEST_P(GoldenTest, FirstLogitsWithIntegerKernels) {
  const std::string model = GetParam().model;
  check_first_logits(GetParam(), model == "gptoss-tiny-random.gguf" ? 0.1 : 1e-3);
}

// With an 8-bit KV cache greedy ids may differ from the reference (the
// goldens were chosen robust to f16 rounding, not to q8_0's): reports how
// many positions agree before the first divergence and overall. The real
// model (stories260K, heads of 8: one scale per head row) agrees on every
// id, as does gemma3; the random-weight qwen2 and qwen3 goldens diverge on
// one prompt each (178 and 175 of 192 ids agree): at least 3 in 4 must.
// qwen3moe's router has logit gaps of 2e-4 (tests/data/README.md), so 8-bit
// K/V flips an expert choice early on one prompt (125 of 192): half must.
TEST_P(GoldenTest, GreedyAgreementWithQ8Kv) {
  auto m = test::load(data_path(GetParam().model));
  ASSERT_NE(m, nullptr);
  auto pool = test::make_pool(*m, kernels::KvType::kQ8_0);
  size_t same = 0, total = 0;
  const nlohmann::json ref = reference(GetParam());  // (a temporary would die before the loop)
  for (const auto& r : ref["results"]) {
    const auto want = r["generated_ids"].get<std::vector<int32_t>>();
    const auto got =
        test::greedy(*m, *pool, r["prompt_ids"].get<std::vector<int32_t>>(), static_cast<int>(want.size()));
    ASSERT_EQ(got.size(), want.size());
    size_t first = 0;
    while (first < want.size() && got[first] == want[first]) ++first;
    for (size_t i = 0; i < want.size(); ++i) same += got[i] == want[i];
    total += want.size();
    std::printf("  %s q8_0 KV: first divergence at %zu of %zu\n", GetParam().model, first, want.size());
  }
  std::printf("  %s q8_0 KV: %zu of %zu greedy ids as with f16\n", GetParam().model, same, total);
  const std::string model = GetParam().model;
  if (model == "stories260K.gguf" || model == "gemma3-tiny-random.gguf") {
    EXPECT_EQ(same, total);
  } else if (model == "qwen3moe-tiny-random.gguf") {
    EXPECT_GE(same * 2, total);
  } else {
    EXPECT_GE(same * 4, total * 3);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GoldenTest,
                         ::testing::Values(Golden{"stories260K.gguf", "stories260K_greedy.json"},
                                           Golden{"qwen2-tiny-random.gguf", "qwen2_tiny_greedy.json"},
                                           Golden{"qwen3-tiny-random.gguf", "qwen3_tiny_greedy.json"},
                                           Golden{"gemma3-tiny-random.gguf", "gemma3_tiny_greedy.json"},
                                           Golden{"qwen3moe-tiny-random.gguf", "qwen3moe_tiny_greedy.json"},
                                           Golden{"gptoss-tiny-random.gguf", "gptoss_tiny_greedy.json"}),
                         [](const auto& info) {
                           std::string n = info.param.model;
                           return n.substr(0, n.find_first_of("-."));
                         });

}  // namespace
}  // namespace tandem::model
