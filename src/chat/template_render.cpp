// Statements and expressions: scopes, loops, macros, operators.
#include <cmath>
#include <unordered_set>

#include "chat/template_interp.h"

namespace tandem::chat::detail {

void fail(std::string message) { throw TemplateError{std::move(message)}; }

Value Env::lookup(const std::string& name) const {
  for (const Env* e = this; e; e = e->parent.get()) {
    auto it = e->vars.find(name);
    if (it != e->vars.end()) return it->second;
  }
  return Value();
}

namespace {

EnvPtr child_scope(const EnvPtr& parent) {
  auto env = std::make_shared<Env>();
  env->parent = parent;
  return env;
}

struct MacroFn : Callable {
  const Stmt* macro;
  explicit MacroFn(const Stmt* m) : macro(m) {}
  Value call(Interp& in, CallArgs& args, const EnvPtr& caller) const override {
    return in.run_macro(*macro, "'" + macro->name + "'", args, caller);
  }
};

// `caller()` inside a macro invoked by {% call %}: runs the call block's body
// in a child of the scope where the call block stands.
struct CallerFn : Callable {
  const Stmt* block;
  EnvPtr scope;
  CallerFn(const Stmt* b, EnvPtr s) : block(b), scope(std::move(s)) {}
  Value call(Interp& in, CallArgs& args, const EnvPtr&) const override {
    return in.run_macro(*block, "None", args, scope);
  }
};

const char* op_name(BinOp op) {
  switch (op) {
    case BinOp::kAnd: return "and";
    case BinOp::kOr: return "or";
    case BinOp::kEq: return "==";
    case BinOp::kNe: return "!=";
    case BinOp::kLt: return "<";
    case BinOp::kGt: return ">";
    case BinOp::kLe: return "<=";
    case BinOp::kGe: return ">=";
    case BinOp::kIn: return "in";
    case BinOp::kNotIn: return "not in";
    case BinOp::kAdd: return "+";
    case BinOp::kSub: return "-";
    case BinOp::kConcat: return "~";
    case BinOp::kMul: return "*";
    case BinOp::kDiv: return "/";
    case BinOp::kFloorDiv: return "//";
    case BinOp::kMod: return "%";
    case BinOp::kPow: return "**";
  }
  return "?";
}

bool nullish(const Value& v) { return v.is_none() || v.is_undefined(); }
bool primitive(const Value& v) { return v.is_bool() || v.is_number() || v.is_string(); }

[[noreturn]] void overflow() { fail("integer overflow in chat template arithmetic"); }
int64_t add_i(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) overflow();
  return r;
}
int64_t sub_i(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) overflow();
  return r;
}
int64_t mul_i(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) overflow();
  return r;
}

int64_t int_pow(int64_t base, int64_t exp) {
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) result = mul_i(result, base);
    exp >>= 1;
    if (exp > 0) base = mul_i(base, base);
  }
  return result;
}

// Python's slice over N items with the reference's clamping rules.
std::vector<int64_t> slice_indices(int64_t n, const Value& start_v, const Value& stop_v, const Value& step_v) {
  int64_t step = step_v.is_undefined() ? 1 : step_v.as_int();
  std::vector<int64_t> out;
  if (step >= 0) {
    int64_t start = start_v.is_undefined() ? 0 : start_v.as_int();
    int64_t stop = stop_v.is_undefined() ? n : stop_v.as_int();
    start = start < 0 ? std::max<int64_t>(n + start, 0) : std::min(start, n);
    stop = stop < 0 ? std::max<int64_t>(n + stop, 0) : std::min(stop, n);
    if (step == 0) return out;  // the reference returns an empty slice
    for (int64_t i = start; i < stop; i += step) out.push_back(i);
  } else {
    int64_t start = start_v.is_undefined() ? n - 1 : start_v.as_int();
    int64_t stop = stop_v.is_undefined() ? -1 : stop_v.as_int();
    start = start < 0 ? std::max<int64_t>(n + start, -1) : std::min(start, n - 1);
    stop = stop < -1 ? std::max<int64_t>(n + stop, -1) : std::min(stop, n - 1);
    for (int64_t i = start; i > stop; i += step) out.push_back(i);
  }
  return out;
}

}  // namespace

// JS `===` on the payloads. none and undefined both hold JS undefined there.
bool Interp::strict_equals(const Value& a, const Value& b) {
  if (nullish(a) || nullish(b)) return nullish(a) && nullish(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int()) return a.as_int() == b.as_int();
    return a.as_double() == b.as_double();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::kBool: return a.as_bool() == b.as_bool();
    case Kind::kString: return a.str() == b.str();
    default: return a.identity() == b.identity();
  }
}

// JavaScript `==` on the values' payloads, as the reference compares.
bool Interp::loose_equals(const Value& a, const Value& b) {
  if (nullish(a) || nullish(b)) return nullish(a) && nullish(b);
  if (primitive(a) && primitive(b)) {
    if (a.is_string() && b.is_string()) return a.str() == b.str();
    if (a.is_int() && b.is_int()) return a.as_int() == b.as_int();
    double x = a.is_string() ? js_string_to_number(a.str()) : a.as_double();
    double y = b.is_string() ? js_string_to_number(b.str()) : b.as_double();
    return x == y;
  }
  // Containers and functions: the same object. (JS would also compare a list
  // with a primitive through its string form; that is never what a template
  // means, so it is simply unequal here.)
  return a.kind() == b.kind() && a.identity() == b.identity();
}

std::string Interp::render(const Program& program, const EnvPtr& globals) {
  std::string out;
  exec_block(program.body, globals, out);
  return out;
}

Flow Interp::exec_block(const StmtList& body, const EnvPtr& env, std::string& out) {
  for (const auto& s : body) {
    Flow f = exec(*s, env, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Flow Interp::exec(const Stmt& s, const EnvPtr& env, std::string& out) {
  StackGuard guard(*this);
  switch (s.kind) {
    case StmtKind::kText:
      out += s.text;
      check_size(out.size());
      return Flow::kNormal;
    case StmtKind::kOutput: {
      Value v = eval(*s.expr, env);
      if (!nullish(v)) {
        out += display(v);
        check_size(out.size());
      }
      return Flow::kNormal;
    }
    case StmtKind::kIf: return exec_block(eval(*s.expr, env).truthy() ? s.body : s.alt, env, out);
    case StmtKind::kFor: return exec_for(s, env, out);
    case StmtKind::kSet: {
      Value v;
      if (s.expr) {
        v = eval(*s.expr, env);
      } else {
        std::string buf;
        Flow f = exec_block(s.body, env, buf);
        if (f != Flow::kNormal) return f;
        v = Value::string(std::move(buf));
      }
      assign(*s.target, v, env);
      return Flow::kNormal;
    }
    case StmtKind::kMacro: env->vars[s.name] = Value::function(std::make_shared<MacroFn>(&s)); return Flow::kNormal;
    case StmtKind::kBreak: return Flow::kBreak;
    case StmtKind::kContinue: return Flow::kContinue;
    case StmtKind::kCallBlock: {
      const Expr& call = *s.expr;
      CallArgs args = eval_args(call.args, env);
      Value fn = eval(*call.a, env);
      if (!fn.is_function()) fail(std::string("Cannot call something that is not a function: got ") + fn.type_name());
      EnvPtr scope = child_scope(env);
      scope->vars["caller"] = Value::function(std::make_shared<CallerFn>(&s, env));
      Value v = fn.fn().call(*this, args, scope);
      if (!nullish(v)) {
        out += display(v);
        check_size(out.size());
      }
      return Flow::kNormal;
    }
    case StmtKind::kFilterBlock: {
      std::string buf;
      Flow f = exec_block(s.body, env, buf);
      if (f != Flow::kNormal) return f;
      Value v = apply_filter(Value::string(std::move(buf)), *s.expr, env);
      if (!nullish(v)) {
        out += display(v);
        check_size(out.size());
      }
      return Flow::kNormal;
    }
  }
  return Flow::kNormal;
}

void Interp::assign(const Expr& target, const Value& v, const EnvPtr& env) {
  if (target.kind == ExprKind::kIdentifier) {
    env->vars[target.name] = v;
  } else if (target.kind == ExprKind::kTuple) {
    if (!v.is_array()) fail(std::string("Cannot unpack non-iterable type in set: ") + v.type_name());
    const Array& items = v.arr();
    if (items.size() != target.args.size()) {
      fail(std::string("Too ") + (target.args.size() > items.size() ? "few" : "many") + " items to unpack in set");
    }
    for (size_t i = 0; i < items.size(); ++i) env->vars[target.args[i]->name] = items[i];
  } else {  // ns.attr (checked by the parser)
    Value object = eval(*target.a, env);
    if (!object.is_namespace()) fail("cannot assign attribute on non-namespace object");
    object.ns_attrs().set(target.b->literal.str(), v);
  }
}

Flow Interp::exec_for(const Stmt& s, const EnvPtr& env, std::string& out) {
  EnvPtr scope = child_scope(env);
  Value iterable = eval(*s.expr, scope);
  Array keys;
  const Array* all = nullptr;
  if (iterable.is_object()) {
    for (const auto& [k, v] : iterable.obj().entries()) keys.push_back(Value::string(k));
    all = &keys;
  } else if (iterable.is_array()) {
    all = &iterable.arr();
  } else {
    fail(std::string("Expected iterable or object type in for loop: got ") + iterable.type_name());
  }
  const Expr& target = *s.target;
  auto bind = [&](Env& e, const Value& item) {
    if (target.kind == ExprKind::kIdentifier) {
      e.vars[target.name] = item;
      return;
    }
    if (!item.is_array() || item.is_tuple()) fail(std::string("Cannot unpack non-iterable type: ") + item.type_name());
    const Array& parts = item.arr();
    if (parts.size() != target.args.size()) {
      fail(std::string("Too ") + (target.args.size() > parts.size() ? "few" : "many") + " items to unpack");
    }
    for (size_t j = 0; j < parts.size(); ++j) e.vars[target.args[j]->name] = parts[j];
  };
  // `for x in xs if cond`: the reference filters every item first, then runs.
  Array filtered;
  const Array* items = all;
  if (s.cond) {
    for (const Value& item : *all) {
      count_iterations(1);
      EnvPtr probe = child_scope(scope);
      bind(*probe, item);
      if (eval(*s.cond, probe).truthy()) filtered.push_back(item);
    }
    items = &filtered;
  }
  const int64_t n = static_cast<int64_t>(items->size());
  bool ran = false;
  for (int64_t i = 0; i < n; ++i) {
    count_iterations(1);
    Object loop;
    loop.set("index", Value::integer(i + 1));
    loop.set("index0", Value::integer(i));
    loop.set("revindex", Value::integer(n - i));
    loop.set("revindex0", Value::integer(n - i - 1));
    loop.set("first", Value::boolean(i == 0));
    loop.set("last", Value::boolean(i == n - 1));
    loop.set("length", Value::integer(n));
    loop.set("previtem", i > 0 ? (*items)[static_cast<size_t>(i - 1)] : Value());
    loop.set("nextitem", i < n - 1 ? (*items)[static_cast<size_t>(i + 1)] : Value());
    scope->vars["loop"] = Value::object(std::move(loop));
    bind(*scope, (*items)[static_cast<size_t>(i)]);
    // The reference drops the output of an iteration left by break or
    // continue, and runs the else block when no iteration completed.
    size_t mark = out.size();
    Flow f = exec_block(s.body, scope, out);
    if (f == Flow::kContinue) {
      out.resize(mark);
      continue;
    }
    if (f == Flow::kBreak) {
      out.resize(mark);
      break;
    }
    ran = true;
  }
  if (!ran) return exec_block(s.alt, scope, out);
  return Flow::kNormal;
}

Value Interp::run_macro(const Stmt& macro, const std::string& display_name, CallArgs& args, const EnvPtr& parent) {
  if (call_depth_ >= opts_.max_call_depth) fail("chat template macro calls nest deeper than the limit");
  struct DepthGuard {
    int& d;
    explicit DepthGuard(int& depth) : d(depth) { ++d; }
    ~DepthGuard() { --d; }
  } guard(call_depth_);

  EnvPtr scope = child_scope(parent);
  std::unordered_set<std::string> used;
  std::vector<const Expr*> pending;  // parameters whose default is evaluated after binding
  for (size_t i = 0; i < macro.params.size(); ++i) {
    const Expr& p = *macro.params[i];
    Value v;
    bool bound = false;
    if (i < args.pos.size()) {
      v = args.pos[i];
      bound = true;
    } else if (const Value* kw = args.kwargs.find(p.name)) {
      v = *kw;
      used.insert(p.name);
      bound = true;
    }
    if (!bound && p.kind == ExprKind::kKeywordArg) pending.push_back(&p);
    scope->vars[p.name] = v;
  }
  Object rest;
  for (const auto& [k, v] : args.kwargs.entries()) {
    if (!used.count(k)) rest.set(k, v);
  }
  if (macro.uses_kwargs) {
    scope->vars["kwargs"] = Value::object(std::move(rest));
  } else if (!rest.empty()) {
    fail("macro " + display_name + " takes no keyword argument '" + rest.entries()[0].first + "'");
  }
  if (macro.uses_varargs) {
    Array extra;
    for (size_t i = macro.params.size(); i < args.pos.size(); ++i) extra.push_back(args.pos[i]);
    scope->vars["varargs"] = Value::array(std::move(extra));
  } else if (args.pos.size() > macro.params.size()) {
    fail(fmt::format("macro {} takes not more than {} argument(s)", display_name, macro.params.size()));
  }
  for (const Expr* p : pending) scope->vars[p->name] = eval(*p->a, scope);
  std::string out;
  exec_block(macro.body, scope, out);
  return Value::string(std::move(out));
}

CallArgs Interp::eval_args(const std::vector<ExprPtr>& args, const EnvPtr& env) {
  CallArgs out;
  for (const auto& a : args) {
    if (a->kind == ExprKind::kSpread) {
      Value v = eval(*a->a, env);
      if (!v.is_array()) fail(std::string("Cannot unpack non-iterable type: ") + v.type_name());
      for (const Value& item : v.arr()) out.pos.push_back(item);
    } else if (a->kind != ExprKind::kKeywordArg && a->kind != ExprKind::kKeywordSpread) {
      out.pos.push_back(eval(*a, env));
    }
  }
  auto add = [&](const std::string& key, Value v) {
    if (out.kwargs.find(key)) fail("Got multiple values for keyword argument '" + key + "'");
    out.kwargs.set(key, std::move(v));
  };
  for (const auto& a : args) {
    if (a->kind == ExprKind::kKeywordArg) {
      add(a->name, eval(*a->a, env));
    } else if (a->kind == ExprKind::kKeywordSpread) {
      Value v = eval(*a->a, env);
      if (!v.is_object()) fail(std::string("Argument after ** must be a mapping, not ") + v.type_name());
      for (const auto& [k, item] : v.obj().entries()) add(k, item);
    }
  }
  return out;
}

Value Interp::call_value(const Value& fn, CallArgs& args, const EnvPtr& env) {
  if (!fn.is_function()) fail(std::string("Cannot call something that is not a function: got ") + fn.type_name());
  return fn.fn().call(*this, args, env);
}

Value Interp::eval_call(const Expr& e, const EnvPtr& env) {
  CallArgs args = eval_args(e.args, env);  // arguments first, as the reference does
  Value fn = eval(*e.a, env);
  return call_value(fn, args, env);
}

Value Interp::eval_member(const Expr& e, const EnvPtr& env) {
  Value object = eval(*e.a, env);
  if (!e.slice) return get_member(object, eval(*e.b, env));
  if (!object.is_array() && !object.is_string()) fail("Slice object must be an array or string");
  Value parts[3];
  static const char* const kNames[3] = {"start", "stop", "step"};
  for (int i = 0; i < 3; ++i) {
    if (e.args[static_cast<size_t>(i)]) parts[i] = eval(*e.args[static_cast<size_t>(i)], env);
    if (!parts[i].is_int() && !parts[i].is_undefined()) {
      fail(std::string("Slice ") + kNames[i] + " must be numeric or undefined");
    }
  }
  if (object.is_array()) {
    const Array& items = object.arr();
    Array out;
    for (int64_t i : slice_indices(static_cast<int64_t>(items.size()), parts[0], parts[1], parts[2])) {
      out.push_back(items[static_cast<size_t>(i)]);
    }
    return Value::array(std::move(out));
  }
  std::vector<std::string_view> chars = code_points(object.str());
  std::string out;
  for (int64_t i : slice_indices(static_cast<int64_t>(chars.size()), parts[0], parts[1], parts[2])) {
    out.append(chars[static_cast<size_t>(i)]);
  }
  return Value::string(std::move(out));
}

Value Interp::eval(const Expr& e, const EnvPtr& env) {
  StackGuard guard(*this);
  switch (e.kind) {
    case ExprKind::kLiteral: return e.literal;
    case ExprKind::kIdentifier: return env->lookup(e.name);
    case ExprKind::kMember: return eval_member(e, env);
    case ExprKind::kCall: return eval_call(e, env);
    case ExprKind::kUnary: {
      Value v = eval(*e.a, env);
      if (e.name == "not") return Value::boolean(!v.truthy());
      bool neg = e.name == "-";
      if (v.is_float()) return Value::number(neg ? -v.as_float() : v.as_float());
      if (v.is_int() || v.is_bool()) {
        int64_t i = v.is_int() ? v.as_int() : (v.as_bool() ? 1 : 0);
        return Value::integer(neg ? sub_i(0, i) : i);
      }
      fail("Unknown operator \"" + e.name + "\" for " + v.type_name());
    }
    case ExprKind::kBinary: return eval_binary(e, env);
    case ExprKind::kFilter: return apply_filter(eval(*e.a, env), e, env);
    case ExprKind::kTest: {
      bool r = run_test(e.name, eval(*e.a, env), nullptr);
      return Value::boolean(e.negate ? !r : r);
    }
    case ExprKind::kSelect: return eval(*e.b, env).truthy() ? eval(*e.a, env) : Value();
    case ExprKind::kTernary: return eval(*e.a, env).truthy() ? eval(*e.b, env) : eval(*e.c, env);
    case ExprKind::kArray:
    case ExprKind::kTuple: {
      Array items;
      items.reserve(e.args.size());
      for (const auto& a : e.args) items.push_back(eval(*a, env));
      return Value::array(std::move(items), e.kind == ExprKind::kTuple);
    }
    case ExprKind::kObject: {
      Object obj;
      for (const auto& [k, v] : e.pairs) {
        Value key = eval(*k, env);
        if (!key.is_string()) fail(std::string("Object keys must be strings: got ") + key.type_name());
        obj.set(key.str(), eval(*v, env));
      }
      return Value::object(std::move(obj));
    }
    case ExprKind::kKeywordArg:
    case ExprKind::kSpread:
    case ExprKind::kKeywordSpread: fail("keyword arguments and unpacking are only allowed in calls");
  }
  return Value();
}

Value Interp::eval_binary(const Expr& e, const EnvPtr& env) {
  const BinOp op = e.op;
  Value left = eval(*e.a, env);
  if (op == BinOp::kAnd) return left.truthy() ? eval(*e.b, env) : left;
  if (op == BinOp::kOr) return left.truthy() ? left : eval(*e.b, env);
  Value right = eval(*e.b, env);
  if (op == BinOp::kEq) return Value::boolean(loose_equals(left, right));
  if (op == BinOp::kNe) return Value::boolean(!loose_equals(left, right));
  const bool in_op = op == BinOp::kIn || op == BinOp::kNotIn;
  if (left.is_undefined() || right.is_undefined()) {
    if (right.is_undefined() && in_op) return Value::boolean(op == BinOp::kNotIn);
    fail(std::string("Cannot perform operation ") + op_name(op) + " on undefined values");
  }
  if (left.is_none() || right.is_none()) fail("Cannot perform operation on null values");
  if (op == BinOp::kConcat) {
    std::string a = raw_string(left), b = raw_string(right);
    check_size(a.size() + b.size());
    return Value::string(a + b);
  }
  const bool numeric_like = (left.is_number() || left.is_bool()) && (right.is_number() || right.is_bool());
  if (op == BinOp::kPow && numeric_like) {
    double a = left.as_double(), b = right.as_double();
    if (a == 0 && b < 0) fail("0.0 cannot be raised to a negative power");
    if (!left.is_float() && !right.is_float() && b >= 0) {
      return Value::integer(int_pow(static_cast<int64_t>(a), static_cast<int64_t>(b)));
    }
    double r = std::pow(a, b);
    if (!std::isfinite(r)) fail("Exponentiation result is not a finite real number");
    return Value::number(r);
  }
  if (left.is_number() && right.is_number()) {
    const bool is_float = left.is_float() || right.is_float();
    const double a = left.as_double(), b = right.as_double();
    const int64_t x = left.is_int() ? left.as_int() : 0, y = right.is_int() ? right.as_int() : 0;
    int64_t r = 0;
    switch (op) {
      case BinOp::kAdd: return is_float ? Value::number(a + b) : Value::integer(add_i(x, y));
      case BinOp::kSub: return is_float ? Value::number(a - b) : Value::integer(sub_i(x, y));
      case BinOp::kMul: return is_float ? Value::number(a * b) : Value::integer(mul_i(x, y));
      case BinOp::kDiv: return Value::number(a / b);
      case BinOp::kFloorDiv:
        if (is_float) return Value::number(std::floor(a / b));
        if (y == 0) fail("integer division by zero");
        if (x == INT64_MIN && y == -1) overflow();
        r = x / y;
        return Value::integer((x % y != 0 && ((x < 0) != (y < 0))) ? r - 1 : r);
      case BinOp::kMod:  // JS remainder: the sign follows the dividend
        if (is_float) return Value::number(std::fmod(a, b));
        if (y == 0) fail("integer modulo by zero");
        return Value::integer(y == -1 ? 0 : x % y);
      case BinOp::kLt: return Value::boolean(is_float ? a < b : x < y);
      case BinOp::kGt: return Value::boolean(is_float ? a > b : x > y);
      case BinOp::kLe: return Value::boolean(is_float ? a <= b : x <= y);
      case BinOp::kGe: return Value::boolean(is_float ? a >= b : x >= y);
      default: break;
    }
  } else if (left.is_array() && right.is_array()) {
    if (op == BinOp::kAdd) {
      const Array &a = left.arr(), &b = right.arr();
      if (static_cast<int64_t>(a.size() + b.size()) > opts_.max_loop_iterations)
        fail("chat template list is larger than the limit");
      Array out(a);
      out.insert(out.end(), b.begin(), b.end());
      return Value::array(std::move(out));
    }
  } else if (right.is_array() && in_op) {
    bool member = false;
    for (const Value& item : right.arr()) {
      if (strict_equals(item, left)) {
        member = true;
        break;
      }
    }
    return Value::boolean(member == (op == BinOp::kIn));
  }
  if ((left.is_string() || right.is_string()) && op == BinOp::kAdd) {
    std::string a = raw_string(left), b = raw_string(right);
    check_size(a.size() + b.size());
    return Value::string(a + b);
  }
  if (left.is_string() && right.is_string() && in_op) {
    bool found = right.str().find(left.str()) != std::string::npos;
    return Value::boolean(found == (op == BinOp::kIn));
  }
  if (left.is_string() && right.is_object() && in_op) {
    bool found = right.obj().find(left.str()) != nullptr;
    return Value::boolean(found == (op == BinOp::kIn));
  }
  fail(std::string("Unknown operator \"") + op_name(op) + "\" between " + left.type_name() + " and " +
       right.type_name());
}

}  // namespace tandem::chat::detail
