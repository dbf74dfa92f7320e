// SentencePiece (tokenizer.ggml.model = "llama") against the reference
// tokenizations in tests/data/reference.
#include "tokenizer_test_util.h"

namespace tandem::tokenizer {
namespace {

using tandem::test::data_path;

void check_reference(const std::string& model, const std::string& reference) {
  Tokenizer tok = test::load_gguf_tokenizer(data_path(model));
  const auto ref = test::load_json(data_path("reference/" + reference));
  ASSERT_EQ(tok.vocab().size(), ref["vocab_size"].get<size_t>());
  ASSERT_GT(ref["cases"].size(), 30u);
  for (const auto& c : ref["cases"]) {
    const std::string text = c["text"];
    const auto ids = tok.encode(text, {});
    EXPECT_EQ(ids, c["ids"].get<std::vector<TokenId>>()) << "text: " << text;
    std::vector<std::string> pieces;
    for (auto id : ids) pieces.push_back(tok.vocab().tokens[static_cast<size_t>(id)]);
    EXPECT_EQ(pieces, c["pieces"].get<std::vector<std::string>>()) << "text: " << text;
    // Byte fallback makes SentencePiece lossless.
    DecodeOptions d;
    d.strip_leading_space = true;
    EXPECT_EQ(tok.decode(ids, d), text);
    // With BOS.
    EncodeOptions with_bos;
    with_bos.add_bos = true;
    const auto ids_bos = tok.encode(text, with_bos);
    ASSERT_FALSE(ids_bos.empty());
    EXPECT_EQ(ids_bos[0], ref["bos_id"].get<TokenId>());
  }
}

TEST(Spm, Stories260KReference) { check_reference("stories260K.gguf", "spm512_tokenize.json"); }
TEST(Spm, Llama2VocabReference) { check_reference("llama-2-tiny-random.gguf", "spm32k_tokenize.json"); }

// The prompt ids of every golden file (BOS included), for each architecture's
// tokenizer settings (gemma3 has add_space_prefix = false).
TEST(Spm, GoldenPromptIds) {
  for (const auto& [model, golden] : {std::pair{"stories260K.gguf", "stories260K_greedy.json"},
                                      std::pair{"qwen2-tiny-random.gguf", "qwen2_tiny_greedy.json"},
                                      std::pair{"qwen3-tiny-random.gguf", "qwen3_tiny_greedy.json"},
                                      std::pair{"gemma3-tiny-random.gguf", "gemma3_tiny_greedy.json"}}) {
    Tokenizer tok = test::load_gguf_tokenizer(data_path(model));
    const auto ref = test::load_json(data_path(std::string("reference/") + golden));
    ASSERT_FALSE(ref["results"].empty());
    for (const auto& r : ref["results"]) {
      EncodeOptions opts;
      opts.add_bos = tok.adds_bos();
      EXPECT_EQ(tok.encode(r["prompt"].get<std::string>(), opts), r["prompt_ids"].get<std::vector<TokenId>>())
          << model << ": " << r["prompt"];
    }
  }
}

TEST(Spm, GemmaHasNoSpacePrefix) {
  Tokenizer gemma = test::load_gguf_tokenizer(data_path("gemma3-tiny-random.gguf"));
  Tokenizer stories = test::load_gguf_tokenizer(data_path("stories260K.gguf"));
  EXPECT_FALSE(gemma.vocab().add_space_prefix);
  const auto g = gemma.encode("Once", {});
  const auto s = stories.encode("Once", {});
  EXPECT_EQ(stories.vocab().tokens[static_cast<size_t>(s[0])], "\xE2\x96\x81Once");
  EXPECT_NE(gemma.vocab().tokens[static_cast<size_t>(g[0])].rfind("\xE2\x96\x81", 0), 0u);
}

// Control tokens are a security boundary: "<s>" a user typed is text.
TEST(Spm, ControlTokensOnlyWhenParsing) {
  Tokenizer tok = test::load_gguf_tokenizer(data_path("llama-2-tiny-random.gguf"));
  EncodeOptions as_text;
  EncodeOptions parse;
  parse.special = SpecialTokens::kParse;
  const auto plain = tok.encode("a</s><s>b", as_text);
  for (auto id : plain) {
    EXPECT_NE(id, tok.vocab().bos);
    EXPECT_NE(id, tok.vocab().eos);
  }
  DecodeOptions d;
  d.strip_leading_space = true;
  EXPECT_EQ(tok.decode(plain, d), "a</s><s>b");
  const auto parsed = tok.encode("a</s><s>b", parse);
  // "a" gets the space prefix; after each special token the prefix is added again.
  EXPECT_EQ(parsed, (std::vector<TokenId>{tok.encode("a", {})[0], 2, 1, tok.encode("b", {})[0]}));
}

}  // namespace
}  // namespace tandem::tokenizer

namespace tandem::tokenizer {
namespace {

// A hand-made vocabulary with malformed entries (untrusted GGUF content):
// nothing may throw or read out of bounds.
TEST(Spm, MalformedVocabularyIsHarmless) {
  Vocab v;
  v.kind = VocabKind::kSpm;
  v.model = "llama";
  v.tokens = {"<unk>", "<0xZZ>", "<0x41>",
              "\xE2\x96\x81"
              "a",
              ""};
  v.types = {TokenType::kUnknown, TokenType::kByte, TokenType::kByte, TokenType::kNormal, TokenType::kControl};
  v.scores = {0, 0, 0, -1, 0};
  for (size_t i = 0; i < v.tokens.size(); ++i) v.token_to_id.emplace(v.tokens[i], static_cast<TokenId>(i));
  v.unk = 0;
  auto tok = Tokenizer::from_vocab(std::move(v));
  ASSERT_TRUE(tok.ok()) << tok.message();
  EXPECT_EQ(tok->token_bytes(1), "<0xZZ>");  // not a valid byte token: its text
  EXPECT_EQ(tok->token_bytes(2), "A");
  EXPECT_EQ(tok->encode("a", {}), (std::vector<TokenId>{3}));
  EXPECT_EQ(tok->encode("A", {}), (std::vector<TokenId>{0, 2}));  // "▁" unknown -> unk; "A" -> <0x41>
  EXPECT_EQ(tok->token_bytes(99), "");
}

}  // namespace
}  // namespace tandem::tokenizer
