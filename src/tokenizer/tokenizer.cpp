#include "tokenizer/tokenizer.h"

#include "core/utf8.h"
#include "tokenizer/model.h"

#include <algorithm>
#include <array>

namespace tandem::tokenizer {

// Finds special-token texts in a string: leftmost match, longest first, as
// Hugging Face's added-token splitting does.
struct Tokenizer::SpecialMatcher {
  struct Entry {
    std::string_view text;
    TokenId id;
    bool control;  // only matched with SpecialTokens::kParse
  };
  std::array<std::vector<Entry>, 256> by_first_byte;  // each sorted longest first
  bool any = false;

  explicit SpecialMatcher(const Vocab& v) {
    for (size_t i = 0; i < v.size(); ++i) {
      const TokenType t = v.types[i];
      if (v.tokens[i].empty()) continue;
      const bool control = t == TokenType::kControl || t == TokenType::kUnknown;
      if (!control && t != TokenType::kUserDefined) continue;
      by_first_byte[static_cast<uint8_t>(v.tokens[i][0])].push_back({v.tokens[i], static_cast<TokenId>(i), control});
      any = true;
    }
    for (auto& list : by_first_byte) {
      std::stable_sort(list.begin(), list.end(),
                       [](const Entry& a, const Entry& b) { return a.text.size() > b.text.size(); });
    }
  }

  // The special token starting at TEXT[pos], or nullptr.
  const Entry* match_at(std::string_view text, size_t pos, bool parse_control) const {
    for (const Entry& e : by_first_byte[static_cast<uint8_t>(text[pos])]) {
      if (e.control && !parse_control) continue;
      if (text.compare(pos, e.text.size(), e.text) == 0) return &e;
    }
    return nullptr;
  }
};

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Result<Tokenizer> Tokenizer::from_gguf(const gguf::GgufFile& file) {
  auto vocab = load_vocab(file);
  if (!vocab) return vocab.status();
  return from_vocab(std::move(*vocab));
}

Result<Tokenizer> Tokenizer::from_vocab(Vocab vocab) {
  Tokenizer t;
  t.vocab_ = std::make_unique<Vocab>(std::move(vocab));
  if (t.vocab_->kind == VocabKind::kSpm) {
    t.model_ = make_spm_model(*t.vocab_);
  } else {
    auto model = make_bpe_model(*t.vocab_);
    if (!model) return model.status();
    t.model_ = std::move(*model);
  }
  t.matcher_ = std::make_unique<SpecialMatcher>(*t.vocab_);
  return t;
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 4);
  if (options.add_bos && vocab_->bos != kNoToken) out.push_back(vocab_->bos);
  const bool parse_control = options.special == SpecialTokens::kParse;
  bool after_special = true;  // the start of the text counts as "after a special token"
  size_t fragment_start = 0;
  if (matcher_->any) {
    for (size_t pos = 0; pos < text.size();) {
      const SpecialMatcher::Entry* e = matcher_->match_at(text, pos, parse_control);
      if (e == nullptr) {
        ++pos;
        continue;
      }
      if (pos > fragment_start) {
        model_->encode_fragment(text.substr(fragment_start, pos - fragment_start), after_special, out);
      }
      out.push_back(e->id);
      after_special = true;
      pos += e->text.size();
      fragment_start = pos;
    }
  }
  if (fragment_start < text.size()) model_->encode_fragment(text.substr(fragment_start), after_special, out);
  if (options.add_eos && vocab_->eos != kNoToken) out.push_back(vocab_->eos);
  return out;
}

std::string Tokenizer::token_bytes(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= vocab_->size()) return {};
  switch (vocab_->types[static_cast<size_t>(id)]) {
    case TokenType::kControl:
    case TokenType::kUnknown:
    case TokenType::kUnused: return vocab_->tokens[static_cast<size_t>(id)];
    // Added tokens are stored as their text, but a SentencePiece vocabulary
    // writes spaces in them as U+2581 too (Gemma 3's runs of "▁▁"): the
    // model's own unescaping, as HF's decoder does for every token.
    case TokenType::kUserDefined:
      return vocab_->kind == VocabKind::kSpm ? model_->token_bytes(id) : vocab_->tokens[static_cast<size_t>(id)];
    default: return model_->token_bytes(id);
  }
}

std::string Tokenizer::decode(const std::vector<TokenId>& ids, const DecodeOptions& options) const {
  std::string out;
  bool first_text = true;
  for (TokenId id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= vocab_->size()) continue;
    const TokenType type = vocab_->types[static_cast<size_t>(id)];
    if ((type == TokenType::kControl || type == TokenType::kUnknown) && !options.render_special) continue;
    std::string piece = token_bytes(id);
    if (type == TokenType::kControl) {
      out += piece;
      continue;  // a leading space is stripped from the first text token, not from a special one
    }
    if (first_text && options.strip_leading_space && vocab_->kind == VocabKind::kSpm && vocab_->add_space_prefix &&
        !piece.empty() && piece[0] == ' ') {
      piece.erase(0, 1);
    }
    first_text = false;
    out += piece;
  }
  return utf8_sanitize(out);
}

}  // namespace tandem::tokenizer
