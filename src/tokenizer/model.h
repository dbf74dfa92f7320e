// Internal to tokenizer/: the two tokenization algorithms behind Tokenizer.
#pragma once

#include "core/status.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/vocab.h"

#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tandem::tokenizer {

class Model {
 public:
  virtual ~Model() = default;
  // Tokenizes a fragment of plain text (no special tokens in it).
  // AFTER_SPECIAL is true for text at the start or right after a special token.
  virtual void encode_fragment(std::string_view text, bool after_special, std::vector<TokenId>& out) const = 0;
  // Raw bytes of a normal token.
  virtual std::string token_bytes(TokenId id) const = 0;
};

// SentencePiece BPE: merge the adjacent pair whose concatenation has the
// highest score, leftmost first; unknown characters fall back to byte tokens.
std::unique_ptr<Model> make_spm_model(const Vocab& vocab);

// Byte-level BPE: NFC (when the pre-tokenizer needs it), regex split, then
// merges by rank on the byte-level text of each piece.
Result<std::unique_ptr<Model>> make_bpe_model(const Vocab& vocab);

}  // namespace tandem::tokenizer
