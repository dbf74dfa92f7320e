// Attribute access, string and dict methods, and the global functions
// (namespace, raise_exception, range, strftime_now).
#include <algorithm>
#include <ctime>
#include <string_view>
#include <unordered_map>

#include "chat/template_interp.h"

namespace tandem::chat::detail {
namespace {

struct GlobalFn : Callable {
  int which;
  explicit GlobalFn(int w) : which(w) {}
  Value call(Interp& in, CallArgs& args, const EnvPtr&) const override { return in.call_global(which, args); }
};

// A method bound to its receiver: "abc".upper, message.get.
struct MethodFn : Callable {
  Value self;
  std::string name;
  MethodFn(Value s, std::string n) : self(std::move(s)), name(std::move(n)) {}
  Value call(Interp& in, CallArgs& args, const EnvPtr&) const override { return in.call_method(self, name, args); }
};

bool starts_or_ends(const std::string& s, const std::string& fix, bool start) {
  if (fix.size() > s.size()) return false;
  return start ? s.compare(0, fix.size(), fix) == 0 : s.compare(s.size() - fix.size(), fix.size(), fix) == 0;
}

// JS String.prototype.split on a non-empty separator.
std::vector<std::string> split_all(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    if (at == std::string::npos) break;
    out.push_back(s.substr(start, at - start));
    start = at + sep.size();
  }
  out.push_back(s.substr(start));
  return out;
}

std::string pad2(int n) { return fmt::format("{:02d}", n); }

}  // namespace

namespace {

// One method of a string or a dict: SELF is the receiver, NAME the method.
using MethodImpl = Value (*)(Interp& in, const Value& self, const std::string& name, CallArgs& args);
using MethodTable = std::unordered_map<std::string_view, MethodImpl>;

Value method_starts_or_ends(Interp&, const Value& self, const std::string& name, CallArgs& args) {
  const std::string& s = self.str();
  const bool start = name == "startswith";
  if (args.pos.empty()) fail(name + "() requires at least one argument");
  const Value& pattern = args.pos[0];
  if (pattern.is_string()) return Value::boolean(starts_or_ends(s, pattern.str(), start));
  if (pattern.is_array()) {
    for (const Value& item : pattern.arr()) {
      if (!item.is_string()) fail(name + "() tuple elements must be strings");
      if (starts_or_ends(s, item.str(), start)) return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  fail(name + "() argument must be a string or tuple of strings");
}

Value method_split(Interp&, const Value& self, const std::string&, CallArgs& args) {
  const std::string& s = self.str();
  Value sep = arg(args, 0, "sep");
  Value max_v = arg(args, 1, "maxsplit");
  if (!sep.is_string() && !sep.is_none() && !sep.is_undefined()) fail("sep argument must be a string or null");
  if (!max_v.is_int() && !max_v.is_undefined()) fail("maxsplit argument must be a number");
  const int64_t maxsplit = max_v.is_int() ? max_v.as_int() : -1;
  Array out;
  if (!sep.is_string()) {
    // Python's split(): runs of whitespace, leading whitespace ignored.
    std::string_view text = js_trim_start(s);
    size_t pos = 0;
    while (pos < text.size()) {
      size_t start = pos;
      while (pos < text.size() && js_space_prefix(text.substr(pos)) == 0) {
        size_t len = 1;
        while (pos + len < text.size() && (static_cast<uint8_t>(text[pos + len]) & 0xC0) == 0x80) ++len;
        pos += len;
      }
      std::string_view word = text.substr(start, pos - start);
      if (maxsplit != -1 && static_cast<int64_t>(out.size()) >= maxsplit) {
        out.push_back(Value::string(std::string(text.substr(start))));
        break;
      }
      out.push_back(Value::string(std::string(word)));
      pos += js_space_prefix(text.substr(pos));
    }
    return Value::array(std::move(out));
  }
  if (sep.str().empty()) fail("empty separator");
  std::vector<std::string> parts = split_all(s, sep.str());
  if (maxsplit != -1 && static_cast<int64_t>(parts.size()) > maxsplit) {
    size_t keep = static_cast<size_t>(std::max<int64_t>(maxsplit, 0));
    std::string tail;
    for (size_t i = keep; i < parts.size(); ++i) tail += (i > keep ? sep.str() : "") + parts[i];
    parts.resize(keep);
    parts.push_back(tail);
  }
  for (auto& p : parts) out.push_back(Value::string(std::move(p)));
  return Value::array(std::move(out));
}

Value method_replace(Interp& in, const Value& self, const std::string&, CallArgs& args) {
  const std::string& s = self.str();
  if (args.pos.size() < 2) fail("replace() requires at least two arguments");
  const Value &from = args.pos[0], &to = args.pos[1];
  if (!from.is_string() || !to.is_string()) fail("replace() arguments must be strings");
  Value count_v = arg(args, 2, "count");
  if (!count_v.is_int() && !count_v.is_none() && !count_v.is_undefined()) {
    fail("replace() count argument must be a number or null");
  }
  int64_t remaining = (count_v.is_int() && count_v.as_int() >= 0) ? count_v.as_int() : INT64_MAX;
  const std::string &old_s = from.str(), &new_s = to.str();
  std::string out;
  if (old_s.empty()) {
    // An insertion before every character and at the end ("ab" -> "-a-b-").
    std::vector<std::string_view> chars = code_points(s);
    in.check_size(s.size() + (chars.size() + 1) * new_s.size());
    for (std::string_view c : chars) {
      if (remaining > 0) out += new_s, --remaining;
      out += c;
    }
    if (remaining > 0) out += new_s;
    return Value::string(std::move(out));
  }
  size_t start = 0;
  while (remaining > 0) {
    size_t at = s.find(old_s, start);
    if (at == std::string::npos) break;
    out.append(s, start, at - start);
    out += new_s;
    in.check_size(out.size());
    start = at + old_s.size();
    --remaining;
  }
  out.append(s, start, std::string::npos);
  return in.make_string(std::move(out));
}

Value method_get(Interp&, const Value& self, const std::string&, CallArgs& args) {
  const Object& obj = self.obj();
  Value key = arg(args, 0, "key");
  if (!key.is_string()) fail(std::string("Object key must be a string: got ") + key.type_name());
  if (const Value* v = obj.find(key.str())) return *v;
  Value def = arg(args, 1, "default");
  return def.is_undefined() ? Value::none() : def;
}

// items(), keys() and values().
Value method_entries(Interp&, const Value& self, const std::string& name, CallArgs&) {
  Array out;
  for (const auto& [k, v] : self.obj().entries()) {
    if (name == "items") {
      out.push_back(Value::array({Value::string(k), v}));
    } else {
      out.push_back(name == "keys" ? Value::string(k) : v);
    }
  }
  return Value::array(std::move(out));
}

Value method_dictsort(Interp&, const Value& self, const std::string&, CallArgs& args) {
  const Object& obj = self.obj();
  Value cs = arg(args, 0, "case_sensitive"), by = arg(args, 1, "by"), rev = arg(args, 2, "reverse");
  if (!cs.is_undefined() && !cs.is_bool()) fail("case_sensitive must be a boolean");
  if (!by.is_undefined() && !by.is_string()) fail("by must be a string");
  if (by.is_string() && by.str() != "key" && by.str() != "value") fail("by must be either 'key' or 'value'");
  if (!rev.is_undefined() && !rev.is_bool()) fail("reverse must be a boolean");
  const bool case_sensitive = cs.is_bool() && cs.as_bool();
  const size_t index = (by.is_string() && by.str() == "value") ? 1 : 0;
  const bool reverse = rev.is_bool() && rev.as_bool();
  Array items;
  for (const auto& [k, v] : obj.entries()) items.push_back(Value::array({Value::string(k), v}));
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    int c = Interp::compare(a.arr()[index], b.arr()[index], case_sensitive);
    return reverse ? c > 0 : c < 0;
  });
  return Value::array(std::move(items));
}

// strip/lstrip/rstrip ignore a chars argument and trim all whitespace, as
// the reference does.
const MethodTable& string_methods() {
  static const MethodTable t = {
      {"upper",
       [](Interp&, const Value& v, const std::string&, CallArgs&) { return Value::string(to_upper(v.str())); }},
      {"lower",
       [](Interp&, const Value& v, const std::string&, CallArgs&) { return Value::string(to_lower(v.str())); }},
      {"strip", [](Interp&, const Value& v, const std::string&,
                   CallArgs&) { return Value::string(std::string(js_trim(v.str()))); }},
      {"lstrip", [](Interp&, const Value& v, const std::string&,
                    CallArgs&) { return Value::string(std::string(js_trim_start(v.str()))); }},
      {"rstrip", [](Interp&, const Value& v, const std::string&,
                    CallArgs&) { return Value::string(std::string(js_trim_end(v.str()))); }},
      {"title",
       [](Interp&, const Value& v, const std::string&, CallArgs&) { return Value::string(title_case(v.str())); }},
      {"capitalize",
       [](Interp&, const Value& v, const std::string&, CallArgs&) { return Value::string(capitalize(v.str())); }},
      {"startswith", method_starts_or_ends},
      {"endswith", method_starts_or_ends},
      {"split", method_split},
      {"replace", method_replace},
  };
  return t;
}

const MethodTable& object_methods() {
  static const MethodTable t = {
      {"get", method_get},        {"items", method_entries},     {"keys", method_entries},
      {"values", method_entries}, {"dictsort", method_dictsort},
  };
  return t;
}

const MethodTable* methods_of(const Value& self) {
  if (self.is_string()) return &string_methods();
  if (self.is_object()) return &object_methods();
  return nullptr;
}

}  // namespace

Value Interp::get_member(const Value& object, const Value& property) {
  if (object.is_object() || object.is_namespace()) {
    if (!property.is_string()) fail(std::string("Cannot access property with non-string: got ") + property.type_name());
    if (const Value* v = object.obj().find(property.str())) return *v;
    if (object.is_object() && object_methods().contains(property.str())) {
      return Value::function(std::make_shared<MethodFn>(object, property.str()));
    }
    return Value();
  }
  if (object.is_array() || object.is_string()) {
    if (property.is_int()) {
      if (object.is_array()) {
        const Array& items = object.arr();
        int64_t n = static_cast<int64_t>(items.size()), i = property.as_int();
        if (i < 0) i += n;
        return (i >= 0 && i < n) ? items[static_cast<size_t>(i)] : Value();
      }
      std::vector<std::string_view> chars = code_points(object.str());
      int64_t n = static_cast<int64_t>(chars.size()), i = property.as_int();
      if (i < 0) i += n;
      return (i >= 0 && i < n) ? Value::string(std::string(chars[static_cast<size_t>(i)])) : Value();
    }
    if (!property.is_string()) {
      fail(std::string("Cannot access property with non-string/non-number: got ") + property.type_name());
    }
    const std::string& name = property.str();
    if (name == "length") {
      return Value::integer(object.is_array() ? static_cast<int64_t>(object.arr().size()) : utf16_length(object.str()));
    }
    if (object.is_string() && string_methods().contains(name))
      return Value::function(std::make_shared<MethodFn>(object, name));
    return Value();
  }
  if (!property.is_string()) fail(std::string("Cannot access property with non-string: got ") + property.type_name());
  return Value();  // none.x, undefined.x, 1.x: undefined, as in the reference
}

Value Interp::call_method(const Value& self, const std::string& name, CallArgs& args) {
  if (const MethodTable* t = methods_of(self)) {
    if (auto it = t->find(name); it != t->end()) return it->second(*this, self, name, args);
  }
  fail("unknown method '" + name + "'");
}

void Interp::install_globals(Env& g) {
  g.vars["true"] = Value::boolean(true);
  g.vars["false"] = Value::boolean(false);
  g.vars["none"] = Value::none();
  g.vars["True"] = Value::boolean(true);
  g.vars["False"] = Value::boolean(false);
  g.vars["None"] = Value::none();
  g.vars["namespace"] = Value::function(std::make_shared<GlobalFn>(kGlobalNamespace));
  g.vars["raise_exception"] = Value::function(std::make_shared<GlobalFn>(kGlobalRaise));
  g.vars["range"] = Value::function(std::make_shared<GlobalFn>(kGlobalRange));
  g.vars["strftime_now"] = Value::function(std::make_shared<GlobalFn>(kGlobalStrftime));
}

Value Interp::call_global(int which, CallArgs& args) {
  switch (which) {
    case kGlobalNamespace: {
      if (args.pos.size() > 1) fail(fmt::format("namespace expected at most 1 argument, got {}", args.pos.size()));
      Object attrs;
      if (args.pos.size() == 1) {
        const Value& src = args.pos[0];
        if (src.is_object()) {
          for (const auto& [k, v] : src.obj().entries()) attrs.set(k, v);
        } else if (src.is_array()) {
          for (const Value& pair : src.arr()) {
            Value key, value;
            if (pair.is_array() && pair.arr().size() == 2) {
              key = pair.arr()[0];
              value = pair.arr()[1];
            } else if (pair.is_string() && code_points(pair.str()).size() == 2) {
              auto chars = code_points(pair.str());
              key = Value::string(std::string(chars[0]));
              value = Value::string(std::string(chars[1]));
            } else {
              fail("namespace expected an object or an iterable of [key, value] pairs");
            }
            if (!key.is_string()) fail("namespace keys must be strings");
            attrs.set(key.str(), value);
          }
        } else {
          fail(std::string("'") + src.type_name() + "' object is not iterable");
        }
      }
      for (const auto& [k, v] : args.kwargs.entries()) attrs.set(k, v);
      Value ns = Value::ns(std::move(attrs));
      namespaces_.push_back(ns);
      return ns;
    }
    case kGlobalRaise: {
      // The message is exactly the template's text: the server shows it.
      if (args.pos.empty() || args.pos[0].is_none() || args.pos[0].is_undefined()) fail("");
      const Value& m = args.pos[0];
      fail(m.is_string()                                            ? m.str()
           : (m.is_object() || m.is_namespace() || m.is_function()) ? display(m)
                                                                    : raw_string(m));
    }
    case kGlobalRange: {
      for (const Value& v : args.pos) {
        if (!v.is_int()) fail("range() arguments must be integers");
      }
      if (args.pos.empty() || args.pos.size() > 3) fail("range() takes 1 to 3 arguments");
      int64_t start = 0, stop = 0, step = 1;
      if (args.pos.size() == 1) {
        stop = args.pos[0].as_int();
      } else {
        start = args.pos[0].as_int();
        stop = args.pos[1].as_int();
        if (args.pos.size() == 3) step = args.pos[2].as_int();
      }
      if (step == 0) fail("range() step must not be zero");
      Array out;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        count_iterations(1);
        out.push_back(Value::integer(i));
      }
      return Value::array(std::move(out));
    }
    case kGlobalStrftime: {
      if (args.pos.empty() || !args.pos[0].is_string()) fail("strftime_now() expects a format string");
      std::tm t{};
      if (opts_.now) {
        t = opts_.now();
      } else {
        std::time_t now = std::time(nullptr);
        localtime_r(&now, &t);
      }
      static const char* const kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                            "July",    "August",   "September", "October", "November", "December"};
      const std::string& f = args.pos[0].str();
      const int month = std::clamp(t.tm_mon, 0, 11);
      std::string out;
      for (size_t i = 0; i < f.size(); ++i) {
        if (f[i] != '%' || i + 1 >= f.size()) {
          out += f[i];
          continue;
        }
        switch (f[i + 1]) {
          case 'Y': out += std::to_string(t.tm_year + 1900); break;
          case 'm': out += pad2(t.tm_mon + 1); break;
          case 'd': out += pad2(t.tm_mday); break;
          case 'H': out += pad2(t.tm_hour); break;
          case 'M': out += pad2(t.tm_min); break;
          case 'b': out += std::string(kMonths[month]).substr(0, 3); break;
          case 'B': out += kMonths[month]; break;
          case '%': out += '%'; break;
          default:  // other directives stay as written, as in the reference
            out += '%';
            continue;
        }
        ++i;
      }
      return Value::string(std::move(out));
    }
  }
  fail("unknown global function");
}

}  // namespace tandem::chat::detail
