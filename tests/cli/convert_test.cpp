// tandem convert from the command line: a Hugging Face folder to GGUF (the
// story656k golden survives, and requantization falls back where rows are
// not whole blocks), a GGUF to an MLX folder and back, and bad options.
#include "cli_run.h"
#include "gguf/reader.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace tandem::cli {
namespace {

using test::CliRun;
using test::count_lines;
using test::tandem;

TEST(Convert, FolderToGgufKeepsTheGolden) {
  const std::string dir = tandem::test::scratch_dir("cli_convert_story");
  CliRun c = tandem("convert " + tandem::test::data_path("story656k") + " -o " + dir + "/story.gguf");
  ASSERT_EQ(c.code, 0) << c.err;
  auto f = gguf::GgufFile::open(dir + "/story.gguf");
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "llama");
  // The first 16 ids of reference/story656k_greedy.json for "Once upon a time".
  CliRun r = tandem("run -m " + dir + "/story.gguf -p 'Once upon a time' -n 16 --temp 0 --kv-type f32 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"ids\":[313,598,303,1049,1468,267,628,333,94,1210,263,251,604,94,1030,94]"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\"prompt_ids\":[1,80,147,201,282,57]"), std::string::npos) << r.out;

  CliRun q = tandem("convert " + tandem::test::data_path("story656k") + " -o " + dir + "/q4k.gguf --type q4_k");
  ASSERT_EQ(q.code, 0) << q.err;
  auto g = gguf::GgufFile::open(dir + "/q4k.gguf");
  ASSERT_TRUE(g.ok());
  // 128- and 384-wide rows are not whole 256-element q4_k blocks: q8_0, as llama.cpp does.
  EXPECT_EQ(g->find_tensor("blk.0.attn_q.weight")->type, gguf::TensorType::Q8_0);
  EXPECT_EQ(g->find_tensor("blk.0.ffn_down.weight")->type, gguf::TensorType::Q8_0);
  EXPECT_EQ(g->find_tensor("blk.0.attn_norm.weight")->type, gguf::TensorType::F32);
  CliRun q4 = tandem("convert " + tandem::test::data_path("story656k") + " -o " + dir + "/q4.gguf --type q4_0");
  ASSERT_EQ(q4.code, 0) << q4.err;
  auto h = gguf::GgufFile::open(dir + "/q4.gguf");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->find_tensor("blk.0.ffn_down.weight")->type, gguf::TensorType::Q4_0);
}

TEST(Convert, GgufToMlxFolderAndBack) {
  const std::string dir = tandem::test::scratch_dir("cli_convert_mlx");
  const std::string src = tandem::test::data_path("qwen3-tiny-random.gguf");
  CliRun w = tandem("convert " + src + " -o " + dir + "/mlx --mlx-bits 8 --mlx-group 32 --shards 2");
  ASSERT_EQ(w.code, 0) << w.err;
  EXPECT_TRUE(std::filesystem::exists(dir + "/mlx/model.safetensors.index.json"));
  CliRun b = tandem("convert " + dir + "/mlx -o " + dir + "/back.gguf");
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.err.find("MLX matrices as q8_0"), std::string::npos) << b.err;
  auto f = gguf::GgufFile::open(dir + "/back.gguf");
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->find_tensor("blk.0.attn_q.weight")->type, gguf::TensorType::Q8_0);
  EXPECT_EQ(f->find_tensor("blk.0.attn_q.weight.offsets"), nullptr);  // folded into the q8_0 values
  CliRun r = tandem("run -m " + dir + "/mlx -p 'hello' -n 4 --temp 0");
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST(Convert, BadOptionsGiveOneErrorLine) {
  const std::string dir = tandem::test::scratch_dir("cli_convert_bad");
  const std::string src = tandem::test::data_path("qwen3-tiny-random.gguf");
  for (const auto& [args, message] :
       {std::pair<std::string, std::string>{src + " -o " + dir + "/x.gguf --type q2_k", "unsupported --type 'q2_k'"},
        {src + " -o " + dir + "/m --mlx-bits 3", "--mlx-bits must be 4 or 8"},
        {src + " -o " + dir + "/m --folder --type q8_0", "a folder holds f32 or bf16 floats"},
        {tandem::test::data_path("gptoss-tiny-random.gguf") + " -o " + dir + "/m --mlx-bits 4", "keep their MXFP4 experts"},
        {dir + " -o " + dir + "/x.gguf", "no config.json"}}) {
    CliRun r = tandem("convert " + args);
    EXPECT_EQ(r.code, 1) << args;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  }
}

}  // namespace
}  // namespace tandem::cli
