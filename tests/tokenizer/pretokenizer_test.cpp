// Pre-tokenizer splits, worked out by hand from the regexes' definitions
// (the JS reference fixtures cover llama-bpe, qwen2 and deepseek-v3 end to
// end; GPT-2's pattern has no packaged reference tokenizer, so it is pinned
// here).
#include "tokenizer/pretokenizer.h"

#include <gtest/gtest.h>

namespace tandem::tokenizer {
namespace {

std::vector<std::string> split(const std::string& name, const std::string& text) {
  auto pt = PreTokenizer::create(name);
  EXPECT_TRUE(pt.ok()) << pt.message();
  std::vector<std::string_view> pieces;
  (*pt)->split(text, pieces);
  return {pieces.begin(), pieces.end()};
}

using V = std::vector<std::string>;

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(split("gpt2", "Hello world's 123 foo!!"), (V{"Hello", " world", "'s", " 123", " foo", "!!"}));
  // \s+(?!\S) leaves the last space to join the next word.
  EXPECT_EQ(split("gpt2", "a   b"), (V{"a", "  ", " b"}));
  EXPECT_EQ(split("gpt2", "x\n\n  y  "), (V{"x", "\n\n ", " y", "  "}));
  EXPECT_EQ(split("default", "I'LL"), (V{"I", "'", "LL"}));  // GPT-2's contractions are lower case only
}

TEST(PreTokenizer, Llama3AndQwen2Digits) {
  EXPECT_EQ(split("llama-bpe", "1234567"), (V{"123", "456", "7"}));
  EXPECT_EQ(split("qwen2", "1234"), (V{"1", "2", "3", "4"}));
  EXPECT_EQ(split("llama-bpe", "I'LL go"), (V{"I", "'LL", " go"}));  // case-insensitive contractions
  EXPECT_EQ(split("qwen2", "foo.bar\r\n\r\nbaz"), (V{"foo", ".bar", "\r\n\r\n", "baz"}));
}

TEST(PreTokenizer, DeepseekV3IsASequence) {
  // Digits first (groups of 3), then CJK runs, then words and punctuation.
  EXPECT_EQ(split("deepseek-v3", "abc12345你好def"), (V{"abc", "123", "45", "你好", "def"}));
  EXPECT_EQ(split("deepseek-v3", "x.Foo"), (V{"x", ".Foo"}));
}

TEST(PreTokenizer, LongWhitespaceRunsAndErrors) {
  const std::string spaces(200000, ' ');
  const auto pieces = split("qwen2", "a" + spaces + "b");
  ASSERT_EQ(pieces.size(), 3u);  // needs a large JIT stack: the lookahead backtracks over the run
  EXPECT_EQ(pieces[1].size(), spaces.size() - 1);
  EXPECT_FALSE(PreTokenizer::create("bloom").ok());
  auto bad = PreTokenizer::from_patterns({"(unclosed"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("bad pre-tokenizer regex"), std::string::npos);
}

}  // namespace
}  // namespace tandem::tokenizer
