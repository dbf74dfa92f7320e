// tandem's own folder writer and the loader are inverses: the tiny golden
// models written as Hugging Face folders (F32, one file or shards) load
// back to the same greedy ids as their references (llama's Q/K rows go out
// half-split and come back interleaved, gemma3's norms lose and regain 1,
// qwen3moe's experts go out one tensor each and come back stacked,
// gpt-oss's MXFP4 gate and up experts go out interleaved in one tensor with
// HF's nibble order and come back apart in GGUF's).
#include "hf/folder.h"
#include "hf/folder_writer.h"
#include "model/model_test_util.h"
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace tandem::hf {
namespace {

using tandem::test::data_path;

struct Golden {
  const char* model;
  const char* reference;
  int shards;
};

class FolderRoundTrip : public ::testing::TestWithParam<Golden> {};

TEST_P(FolderRoundTrip, GreedyIdsAsTheReference) {
  const Golden g = GetParam();
  auto src = gguf::GgufFile::open(data_path(g.model));
  ASSERT_TRUE(src.ok()) << src.message();
  const std::string dir = tandem::test::scratch_dir(std::string("hf_round_trip_") + g.model);
  FolderWriteOptions o;
  o.shards = g.shards;
  ASSERT_TRUE(write_folder(*src, dir, o).ok());
  auto m = model::test::load(dir);
  ASSERT_NE(m, nullptr);
  auto pool = model::test::make_pool(*m, kernels::KvType::kF16);
  const auto ref = nlohmann::json::parse(read_file(data_path(std::string("reference/") + g.reference)).value());
  for (const auto& r : ref["results"]) {
    const auto want = r["generated_ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(model::test::greedy(*m, *pool, r["prompt_ids"].get<std::vector<int32_t>>(), static_cast<int>(want.size())),
              want)
        << r["prompt"];
  }
  // The written tokenizer.json gives the GGUF tokenizer's ids on the prompts.
  auto folder_file = open_model(dir);
  ASSERT_TRUE(folder_file.ok()) << folder_file.message();
  auto a = tokenizer::Tokenizer::from_gguf(*src);
  auto b = tokenizer::Tokenizer::from_gguf(*folder_file);
  ASSERT_TRUE(a.ok() && b.ok());
  for (const auto& r : ref["results"]) {
    const std::string text = r["prompt"];
    EXPECT_EQ(a->encode(text, {}), b->encode(text, {})) << text;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, FolderRoundTrip,
                         ::testing::Values(Golden{"stories260K.gguf", "stories260K_greedy.json", 1},
                                           Golden{"qwen2-tiny-random.gguf", "qwen2_tiny_greedy.json", 2},
                                           Golden{"qwen3-tiny-random.gguf", "qwen3_tiny_greedy.json", 1},
                                           Golden{"gemma3-tiny-random.gguf", "gemma3_tiny_greedy.json", 3},
                                           Golden{"qwen3moe-tiny-random.gguf", "qwen3moe_tiny_greedy.json", 2},
                                           Golden{"gptoss-tiny-random.gguf", "gptoss_tiny_greedy.json", 1}),
                         [](const auto& info) {
                           std::string n = info.param.model;
                           return n.substr(0, n.find_first_of("-."));
                         });

TEST(FolderWriter, RefusesWhatItCannotWrite) {
  auto src = gguf::GgufFile::open(data_path("gptoss-tiny-random.gguf"));
  ASSERT_TRUE(src.ok());
  FolderWriteOptions o;
  o.mlx_bits = 4;
  const Status s = write_folder(*src, tandem::test::scratch_dir("hf_gptoss"), o);
  EXPECT_NE(s.message().find("keep their MXFP4 experts"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace tandem::hf
