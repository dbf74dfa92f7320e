#include "gguf/value.h"

#include <fmt/format.h>

#include <limits>

namespace tandem::gguf {

std::string_view value_type_name(ValueType type) {
  switch (type) {
    case ValueType::UINT8: return "u8";
    case ValueType::INT8: return "i8";
    case ValueType::UINT16: return "u16";
    case ValueType::INT16: return "i16";
    case ValueType::UINT32: return "u32";
    case ValueType::INT32: return "i32";
    case ValueType::FLOAT32: return "f32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::UINT64: return "u64";
    case ValueType::INT64: return "i64";
    case ValueType::FLOAT64: return "f64";
  }
  return "?";
}

bool is_valid_value_type(uint32_t raw) { return raw <= static_cast<uint32_t>(ValueType::FLOAT64); }

bool is_integer_type(ValueType type) {
  return type != ValueType::FLOAT32 && type != ValueType::FLOAT64 && type != ValueType::STRING &&
         type != ValueType::ARRAY;
}

bool is_float_type(ValueType type) { return type == ValueType::FLOAT32 || type == ValueType::FLOAT64; }

size_t scalar_size(ValueType type) {
  switch (type) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::BOOL: return 1;
    case ValueType::UINT16:
    case ValueType::INT16: return 2;
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::FLOAT32: return 4;
    case ValueType::UINT64:
    case ValueType::INT64:
    case ValueType::FLOAT64: return 8;
    case ValueType::STRING:
    case ValueType::ARRAY: return 0;
  }
  return 0;
}

Value Value::integer(ValueType type, int64_t v) {
  Value out;
  out.type = type;
  out.i = v;
  return out;
}

Value Value::f32(float v) {
  Value out;
  out.type = ValueType::FLOAT32;
  out.f = v;
  return out;
}

Value Value::f64(double v) {
  Value out;
  out.type = ValueType::FLOAT64;
  out.f = v;
  return out;
}

Value Value::string(std::string v) {
  Value out;
  out.type = ValueType::STRING;
  out.str = std::move(v);
  return out;
}

Value Value::array(Array a) {
  Value out;
  out.type = ValueType::ARRAY;
  out.arr = std::make_shared<const Array>(std::move(a));
  return out;
}

std::optional<uint64_t> Value::as_uint() const {
  if (!is_integer_type(type)) return std::nullopt;
  if (type == ValueType::UINT64) return static_cast<uint64_t>(i);
  if (i < 0) return std::nullopt;
  return static_cast<uint64_t>(i);
}

std::optional<int64_t> Value::as_int() const {
  if (!is_integer_type(type)) return std::nullopt;
  if (type == ValueType::UINT64 && i < 0) return std::nullopt;  // above INT64_MAX
  return i;
}

std::optional<double> Value::as_float() const {
  if (is_float_type(type)) return f;
  if (type == ValueType::UINT64) return static_cast<double>(static_cast<uint64_t>(i));
  if (is_integer_type(type)) return static_cast<double>(i);
  return std::nullopt;
}

std::optional<bool> Value::as_bool() const {
  if (type == ValueType::BOOL) return i != 0;
  return std::nullopt;
}

const std::string* Value::as_string() const { return type == ValueType::STRING ? &str : nullptr; }

const Array* Value::as_array() const { return type == ValueType::ARRAY ? arr.get() : nullptr; }

std::string Value::describe(size_t max_items) const {
  switch (type) {
    case ValueType::STRING: {
      std::string s = str.size() > 80 ? str.substr(0, 77) + "..." : str;
      return fmt::format("\"{}\"", s);
    }
    case ValueType::FLOAT32:
    case ValueType::FLOAT64: return fmt::format("{}", f);
    case ValueType::BOOL: return i ? "true" : "false";
    case ValueType::UINT64: return fmt::format("{}", static_cast<uint64_t>(i));
    case ValueType::ARRAY: {
      const Array& a = *arr;
      if (a.size() > max_items) {
        return fmt::format("[{} {}]", a.size(),
                           a.elem_type == ValueType::STRING ? "strings" : std::string(value_type_name(a.elem_type)));
      }
      std::string out = "[";
      for (size_t k = 0; k < a.size(); ++k) {
        if (k) out += ", ";
        switch (a.elem_type) {
          case ValueType::STRING: out += fmt::format("\"{}\"", a.strings[k]); break;
          case ValueType::FLOAT32:
          case ValueType::FLOAT64: out += fmt::format("{}", a.floats[k]); break;
          case ValueType::ARRAY: out += a.arrays[k].describe(max_items); break;
          case ValueType::UINT64: out += fmt::format("{}", static_cast<uint64_t>(a.ints[k])); break;
          default: out += fmt::format("{}", a.ints[k]); break;
        }
      }
      return out + "]";
    }
    default: return fmt::format("{}", i);
  }
}

size_t Array::size() const {
  switch (elem_type) {
    case ValueType::STRING: return strings.size();
    case ValueType::ARRAY: return arrays.size();
    case ValueType::FLOAT32:
    case ValueType::FLOAT64: return floats.size();
    default: return ints.size();
  }
}

Array Array::of_strings(std::vector<std::string> v) {
  Array a;
  a.elem_type = ValueType::STRING;
  a.strings = std::move(v);
  return a;
}

Array Array::of_floats(ValueType type, std::vector<double> v) {
  Array a;
  a.elem_type = type;
  a.floats = std::move(v);
  return a;
}

Array Array::of_ints(ValueType type, std::vector<int64_t> v) {
  Array a;
  a.elem_type = type;
  a.ints = std::move(v);
  return a;
}

}  // namespace tandem::gguf
