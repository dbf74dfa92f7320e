// GGUF metadata values: the 13 value types of the format, including arrays
// (typed, possibly nested). Values own their data, so metadata outlives the
// file map and the writer can build it from code.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

std::string_view value_type_name(ValueType type);
bool is_valid_value_type(uint32_t raw);
bool is_integer_type(ValueType type);  // UINT8..INT64 and BOOL
bool is_float_type(ValueType type);    // FLOAT32, FLOAT64
// Bytes of one scalar in the file; 0 for STRING and ARRAY.
size_t scalar_size(ValueType type);

struct Array;

// One metadata value. Integers (and BOOL) live in `i` (UINT64 bit-cast),
// floats in `f`, strings in `str`, arrays in `arr`.
struct Value {
  ValueType type = ValueType::UINT32;
  int64_t i = 0;
  double f = 0;
  std::string str;
  std::shared_ptr<const Array> arr;

  static Value u8(uint8_t v) { return integer(ValueType::UINT8, v); }
  static Value i8(int8_t v) { return integer(ValueType::INT8, v); }
  static Value u16(uint16_t v) { return integer(ValueType::UINT16, v); }
  static Value i16(int16_t v) { return integer(ValueType::INT16, v); }
  static Value u32(uint32_t v) { return integer(ValueType::UINT32, v); }
  static Value i32(int32_t v) { return integer(ValueType::INT32, v); }
  static Value u64(uint64_t v) { return integer(ValueType::UINT64, static_cast<int64_t>(v)); }
  static Value i64(int64_t v) { return integer(ValueType::INT64, v); }
  static Value boolean(bool v) { return integer(ValueType::BOOL, v ? 1 : 0); }
  static Value f32(float v);
  static Value f64(double v);
  static Value string(std::string v);
  static Value array(Array a);
  static Value integer(ValueType type, int64_t v);

  // Typed reads with range checks; nullopt when the type does not fit.
  std::optional<uint64_t> as_uint() const;  // any non-negative integer
  std::optional<int64_t> as_int() const;    // any integer that fits int64
  std::optional<double> as_float() const;   // floats and integers
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;  // nullptr unless STRING
  const Array* as_array() const;         // nullptr unless ARRAY

  // Short human-readable rendering ("[151936 strings]" for big arrays).
  std::string describe(size_t max_items = 8) const;
};

// A typed array. Exactly one of the vectors is used, chosen by elem_type:
// integers/BOOL -> ints, floats -> floats, STRING -> strings, ARRAY -> arrays.
struct Array {
  ValueType elem_type = ValueType::UINT8;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
  std::vector<Value> arrays;

  size_t size() const;
  static Array of_strings(std::vector<std::string> v);
  static Array of_floats(ValueType type, std::vector<double> v);
  static Array of_ints(ValueType type, std::vector<int64_t> v);
};

}  // namespace tandem::gguf
