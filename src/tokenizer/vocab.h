// A tokenizer's vocabulary as stored in GGUF metadata (tokenizer.ggml.*):
// token texts, scores, types, merges and the special ids.
#pragma once

#include "core/status.h"
#include "gguf/reader.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tandem::tokenizer {

using TokenId = int32_t;
inline constexpr TokenId kNoToken = -1;

// tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // special tokens (<|im_end|>, <s>): never created from user text
  kUserDefined = 4,  // added tokens stored as raw text (<think>): matched in any text
  kUnused = 5,
  kByte = 6,  // SentencePiece byte fallback <0xXX>
};

enum class VocabKind {
  kSpm,  // tokenizer.ggml.model = "llama": SentencePiece BPE with scores
  kBpe,  // tokenizer.ggml.model = "gpt2": byte-level BPE with merges
};

// Hash for string-keyed maps that look up by string_view without allocating.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>>;

struct Vocab {
  VocabKind kind = VocabKind::kSpm;
  std::string model;  // tokenizer.ggml.model
  std::string pre;    // tokenizer.ggml.pre (BPE pre-tokenizer name), "default" if absent
  std::vector<std::string> tokens;
  std::vector<float> scores;        // empty when the file has none
  std::vector<TokenType> types;     // same size as tokens
  std::vector<std::string> merges;  // "left right", by rank (BPE only)
  TokenMap token_to_id;

  TokenId bos = kNoToken, eos = kNoToken, unk = kNoToken, pad = kNoToken, eot = kNoToken;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = true;            // SPM: prepend U+2581 to the text
  std::string chat_template;               // tokenizer.chat_template, empty if absent
  std::vector<TokenId> end_of_generation;  // ids that end generation (eos, eot, <|im_end|> ...)

  size_t size() const { return tokens.size(); }
  TokenId find(std::string_view text) const;  // kNoToken when absent
  bool is_control(TokenId id) const { return types[static_cast<size_t>(id)] == TokenType::kControl; }
  bool is_end_of_generation(TokenId id) const;
};

// Reads the vocabulary from GGUF metadata; errors name the missing or
// malformed key.
Result<Vocab> load_vocab(const gguf::GgufFile& file);

}  // namespace tandem::tokenizer
