#include "hf/safetensors.h"

#include "test_util.h"

#include <gtest/gtest.h>

#include <cstring>

namespace tandem::hf {
namespace {

std::vector<uint8_t> floats(std::initializer_list<float> v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), std::data(v), b.size());
  return b;
}

// A file whose header is TEXT followed by DATA_BYTES zero bytes.
std::vector<uint8_t> with_header(const std::string& text, size_t data_bytes) {
  std::vector<uint8_t> b(8 + text.size() + data_bytes);
  const uint64_t n = text.size();
  std::memcpy(b.data(), &n, 8);
  std::memcpy(b.data() + 8, text.data(), text.size());
  return b;
}

std::string error_of(const std::vector<uint8_t>& bytes) {
  auto f = SafetensorsFile::parse(bytes, "x.safetensors");
  return f.ok() ? std::string("(accepted)") : f.message();
}

TEST(Safetensors, WrittenFileReadsBack) {
  const auto a = floats({1, 2, 3, 4, 5, 6});
  const std::vector<uint8_t> b = {1, 2};
  auto bytes = safetensors_bytes({{"a", Dtype::kF32, {2, 3}, a}, {"b", Dtype::kBF16, {1}, b}}, {{"format", "pt"}});
  ASSERT_TRUE(bytes.ok()) << bytes.message();
  uint64_t header = 0;
  std::memcpy(&header, bytes->data(), 8);
  EXPECT_EQ(header % 8, 0u);  // data starts 8-byte aligned
  auto f = SafetensorsFile::parse(*bytes, "x");
  ASSERT_TRUE(f.ok()) << f.message();
  ASSERT_EQ(f->tensors().size(), 2u);
  const StTensor* t = f->find("a");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, Dtype::kF32);
  EXPECT_EQ(t->shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(t->n_elements, 6u);
  ASSERT_EQ(t->data.size(), 24u);
  EXPECT_EQ(std::memcmp(t->data.data(), a.data(), 24), 0);
  EXPECT_EQ(f->find("b")->data[1], 2);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->find("c"), nullptr);
}

TEST(Safetensors, BadFilesAreRefusedWithTheReason) {
  EXPECT_NE(error_of({1, 2, 3}).find("shorter than"), std::string::npos);
  auto past = with_header("{}", 0);
  past[0] = 200;
  EXPECT_NE(error_of(past).find("past the end"), std::string::npos);
  EXPECT_NE(error_of(with_header("{\"a\": ", 0)).find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(with_header("[1, 2]", 0)).find("not a JSON object"), std::string::npos);
  const std::string good = R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
  EXPECT_EQ(error_of(with_header(good, 8)), "(accepted)");
  // Every message names the file and the tensor.
  const std::string unknown = R"({"w": {"dtype": "F12", "shape": [2], "data_offsets": [0, 8]}})";
  EXPECT_EQ(error_of(with_header(unknown, 8)), "x.safetensors: tensor 'w': unknown dtype 'F12'");
  const std::string short_data = R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
  EXPECT_NE(error_of(with_header(short_data, 7)).find("outside the data"), std::string::npos);
  const std::string mismatch = R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})";
  EXPECT_NE(error_of(with_header(mismatch, 8)).find("needs 12 bytes"), std::string::npos);
  const std::string overflow = R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})";
  EXPECT_NE(error_of(with_header(overflow, 8)).find("overflows"), std::string::npos);
  const std::string negative = R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})";
  EXPECT_NE(error_of(with_header(negative, 8)).find("not a list of sizes"), std::string::npos);
  const std::string reversed = R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}})";
  EXPECT_NE(error_of(with_header(reversed, 8)).find("outside the data"), std::string::npos);
  const std::string overlap = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})";
  EXPECT_NE(error_of(with_header(overlap, 8)).find("overlap"), std::string::npos);
  const std::string no_offsets = R"({"w": {"dtype": "F32", "shape": [2]}})";
  EXPECT_NE(error_of(with_header(no_offsets, 8)).find("data_offsets"), std::string::npos);
  const std::string bad_meta = R"({"__metadata__": {"k": 1}})";
  EXPECT_NE(error_of(with_header(bad_meta, 0)).find("not a string"), std::string::npos);
  // Empty tensors may sit anywhere, even at the same offset.
  const std::string empty = R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]},
                                "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
  EXPECT_EQ(error_of(with_header(empty, 8)), "(accepted)");
}

TEST(Safetensors, OpensTheStoryModel) {
  auto f = SafetensorsFile::open(tandem::test::data_path("story656k/model.safetensors"));
  ASSERT_TRUE(f.ok()) << f.message();
  const StTensor* t = f->find("lm_head.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape_string(), "[2048, 128]");
  EXPECT_EQ(f->metadata().at("model.embed_tokens.weight"), "lm_head.weight");
}

}  // namespace
}  // namespace tandem::hf
