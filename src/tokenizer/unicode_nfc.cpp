#include "tokenizer/unicode_nfc.h"

#include <utf8proc.h>

#include <cstdlib>

namespace tandem::tokenizer {

std::string to_nfc(std::string_view text) {
  // Fast path: text below U+0300 (the first combining mark) is already NFC.
  // Lead bytes below 0xCC encode code points below U+0300.
  bool simple = true;
  for (char c : text) {
    if (static_cast<uint8_t>(c) >= 0xCC) {
      simple = false;
      break;
    }
  }
  if (simple) return std::string(text);
  utf8proc_uint8_t* out = nullptr;
  const auto n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
                   &out, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) return std::string(text);
  std::string result(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

}  // namespace tandem::tokenizer
