// Filters (`x | name(args)`) and tests (`x is name`), with the reference's
// dispatch: by filter name first for a few, then by operand type.
//
// `f` and `f()` are the same filter here; the reference accepts some filters
// only in one of the two forms and errors on the other.
#include <algorithm>
#include <cmath>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "chat/template_interp.h"

namespace tandem::chat::detail {
namespace {

bool is_container(const Value& v) { return v.is_object() || v.is_namespace(); }

// `attribute="a.b.0"` as sort and map resolve it.
Value attribute_path(const Value& item, const std::string& path) {
  Value v = item;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (is_container(v)) {
      const Value* found = v.obj().find(part);
      v = found ? *found : Value();
    } else if (v.is_array()) {
      int64_t index = 0;
      if (!js_parse_int(part, &index) || index < 0 || index >= static_cast<int64_t>(v.arr().size())) return Value();
      v = v.arr()[static_cast<size_t>(index)];
    } else {
      return Value();
    }
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

// Key for JS SameValueZero on the values' payloads (the `unique` filter).
std::string same_value_key(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
    case Kind::kNone: return "u";
    case Kind::kBool: return v.as_bool() ? "t" : "f";
    case Kind::kInt:
    case Kind::kFloat: {
      double d = v.as_double();
      std::string key = "#";
      key += v.is_int() ? std::to_string(v.as_int()) : (d == 0 ? "0" : js_number(d));
      return key;
    }
    case Kind::kString: return std::string("s").append(v.str());
    default: return std::string("p").append(std::to_string(reinterpret_cast<uintptr_t>(v.identity())));
  }
}

bool known_test(const std::string& name) {
  static const char* const kTests[] = {"defined", "undefined", "none",     "boolean",  "true",    "false",    "string",
                                       "number",  "integer",   "callable", "iterable", "mapping", "sequence", "lower",
                                       "upper",   "odd",       "even",     "equalto",  "eq"};
  return std::find(std::begin(kTests), std::end(kTests), name) != std::end(kTests);
}

// The reference's error for a filter that does not apply to OPERAND; the
// wording depends on the operand type and on whether the filter was written
// with parentheses.
[[noreturn]] void not_applicable(const Value& operand, const Expr& f) {
  const char* kind = operand.is_array()    ? "ArrayValue"
                     : operand.is_string() ? "StringValue"
                     : operand.is_object() ? "ObjectValue"
                     : f.call_form         ? nullptr
                     : operand.is_number() ? "NumericValue"
                     : operand.is_bool()   ? "BooleanValue"
                                           : nullptr;
  if (kind) fail(std::string("Unknown ") + kind + " filter: " + f.name);
  fail("Cannot apply filter \"" + f.name + "\" to type: " + operand.type_name());
}

// join, int and float are looked up by name before the operand type when
// written with parentheses, which changes the reference's wording.
[[noreturn]] void cannot_apply(const Value& operand, const Expr& f) {
  if (f.call_form) fail("Cannot apply filter \"" + f.name + "\" to type: " + operand.type_name());
  not_applicable(operand, f);
}

}  // namespace

int Interp::compare(const Value& a, const Value& b, bool case_sensitive) {
  if (a.is_none() && b.is_none()) return 0;
  if (a.is_undefined() && b.is_undefined()) return 0;
  if (a.is_none() || b.is_none() || a.is_undefined() || b.is_undefined()) {
    fail(std::string("Cannot compare ") + a.type_name() + " with " + b.type_name());
  }
  const bool an = a.is_number() || a.is_bool(), bn = b.is_number() || b.is_bool();
  if (an && bn) {
    if (a.is_int() && b.is_int()) return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
    double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (std::string(a.type_name()) != b.type_name()) {
    fail(std::string("Cannot compare different types: ") + a.type_name() + " and " + b.type_name());
  }
  if (a.is_string()) {
    if (case_sensitive) return utf16_compare(a.str(), b.str());
    return utf16_compare(to_lower(a.str()), to_lower(b.str()));
  }
  fail(std::string("Cannot compare type: ") + a.type_name());
}

bool Interp::run_test(const std::string& name, const Value& v, const Value* arg_value) {
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_int();
  if (name == "callable") return v.is_function();
  if (name == "iterable") return (v.is_array() && !v.is_tuple()) || v.is_string();
  if (name == "mapping") return v.is_object();
  if (name == "sequence") return v.is_array() || v.is_object() || v.is_string();
  if (name == "lower") return v.is_string() && v.str() == to_lower(v.str());
  if (name == "upper") return v.is_string() && v.str() == to_upper(v.str());
  if (name == "odd" || name == "even") {
    if (!v.is_int()) fail("cannot " + name + " on " + v.type_name());
    bool odd = v.as_int() % 2 != 0;
    return name == "odd" ? odd : !odd;
  }
  if (name == "equalto" || name == "eq") return strict_equals(v, arg_value ? *arg_value : Value());
  fail("Unknown test: " + name);
}

namespace {

// One filter: OPERAND is evaluated, ARGS too; F names it (for errors).
using FilterFn = Value (*)(Interp& in, const Value& operand, CallArgs& args, const Expr& f);
using FilterTable = std::unordered_map<std::string_view, FilterFn>;

Value filter_tojson(Interp& in, const Value& operand, CallArgs& args, const Expr&) {
  JsonOptions o;
  // Keyword arguments only: the reference ignores positional ones here.
  auto kwarg = [&](const char* name) {
    const Value* v = args.kwargs.find(name);
    return v ? *v : Value();
  };
  Value indent = kwarg("indent"), ascii = kwarg("ensure_ascii"), sort = kwarg("sort_keys"), seps = kwarg("separators");
  if (!indent.is_int() && !indent.is_none() && !indent.is_undefined()) fail("If set, indent must be a number");
  if (!ascii.is_bool() && !ascii.is_undefined()) fail("If set, ensure_ascii must be a boolean");
  if (!sort.is_bool() && !sort.is_undefined()) fail("If set, sort_keys must be a boolean");
  if (indent.is_int()) {
    if (indent.as_int() < 0 || indent.as_int() > 64) fail("tojson indent must be between 0 and 64");
    o.indent = static_cast<int>(indent.as_int());
  }
  o.ensure_ascii = ascii.is_bool() && ascii.as_bool();
  o.sort_keys = sort.is_bool() && sort.as_bool();
  if (seps.is_array()) {
    if (seps.arr().size() != 2 || !seps.arr()[0].is_string() || !seps.arr()[1].is_string()) {
      fail("separators must be a tuple of two strings");
    }
    o.custom_separators = true;
    o.item_sep = seps.arr()[0].str();
    o.key_sep = seps.arr()[1].str();
  } else if (!seps.is_none() && !seps.is_undefined()) {
    fail("If set, separators must be a tuple of two strings");
  }
  std::string out;
  in.to_json(operand, o, 0, true, out);
  return Value::string(std::move(out));
}

Value filter_default(Interp&, const Value& operand, CallArgs& args, const Expr&) {
  Value def = args.pos.empty() ? Value::string("") : args.pos[0];
  Value flag = arg(args, 1, "boolean");
  if (!flag.is_bool() && !flag.is_undefined()) fail("`default` filter flag must be a boolean");
  bool use_default = operand.is_undefined() || (flag.is_bool() && flag.as_bool() && !operand.truthy());
  return use_default ? def : operand;
}

Value filter_join(Interp& in, const Value& operand, CallArgs& args, const Expr& f) {
  if (!operand.is_string() && !operand.is_array()) cannot_apply(operand, f);
  Value sep_v = arg(args, 0, "separator");
  if (!sep_v.is_string() && !sep_v.is_undefined()) fail("separator must be a string");
  const std::string sep = sep_v.is_string() ? sep_v.str() : "";
  std::string out;
  if (operand.is_string()) {
    bool first = true;
    for (std::string_view c : code_points(operand.str())) {
      if (!first) out += sep;
      first = false;
      out += c;
    }
  } else {
    bool first = true;
    for (const Value& item : operand.arr()) {
      if (!first) out += sep;
      first = false;
      if (!item.is_none() && !item.is_undefined()) out += in.raw_string(item);  // JS join: null -> ""
      in.check_size(out.size());
    }
  }
  return in.make_string(std::move(out));
}

// `int` and `float`.
Value filter_number(Interp&, const Value& operand, CallArgs& args, const Expr& f) {
  const bool to_int = f.name == "int";
  Value def = arg(args, 0, "default");
  if (def.is_undefined()) def = to_int ? Value::integer(0) : Value::number(0);
  if (operand.is_string()) {
    if (to_int) {
      int64_t i = 0;
      return js_parse_int(operand.str(), &i) ? Value::integer(i) : def;
    }
    double d = 0;
    return js_parse_float(operand.str(), &d) ? Value::number(d) : def;
  }
  if (operand.is_int()) return to_int ? operand : Value::number(operand.as_double());
  if (operand.is_float()) {
    if (!to_int) return operand;
    double d = std::floor(operand.as_float());
    if (!(std::fabs(d) < 9.2e18)) fail("int filter: value out of range");
    return Value::integer(static_cast<int64_t>(d));
  }
  if (operand.is_bool()) return to_int ? Value::integer(operand.as_bool()) : Value::number(operand.as_bool());
  cannot_apply(operand, f);
}

Value filter_array_string(Interp& in, const Value& operand, CallArgs&, const Expr&) {
  std::string out;
  in.to_json(operand, JsonOptions{}, 0, false, out);
  return Value::string(std::move(out));
}

Value filter_unique(Interp&, const Value& operand, CallArgs&, const Expr&) {
  std::unordered_set<std::string> seen;
  Array out;
  for (const Value& item : operand.arr()) {
    if (seen.insert(same_value_key(item)).second) out.push_back(item);
  }
  return Value::array(std::move(out));
}

Value filter_sort(Interp&, const Value& operand, CallArgs& args, const Expr&) {
  Value rev = arg(args, 0, "reverse"), cs = arg(args, 1, "case_sensitive"), attr = arg(args, 2, "attribute");
  if (!rev.is_bool() && !rev.is_undefined()) fail("reverse must be a boolean");
  if (!cs.is_bool() && !cs.is_undefined()) fail("case_sensitive must be a boolean");
  if (!attr.is_string() && !attr.is_int() && !attr.is_none() && !attr.is_undefined()) {
    fail("attribute must be a string, integer, or null");
  }
  const bool reverse = rev.is_bool() && rev.as_bool(), case_sensitive = cs.is_bool() && cs.as_bool();
  const bool by_attr = attr.is_string() || attr.is_int();
  const std::string path = attr.is_string() ? attr.str() : attr.is_int() ? std::to_string(attr.as_int()) : "";
  Array out(operand.arr());
  std::stable_sort(out.begin(), out.end(), [&](const Value& a, const Value& b) {
    int c = by_attr ? Interp::compare(attribute_path(a, path), attribute_path(b, path), case_sensitive)
                    : Interp::compare(a, b, case_sensitive);
    return reverse ? c > 0 : c < 0;
  });
  return Value::array(std::move(out));
}

Value filter_map(Interp&, const Value& operand, CallArgs& args, const Expr&) {
  const Value* attr = args.kwargs.find("attribute");
  if (!attr) fail("`map` expressions without `attribute` set are not currently supported.");
  if (!attr->is_string()) fail("attribute must be a string");
  const Value* def = args.kwargs.find("default");
  Array out;
  for (const Value& item : operand.arr()) {
    if (!is_container(item)) fail("items in map must be an object");
    Value v = attribute_path(item, attr->str());
    out.push_back(v.is_undefined() && def ? *def : v);
  }
  return Value::array(std::move(out));
}

Value filter_indent(Interp& in, const Value& operand, CallArgs& args, const Expr&) {
  const std::string& s = operand.str();
  Value width = arg(args, 0, "width");
  if (!width.is_int() && !width.is_undefined()) fail("width must be a number");
  const int64_t w = width.is_int() ? width.as_int() : 4;
  if (w < 0 || w > 1024) fail("indent width must be between 0 and 1024");
  const bool first = arg(args, 1, "first").truthy(), blank = arg(args, 2, "blank").truthy();
  const std::string pad(static_cast<size_t>(w), ' ');
  in.check_size(s.size() + (static_cast<size_t>(std::count(s.begin(), s.end(), '\n')) + 1) * pad.size());
  std::string out;
  size_t start = 0, line = 0;
  while (true) {
    size_t nl = s.find('\n', start);
    std::string_view piece =
        std::string_view(s).substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (line > 0) out += '\n';
    if (!((!first && line == 0) || (!blank && piece.empty()))) out += pad;
    out += piece;
    if (nl == std::string::npos) break;
    start = nl + 1;
    ++line;
  }
  return Value::string(std::move(out));
}

Value filter_abs(Interp&, const Value& operand, CallArgs&, const Expr&) {
  if (operand.is_float()) return Value::number(std::fabs(operand.as_float()));
  if (operand.as_int() == INT64_MIN) fail("integer overflow in chat template arithmetic");
  return Value::integer(operand.as_int() < 0 ? -operand.as_int() : operand.as_int());
}

Value same_operand(Interp&, const Value& operand, CallArgs&, const Expr&) { return operand; }

Value length_of(Interp&, const Value& v, CallArgs&, const Expr&) {
  return Value::integer(v.is_string()  ? utf16_length(v.str())
                        : v.is_array() ? static_cast<int64_t>(v.arr().size())
                                       : static_cast<int64_t>(v.obj().size()));
}

// A filter that is the method of the same name ("x" | replace(...) == "x".replace(...)).
Value as_method(Interp& in, const Value& operand, CallArgs& args, const Expr& f) {
  return in.call_method(operand, f.name, args);
}

// Filters looked up by name before the operand type, then one table per
// operand type: the reference's dispatch order, so its error for a filter
// that exists for other types (not_applicable) is kept.
const FilterTable& filters_by_name() {
  static const FilterTable t = {
      {"tojson", filter_tojson}, {"default", filter_default}, {"join", filter_join},
      {"int", filter_number},    {"float", filter_number},
  };
  return t;
}

const FilterTable& array_filters() {
  static const FilterTable t = {
      {"list", same_operand},
      {"first",
       [](Interp&, const Value& v, CallArgs&, const Expr&) { return v.arr().empty() ? Value() : v.arr().front(); }},
      {"last",
       [](Interp&, const Value& v, CallArgs&, const Expr&) { return v.arr().empty() ? Value() : v.arr().back(); }},
      {"length", length_of},
      {"reverse", [](Interp&, const Value& v, CallArgs&,
                     const Expr&) { return Value::array(Array(v.arr().rbegin(), v.arr().rend())); }},
      {"string", filter_array_string},
      {"unique", filter_unique},
      {"sort", filter_sort},
      {"map", filter_map},
  };
  return t;
}

const FilterTable& string_filters() {
  static const FilterTable t = {
      {"length", length_of},
      {"upper", [](Interp&, const Value& v, CallArgs&, const Expr&) { return Value::string(to_upper(v.str())); }},
      {"lower", [](Interp&, const Value& v, CallArgs&, const Expr&) { return Value::string(to_lower(v.str())); }},
      {"title", [](Interp&, const Value& v, CallArgs&, const Expr&) { return Value::string(title_case(v.str())); }},
      {"capitalize",
       [](Interp&, const Value& v, CallArgs&, const Expr&) { return Value::string(capitalize(v.str())); }},
      {"trim",
       [](Interp&, const Value& v, CallArgs&, const Expr&) { return Value::string(std::string(js_trim(v.str()))); }},
      {"string", same_operand},
      {"replace", as_method},
      {"indent", filter_indent},
  };
  return t;
}

const FilterTable& number_filters() {
  static const FilterTable t = {
      {"abs", filter_abs},
      {"string", [](Interp& in, const Value& v, CallArgs&, const Expr&) { return Value::string(in.display(v)); }},
  };
  return t;
}

const FilterTable& object_filters() {
  static const FilterTable t = {
      {"length", length_of}, {"items", as_method},  {"get", as_method},
      {"keys", as_method},   {"values", as_method}, {"dictsort", as_method},
  };
  return t;
}

const FilterTable& bool_filters() {
  static const FilterTable t = {
      {"bool", same_operand},
      {"string",
       [](Interp&, const Value& v, CallArgs&, const Expr&) { return Value::string(v.as_bool() ? "true" : "false"); }},
  };
  return t;
}

const FilterTable* filters_for(const Value& operand) {
  if (operand.is_array()) return &array_filters();
  if (operand.is_string()) return &string_filters();
  if (operand.is_number()) return &number_filters();
  if (operand.is_object()) return &object_filters();
  if (operand.is_bool()) return &bool_filters();
  return nullptr;
}

FilterFn find_filter(const FilterTable& t, const std::string& name) {
  auto it = t.find(name);
  return it == t.end() ? nullptr : it->second;
}

}  // namespace

// selectattr / rejectattr check their arguments before evaluating them.
Value Interp::select_attr(const Value& operand, const Expr& f, const EnvPtr& env) {
  const std::string& name = f.name;
  if (!operand.is_array()) not_applicable(operand, f);
  for (const Value& item : operand.arr()) {
    if (!is_container(item)) fail("`" + name + "` can only be applied to array of objects");
  }
  for (const auto& a : f.args) {
    if (!a->string_literal) fail("arguments of `" + name + "` must be strings");
  }
  CallArgs args = eval_args(f.args, env);
  Value attr = arg(args, 0, ""), test = arg(args, 1, ""), value = arg(args, 2, "");
  if (test.is_string() && !known_test(test.str())) fail("Unknown test: " + test.str());
  const bool select = name == "selectattr";
  Array out;
  for (const Value& item : operand.arr()) {
    const Value* a = attr.is_string() ? item.obj().find(attr.str()) : nullptr;
    bool r = a ? (test.is_string() ? run_test(test.str(), *a, &value) : a->truthy()) : false;
    if (r == select) out.push_back(item);
  }
  return Value::array(std::move(out));
}

Value Interp::apply_filter(const Value& operand, const Expr& f, const EnvPtr& env) {
  if (f.name == "safe") return operand;
  if (f.name == "selectattr" || f.name == "rejectattr") return select_attr(operand, f, env);
  CallArgs args = eval_args(f.args, env);
  if (FilterFn fn = find_filter(filters_by_name(), f.name)) return fn(*this, operand, args, f);
  if (const FilterTable* t = filters_for(operand)) {
    if (FilterFn fn = find_filter(*t, f.name)) return fn(*this, operand, args, f);
  }
  not_applicable(operand, f);
}

}  // namespace tandem::chat::detail
