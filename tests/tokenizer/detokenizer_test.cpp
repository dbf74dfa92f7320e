#include "tokenizer/detokenizer.h"

#include "core/utf8.h"
#include "tokenizer_test_util.h"

namespace tandem::tokenizer {
namespace {

using tandem::test::data_path;

bool is_valid_utf8(const std::string& s) { return utf8_sanitize(s) == s; }

// Streaming token by token gives the same text as a whole decode, and no
// delta ever ends inside a UTF-8 character.
TEST(StreamingDetokenizer, MatchesWholeDecodeOnEveryFixture) {
  for (const std::string name : {"qwen3", "llama3"}) {
    const Tokenizer& tok = test::load_hf_tokenizer(name);
    const auto ref = test::load_json(tandem::test::source_path("tests/tokenizer/fixtures/" + name + "_tokenize.json"));
    for (const auto& c : ref["cases"]) {
      const auto ids = c["ids"].get<std::vector<TokenId>>();
      StreamingDetokenizer stream(tok, /*at_text_start=*/true, /*render_special=*/true);
      std::string text;
      for (auto id : ids) {
        const std::string delta = stream.push(id);
        EXPECT_TRUE(is_valid_utf8(delta)) << name << ": " << c["text"];
        text += delta;
      }
      text += stream.finish();
      EXPECT_EQ(text, tok.decode(ids)) << name << ": " << c["text"];
    }
  }
}

TEST(StreamingDetokenizer, HoldsByteFallbackUntilCharacterIsComplete) {
  Tokenizer tok = test::load_gguf_tokenizer(data_path("stories260K.gguf"));
  // "你好" -> ▁ <0xE4> <0xBD> <0xA0> <0xE5> <0xA5> <0xBD>
  const auto ids = tok.encode("你好", {});
  ASSERT_EQ(ids.size(), 7u);
  StreamingDetokenizer stream(tok, /*at_text_start=*/true);
  std::vector<std::string> deltas;
  for (auto id : ids) deltas.push_back(stream.push(id));
  EXPECT_EQ(deltas, (std::vector<std::string>{"", "", "", "你", "", "", "好"}));
  EXPECT_EQ(stream.finish(), "");
}

TEST(StreamingDetokenizer, FirstTokenLeadingSpace) {
  Tokenizer tok = test::load_gguf_tokenizer(data_path("stories260K.gguf"));
  const auto ids = tok.encode("Once upon", {});  // ▁Once ▁upon
  StreamingDetokenizer from_start(tok, /*at_text_start=*/true);
  EXPECT_EQ(from_start.push(ids[0]), "Once");
  EXPECT_EQ(from_start.push(ids[1]), " upon");
  // Generated text after a prompt keeps its first space.
  StreamingDetokenizer continuing(tok, /*at_text_start=*/false);
  EXPECT_EQ(continuing.push(ids[0]), " Once");
  // A control token first does not use up the strip.
  StreamingDetokenizer after_bos(tok, /*at_text_start=*/true);
  EXPECT_EQ(after_bos.push(tok.vocab().bos), "");
  EXPECT_EQ(after_bos.push(ids[0]), "Once");
  // Byte-level BPE has no space prefix: nothing is stripped.
  const Tokenizer& qwen = test::load_hf_tokenizer("qwen3");
  StreamingDetokenizer q(qwen, /*at_text_start=*/true);
  EXPECT_EQ(q.push(qwen.encode(" hi", {})[0]), " hi");
}

TEST(StreamingDetokenizer, InvalidBytesBecomeReplacementCharacters) {
  Tokenizer tok = test::load_gguf_tokenizer(data_path("stories260K.gguf"));
  const TokenId e4 = tok.vocab().find("<0xE4>");
  const TokenId a = tok.vocab().find("a");
  ASSERT_NE(e4, kNoToken);
  ASSERT_NE(a, kNoToken);
  StreamingDetokenizer s(tok, true);
  EXPECT_EQ(s.push(e4), "");
  EXPECT_EQ(s.push(a),
            "\xEF\xBF\xBD"
            "a");  // the lead byte can no longer complete
  EXPECT_EQ(s.push(e4), "");
  EXPECT_EQ(s.finish(), "\xEF\xBF\xBD");  // cut off at the end of the stream
}

TEST(StreamingDetokenizer, SkipsControlTokensUnlessAsked) {
  const Tokenizer& qwen = test::load_hf_tokenizer("qwen3");
  StreamingDetokenizer hidden(qwen, false);
  EXPECT_EQ(hidden.push(151645), "");
  StreamingDetokenizer shown(qwen, false, /*render_special=*/true);
  EXPECT_EQ(shown.push(151645), "<|im_end|>");
  EXPECT_EQ(hidden.push(-5), "");  // out-of-range ids are ignored, never read out of bounds
  EXPECT_EQ(hidden.push(1 << 30), "");
}

}  // namespace
}  // namespace tandem::tokenizer
