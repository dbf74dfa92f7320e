#include "gguf/reader.h"

#include "gguf/quant.h"
#include "gguf_test_files.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cstring>

namespace tandem::gguf {
namespace {

TEST(GgufReader, ReadsStories260K) {
  auto f = GgufFile::open(tandem::test::data_path("stories260K.gguf"));
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_uint("llama.block_count"), 5u);
  EXPECT_EQ(f->get_uint("llama.embedding_length"), 64u);
  EXPECT_EQ(f->get_uint("llama.attention.head_count"), 8u);
  EXPECT_EQ(f->get_uint("llama.attention.head_count_kv"), 4u);
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "llama");
  const Array* tokens = f->get_array("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  EXPECT_EQ(tokens->size(), 512u);
  EXPECT_EQ(tokens->strings[1], "<s>");
  EXPECT_EQ(tokens->strings[3], "<0x00>");
  const TensorInfo* emb = f->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->type, TensorType::F32);
  EXPECT_EQ(emb->dims, (std::vector<uint64_t>{64, 512}));
  EXPECT_EQ(emb->n_bytes, 64u * 512u * 4u);
  EXPECT_EQ(emb->rows(), 512u);
  // README of the models folder: output.weight is an exact copy of the embedding.
  const TensorInfo* out = f->find_tensor("output.weight");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(std::memcmp(emb->data, out->data, emb->n_bytes), 0);
  EXPECT_EQ(f->find_tensor("nope"), nullptr);
}

TEST(GgufReader, ReadsEveryArchitectureFile) {
  for (const char* name :
       {"qwen2-tiny-random.gguf", "qwen3-tiny-random.gguf", "gemma3-tiny-random.gguf", "llama-2-tiny-random.gguf"}) {
    auto f = GgufFile::open(tandem::test::data_path(name));
    ASSERT_TRUE(f.ok()) << name << ": " << f.message();
    EXPECT_GT(f->tensors().size(), 5u) << name;
    for (const auto& t : f->tensors()) {
      EXPECT_NE(t.data, nullptr);
      EXPECT_EQ(t.offset % f->alignment(), 0u);
      EXPECT_LE(f->data_offset() + t.offset + t.n_bytes, f->file_size());
    }
  }
  auto llama2 = GgufFile::open(tandem::test::data_path("llama-2-tiny-random.gguf"));
  ASSERT_TRUE(llama2.ok());
  EXPECT_EQ(llama2->find_tensor("token_embd.weight")->type, TensorType::F16);
  EXPECT_EQ(llama2->get_array("tokenizer.ggml.tokens")->size(), 32000u);
}

// Builds a file by hand, field by field, to test inputs the writer never makes.
struct RawFile {
  std::vector<uint8_t> b;
  template <typename T>
  RawFile& put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
    return *this;
  }
  RawFile& str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  RawFile& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b.insert(b.end(), {'G', 'G', 'U', 'F'});
    return put(version).put(n_tensors).put(n_kv);
  }
};

std::string parse_error(const std::vector<uint8_t>& bytes) {
  auto f = GgufFile::parse(bytes);
  return f.ok() ? std::string("(parsed)") : f.message();
}

TEST(GgufReader, RejectsBadHeaders) {
  EXPECT_NE(parse_error({}).find("truncated"), std::string::npos);
  EXPECT_NE(parse_error({'G', 'G', 'M', 'L', 3, 0, 0, 0}).find("bad magic"), std::string::npos);
  EXPECT_NE(parse_error(RawFile().header(1, 0, 0).b).find("version 1"), std::string::npos);
  EXPECT_NE(parse_error(RawFile().header(0x03000000u, 0, 0).b).find("big-endian"), std::string::npos);
  EXPECT_NE(parse_error(RawFile().header(7, 0, 0).b).find("version 7"), std::string::npos);
  EXPECT_NE(parse_error(RawFile().header(3, 0, 1ull << 60).b).find("metadata count"), std::string::npos);
  EXPECT_NE(parse_error(RawFile().header(3, 1ull << 40, 0).b).find("tensor count"), std::string::npos);
  EXPECT_EQ(parse_error(RawFile().header(3, 0, 0).b), "(parsed)");  // empty but valid
  EXPECT_EQ(parse_error(RawFile().header(2, 0, 0).b), "(parsed)");
}

TEST(GgufReader, RejectsBadMetadata) {
  RawFile long_key;
  long_key.header(3, 0, 1).put<uint64_t>(1ull << 62).put<uint32_t>(0);
  for (int i = 0; i < 8; ++i) long_key.put<uint8_t>(0);
  EXPECT_NE(parse_error(long_key.b).find("past the end"), std::string::npos);

  RawFile bad_type;
  bad_type.header(3, 0, 1).str("k").put<uint32_t>(13).put<uint64_t>(0);
  EXPECT_NE(parse_error(bad_type.b).find("unknown value type 13"), std::string::npos);

  RawFile big_array;
  big_array.header(3, 0, 1).str("k").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(1ull << 50);
  for (int i = 0; i < 16; ++i) big_array.put<uint8_t>(0);
  EXPECT_NE(parse_error(big_array.b).find("larger than the rest"), std::string::npos);

  RawFile dup;
  dup.header(3, 0, 2).str("k").put<uint32_t>(4).put<uint32_t>(1).str("k").put<uint32_t>(4).put<uint32_t>(2);
  EXPECT_NE(parse_error(dup.b).find("duplicate metadata key 'k'"), std::string::npos);

  RawFile bad_bool;
  bad_bool.header(3, 0, 1).str("k").put<uint32_t>(7).put<uint8_t>(2);
  for (int i = 0; i < 16; ++i) bad_bool.put<uint8_t>(0);
  EXPECT_NE(parse_error(bad_bool.b).find("bool"), std::string::npos);

  RawFile bad_align;
  bad_align.header(3, 0, 1).str("general.alignment").put<uint32_t>(4).put<uint32_t>(24);
  EXPECT_NE(parse_error(bad_align.b).find("power-of-two"), std::string::npos);

  // Arrays nested past the depth limit.
  RawFile deep;
  deep.header(3, 0, 1).str("k").put<uint32_t>(9);
  for (int i = 0; i < 20; ++i) deep.put<uint32_t>(9).put<uint64_t>(1);
  deep.put<uint32_t>(4).put<uint64_t>(0);
  for (int i = 0; i < 300; ++i) deep.put<uint8_t>(0);
  EXPECT_NE(parse_error(deep.b).find("nested deeper"), std::string::npos);
}

RawFile one_tensor(uint32_t n_dims, std::vector<uint64_t> dims, uint32_t type, uint64_t offset, size_t data_bytes) {
  RawFile f;
  f.header(3, 1, 0).str("w").put(n_dims);
  for (uint64_t d : dims) f.put(d);
  f.put(type).put(offset);
  while (f.b.size() % 32 != 0) f.put<uint8_t>(0);
  for (size_t i = 0; i < data_bytes; ++i) f.put<uint8_t>(0);
  return f;
}

TEST(GgufReader, RejectsBadTensors) {
  EXPECT_EQ(parse_error(one_tensor(2, {4, 2}, 0, 0, 32).b), "(parsed)");
  EXPECT_NE(parse_error(one_tensor(2, {4, 2}, 0, 0, 31).b).find("past the end"), std::string::npos);
  EXPECT_NE(parse_error(one_tensor(2, {4, 2}, 0, 32, 32).b).find("past the end"), std::string::npos);
  EXPECT_NE(parse_error(one_tensor(2, {4, 2}, 0, 4, 64).b).find("not aligned"), std::string::npos);
  EXPECT_NE(parse_error(one_tensor(2, {4, 2}, 0, ~0ull - 16, 64).b).find("not aligned"), std::string::npos);
  EXPECT_NE(parse_error(one_tensor(2, {4, 2}, 0, ~0ull & ~31ull, 64).b).find("past the end"), std::string::npos);
  EXPECT_NE(parse_error(one_tensor(2, {4, 2}, 99, 0, 32).b).find("unknown tensor type id 99"), std::string::npos);
  EXPECT_NE(parse_error(one_tensor(5, {1, 1, 1, 1, 1}, 0, 0, 32).b).find("dimensions"), std::string::npos);
  EXPECT_NE(parse_error(one_tensor(2, {1ull << 40, 1ull << 40}, 0, 0, 32).b).find("overflows"), std::string::npos);
  EXPECT_NE(parse_error(one_tensor(2, {1ull << 62, 2}, 0, 0, 32).b).find("overflow"), std::string::npos);
  EXPECT_NE(parse_error(one_tensor(1, {33}, 8, 0, 64).b).find("block size"), std::string::npos);
}

TEST(GgufReader, EveryTruncationFailsCleanly) {
  const std::vector<uint8_t> full = test::sample_bytes();
  ASSERT_TRUE(GgufFile::parse(full).ok());
  // Cutting the file anywhere before the last tensor's last byte is an error.
  auto f = GgufFile::parse(full);
  uint64_t needed = 0;
  for (const auto& t : f->tensors()) needed = std::max(needed, f->data_offset() + t.offset + t.n_bytes);
  for (size_t len = 0; len < needed; ++len) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    EXPECT_FALSE(GgufFile::parse(cut).ok()) << "length " << len;
  }
}

TEST(GgufReader, OpenReportsMissingFile) {
  auto f = GgufFile::open("/nonexistent/model.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.message().find("/nonexistent/model.gguf"), std::string::npos);
}

}  // namespace
}  // namespace tandem::gguf
