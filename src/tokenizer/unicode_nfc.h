// Unicode normalization form C (canonical composition), which some
// tokenizers (Qwen2/Qwen3) apply before pre-tokenization. Backed by utf8proc.
#pragma once

#include <string>
#include <string_view>

namespace tandem::tokenizer {

// NFC of TEXT. Invalid UTF-8 is returned unchanged (it cannot be
// normalized, and byte-level BPE still encodes it byte by byte).
std::string to_nfc(std::string_view text);

}  // namespace tandem::tokenizer
