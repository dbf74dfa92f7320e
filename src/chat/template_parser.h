// Tokens -> syntax tree (internal to src/chat). Grammar and operator
// precedence follow @huggingface/jinja (tests bind tighter than arithmetic:
// `not x is defined` is `not (x is defined)`; unary minus binds tighter than
// a filter). Nesting deeper than kMaxParseDepth is an error, so a hostile
// template cannot overflow the stack.
#pragma once

#include <vector>

#include "chat/template_ast.h"
#include "chat/template_lexer.h"
#include "core/status.h"

namespace tandem::chat::detail {

inline constexpr int kMaxParseDepth = 128;

Result<Program> parse_program(const std::vector<Token>& tokens);

}  // namespace tandem::chat::detail
