// Syntax tree of a parsed chat template (internal to src/chat).
//
// One node struct per layer (Expr, Stmt) with a kind tag; each kind uses the
// fields listed next to it. The tree is immutable after parsing and shared by
// every render (renders may run on several threads at once).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/template_value.h"

namespace tandem::chat::detail {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using StmtList = std::vector<StmtPtr>;

enum class ExprKind {
  kLiteral,       // literal (string_literal: written as a quoted string)
  kIdentifier,    // name
  kMember,        // a[b] / a.b: a object, b property (computed: written with []);
                  // slice: a[s0:s1:s2] with args = {s0, s1, s2}, null when omitted
  kCall,          // a(args...)
  kUnary,         // op a: "not", "-", "+"
  kBinary,        // a op b
  kFilter,        // a | name(args...); a is null inside {% filter %}
  kTest,          // a is [not] name
  kSelect,        // a if b (no else: undefined when b is false)
  kTernary,       // b if a else c
  kArray,         // [args...]
  kTuple,         // (args...)
  kObject,        // {pairs...}
  kKeywordArg,    // name=a (call arguments, macro parameters with defaults)
  kSpread,        // *a
  kKeywordSpread  // **a
};

enum class BinOp {
  kAnd,
  kOr,
  kEq,
  kNe,
  kLt,
  kGt,
  kLe,
  kGe,
  kIn,
  kNotIn,
  kAdd,
  kSub,
  kConcat,
  kMul,
  kDiv,
  kFloorDiv,
  kMod,
  kPow
};

struct Expr {
  ExprKind kind;
  int line = 0;
  Value literal;
  bool string_literal = false;
  bool computed = false;
  bool slice = false;
  bool negate = false;     // kTest: "is not"
  bool call_form = false;  // kFilter: written with parentheses (only error messages differ)
  std::string name;        // identifier, filter, test, keyword name; unary operator
  BinOp op = BinOp::kAnd;
  ExprPtr a, b, c;
  std::vector<ExprPtr> args;
  std::vector<std::pair<ExprPtr, ExprPtr>> pairs;
};

enum class StmtKind {
  kText,    // text
  kOutput,  // {{ expr }}
  kIf,      // if expr: body else alt (elif is an If inside alt)
  kFor,     // for target in expr [if cond]: body else alt
  kSet,     // set target = expr, or set target: body (block form, expr null)
  kMacro,   // macro name(params): body
  kBreak,
  kContinue,
  kCallBlock,    // call[(params)] expr: body  (expr is the macro call)
  kFilterBlock,  // filter expr: body  (expr is a kFilter with a null operand)
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;
  std::string name;
  ExprPtr expr;
  ExprPtr target;
  ExprPtr cond;
  std::vector<ExprPtr> params;
  StmtList body;
  StmtList alt;
  // kMacro / kCallBlock: the body reads `kwargs` / `varargs`, so extra
  // arguments are collected instead of rejected.
  bool uses_kwargs = false;
  bool uses_varargs = false;
};

struct Program {
  StmtList body;
};

}  // namespace tandem::chat::detail
