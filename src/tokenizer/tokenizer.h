// Text <-> token ids for a model, built from its GGUF vocabulary.
//
// Special tokens are a security boundary. Text from a chat template may name
// control tokens ("<|im_start|>"); text a user sent must never become one,
// or a user could forge turns. The caller says which it is:
//   SpecialTokens::kParse  - control tokens written in the text are recognized
//   SpecialTokens::kAsText - they are tokenized as the plain characters they are
// Added non-control tokens (type USER_DEFINED, e.g. Qwen's "<think>") are
// matched in both modes, as Hugging Face tokenizers do.
#pragma once

#include "core/status.h"
#include "gguf/reader.h"
#include "tokenizer/vocab.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::tokenizer {

enum class SpecialTokens { kParse, kAsText };

struct EncodeOptions {
  bool add_bos = false;  // prepend vocab().bos (when the vocab has one)
  bool add_eos = false;  // append vocab().eos (when the vocab has one)
  SpecialTokens special = SpecialTokens::kAsText;
};

struct DecodeOptions {
  bool render_special = true;        // write control tokens as their text; else skip them
  bool strip_leading_space = false;  // SPM: drop the space the prefix added before the first word
};

class Model;  // the algorithm: SentencePiece or byte-level BPE (internal)

class Tokenizer {
 public:
  static Result<Tokenizer> from_gguf(const gguf::GgufFile& file);
  static Result<Tokenizer> from_vocab(Vocab vocab);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  const Vocab& vocab() const { return *vocab_; }

  // Thread-safe.
  std::vector<TokenId> encode(std::string_view text, const EncodeOptions& options) const;

  // Raw bytes a token stands for (may be part of a UTF-8 character; byte
  // tokens give one byte). Control tokens give their text.
  std::string token_bytes(TokenId id) const;
  // Whole-sequence decode: the concatenated bytes, invalid UTF-8 replaced by U+FFFD.
  std::string decode(const std::vector<TokenId>& ids, const DecodeOptions& options = {}) const;

  // The adds_bos default of the model (tokenizer.ggml.add_bos_token).
  bool adds_bos() const { return vocab_->add_bos; }

 private:
  Tokenizer() = default;
  std::unique_ptr<Vocab> vocab_;
  std::unique_ptr<Model> model_;
  // Tokens matched in text: control (+unknown) tokens for kParse, user-defined ones always.
  struct SpecialMatcher;
  std::unique_ptr<SpecialMatcher> matcher_;
};

}  // namespace tandem::tokenizer
