#include "gguf/writer.h"

#include "gguf/reader.h"
#include "gguf_test_files.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>

namespace tandem::gguf {
namespace {

TEST(GgufWriter, RoundTripsEveryValueType) {
  const std::string path = tandem::test::scratch_dir("gguf_writer") + "/sample.gguf";
  ASSERT_TRUE(test::sample_writer().write(path).ok());
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->get_string("general.name"), "sample \xE2\x9C\x93");
  EXPECT_EQ(f->find("t.u8")->type, ValueType::UINT8);
  EXPECT_EQ(f->get_uint("t.u8"), 200u);
  EXPECT_EQ(f->find("t.i8")->as_int(), -100);
  EXPECT_EQ(f->get_uint("t.u16"), 60000u);
  EXPECT_EQ(f->find("t.i16")->as_int(), -30000);
  EXPECT_EQ(f->get_uint("t.u32"), 4000000000u);
  EXPECT_EQ(f->find("t.i32")->as_int(), -2000000000);
  EXPECT_EQ(f->get_uint("t.u64"), 18000000000000000000ull);
  EXPECT_EQ(f->find("t.u64")->as_int(), std::nullopt);  // does not fit int64
  EXPECT_EQ(f->find("t.i64")->as_int(), -9000000000000000000ll);
  EXPECT_EQ(f->get_uint("t.i64"), std::nullopt);  // negative
  EXPECT_EQ(f->get_float("t.f32"), 0.125);
  EXPECT_EQ(f->find("t.f32")->type, ValueType::FLOAT32);
  EXPECT_EQ(f->get_float("t.f64"), -1.0 / 3.0);
  EXPECT_EQ(f->get_bool("t.bool"), true);
  EXPECT_EQ(f->get_string("t.u8"), std::nullopt);  // wrong type
  const Array* strings = f->get_array("t.strings");
  ASSERT_NE(strings, nullptr);
  EXPECT_EQ(strings->strings, (std::vector<std::string>{"a", "", "long string with spaces", "\xF0\x9F\x98\x80"}));
  EXPECT_EQ(f->get_array("t.floats")->floats[2], static_cast<double>(1e-3f));
  EXPECT_EQ(f->get_array("t.ints")->ints, (std::vector<int64_t>{1, -2, 3}));
  const Array* nested = f->get_array("t.nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->arrays.size(), 2u);
  EXPECT_EQ(nested->arrays[0].as_array()->ints, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(nested->arrays[1].as_array()->strings, (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(f->get_array("t.empty")->size(), 0u);
  EXPECT_EQ(f->get_array("t.empty")->elem_type, ValueType::UINT16);
  // Metadata keeps insertion order.
  EXPECT_EQ(f->metadata().front().key, "general.architecture");
  EXPECT_EQ(f->metadata().back().key, "t.empty");

  // Tensors: same bytes as written, aligned.
  ASSERT_EQ(f->tensors().size(), 4u);
  const TensorInfo* q8 = f->find_tensor("blk.0.q8_0");
  ASSERT_NE(q8, nullptr);
  EXPECT_EQ(q8->type, TensorType::Q8_0);
  EXPECT_EQ(q8->dims, (std::vector<uint64_t>{64, 3}));
  EXPECT_EQ(q8->n_bytes, 6u * 34u);
  std::vector<float> back(64 * 3);
  ASSERT_TRUE(dequantize(TensorType::Q8_0, q8->data, back.data(), 64 * 3).ok());
  EXPECT_NEAR(back[10], std::sin(1.0f), 0.01f);
  const TensorInfo* f32 = f->find_tensor("blk.0.f32");
  float first[2];
  std::memcpy(first, f32->data, sizeof(first));
  EXPECT_EQ(first[1], std::sin(0.1f));
  for (const auto& t : f->tensors()) EXPECT_EQ((f->data_offset() + t.offset) % 32, 0u) << t.name;
}

TEST(GgufWriter, CustomAlignmentAndFillCallbacks) {
  GgufWriter w;
  w.set_alignment(64);
  w.set("general.architecture", Value::string("x"));
  w.set("general.architecture", Value::string("y"));  // replaces
  ASSERT_TRUE(w.add_tensor("a", TensorType::F32, {3}, [](std::span<uint8_t> out) {
                 EXPECT_EQ(out.size(), 12u);
                 for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(i);
                 return Status();
               }).ok());
  ASSERT_TRUE(w.add_tensor("b", TensorType::F16, {5, 2}, std::vector<uint8_t>(20, 7)).ok());
  auto bytes = w.to_bytes();
  ASSERT_TRUE(bytes.ok());
  auto f = GgufFile::parse(*bytes);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->metadata().size(), 2u);
  EXPECT_EQ(f->get_string("general.architecture"), "y");
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->find_tensor("b")->offset, 64u);
  EXPECT_EQ(f->find_tensor("a")->data[11], 11);
  EXPECT_EQ(f->find_tensor("b")->data[19], 7);
}

TEST(GgufWriter, RejectsBadTensors) {
  GgufWriter w;
  EXPECT_FALSE(w.add_tensor("", TensorType::F32, {1}, std::vector<uint8_t>(4)).ok());
  EXPECT_FALSE(w.add_tensor("a", TensorType::F32, {2}, std::vector<uint8_t>(4)).ok());  // size mismatch
  EXPECT_FALSE(w.add_tensor("a", TensorType::Q8_0, {33}, std::vector<uint8_t>(34)).ok());
  EXPECT_FALSE(w.add_tensor("a", TensorType::F32, {}, std::vector<uint8_t>()).ok());
  ASSERT_TRUE(w.add_tensor("a", TensorType::F32, {1}, std::vector<uint8_t>(4)).ok());
  EXPECT_FALSE(w.add_tensor("a", TensorType::F32, {1}, std::vector<uint8_t>(4)).ok());  // duplicate
  GgufWriter failing;
  ASSERT_TRUE(
      failing.add_tensor("x", TensorType::F32, {1}, [](std::span<uint8_t>) { return Status::error("no data"); }).ok());
  const std::string path = tandem::test::scratch_dir("gguf_writer_fail") + "/x.gguf";
  Status st = failing.write(path);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("x: no data"), std::string::npos);
  EXPECT_FALSE(std::ifstream(path).good());  // nothing left behind
}

// Another GGUF implementation (npm @huggingface/gguf) reads what we write.
TEST(GgufWriter, ReadableByHuggingFaceGguf) {
  const std::string dir = tandem::test::scratch_dir("gguf_writer_hf");
  const std::string path = dir + "/sample.gguf";
  ASSERT_TRUE(test::sample_writer().write(path).ok());
  const std::string out = dir + "/out.json";
  const std::string cmd =
      "node " + tandem::test::source_path("tests/gguf/read_with_hf_gguf.mjs") + " " + path + " > " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(out);
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["metadata"]["version"], 3);
  EXPECT_EQ(j["metadata"]["general.name"], "sample \xE2\x9C\x93");
  EXPECT_EQ(j["metadata"]["t.i32"], -2000000000);
  EXPECT_EQ(j["metadata"]["t.u64"], "18000000000000000000");  // bigint printed as a string
  EXPECT_EQ(j["metadata"]["t.strings"][3], "\xF0\x9F\x98\x80");
  EXPECT_EQ(j["metadata"]["t.nested"][1][2], "z");
  ASSERT_EQ(j["tensorInfos"].size(), 4u);
  EXPECT_EQ(j["tensorInfos"][1]["name"], "blk.0.q8_0");
  EXPECT_EQ(j["tensorInfos"][1]["dtype"], 8);
  EXPECT_EQ(j["tensorInfos"][1]["shape"], (nlohmann::json{"64", "3"}));
  auto f = GgufFile::open(path);
  EXPECT_EQ(j["tensorDataOffset"], std::to_string(f->data_offset()));
}

}  // namespace
}  // namespace tandem::gguf
