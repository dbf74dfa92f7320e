// The tree-walking interpreter behind ChatTemplate::render (internal).
//
// Errors inside a render are thrown as TemplateError and turned into a Status
// at the ChatTemplate boundary; no exception leaves src/chat. Statement
// execution returns a Flow so `break` / `continue` need no exceptions.
//
// Scoping follows the reference: a for loop and a macro call each open a
// child scope; `set` writes the innermost scope; a macro body's parent scope
// is the *caller's* scope (dynamic scoping, as @huggingface/jinja does).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/template.h"
#include "chat/template_ast.h"
#include "chat/template_value.h"

namespace tandem::chat::detail {

struct TemplateError {
  std::string message;
};
[[noreturn]] void fail(std::string message);

struct Env;
using EnvPtr = std::shared_ptr<Env>;

struct Env {
  std::unordered_map<std::string, Value> vars;
  EnvPtr parent;

  // Undefined when no scope defines NAME.
  Value lookup(const std::string& name) const;
};

struct CallArgs {
  std::vector<Value> pos;
  Object kwargs;
};

// Argument I of a call, by position or else by NAME; undefined when absent.
inline Value arg(const CallArgs& args, size_t i, const char* name) {
  if (i < args.pos.size()) return args.pos[i];
  if (const Value* v = args.kwargs.find(name)) return *v;
  return Value();
}

class Interp;

struct Callable {
  virtual ~Callable() = default;
  // CALLER is the scope of the call site (macros run in a child of it).
  virtual Value call(Interp& in, CallArgs& args, const EnvPtr& caller) const = 0;
};

enum class Flow { kNormal, kBreak, kContinue };

struct JsonOptions {
  int indent = 0;  // 0: one line
  bool ensure_ascii = false;
  bool sort_keys = false;
  bool custom_separators = false;
  std::string item_sep, key_sep;
};

class Interp {
 public:
  explicit Interp(const RenderOptions& options) : opts_(options) {}
  // Empties every namespace made during the render: `{% set ns.me = ns %}`
  // would otherwise keep a reference cycle (and its memory) alive.
  ~Interp() {
    for (const Value& ns : namespaces_) ns.ns_attrs() = Object();
  }
  Interp(const Interp&) = delete;
  Interp& operator=(const Interp&) = delete;

  // GLOBALS holds the builtins (install_globals) and the context variables.
  std::string render(const Program& program, const EnvPtr& globals);

  // ---- template_render.cpp ----
  Value eval(const Expr& e, const EnvPtr& env);
  Flow exec_block(const StmtList& body, const EnvPtr& env, std::string& out);
  Value call_value(const Value& fn, CallArgs& args, const EnvPtr& env);
  // Binds ARGS to a macro's (or call block's) parameters and runs its body
  // in a child of PARENT.
  Value run_macro(const Stmt& macro, const std::string& display_name, CallArgs& args, const EnvPtr& parent);
  CallArgs eval_args(const std::vector<ExprPtr>& args, const EnvPtr& env);
  static bool loose_equals(const Value& a, const Value& b);
  static bool strict_equals(const Value& a, const Value& b);

  // ---- template_filters.cpp ----
  // FILTER is a kFilter node; its operand has already been evaluated.
  Value apply_filter(const Value& operand, const Expr& filter, const EnvPtr& env);
  Value select_attr(const Value& operand, const Expr& filter, const EnvPtr& env);
  // Unknown test names fail.
  bool run_test(const std::string& name, const Value& operand, const Value* arg);
  static int compare(const Value& a, const Value& b, bool case_sensitive);

  // ---- template_builtins.cpp ----
  Value get_member(const Value& object, const Value& property);
  Value call_method(const Value& self, const std::string& name, CallArgs& args);
  void install_globals(Env& globals);
  Value call_global(int which, CallArgs& args);

  // ---- template_json.cpp ----
  // How a value prints in {{ }} (reference toString).
  std::string display(const Value& v);
  // The reference's `x.value.toString()`, used by ~, + and join: floats drop
  // ".0", lists join their items with ",".
  std::string raw_string(const Value& v);
  void to_json(const Value& v, const JsonOptions& o, int depth, bool undefined_as_null, std::string& out);
  // JSON -> value; Json is nlohmann::json or nlohmann::ordered_json.
  template <typename Json>
  static Value from_json(const Json& j, int depth = 0);

  // ---- limits ----
  void check_size(size_t bytes) const {
    if (bytes > opts_.max_output_bytes) fail("chat template output is larger than the limit");
  }
  void count_iterations(int64_t n) {
    iterations_ += n;
    if (iterations_ > opts_.max_loop_iterations) fail("chat template ran more loop iterations than the limit");
  }
  Value make_string(std::string s) const {
    check_size(s.size());
    return Value::string(std::move(s));
  }

  // eval()/exec() frames on the C++ stack. The parser bounds nesting per
  // template, but macro calls multiply it; this bound keeps a render within
  // about 1 MB of stack (measured: 1000 frames need 0.5-1 MB).
  static constexpr int kMaxStackDepth = 1000;

 private:
  struct StackGuard {
    Interp& in;
    explicit StackGuard(Interp& i) : in(i) {
      if (++in.stack_depth_ > kMaxStackDepth) fail("chat template nesting is too deep while rendering");
    }
    ~StackGuard() { --in.stack_depth_; }
  };

  Flow exec(const Stmt& s, const EnvPtr& env, std::string& out);
  Flow exec_for(const Stmt& s, const EnvPtr& env, std::string& out);
  void assign(const Expr& target, const Value& v, const EnvPtr& env);
  Value eval_binary(const Expr& e, const EnvPtr& env);
  Value eval_member(const Expr& e, const EnvPtr& env);
  Value eval_call(const Expr& e, const EnvPtr& env);

  const RenderOptions& opts_;
  int call_depth_ = 0;             // nested macro calls
  int stack_depth_ = 0;            // nested eval()/exec()
  int64_t iterations_ = 0;         // loop iterations and range() items so far
  std::vector<Value> namespaces_;  // every namespace made, emptied at the end
};

// Global functions (template_builtins.cpp).
enum Global { kGlobalNamespace, kGlobalRaise, kGlobalRange, kGlobalStrftime };

}  // namespace tandem::chat::detail
