// Template source -> tokens (internal to src/chat).
//
// Follows @huggingface/jinja's lexer, which Hugging Face runs with
// trim_blocks and lstrip_blocks on:
//   - one trailing newline of the source is dropped;
//   - lstrip_blocks: spaces/tabs from a line start up to `{%` or `{#` are removed;
//   - trim_blocks: the newline right after `%}`, `#}` (or `-}`) is removed;
//   - `{% generation %}` / `{% endgeneration %}` are removed (with their
//     own `-` whitespace control), as the reference does;
//   - `{%-`, `{{-`, `{#-` strip the whitespace before the tag, `-%}`, `-}}`,
//     `-#}` the whitespace after it (JS whitespace, Unicode spaces included).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tandem::chat::detail {

enum class Tok {
  kText,
  kNumber,      // "12", "1.5", "-1" (a sign is folded in after `(`, `[`, `,` ...)
  kString,      // value is the unescaped text
  kIdentifier,  // names and keywords (if, in, not, true ...)
  kEquals,
  kOpenParen,
  kCloseParen,
  kOpenStatement,
  kCloseStatement,
  kOpenExpression,
  kCloseExpression,
  kOpenBracket,
  kCloseBracket,
  kOpenBrace,
  kCloseBrace,
  kComma,
  kDot,
  kColon,
  kPipe,
  kAdditive,        // + - ~
  kMultiplicative,  // * / // %
  kPower,           // **
  kComparison,      // < > <= >= == !=
  kUnary,           // a lone + or - before an operand
  kComment,
};

struct Token {
  Tok type;
  std::string value;
  int line;  // 1-based line in the original source
};

Result<std::vector<Token>> tokenize(std::string_view source);

}  // namespace tandem::chat::detail
