#include "tokenizer/vocab.h"

#include <algorithm>

namespace tandem::tokenizer {
namespace {

Result<TokenId> read_id(const gguf::GgufFile& f, const char* key, size_t n_tokens) {
  const gguf::Value* v = f.find(key);
  if (v == nullptr) return kNoToken;
  auto id = v->as_int();
  // Some converters write -1 (as a u32 0xFFFFFFFF) for "no such token".
  if (!id || *id == -1 || *id == 0xFFFFFFFFll) return kNoToken;
  if (*id < 0 || static_cast<uint64_t>(*id) >= n_tokens) {
    return Status::errorf("{} = {} is outside the vocabulary of {} tokens", key, *id, n_tokens);
  }
  return static_cast<TokenId>(*id);
}

// Texts of tokens that end a turn in common chat formats; used when the
// file does not list them (GGUF has eos and eot ids only).
constexpr std::string_view kEndOfTurnTexts[] = {
    "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|endoftext|>",   "<end_of_turn>",        "<|end|>",
    "<|return|>", "<|call|>",   "</s>",       "<|end_of_text|>", "<｜end▁of▁sentence｜>"};

}  // namespace

TokenId Vocab::find(std::string_view text) const {
  auto it = token_to_id.find(text);
  return it == token_to_id.end() ? kNoToken : it->second;
}

bool Vocab::is_end_of_generation(TokenId id) const {
  return std::find(end_of_generation.begin(), end_of_generation.end(), id) != end_of_generation.end();
}

Result<Vocab> load_vocab(const gguf::GgufFile& f) {
  Vocab v;
  auto model = f.get_string("tokenizer.ggml.model");
  if (!model) return Status::error("no tokenizer in this file (tokenizer.ggml.model is missing)");
  v.model = *model;
  if (v.model == "llama") {
    v.kind = VocabKind::kSpm;
  } else if (v.model == "gpt2") {
    v.kind = VocabKind::kBpe;
  } else {
    return Status::errorf("tokenizer model '{}' is not supported (supported: llama, gpt2)", v.model);
  }
  v.pre = f.get_string("tokenizer.ggml.pre").value_or("default");

  const gguf::Array* tokens = f.get_array("tokenizer.ggml.tokens");
  if (tokens == nullptr || tokens->elem_type != gguf::ValueType::STRING || tokens->strings.empty()) {
    return Status::error("tokenizer.ggml.tokens is missing or not an array of strings");
  }
  v.tokens = tokens->strings;
  const size_t n = v.tokens.size();
  if (n > static_cast<size_t>(INT32_MAX)) return Status::error("vocabulary too large");

  if (const gguf::Array* scores = f.get_array("tokenizer.ggml.scores")) {
    if (scores->floats.size() != n) {
      return Status::errorf("tokenizer.ggml.scores has {} entries for {} tokens", scores->size(), n);
    }
    v.scores.assign(scores->floats.begin(), scores->floats.end());
  }
  v.types.assign(n, TokenType::kNormal);
  if (const gguf::Array* types = f.get_array("tokenizer.ggml.token_type")) {
    if (types->ints.size() != n) {
      return Status::errorf("tokenizer.ggml.token_type has {} entries for {} tokens", types->size(), n);
    }
    for (size_t i = 0; i < n; ++i) {
      const int64_t t = types->ints[i];
      v.types[i] = (t >= 0 && t <= 6) ? static_cast<TokenType>(t) : TokenType::kUndefined;
    }
  }
  if (const gguf::Array* merges = f.get_array("tokenizer.ggml.merges")) {
    if (merges->elem_type != gguf::ValueType::STRING) return Status::error("tokenizer.ggml.merges is not strings");
    v.merges = merges->strings;
  }
  if (v.kind == VocabKind::kBpe && v.merges.empty()) {
    return Status::error("gpt2 tokenizer without tokenizer.ggml.merges");
  }
  if (v.kind == VocabKind::kSpm && v.scores.empty()) {
    return Status::error("llama (SentencePiece) tokenizer without tokenizer.ggml.scores");
  }

  v.token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    // The first occurrence wins when a text repeats (some vocabularies pad with duplicates).
    v.token_to_id.emplace(v.tokens[i], static_cast<TokenId>(i));
  }

  struct IdKey {
    const char* key;
    TokenId* out;
  };
  for (IdKey k : {IdKey{"tokenizer.ggml.bos_token_id", &v.bos}, IdKey{"tokenizer.ggml.eos_token_id", &v.eos},
                  IdKey{"tokenizer.ggml.unknown_token_id", &v.unk}, IdKey{"tokenizer.ggml.padding_token_id", &v.pad},
                  IdKey{"tokenizer.ggml.eot_token_id", &v.eot}}) {
    auto id = read_id(f, k.key, n);
    if (!id) return id.status();
    *k.out = *id;
  }
  if (v.unk == kNoToken && v.kind == VocabKind::kSpm) v.unk = v.find("<unk>");
  // SentencePiece models add BOS unless told otherwise; byte-level BPE models do not.
  v.add_bos = f.get_bool("tokenizer.ggml.add_bos_token").value_or(v.kind == VocabKind::kSpm);
  v.add_eos = f.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  v.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix").value_or(v.kind == VocabKind::kSpm);
  v.chat_template = f.get_string("tokenizer.chat_template").value_or("");

  for (TokenId id : {v.eos, v.eot}) {
    if (id != kNoToken) v.end_of_generation.push_back(id);
  }
  // gpt-oss (harmony) ends a message with <|end|> and goes on with the next
  // one in the same turn: only <|return|> and <|call|> end it there.
  const bool harmony = v.find("<|channel|>") != kNoToken && v.find("<|return|>") != kNoToken;
  for (std::string_view text : kEndOfTurnTexts) {
    TokenId id = v.find(text);
    if (harmony && text == "<|end|>") continue;
    if (id != kNoToken && v.types[static_cast<size_t>(id)] == TokenType::kControl && !v.is_end_of_generation(id)) {
      v.end_of_generation.push_back(id);
    }
  }
  return v;
}

}  // namespace tandem::tokenizer
