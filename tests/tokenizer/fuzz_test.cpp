// Property fuzzing of the tokenizers with seeded random text: random bytes
// (invalid UTF-8 included), random code points, special-token fragments and
// long whitespace runs. Run under ASan + UBSan by ./scripts/test. Checks:
// no crash; user text never yields control tokens; text round-trips through
// encode/decode; streaming decode equals whole decode.
#include "core/utf8.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/unicode_nfc.h"
#include "gguf/mutate.h"
#include "tokenizer_test_util.h"

#include <random>

namespace tandem::tokenizer {
namespace {

constexpr int kIterations = 1500;

const char* kFragments[] = {"<|im_end|>",
                            "<|im_start|>",
                            "<s>",
                            "</s>",
                            "<think>",
                            "<|endoftext|>",
                            "<0x41>",
                            "\xE2\x96\x81",
                            " ",
                            "  ",
                            "\n",
                            "\r\n",
                            "\t",
                            "'s",
                            "'LL",
                            "123456",
                            "e\xCC\x81",
                            "\xEF\xBB\xBF",
                            "\xC2\x85",
                            "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB",
                            "<|",
                            "|>",
                            "hello",
                            "World",
                            "\xE4\xBD\xA0\xE5\xA5\xBD",
                            "\xD9\x85\xD8\xB1"};

std::string random_text(std::mt19937& rng) {
  std::string s;
  const int parts = 1 + static_cast<int>(rng() % 12);
  for (int p = 0; p < parts; ++p) {
    switch (rng() % 5) {
      case 0:  // raw bytes, often invalid UTF-8
        for (int i = 0, n = static_cast<int>(rng() % 8); i < n; ++i) s += static_cast<char>(rng() & 0xFF);
        break;
      case 1: {  // valid code points from all planes
        for (int i = 0, n = static_cast<int>(rng() % 8); i < n; ++i) {
          uint32_t cp = rng() % 3 == 0 ? rng() % 0x80 : rng() % 0x30000;
          if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
          utf8_append(s, cp == 0 ? 'z' : cp);
        }
        break;
      }
      case 2: s += kFragments[rng() % std::size(kFragments)]; break;
      case 3: s += std::string(rng() % 3 == 0 ? 3000 + rng() % 7000 : rng() % 20, rng() % 2 ? ' ' : '\n'); break;
      default:
        s += "word";
        s += std::to_string(rng() % 1000);
        break;
    }
  }
  return s;
}

void check(const Tokenizer& tok, const std::string& text, bool nfc) {
  EncodeOptions parse;
  parse.special = SpecialTokens::kParse;
  const auto parsed = tok.encode(text, parse);
  const auto plain = tok.encode(text, {});
  for (auto id : parsed) ASSERT_TRUE(id >= 0 && static_cast<size_t>(id) < tok.vocab().size());
  for (auto id : plain) ASSERT_FALSE(tok.vocab().is_control(id)) << "control token from user text";
  DecodeOptions d;
  d.strip_leading_space = true;
  const std::string decoded = tok.decode(plain, d);
  if (utf8_sanitize(text) == text) {  // valid UTF-8 round-trips (after the tokenizer's normalization)
    std::string expected = nfc ? to_nfc(text) : text;
    if (tok.vocab().kind == VocabKind::kSpm) {  // SentencePiece reads U+2581 as a space
      std::string spaced;
      for (size_t i = 0; i < expected.size(); ++i) {
        if (expected.compare(i, 3, "\xE2\x96\x81") == 0) {
          spaced += ' ';
          i += 2;
        } else {
          spaced += expected[i];
        }
      }
      expected = spaced;
    }
    ASSERT_EQ(decoded, expected);
  }
  StreamingDetokenizer stream(tok, /*at_text_start=*/true);
  std::string streamed;
  for (auto id : plain) streamed += stream.push(id);
  streamed += stream.finish();
  ASSERT_EQ(streamed, decoded);
}

TEST(TokenizerFuzz, RandomTextProperties) {
  Tokenizer spm = test::load_gguf_tokenizer(tandem::test::data_path("llama-2-tiny-random.gguf"));
  Tokenizer gemma = test::load_gguf_tokenizer(tandem::test::data_path("gemma3-tiny-random.gguf"));
  const Tokenizer& qwen = test::load_hf_tokenizer("qwen3");
  const Tokenizer& llama3 = test::load_hf_tokenizer("llama3");
  std::mt19937 rng(20261123);
  for (int it = 0; it < kIterations; ++it) {
    const std::string text = random_text(rng);
    SCOPED_TRACE(::testing::Message() << "iteration " << it);
    check(spm, text, false);
    check(gemma, text, false);
    check(qwen, text, true);
    check(llama3, text, false);
    if (HasFatalFailure()) return;
  }
}

// Vocabularies from mutated model files (tokens, scores, types, special
// ids corrupted): loading either fails with a message or gives a tokenizer
// that encodes and decodes anything without crashing.
TEST(TokenizerFuzz, MutatedVocabularies) {
  // The model's metadata alone (vocabulary included), as a small file to mutate.
  auto real = gguf::GgufFile::open(tandem::test::data_path("stories260K.gguf"));
  ASSERT_TRUE(real.ok());
  gguf::GgufWriter w;
  for (const auto& kv : real->metadata()) w.set(kv.key, kv.value);
  const std::vector<uint8_t> head = w.to_bytes().value();
  std::mt19937_64 rng(7);
  std::mt19937 text_rng(11);
  int loaded = 0;
  for (int it = 0; it < 1500; ++it) {
    const auto bytes = gguf::test::mutate(head, rng);
    auto f = gguf::GgufFile::parse(bytes);
    if (!f.ok()) continue;
    auto tok = Tokenizer::from_gguf(*f);
    if (!tok.ok()) {
      EXPECT_FALSE(tok.message().empty());
      continue;
    }
    ++loaded;
    const std::string text = random_text(text_rng);
    EncodeOptions parse;
    parse.special = SpecialTokens::kParse;
    parse.add_bos = parse.add_eos = true;
    const auto ids = tok->encode(text, parse);
    for (auto id : ids) ASSERT_TRUE(id >= 0 && static_cast<size_t>(id) < tok->vocab().size());
    StreamingDetokenizer stream(*tok, true, true);
    for (auto id : ids) stream.push(id);
    stream.finish();
    tok->decode(ids);
  }
  EXPECT_GT(loaded, 100);
}

}  // namespace
}  // namespace tandem::tokenizer
