#include "tokenizer/byte_level.h"

#include "core/utf8.h"

#include <array>

namespace tandem::tokenizer {
namespace {

struct Tables {
  std::array<std::string, 256> to_text;
  std::array<int16_t, 324> to_byte;  // indexed by code point (all stand-ins are < 0x144)

  Tables() {
    to_byte.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t cp = printable ? b : next++;
      utf8_append(to_text[b], cp);
      to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

std::string_view byte_to_unicode(uint8_t byte) { return tables().to_text[byte]; }

void byte_level_encode(std::string_view bytes, std::string& out) {
  const Tables& t = tables();
  for (char c : bytes) out += t.to_text[static_cast<uint8_t>(c)];
}

std::optional<std::string> byte_level_decode(std::string_view text) {
  const Tables& t = tables();
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    size_t len = 0;
    const uint32_t cp = utf8_decode(text, pos, &len);
    if (cp >= t.to_byte.size() || t.to_byte[cp] < 0) return std::nullopt;
    out += static_cast<char>(t.to_byte[cp]);
    pos += len;
  }
  return out;
}

}  // namespace tandem::tokenizer
