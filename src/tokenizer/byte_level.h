// GPT-2 byte-level encoding: every byte maps to a printable code point so
// that BPE vocabularies can be stored as text. Bytes that are printable
// Latin-1 map to themselves; the other 68 map to U+0100 and up, in order
// ("Ġ" is the space byte 0x20, "Ċ" is 0x0A).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tandem::tokenizer {

// The UTF-8 text of the code point standing for BYTE.
std::string_view byte_to_unicode(uint8_t byte);

// Appends the byte-level encoding of BYTES to OUT.
void byte_level_encode(std::string_view bytes, std::string& out);

// Decodes byte-level TEXT back to raw bytes; nullopt if TEXT holds a code
// point that is not one of the 256 byte stand-ins.
std::optional<std::string> byte_level_decode(std::string_view text);

}  // namespace tandem::tokenizer
