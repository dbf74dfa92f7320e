// Small GGUF files built in memory for reader, writer and fuzz tests.
#pragma once

#include "gguf/quant.h"
#include "gguf/writer.h"

#include <cmath>
#include <vector>

namespace tandem::gguf::test {

// A file with every metadata value type (nested arrays included) and a few
// tensors of different types and shapes.
inline GgufWriter sample_writer() {
  GgufWriter w;
  w.set("general.architecture", Value::string("llama"));
  w.set("general.name", Value::string("sample \xE2\x9C\x93"));
  w.set("t.u8", Value::u8(200));
  w.set("t.i8", Value::i8(-100));
  w.set("t.u16", Value::u16(60000));
  w.set("t.i16", Value::i16(-30000));
  w.set("t.u32", Value::u32(4000000000u));
  w.set("t.i32", Value::i32(-2000000000));
  w.set("t.u64", Value::u64(18000000000000000000ull));
  w.set("t.i64", Value::i64(-9000000000000000000ll));
  w.set("t.f32", Value::f32(0.125f));
  w.set("t.f64", Value::f64(-1.0 / 3.0));
  w.set("t.bool", Value::boolean(true));
  w.set("t.strings", Value::array(Array::of_strings({"a", "", "long string with spaces", "\xF0\x9F\x98\x80"})));
  w.set("t.floats", Value::array(Array::of_floats(ValueType::FLOAT32, {0.5, -2.0, 1e-3f})));
  w.set("t.ints", Value::array(Array::of_ints(ValueType::INT32, {1, -2, 3})));
  Array nested;
  nested.elem_type = ValueType::ARRAY;
  nested.arrays.push_back(Value::array(Array::of_ints(ValueType::UINT8, {1, 2})));
  nested.arrays.push_back(Value::array(Array::of_strings({"x", "y", "z"})));
  w.set("t.nested", Value::array(std::move(nested)));
  w.set("t.empty", Value::array(Array::of_ints(ValueType::UINT16, {})));

  std::vector<float> a(64 * 3);
  for (size_t i = 0; i < a.size(); ++i) a[i] = std::sin(0.1f * static_cast<float>(i));
  std::vector<uint8_t> f32_bytes(a.size() * 4);
  std::memcpy(f32_bytes.data(), a.data(), f32_bytes.size());
  (void)w.add_tensor("blk.0.f32", TensorType::F32, {64, 3}, f32_bytes);
  std::vector<uint8_t> q8(*row_bytes(TensorType::Q8_0, a.size()));
  (void)quantize(TensorType::Q8_0, a.data(), q8.data(), static_cast<int64_t>(a.size()));
  (void)w.add_tensor("blk.0.q8_0", TensorType::Q8_0, {64, 3}, q8);
  std::vector<float> b(256 * 2);
  for (size_t i = 0; i < b.size(); ++i) b[i] = std::cos(0.05f * static_cast<float>(i)) * 3.0f;
  std::vector<uint8_t> q4k(*row_bytes(TensorType::Q4_K, b.size()));
  (void)quantize(TensorType::Q4_K, b.data(), q4k.data(), static_cast<int64_t>(b.size()));
  (void)w.add_tensor("blk.1.q4_k", TensorType::Q4_K, {256, 2}, q4k);
  std::vector<uint8_t> f16(7 * 2, 0x3c);
  (void)w.add_tensor("vec.f16", TensorType::F16, {7}, f16);
  return w;
}

inline std::vector<uint8_t> sample_bytes() { return *sample_writer().to_bytes(); }

}  // namespace tandem::gguf::test
