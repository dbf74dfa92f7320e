// Runtime values of the chat-template interpreter (internal to src/chat).
//
// The kinds mirror @huggingface/jinja's runtime values, because rendering must
// match it byte for byte: undefined and none are distinct, integers and floats
// are distinct (1.0 prints "1.0", 1 prints "1"), arrays carry a tuple flag
// (tuples cannot be serialized there), objects keep insertion order.
//
// Strings, arrays and objects are immutable and shared (copying a Value copies
// a pointer). A namespace is the one mutable container: `{% set ns.x = 1 %}`
// writes through every copy. Equality of containers is identity, as in the
// reference (`[] == []` is false there).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tandem::chat::detail {

class Value;
struct Callable;  // template_interp.h

using Array = std::vector<Value>;

// String-keyed map that keeps insertion order (as JS Map and Python dict do).
class Object {
 public:
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const Value* find(std::string_view key) const;
  // Inserts or overwrites; an overwritten key keeps its position.
  void set(std::string key, Value value);
  const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, Value>> entries_;
  std::unordered_map<std::string, size_t> index_;  // key -> position in entries_
};

enum class Kind : uint8_t { kUndefined, kNone, kBool, kInt, kFloat, kString, kArray, kObject, kNamespace, kFunction };

class Value {
 public:
  Value() = default;  // undefined
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double f);  // a float
  static Value string(std::string s);
  static Value array(Array items, bool tuple = false);
  static Value object(Object obj);
  static Value ns(Object attrs);  // a namespace
  static Value function(std::shared_ptr<const Callable> fn);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_array() const { return kind_ == Kind::kArray; }  // tuples included
  bool is_tuple() const { return kind_ == Kind::kArray && tuple_; }
  bool is_object() const { return kind_ == Kind::kObject; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_function() const { return kind_ == Kind::kFunction; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return i_; }
  double as_float() const { return f_; }
  double as_double() const;  // int, float or bool as a double
  const std::string& str() const { return *static_cast<const std::string*>(ptr_.get()); }
  const Array& arr() const { return *static_cast<const Array*>(ptr_.get()); }
  // The attributes of an object or a namespace.
  const Object& obj() const { return *static_cast<const Object*>(ptr_.get()); }
  Object& ns_attrs() const { return *static_cast<Object*>(ptr_.get()); }  // namespace only
  const Callable& fn() const { return *static_cast<const Callable*>(ptr_.get()); }
  // Identity of the shared payload (containers and functions).
  const void* identity() const { return ptr_.get(); }

  // Python truthiness, as the reference defines it (empty containers are
  // false, a namespace is always true).
  bool truthy() const;
  // The reference's type name, used in error messages ("IntegerValue").
  const char* type_name() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool tuple_ = false;
  union {
    bool b_;
    int64_t i_ = 0;
    double f_;
  };
  std::shared_ptr<void> ptr_;  // string, array, object, namespace or callable
};

// ---- text helpers shared by the interpreter (template_text.cpp) ----

// JavaScript's whitespace set (String.prototype.trim, /\s/): ASCII
// whitespace, NBSP, U+1680, U+2000..U+200A, U+2028/9, U+202F, U+205F, U+3000,
// U+FEFF.
bool is_js_space(uint32_t cp);
// Byte length of the JS whitespace run at the start / before the end of S.
size_t js_space_prefix(std::string_view s);
size_t js_space_suffix(std::string_view s);
std::string_view js_trim(std::string_view s);
std::string_view js_trim_start(std::string_view s);
std::string_view js_trim_end(std::string_view s);

// Splits S into code points (invalid bytes become single-byte pieces).
std::vector<std::string_view> code_points(std::string_view s);
// Length in UTF-16 code units, which is what the reference's `length` counts.
int64_t utf16_length(std::string_view s);
// Compares in UTF-16 code-unit order (JS `<` on strings).
int utf16_compare(std::string_view a, std::string_view b);
std::string to_upper(std::string_view s);
std::string to_lower(std::string_view s);
// Upper-cases a word character that starts a word (ASCII \b\w, as the
// reference's title() does; the rest of each word is left as is).
std::string title_case(std::string_view s);
// First character upper-cased, the rest unchanged (the reference's capitalize).
std::string capitalize(std::string_view s);

// JavaScript Number.prototype.toString for a double ("0.1", "1e-7", "1e+21").
std::string js_number(double d);
// How the reference prints a float: integral values keep ".0" ("2.0", "-0.0").
std::string float_repr(double d);
// JS ToNumber for a string (loose equality "1" == 1); NaN when not numeric.
double js_string_to_number(std::string_view s);
// parseInt(s, 10) / parseFloat(s): false where JS gives NaN (or on int64 overflow).
bool js_parse_int(std::string_view s, int64_t* out);
bool js_parse_float(std::string_view s, double* out);

// JSON string literal exactly as JSON.stringify writes it (non-ASCII kept).
void append_json_string(std::string& out, std::string_view s);
// Escapes every UTF-16 unit in [0x7f, 0xffff] as \uXXXX (lowercase hex).
std::string make_ascii_safe(std::string_view s);

}  // namespace tandem::chat::detail
