#include "core/utf8.h"

namespace tandem {

size_t utf8_sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;  // continuation byte or overlong C0/C1
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

uint32_t utf8_decode(std::string_view s, size_t pos, size_t* len) {
  *len = 1;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + pos;
  const size_t avail = s.size() - pos;
  const size_t n = utf8_sequence_length(p[0]);
  if (n == 0 || n > avail) return kInvalidCodepoint;
  if (n == 1) return p[0];
  uint32_t cp = p[0] & (0x7Fu >> n);
  for (size_t i = 1; i < n; ++i) {
    if ((p[i] & 0xC0u) != 0x80u) return kInvalidCodepoint;
    cp = (cp << 6) | (p[i] & 0x3Fu);
  }
  // Reject overlong forms, surrogates and values past U+10FFFF.
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return kInvalidCodepoint;
  }
  *len = n;
  return cp;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

size_t utf8_incomplete_tail(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence is cut short.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<uint8_t>(s[n - back]);
    if ((c & 0xC0u) == 0x80u) continue;  // continuation: keep looking
    const size_t need = utf8_sequence_length(c);
    if (need > back) {
      // Hold back only if the bytes so far are a valid prefix.
      for (size_t i = n - back + 1; i < n; ++i) {
        if ((static_cast<uint8_t>(s[i]) & 0xC0u) != 0x80u) return 0;
      }
      return back;
    }
    return 0;
  }
  return 0;
}

std::string utf8_sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    size_t len = 0;
    uint32_t cp = utf8_decode(s, pos, &len);
    if (cp == kInvalidCodepoint) {
      out += "\xEF\xBF\xBD";
    } else {
      out.append(s.substr(pos, len));
    }
    pos += len;
  }
  return out;
}

}  // namespace tandem
