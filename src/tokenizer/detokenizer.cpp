#include "tokenizer/detokenizer.h"

#include "core/utf8.h"

namespace tandem::tokenizer {

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer, bool at_text_start, bool render_special)
    : tokenizer_(tokenizer),
      strip_next_space_(at_text_start && tokenizer.vocab().kind == VocabKind::kSpm &&
                        tokenizer.vocab().add_space_prefix),
      render_special_(render_special) {}

std::string StreamingDetokenizer::push(TokenId id) {
  const Vocab& v = tokenizer_.vocab();
  if (id < 0 || static_cast<size_t>(id) >= v.size()) return take_complete();
  const TokenType type = v.types[static_cast<size_t>(id)];
  const bool special = type == TokenType::kControl || type == TokenType::kUnknown;
  if (special && !render_special_) return take_complete();
  std::string bytes = tokenizer_.token_bytes(id);
  if (!special && strip_next_space_) {
    if (!bytes.empty() && bytes[0] == ' ') bytes.erase(0, 1);
    strip_next_space_ = false;
  }
  pending_ += bytes;
  return take_complete();
}

std::string StreamingDetokenizer::take_complete() {
  const size_t hold = utf8_incomplete_tail(pending_);
  std::string ready = utf8_sanitize(std::string_view(pending_).substr(0, pending_.size() - hold));
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string StreamingDetokenizer::finish() {
  std::string rest = utf8_sanitize(pending_);
  pending_.clear();
  return rest;
}

}  // namespace tandem::tokenizer
