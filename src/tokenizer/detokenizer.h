// Streaming detokenizer: turns generated token ids into text deltas as they
// arrive. A UTF-8 character split across tokens (byte-fallback tokens, or
// byte-level BPE pieces of an emoji) is held back until it is complete, so
// a delta never ends inside a character; bytes that can never form a valid
// character are emitted as U+FFFD.
#pragma once

#include "tokenizer/tokenizer.h"

#include <string>

namespace tandem::tokenizer {

class StreamingDetokenizer {
 public:
  // AT_TEXT_START: the stream begins a text (no prompt before it), so the
  // space a SentencePiece prefix adds before the first word is dropped.
  // For generated text that continues a prompt keep it false: " world"
  // after "Hello" needs its space.
  StreamingDetokenizer(const Tokenizer& tokenizer, bool at_text_start, bool render_special = false);

  // Adds one token; returns the text that is now complete (may be empty).
  std::string push(TokenId id);
  // Ends the stream: returns what was held back (incomplete bytes as U+FFFD).
  std::string finish();

 private:
  std::string take_complete();

  const Tokenizer& tokenizer_;
  bool strip_next_space_;
  bool render_special_;
  std::string pending_;  // bytes not yet emitted
};

}  // namespace tandem::tokenizer
