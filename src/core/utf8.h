// UTF-8 helpers shared by the tokenizers and the streaming detokenizer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tandem {

// Length in bytes of the UTF-8 sequence that starts with LEAD (1..4), or 0
// when LEAD cannot start a sequence (a continuation byte or 0xF8..0xFF).
size_t utf8_sequence_length(uint8_t lead);

// Decodes one code point at S[pos]. On success sets *len to its byte length
// and returns the code point; on an invalid or truncated sequence sets *len
// to 1 and returns kInvalidCodepoint.
inline constexpr uint32_t kInvalidCodepoint = 0xFFFFFFFFu;
uint32_t utf8_decode(std::string_view s, size_t pos, size_t* len);

// Appends the UTF-8 encoding of CP (must be a valid scalar value).
void utf8_append(std::string& out, uint32_t cp);

// Number of bytes at the end of S that form an incomplete (but so far valid)
// UTF-8 sequence: 0 when S ends on a character boundary. Used to hold back
// bytes while streaming.
size_t utf8_incomplete_tail(std::string_view s);

// Replaces every invalid sequence with U+FFFD.
std::string utf8_sanitize(std::string_view s);

}  // namespace tandem
