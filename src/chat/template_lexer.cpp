#include "chat/template_lexer.h"

#include <utility>

#include "chat/template_value.h"
#include "core/utf8.h"

namespace tandem::chat::detail {
namespace {

// Text with the original line of every byte, so errors point at the source
// line even after preprocessing removed newlines.
struct Src {
  std::string text;
  std::vector<int> line;

  void push(char c, int l) {
    text.push_back(c);
    line.push_back(l);
  }
  void pop(size_t n) {
    text.resize(text.size() - n);
    line.resize(line.size() - n);
  }
};

// Byte length of the JS whitespace code point at S[pos], or 0.
size_t space_at(std::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  size_t len = 1;
  uint32_t cp = utf8_decode(s, pos, &len);
  return (cp != kInvalidCodepoint && is_js_space(cp)) ? len : 0;
}

bool line_start(const std::string& s, size_t pos) {
  if (pos == 0) return true;
  char prev = s[pos - 1];
  if (prev == '\n' || prev == '\r') return true;
  // U+2028 / U+2029 also end a line for JS's multiline ^.
  return pos >= 3 && s.compare(pos - 3, 2, "\xE2\x80") == 0 && (s[pos - 1] == '\xA8' || s[pos - 1] == '\xA9');
}

// Length of a `{%-? generation -?%}` / `endgeneration` tag at S[pos], or 0;
// sets the two whitespace-control flags.
size_t generation_tag(std::string_view s, size_t pos, bool* lstrip, bool* rstrip) {
  if (s.substr(pos, 2) != "{%") return 0;
  size_t i = pos + 2;
  *lstrip = i < s.size() && s[i] == '-';
  if (*lstrip) ++i;
  while (size_t n = space_at(s, i)) i += n;
  if (s.substr(i, 3) == "end") i += 3;
  if (s.substr(i, 10) != "generation") return 0;
  i += 10;
  while (size_t n = space_at(s, i)) i += n;
  *rstrip = i < s.size() && s[i] == '-';
  if (*rstrip) ++i;
  if (s.substr(i, 2) != "%}") return 0;
  return i + 2 - pos;
}

Src preprocess(std::string_view source) {
  Src in;
  int l = 1;
  for (char c : source) {
    in.push(c, l);
    if (c == '\n') ++l;
  }
  if (!in.text.empty() && in.text.back() == '\n') in.pop(1);

  // lstrip_blocks: /^[ \t]*({[#%-])/gm -> "$1".
  Src a;
  for (size_t i = 0; i < in.text.size();) {
    if (line_start(in.text, i)) {
      size_t j = i;
      while (j < in.text.size() && (in.text[j] == ' ' || in.text[j] == '\t')) ++j;
      if (j + 1 < in.text.size() && in.text[j] == '{' &&
          (in.text[j + 1] == '#' || in.text[j + 1] == '%' || in.text[j + 1] == '-')) {
        i = j;
      }
    }
    a.push(in.text[i], in.line[i]);
    ++i;
  }

  // trim_blocks: /([#%-]})\n/g -> "$1".
  Src b;
  for (size_t i = 0; i < a.text.size(); ++i) {
    b.push(a.text[i], a.line[i]);
    char c = a.text[i];
    if ((c == '#' || c == '%' || c == '-') && i + 2 < a.text.size() && a.text[i + 1] == '}' && a.text[i + 2] == '\n') {
      b.push('}', a.line[i + 1]);
      i += 2;
    }
  }

  // Generation tags: /(\s*){%(-?)\s*(?:end)?generation\s*(-?)%}(\s*)/gs.
  Src c;
  size_t last_end = 0;  // matches do not overlap: a run eaten by one match is not reused
  for (size_t i = 0; i < b.text.size();) {
    bool lstrip = false, rstrip = false;
    size_t len = b.text[i] == '{' ? generation_tag(b.text, i, &lstrip, &rstrip) : 0;
    if (len == 0) {
      c.push(b.text[i], b.line[i]);
      ++i;
      continue;
    }
    if (lstrip) {
      // Drop the whitespace run just before the tag (already copied).
      size_t start = i;
      while (start > last_end) {
        size_t back = 1;
        while (back < 3 && start - back > last_end && (static_cast<uint8_t>(b.text[start - back]) & 0xC0) == 0x80)
          ++back;
        if (space_at(b.text, start - back) != back) break;
        start -= back;
      }
      c.pop(i - start);
    }
    i += len;
    size_t after = i;
    while (size_t n = space_at(b.text, after)) after += n;
    if (!rstrip) {
      for (size_t j = i; j < after; ++j) c.push(b.text[j], b.line[j]);
    }
    i = after;
    last_end = after;
  }
  return c;
}

bool is_word(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

struct Lexer {
  const Src& src;
  std::vector<Token> tokens;
  size_t pos = 0;
  int curly_depth = 0;

  std::string_view s() const { return src.text; }
  char at(size_t i) const { return i < src.text.size() ? src.text[i] : '\0'; }
  int line() const { return pos < src.line.size() ? src.line[pos] : (src.line.empty() ? 1 : src.line.back()); }
  Tok last_type() const { return tokens.empty() ? Tok::kText : tokens.back().type; }

  Status error(const std::string& what) const {
    return Status::errorf("chat template syntax error: {} (line {})", what, line());
  }

  void push(Tok t, std::string v, int l) { tokens.push_back(Token{t, std::move(v), l}); }

  void strip_trailing_text_space() {
    if (tokens.empty() || tokens.back().type != Tok::kText) return;
    std::string& v = tokens.back().value;
    v.resize(v.size() - js_space_suffix(v));
    if (v.empty()) tokens.pop_back();
  }

  void skip_space() {
    while (size_t n = space_at(s(), pos)) pos += n;
  }

  Status read_string(char quote, std::string* out) {
    ++pos;
    while (true) {
      if (pos >= s().size()) return error("unterminated string literal");
      char c = s()[pos];
      if (c == quote) break;
      if (c != '\\') {
        out->push_back(c);
        ++pos;
        continue;
      }
      ++pos;
      if (pos >= s().size()) return error("unterminated string literal");
      char e = s()[pos++];
      switch (e) {
        case 'n': out->push_back('\n'); break;
        case 't': out->push_back('\t'); break;
        case 'r': out->push_back('\r'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'v': out->push_back('\v'); break;
        case '\'':
        case '"':
        case '\\': out->push_back(e); break;
        case 'x':
        case 'u': {
          size_t n = e == 'x' ? 2 : 4;
          uint32_t cp = 0;
          if (!parse_hex(pos, n, &cp)) return error(fmt::format("invalid escape \\{}", e));
          pos += n;
          // A \uD8xx\uDCxx pair is one character, as in JS strings.
          uint32_t low = 0;
          if (e == 'u' && cp >= 0xD800 && cp < 0xDC00 && s().substr(pos, 2) == "\\u" && parse_hex(pos + 2, 4, &low) &&
              low >= 0xDC00 && low < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            pos += 6;
          }
          if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;  // a lone surrogate has no UTF-8 form
          utf8_append(*out, cp);
          break;
        }
        default: return error(fmt::format("unexpected escaped character: {}", e));
      }
    }
    ++pos;  // closing quote
    return Status();
  }

  bool parse_hex(size_t at, size_t n, uint32_t* out) const {
    if (at + n > s().size()) return false;
    uint32_t v = 0;
    for (size_t i = 0; i < n; ++i) {
      char c = s()[at + i];
      int d = is_digit(c)              ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : -1;
      if (d < 0) return false;
      v = v * 16 + static_cast<uint32_t>(d);
    }
    *out = v;
    return true;
  }

  std::string read_digits() {
    size_t start = pos;
    while (pos < s().size() && is_digit(s()[pos])) ++pos;
    return std::string(s().substr(start, pos - start));
  }

  Status run() {
    static const std::pair<const char*, Tok> kOps[] = {
        {"{%", Tok::kOpenStatement},  {"%}", Tok::kCloseStatement},
        {"{{", Tok::kOpenExpression}, {"}}", Tok::kCloseExpression},
        {"(", Tok::kOpenParen},       {")", Tok::kCloseParen},
        {"{", Tok::kOpenBrace},       {"}", Tok::kCloseBrace},
        {"[", Tok::kOpenBracket},     {"]", Tok::kCloseBracket},
        {",", Tok::kComma},           {".", Tok::kDot},
        {":", Tok::kColon},           {"|", Tok::kPipe},
        {"<=", Tok::kComparison},     {">=", Tok::kComparison},
        {"==", Tok::kComparison},     {"!=", Tok::kComparison},
        {"<", Tok::kComparison},      {">", Tok::kComparison},
        {"+", Tok::kAdditive},        {"-", Tok::kAdditive},
        {"~", Tok::kAdditive},        {"**", Tok::kPower},
        {"*", Tok::kMultiplicative},  {"//", Tok::kMultiplicative},
        {"/", Tok::kMultiplicative},  {"%", Tok::kMultiplicative},
        {"=", Tok::kEquals},
    };
    while (pos < s().size()) {
      // Text runs until the next `{%`, `{{` or `{#`.
      Tok last = last_type();
      if (tokens.empty() || last == Tok::kCloseStatement || last == Tok::kCloseExpression || last == Tok::kComment) {
        size_t start = pos;
        while (pos < s().size() &&
               !(s()[pos] == '{' && (at(pos + 1) == '%' || at(pos + 1) == '{' || at(pos + 1) == '#'))) {
          ++pos;
        }
        if (pos > start) {
          push(Tok::kText, std::string(s().substr(start, pos - start)), src.line[start]);
          continue;
        }
      }
      if (at(pos) == '{' && at(pos + 1) == '#') {
        int l = line();
        pos += 2;
        bool strip_before = at(pos) == '-';
        if (strip_before) ++pos;
        size_t end = s().find("#}", pos);
        if (end == std::string_view::npos) return error("unterminated comment");
        std::string comment(s().substr(pos, end - pos));
        bool strip_after = !comment.empty() && comment.back() == '-';
        if (strip_after) comment.pop_back();
        if (strip_before) strip_trailing_text_space();
        push(Tok::kComment, std::move(comment), l);
        pos = end + 2;
        if (strip_after) skip_space();
        continue;
      }
      if (s().substr(pos, 3) == "{%-") {
        strip_trailing_text_space();
        push(Tok::kOpenStatement, "{%", line());
        pos += 3;
        continue;
      }
      if (s().substr(pos, 3) == "{{-") {
        strip_trailing_text_space();
        push(Tok::kOpenExpression, "{{", line());
        curly_depth = 0;
        pos += 3;
        continue;
      }
      skip_space();
      if (pos >= s().size()) return error("unexpected end of template inside a tag");
      if (s().substr(pos, 3) == "-%}") {
        push(Tok::kCloseStatement, "%}", line());
        pos += 3;
        skip_space();
        continue;
      }
      if (s().substr(pos, 3) == "-}}") {
        push(Tok::kCloseExpression, "}}", line());
        pos += 3;
        skip_space();
        continue;
      }
      char c = s()[pos];
      int l = line();
      if (c == '-' || c == '+') {
        if (tokens.empty() || last_type() == Tok::kText) return error(fmt::format("unexpected character: {}", c));
        Tok prev = last_type();
        // After an operand the sign is a binary operator; otherwise it is a
        // unary sign, folded into a following number literal.
        if (prev != Tok::kIdentifier && prev != Tok::kNumber && prev != Tok::kString && prev != Tok::kCloseParen &&
            prev != Tok::kCloseBracket) {
          ++pos;
          std::string num = read_digits();
          if (!num.empty() && at(pos) == '.' && is_digit(at(pos + 1))) {
            ++pos;
            num += '.';
            num += read_digits();
          }
          if (num.empty()) {
            push(Tok::kUnary, std::string(1, c), l);
          } else {
            push(Tok::kNumber, fmt::format("{}{}", c, num), l);
          }
          continue;
        }
      }
      bool matched = false;
      for (const auto& [text, type] : kOps) {
        std::string_view op(text);
        if (op == "}}" && curly_depth > 0) continue;
        if (s().substr(pos, op.size()) != op) continue;
        push(type, std::string(op), l);
        if (type == Tok::kOpenExpression) curly_depth = 0;
        if (type == Tok::kOpenBrace) ++curly_depth;
        if (type == Tok::kCloseBrace) --curly_depth;
        pos += op.size();
        matched = true;
        break;
      }
      if (matched) continue;
      if (c == '\'' || c == '"') {
        std::string str;
        TANDEM_RETURN_IF_ERROR(read_string(c, &str));
        push(Tok::kString, std::move(str), l);
        continue;
      }
      if (is_digit(c)) {
        std::string num = read_digits();
        if (last_type() != Tok::kDot && at(pos) == '.' && is_digit(at(pos + 1))) {
          ++pos;
          num += '.';
          num += read_digits();
        }
        push(Tok::kNumber, std::move(num), l);
        continue;
      }
      if (is_word(c)) {
        size_t start = pos;
        while (pos < s().size() && is_word(s()[pos])) ++pos;
        push(Tok::kIdentifier, std::string(s().substr(start, pos - start)), l);
        continue;
      }
      return error(fmt::format("unexpected character: {}", c));
    }
    return Status();
  }
};

}  // namespace

Result<std::vector<Token>> tokenize(std::string_view source) {
  Src src = preprocess(source);
  Lexer lexer{src, {}};
  TANDEM_RETURN_IF_ERROR(lexer.run());
  return std::move(lexer.tokens);
}

}  // namespace tandem::chat::detail
