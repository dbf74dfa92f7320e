// Text helpers with JavaScript semantics: the reference renderer is written in
// JS, so trimming, number printing and JSON escaping follow JS rules.
#include <utf8proc.h>

#include <charconv>
#include <cmath>
#include <cstring>

#include "chat/template_value.h"
#include "core/utf8.h"

namespace tandem::chat::detail {

bool is_js_space(uint32_t cp) {
  switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
    case 0xFEFF: return true;
    default: return cp >= 0x2000 && cp <= 0x200A;
  }
}

size_t js_space_prefix(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t len = 1;
    uint32_t cp = utf8_decode(s, pos, &len);
    if (cp == kInvalidCodepoint || !is_js_space(cp)) break;
    pos += len;
  }
  return pos;
}

size_t js_space_suffix(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    // Step back to the start of the last code point (at most 4 bytes).
    size_t start = end - 1;
    while (start > 0 && end - start < 4 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
    size_t len = 1;
    uint32_t cp = utf8_decode(s, start, &len);
    if (cp == kInvalidCodepoint || start + len != end || !is_js_space(cp)) break;
    end = start;
  }
  return s.size() - end;
}

std::string_view js_trim_start(std::string_view s) { return s.substr(js_space_prefix(s)); }
std::string_view js_trim_end(std::string_view s) { return s.substr(0, s.size() - js_space_suffix(s)); }
std::string_view js_trim(std::string_view s) { return js_trim_end(js_trim_start(s)); }

std::vector<std::string_view> code_points(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t len = 1;
    utf8_decode(s, pos, &len);
    out.push_back(s.substr(pos, len));
    pos += len;
  }
  return out;
}

int64_t utf16_length(std::string_view s) {
  int64_t n = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t len = 1;
    uint32_t cp = utf8_decode(s, pos, &len);
    n += (cp != kInvalidCodepoint && cp > 0xFFFF) ? 2 : 1;
    pos += len;
  }
  return n;
}

namespace {

std::u16string to_utf16(std::string_view s) {
  std::u16string out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t len = 1;
    uint32_t cp = utf8_decode(s, pos, &len);
    if (cp == kInvalidCodepoint) cp = 0xFFFD;
    if (cp > 0xFFFF) {
      cp -= 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
    } else {
      out.push_back(static_cast<char16_t>(cp));
    }
    pos += len;
  }
  return out;
}

// Maps every code point through FN; ß upper-cases to "SS" as in JS.
template <typename Fn>
std::string map_case(std::string_view s, Fn fn, bool upper) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    uint8_t c = static_cast<uint8_t>(s[pos]);
    if (c < 0x80) {
      out.push_back(
          static_cast<char>(upper ? (c >= 'a' && c <= 'z' ? c - 32 : c) : (c >= 'A' && c <= 'Z' ? c + 32 : c)));
      ++pos;
      continue;
    }
    size_t len = 1;
    uint32_t cp = utf8_decode(s, pos, &len);
    if (cp == kInvalidCodepoint) {
      out.append(s.substr(pos, len));
    } else if (upper && cp == 0xDF) {
      out += "SS";
    } else {
      utf8_append(out, static_cast<uint32_t>(fn(static_cast<utf8proc_int32_t>(cp))));
    }
    pos += len;
  }
  return out;
}

bool is_word_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

}  // namespace

int utf16_compare(std::string_view a, std::string_view b) {
  std::u16string ua = to_utf16(a), ub = to_utf16(b);
  return ua < ub ? -1 : (ua > ub ? 1 : 0);
}

std::string to_upper(std::string_view s) { return map_case(s, utf8proc_toupper, true); }
std::string to_lower(std::string_view s) { return map_case(s, utf8proc_tolower, false); }

std::string title_case(std::string_view s) {
  std::string out(s);
  for (size_t i = 0; i < out.size(); ++i) {
    if (is_word_byte(out[i]) && (i == 0 || !is_word_byte(out[i - 1])) && out[i] >= 'a' && out[i] <= 'z') {
      out[i] = static_cast<char>(out[i] - 32);
    }
  }
  return out;
}

std::string capitalize(std::string_view s) {
  if (s.empty()) return std::string();
  size_t len = 1;
  uint32_t cp = utf8_decode(s, 0, &len);
  // charAt(0) is one UTF-16 unit: an astral first character stays as it is.
  if (cp == kInvalidCodepoint || cp > 0xFFFF) return std::string(s);
  return to_upper(s.substr(0, len)).append(s.substr(len));
}

std::string js_number(double d) {
  if (std::isnan(d)) return "NaN";
  if (d == 0) return "0";
  if (d < 0) return std::string("-").append(js_number(-d));
  if (std::isinf(d)) return "Infinity";
  // Shortest round-trip digits, then the layout of ECMAScript Number::toString.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  int exp10 = 0;
  std::from_chars(sci.data() + e_pos + (sci[e_pos + 1] == '+' ? 2 : 1), sci.data() + sci.size(), exp10);
  const int k = static_cast<int>(digits.size());
  const int n = exp10 + 1;  // value = 0.digits * 10^n
  if (k <= n && n <= 21) return digits + std::string(static_cast<size_t>(n - k), '0');
  if (0 < n && n <= 21) {
    return digits.substr(0, static_cast<size_t>(n)).append(".").append(digits, static_cast<size_t>(n));
  }
  if (-6 < n && n <= 0) return std::string("0.").append(static_cast<size_t>(-n), '0').append(digits);
  std::string out(1, digits[0]);
  if (k > 1) out.append(".").append(digits, 1);
  out += n - 1 < 0 ? "e-" : "e+";
  out += std::to_string(std::abs(n - 1));
  return out;
}

std::string float_repr(double d) {
  if (d == 0 && std::signbit(d)) return "-0.0";
  if (std::isfinite(d) && std::fmod(d, 1.0) == 0) {
    if (std::fabs(d) >= 1e21) return js_number(d);  // toFixed switches to exponent form
    char buf[400];
    auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::fixed, 1);
    return std::string(buf, res.ptr);
  }
  return js_number(d);
}

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Length of the longest prefix of S that is a StrDecimalLiteral (sign, digits,
// fraction, exponent, or Infinity); 0 when there is none.
size_t decimal_prefix(std::string_view s, double* out) {
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if (s.substr(i, 8) == "Infinity") {
    *out = neg ? -INFINITY : INFINITY;
    return i + 8;
  }
  size_t start = i;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && is_digit(s[i])) ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    while (j < s.size() && is_digit(s[j])) ++j, ++frac_digits;
    if (int_digits + frac_digits > 0) i = j;
  }
  if (int_digits + frac_digits == 0) return 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    size_t exp_start = j;
    while (j < s.size() && is_digit(s[j])) ++j;
    if (j > exp_start) i = j;
  }
  std::string text(s.substr(start, i - start));
  if (text[0] == '.') text.insert(text.begin(), '0');
  double v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  *out = neg ? -v : v;
  return i;
}

}  // namespace

double js_string_to_number(std::string_view s) {
  s = js_trim(s);
  if (s.empty()) return 0;
  if (s.size() > 2 && s[0] == '0') {
    int base = (s[1] == 'x' || s[1] == 'X')   ? 16
               : (s[1] == 'o' || s[1] == 'O') ? 8
               : (s[1] == 'b' || s[1] == 'B') ? 2
                                              : 0;
    if (base != 0) {
      double v = 0;
      for (char c : s.substr(2)) {
        int digit = is_digit(c)              ? c - '0'
                    : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                    : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                             : 99;
        if (digit >= base) return std::nan("");
        v = v * base + digit;
      }
      return v;
    }
  }
  double v = 0;
  size_t n = decimal_prefix(s, &v);
  return n == s.size() ? v : std::nan("");
}

bool js_parse_int(std::string_view s, int64_t* out) {
  s = js_trim_start(s);
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  size_t start = i;
  int64_t v = 0;
  while (i < s.size() && is_digit(s[i])) {
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[i] - '0', &v)) return false;
    ++i;
  }
  if (i == start) return false;
  *out = neg ? -v : v;
  return true;
}

bool js_parse_float(std::string_view s, double* out) {
  s = js_trim_start(s);
  double v = 0;
  if (decimal_prefix(s, &v) == 0) return false;
  *out = v;
  return true;
}

void append_json_string(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    uint8_t c = static_cast<uint8_t>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

std::string make_ascii_safe(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  auto unit = [](std::string& out, uint32_t u) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out.push_back(kHex[(u >> shift) & 15]);
  };
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    size_t len = 1;
    uint32_t cp = utf8_decode(s, pos, &len);
    if (cp == kInvalidCodepoint) cp = 0xFFFD;
    if (cp < 0x7F) {
      out.push_back(static_cast<char>(cp));
    } else if (cp <= 0xFFFF) {
      unit(out, cp);
    } else {
      unit(out, 0xD800 + ((cp - 0x10000) >> 10));
      unit(out, 0xDC00 + ((cp - 0x10000) & 0x3FF));
    }
    pos += len;
  }
  return out;
}

}  // namespace tandem::chat::detail
