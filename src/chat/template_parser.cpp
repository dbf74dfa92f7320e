#include "chat/template_parser.h"

#include <charconv>
#include <initializer_list>
#include <string>
#include <unordered_set>

namespace tandem::chat::detail {
namespace {

struct ParseError {
  std::string message;
};

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : t_(tokens) {}

  Program parse() {
    Program program;
    while (pos_ < t_.size()) {
      if (StmtPtr s = parse_any()) program.body.push_back(std::move(s));
    }
    return program;
  }

 private:
  const std::vector<Token>& t_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;  // `break` / `continue` are only valid inside a for body

  struct DepthGuard {
    Parser* p;
    explicit DepthGuard(Parser* parser) : p(parser) {
      if (++p->depth_ > kMaxParseDepth) p->fail(fmt::format("template nesting is deeper than {}", kMaxParseDepth));
    }
    ~DepthGuard() { --p->depth_; }
  };

  [[noreturn]] void fail(const std::string& what) const {
    int line = pos_ < t_.size() ? t_[pos_].line : (t_.empty() ? 1 : t_.back().line);
    throw ParseError{fmt::format("chat template syntax error: {} (line {})", what, line)};
  }

  bool at_end() const { return pos_ >= t_.size(); }
  bool is(Tok type, size_t ahead = 0) const { return pos_ + ahead < t_.size() && t_[pos_ + ahead].type == type; }
  bool is_ident(const char* name, size_t ahead = 0) const {
    return is(Tok::kIdentifier, ahead) && t_[pos_ + ahead].value == name;
  }
  bool is_statement(std::initializer_list<const char*> names) const {
    if (!is(Tok::kOpenStatement) || !is(Tok::kIdentifier, 1)) return false;
    for (const char* n : names) {
      if (t_[pos_ + 1].value == n) return true;
    }
    return false;
  }
  const Token& next(const char* expected) {
    if (at_end()) fail(std::string("unexpected end of template, expected ") + expected);
    return t_[pos_++];
  }
  void expect(Tok type, const char* what) {
    if (!is(type))
      fail(std::string("expected ") + what + (at_end() ? ", got end of template" : ", got '" + t_[pos_].value + "'"));
    ++pos_;
  }
  void expect_ident(const char* name) {
    if (!is_ident(name)) fail(std::string("expected '") + name + "'");
    ++pos_;
  }
  int line() const { return at_end() ? (t_.empty() ? 1 : t_.back().line) : t_[pos_].line; }

  ExprPtr make(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // Parses body statements until one of the closing statements (not consumed).
  StmtList parse_until(std::initializer_list<const char*> closers, const char* block) {
    DepthGuard guard(this);
    StmtList body;
    while (!is_statement(closers)) {
      if (at_end()) fail(std::string("unclosed '") + block + "' block");
      if (StmtPtr s = parse_any()) body.push_back(std::move(s));
    }
    return body;
  }

  void expect_end(const char* name) {
    expect(Tok::kOpenStatement, "'{%'");
    expect_ident(name);
    expect(Tok::kCloseStatement, "'%}'");
  }

  StmtPtr parse_any() {
    const Token& tok = t_[pos_];
    switch (tok.type) {
      case Tok::kComment: ++pos_; return nullptr;
      case Tok::kText: {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->line = tok.line;
        s->text = tok.value;
        ++pos_;
        return s;
      }
      case Tok::kOpenStatement: return parse_statement();
      case Tok::kOpenExpression: {
        ++pos_;
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kOutput;
        s->line = tok.line;
        s->expr = parse_expression();
        expect(Tok::kCloseExpression, "'}}'");
        return s;
      }
      default: fail("unexpected '" + tok.value + "'");
    }
  }

  StmtPtr parse_statement() {
    expect(Tok::kOpenStatement, "'{%'");
    if (!is(Tok::kIdentifier)) fail("expected a statement name after '{%'");
    auto s = std::make_unique<Stmt>();
    s->line = line();
    const std::string name = t_[pos_++].value;
    if (name == "set") {
      s->kind = StmtKind::kSet;
      s->target = parse_expression_sequence(false);
      check_assign_target(*s->target);
      if (is(Tok::kEquals)) {
        ++pos_;
        s->expr = parse_expression_sequence(false);
      } else {
        expect(Tok::kCloseStatement, "'%}'");
        s->body = parse_until({"endset"}, "set");
        expect(Tok::kOpenStatement, "'{%'");
        expect_ident("endset");
      }
      expect(Tok::kCloseStatement, "'%}'");
    } else if (name == "if") {
      parse_if(*s);
      expect_end("endif");
    } else if (name == "for") {
      s->kind = StmtKind::kFor;
      s->target = parse_expression_sequence(true);
      if (s->target->kind != ExprKind::kIdentifier && s->target->kind != ExprKind::kTuple) {
        fail("expected a name or a tuple of names after 'for'");
      }
      expect_ident("in");
      ExprPtr iterable = parse_expression();
      if (iterable->kind == ExprKind::kSelect) {  // for x in xs if cond
        s->expr = std::move(iterable->a);
        s->cond = std::move(iterable->b);
      } else {
        s->expr = std::move(iterable);
      }
      expect(Tok::kCloseStatement, "'%}'");
      ++loop_depth_;
      s->body = parse_until({"endfor", "else"}, "for");
      --loop_depth_;
      if (is_statement({"else"})) {
        pos_ += 2;
        expect(Tok::kCloseStatement, "'%}'");
        s->alt = parse_until({"endfor"}, "for");
      }
      expect_end("endfor");
    } else if (name == "macro") {
      s->kind = StmtKind::kMacro;
      if (!is(Tok::kIdentifier)) fail("expected a macro name");
      s->name = t_[pos_++].value;
      s->params = parse_args(true);
      expect(Tok::kCloseStatement, "'%}'");
      int saved = loop_depth_;
      loop_depth_ = 0;
      s->body = parse_until({"endmacro"}, "macro");
      loop_depth_ = saved;
      expect_end("endmacro");
      find_special_args(*s);
    } else if (name == "call") {
      s->kind = StmtKind::kCallBlock;
      if (is(Tok::kOpenParen)) s->params = parse_args(true);
      if (!is(Tok::kIdentifier)) fail("expected a macro name after 'call'");
      auto callee = make(ExprKind::kIdentifier, line());
      callee->name = t_[pos_++].value;
      auto call = make(ExprKind::kCall, callee->line);
      call->a = std::move(callee);
      call->args = parse_args(false);
      s->expr = std::move(call);
      expect(Tok::kCloseStatement, "'%}'");
      int saved = loop_depth_;
      loop_depth_ = 0;
      s->body = parse_until({"endcall"}, "call");
      loop_depth_ = saved;
      expect_end("endcall");
      find_special_args(*s);
    } else if (name == "filter") {
      s->kind = StmtKind::kFilterBlock;
      s->expr = parse_filter_spec(nullptr);
      expect(Tok::kCloseStatement, "'%}'");
      s->body = parse_until({"endfilter"}, "filter");
      expect_end("endfilter");
    } else if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) fail("'" + name + "' outside of a for loop");
      s->kind = name == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      expect(Tok::kCloseStatement, "'%}'");
    } else {
      --pos_;
      fail("unknown statement '" + name + "'");
    }
    return s;
  }

  // if/elif chain: an elif becomes an If inside the alternative branch.
  void parse_if(Stmt& s) {
    s.kind = StmtKind::kIf;
    s.expr = parse_expression();
    expect(Tok::kCloseStatement, "'%}'");
    s.body = parse_until({"elif", "else", "endif"}, "if");
    if (is_statement({"elif"})) {
      auto elif = std::make_unique<Stmt>();
      elif->line = line();
      pos_ += 2;
      parse_if(*elif);
      s.alt.push_back(std::move(elif));
    } else if (is_statement({"else"})) {
      pos_ += 2;
      expect(Tok::kCloseStatement, "'%}'");
      s.alt = parse_until({"endif"}, "if");
    }
  }

  void check_assign_target(const Expr& e) {
    if (e.kind == ExprKind::kIdentifier) return;
    if (e.kind == ExprKind::kMember && !e.computed && !e.slice && e.b->kind == ExprKind::kLiteral &&
        e.b->literal.is_string())
      return;
    if (e.kind == ExprKind::kTuple) {
      for (const auto& item : e.args) {
        if (item->kind != ExprKind::kIdentifier) fail("can only unpack into names in 'set'");
      }
      return;
    }
    fail("invalid target in 'set'");
  }

  // Marks macros and call blocks whose body reads `kwargs` / `varargs`.
  void find_special_args(Stmt& s) {
    std::unordered_set<std::string> params;
    for (const auto& p : s.params) params.insert(p->name);
    bool kw = false, va = false;
    scan_stmts(s.body, &kw, &va);
    s.uses_kwargs = kw && !params.count("kwargs");
    s.uses_varargs = va && !params.count("varargs");
  }
  static void scan_stmts(const StmtList& list, bool* kw, bool* va) {
    for (const auto& st : list) {
      for (const Expr* e : {st->expr.get(), st->target.get(), st->cond.get()}) scan_expr(e, kw, va);
      for (const auto& p : st->params) scan_expr(p.get(), kw, va);
      scan_stmts(st->body, kw, va);
      scan_stmts(st->alt, kw, va);
    }
  }
  static void scan_expr(const Expr* e, bool* kw, bool* va) {
    if (!e) return;
    if (e->kind == ExprKind::kIdentifier) {
      if (e->name == "kwargs") *kw = true;
      if (e->name == "varargs") *va = true;
    }
    for (const Expr* sub : {e->a.get(), e->b.get(), e->c.get()}) scan_expr(sub, kw, va);
    for (const auto& arg : e->args) scan_expr(arg.get(), kw, va);
    for (const auto& [k, v] : e->pairs) {
      scan_expr(k.get(), kw, va);
      scan_expr(v.get(), kw, va);
    }
  }

  // ---- expressions, lowest precedence first ----

  ExprPtr parse_expression_sequence(bool primary) {
    int l = line();
    ExprPtr first = primary ? parse_primary() : parse_expression();
    if (!is(Tok::kComma)) return first;
    auto tuple = make(ExprKind::kTuple, l);
    tuple->args.push_back(std::move(first));
    while (is(Tok::kComma)) {
      ++pos_;
      tuple->args.push_back(primary ? parse_primary() : parse_expression());
    }
    return tuple;
  }

  ExprPtr parse_expression() {
    DepthGuard guard(this);
    int l = line();
    ExprPtr a = parse_or();
    if (!is_ident("if")) return a;
    ++pos_;
    ExprPtr test = parse_or();
    if (is_ident("else")) {
      ++pos_;
      auto t = make(ExprKind::kTernary, l);
      t->a = std::move(test);
      t->b = std::move(a);
      t->c = parse_expression();
      return t;
    }
    auto sel = make(ExprKind::kSelect, l);
    sel->a = std::move(a);
    sel->b = std::move(test);
    return sel;
  }

  ExprPtr binary(BinOp op, ExprPtr a, ExprPtr b, int l) {
    auto e = make(ExprKind::kBinary, l);
    e->op = op;
    e->a = std::move(a);
    e->b = std::move(b);
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_ident("or")) {
      int l = line();
      ++pos_;
      left = binary(BinOp::kOr, std::move(left), parse_and(), l);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_ident("and")) {
      int l = line();
      ++pos_;
      left = binary(BinOp::kAnd, std::move(left), parse_not(), l);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (!is_ident("not")) return parse_comparison();
    DepthGuard guard(this);
    auto e = make(ExprKind::kUnary, line());
    ++pos_;
    e->name = "not";
    e->a = parse_not();
    return e;
  }

  ExprPtr parse_comparison() {
    ExprPtr left = parse_additive();
    while (true) {
      int l = line();
      BinOp op;
      if (is_ident("not") && is_ident("in", 1)) {
        op = BinOp::kNotIn;
        pos_ += 2;
      } else if (is_ident("in")) {
        op = BinOp::kIn;
        ++pos_;
      } else if (is(Tok::kComparison)) {
        const std::string& v = t_[pos_++].value;
        op = v == "=="   ? BinOp::kEq
             : v == "!=" ? BinOp::kNe
             : v == "<"  ? BinOp::kLt
             : v == ">"  ? BinOp::kGt
             : v == "<=" ? BinOp::kLe
                         : BinOp::kGe;
      } else {
        return left;
      }
      left = binary(op, std::move(left), parse_additive(), l);
    }
  }

  ExprPtr parse_additive() {
    ExprPtr left = parse_multiplicative();
    while (is(Tok::kAdditive)) {
      int l = line();
      const std::string& v = t_[pos_++].value;
      BinOp op = v == "+" ? BinOp::kAdd : v == "-" ? BinOp::kSub : BinOp::kConcat;
      left = binary(op, std::move(left), parse_multiplicative(), l);
    }
    return left;
  }

  ExprPtr parse_multiplicative() {
    ExprPtr left = parse_power();
    while (is(Tok::kMultiplicative)) {
      int l = line();
      const std::string& v = t_[pos_++].value;
      BinOp op = v == "*" ? BinOp::kMul : v == "/" ? BinOp::kDiv : v == "//" ? BinOp::kFloorDiv : BinOp::kMod;
      left = binary(op, std::move(left), parse_power(), l);
    }
    return left;
  }

  ExprPtr parse_power() {
    ExprPtr left = parse_test();
    while (is(Tok::kPower)) {
      int l = line();
      ++pos_;
      left = binary(BinOp::kPow, std::move(left), parse_test(), l);
    }
    return left;
  }

  ExprPtr parse_test() {
    ExprPtr operand = parse_filter();
    while (is_ident("is")) {
      auto e = make(ExprKind::kTest, line());
      ++pos_;
      if (is_ident("not")) {
        e->negate = true;
        ++pos_;
      }
      if (!is(Tok::kIdentifier)) fail("expected a test name after 'is'");
      e->name = t_[pos_++].value;
      e->a = std::move(operand);
      operand = std::move(e);
    }
    return operand;
  }

  ExprPtr parse_filter() {
    ExprPtr operand = parse_unary_sign();
    while (is(Tok::kPipe)) {
      ++pos_;
      operand = parse_filter_spec(std::move(operand));
    }
    return operand;
  }

  // `name` or `name(args)` after a pipe (or in {% filter %}).
  ExprPtr parse_filter_spec(ExprPtr operand) {
    if (!is(Tok::kIdentifier)) fail("expected a filter name");
    auto f = make(ExprKind::kFilter, line());
    f->name = t_[pos_++].value;
    f->a = std::move(operand);
    if (is(Tok::kOpenParen)) {
      f->call_form = true;
      f->args = parse_args(false);
    }
    return f;
  }

  ExprPtr parse_unary_sign() {
    if ((is(Tok::kUnary) || is(Tok::kAdditive)) && (t_[pos_].value == "-" || t_[pos_].value == "+")) {
      DepthGuard guard(this);
      auto e = make(ExprKind::kUnary, line());
      e->name = t_[pos_++].value;
      e->a = parse_unary_sign();
      return e;
    }
    ExprPtr e = parse_member(parse_primary());
    while (is(Tok::kOpenParen)) {
      auto call = make(ExprKind::kCall, e->line);
      call->a = std::move(e);
      call->args = parse_args(false);
      e = parse_member(std::move(call));
    }
    return e;
  }

  // (args) of a call, or (params) of a macro / call block.
  std::vector<ExprPtr> parse_args(bool params) {
    expect(Tok::kOpenParen, "'('");
    std::vector<ExprPtr> args;
    std::unordered_set<std::string> names;
    bool saw_keyword = false, saw_spread = false;
    while (!is(Tok::kCloseParen)) {
      if (at_end()) fail("unclosed '('");
      int l = line();
      bool kw_spread = is(Tok::kPower);
      bool spread = is(Tok::kMultiplicative) && t_[pos_].value == "*";
      if (params && (kw_spread || spread)) fail("argument unpacking is not allowed in parameters");
      if (kw_spread) {
        ++pos_;
        auto e = make(ExprKind::kKeywordSpread, l);
        e->a = parse_expression();
        args.push_back(std::move(e));
        if (is(Tok::kComma)) ++pos_;
        if (!is(Tok::kCloseParen)) fail("'**' must be applied to the last argument");
        break;
      }
      ExprPtr arg;
      if (spread) {
        if (saw_spread) fail("only one '*' argument unpacking is allowed");
        saw_spread = true;
        ++pos_;
        arg = make(ExprKind::kSpread, l);
        arg->a = parse_expression();
      } else {
        arg = parse_expression();
        if (is(Tok::kEquals)) {
          ++pos_;
          if (arg->kind != ExprKind::kIdentifier) fail("expected a name before '='");
          auto kw = make(ExprKind::kKeywordArg, l);
          kw->name = arg->name;
          kw->a = parse_expression();
          arg = std::move(kw);
        }
        if (params) {
          if (arg->kind != ExprKind::kIdentifier && arg->kind != ExprKind::kKeywordArg)
            fail("expected a parameter name");
          if (!names.insert(arg->name).second) fail("duplicate parameter '" + arg->name + "'");
        }
        if (arg->kind == ExprKind::kKeywordArg) {
          saw_keyword = true;
        } else if (saw_keyword) {
          fail(params ? "a parameter without default follows one with a default"
                      : "positional argument follows keyword argument");
        } else if (saw_spread) {
          fail("positional argument follows '*' unpacking");
        }
      }
      args.push_back(std::move(arg));
      if (is(Tok::kComma)) {
        ++pos_;
      } else if (!is(Tok::kCloseParen)) {
        fail("expected ',' or ')' in argument list");
      }
    }
    expect(Tok::kCloseParen, "')'");
    return args;
  }

  ExprPtr parse_member(ExprPtr object) {
    while (is(Tok::kDot) || is(Tok::kOpenBracket)) {
      int l = line();
      bool computed = is(Tok::kOpenBracket);
      ++pos_;
      auto m = make(ExprKind::kMember, l);
      m->computed = computed;
      m->a = std::move(object);
      if (!computed) {
        const Token& tok = next("a name after '.'");
        auto prop = make(ExprKind::kLiteral, l);
        if (tok.type == Tok::kIdentifier) {
          prop->literal = Value::string(tok.value);
        } else if (tok.type == Tok::kNumber && tok.value.find('.') == std::string::npos) {
          prop->literal = Value::integer(parse_int(tok.value));
        } else {
          fail("expected a name or an integer after '.'");
        }
        m->b = std::move(prop);
      } else {
        parse_subscript(*m);
        expect(Tok::kCloseBracket, "']'");
      }
      object = std::move(m);
    }
    return object;
  }

  // a[i] or a[start:stop:step].
  void parse_subscript(Expr& m) {
    std::vector<ExprPtr> parts;
    bool is_slice = false;
    while (!is(Tok::kCloseBracket)) {
      if (at_end()) fail("unclosed '['");
      if (is(Tok::kColon)) {
        parts.push_back(nullptr);
        ++pos_;
        is_slice = true;
      } else {
        parts.push_back(parse_expression());
        if (is(Tok::kColon)) {
          ++pos_;
          is_slice = true;
        } else if (!is(Tok::kCloseBracket)) {
          fail("expected ':' or ']' in subscript");
        }
      }
    }
    if (parts.empty()) fail("empty subscript '[]'");
    if (!is_slice) {
      m.b = std::move(parts[0]);
      return;
    }
    if (parts.size() > 3) fail("a slice takes at most 3 parts");
    m.slice = true;
    parts.resize(3);
    m.args = std::move(parts);
  }

  int64_t parse_int(const std::string& text) {
    int64_t v = 0;
    const char* begin = text.data() + (text[0] == '+' ? 1 : 0);
    auto res = std::from_chars(begin, text.data() + text.size(), v);
    if (res.ec != std::errc() || res.ptr != text.data() + text.size()) fail("integer literal out of range: " + text);
    return v;
  }

  ExprPtr parse_primary() {
    DepthGuard guard(this);
    int l = line();
    const Token& tok = next("an expression");
    switch (tok.type) {
      case Tok::kNumber: {
        auto e = make(ExprKind::kLiteral, l);
        if (tok.value.find('.') == std::string::npos) {
          e->literal = Value::integer(parse_int(tok.value));
        } else {
          double d = 0;
          const char* begin = tok.value.data() + (tok.value[0] == '+' || tok.value[0] == '-' ? 1 : 0);
          std::from_chars(begin, tok.value.data() + tok.value.size(), d);
          e->literal = Value::number(tok.value[0] == '-' ? -d : d);
        }
        return e;
      }
      case Tok::kString: {
        std::string value = tok.value;
        while (is(Tok::kString)) value += t_[pos_++].value;  // 'a' 'b' is 'ab'
        auto e = make(ExprKind::kLiteral, l);
        e->literal = Value::string(std::move(value));
        e->string_literal = true;
        return e;
      }
      case Tok::kIdentifier: {
        auto e = make(ExprKind::kIdentifier, l);
        e->name = tok.value;
        return e;
      }
      case Tok::kOpenParen: {
        ExprPtr e = parse_expression_sequence(false);
        expect(Tok::kCloseParen, "')'");
        return e;
      }
      case Tok::kOpenBracket: {
        auto e = make(ExprKind::kArray, l);
        while (!is(Tok::kCloseBracket)) {
          if (at_end()) fail("unclosed '['");
          e->args.push_back(parse_expression());
          if (is(Tok::kComma)) {
            ++pos_;
          } else if (!is(Tok::kCloseBracket)) {
            fail("expected ',' or ']' in list");
          }
        }
        ++pos_;
        return e;
      }
      case Tok::kOpenBrace: {
        auto e = make(ExprKind::kObject, l);
        while (!is(Tok::kCloseBrace)) {
          if (at_end()) fail("unclosed '{'");
          ExprPtr key = parse_expression();
          expect(Tok::kColon, "':' in dict literal");
          ExprPtr value = parse_expression();
          e->pairs.emplace_back(std::move(key), std::move(value));
          if (is(Tok::kComma)) {
            ++pos_;
          } else if (!is(Tok::kCloseBrace)) {
            fail("expected ',' or '}' in dict literal");
          }
        }
        ++pos_;
        return e;
      }
      default: --pos_; fail("unexpected '" + tok.value + "'");
    }
  }
};

}  // namespace

Result<Program> parse_program(const std::vector<Token>& tokens) {
  try {
    Parser parser(tokens);
    return parser.parse();
  } catch (const ParseError& e) {
    return Status::error(e.message);
  }
}

}  // namespace tandem::chat::detail
