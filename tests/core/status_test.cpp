#include "core/mapped_file.h"

#include <vector>
#include "core/status.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cstring>

namespace tandem {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return Status::errorf("{} is not positive", x);
  return x;
}

Status chain(int x) {
  TANDEM_RETURN_IF_ERROR(parse_positive(x).status());
  return {};
}

TEST(Status, CarriesMessagesAndContext) {
  EXPECT_TRUE(Status().ok());
  auto r = parse_positive(-3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "-3 is not positive");
  EXPECT_EQ(r.status().with_context("arg").message(), "arg: -3 is not positive");
  EXPECT_EQ(*parse_positive(4), 4);
  EXPECT_FALSE(chain(0).ok());
  EXPECT_TRUE(chain(1).ok());
}

TEST(MappedFile, MapsAndReportsErrors) {
  const std::string dir = test::scratch_dir("mapped_file");
  const std::string path = dir + "/x.bin";
  const std::string text = "hello";
  ASSERT_TRUE(write_text_atomic(path, text).ok());
  auto m = MappedFile::open(path);
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m->size(), 5u);
  EXPECT_EQ(*read_file(path), "hello");
  auto missing = MappedFile::open(dir + "/missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("cannot open"), std::string::npos);
  EXPECT_FALSE(MappedFile::open(dir).ok());  // a directory is not a regular file
}

TEST(MappedFile, PageInReportsEveryChunkThenTheWhole) {
  const std::string path = test::scratch_dir("page_in") + "/x.bin";
  std::vector<uint8_t> data((size_t{130} << 20) + 12345, 7);  // two whole 64 MiB chunks and a ragged one
  ASSERT_TRUE(write_file_atomic(path, data).ok());
  auto m = MappedFile::open(path);
  ASSERT_TRUE(m.ok()) << m.message();
  std::vector<uint64_t> seen;
  page_in(m->bytes().subspan(5), [&](uint64_t done, uint64_t total) {  // an unaligned start, as tensor data has
    EXPECT_EQ(total, data.size() - 5);
    seen.push_back(done);
  });
  EXPECT_EQ(seen, (std::vector<uint64_t>{uint64_t{64} << 20, uint64_t{128} << 20, data.size() - 5}));
}

TEST(MappedFile, MakeResidentKeepsAddressAndBytes) {
  const std::string path = test::scratch_dir("resident") + "/x.bin";
  std::vector<uint8_t> data((size_t{66} << 20) + 4097);  // a whole 64 MiB chunk, then a ragged one
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 2654435761u >> 24);
  ASSERT_TRUE(write_file_atomic(path, data).ok());
  auto m = MappedFile::open(path);
  ASSERT_TRUE(m.ok()) << m.message();
  const uint8_t* before = m->bytes().data();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(before) % (size_t{2} << 20), 0u);  // huge pages need an aligned start
  std::vector<uint64_t> seen;
  ASSERT_TRUE(m->make_resident([&](uint64_t done, uint64_t) { seen.push_back(done); }).ok());
  EXPECT_TRUE(m->resident());
  EXPECT_EQ(seen, (std::vector<uint64_t>{uint64_t{64} << 20, data.size()}));
  EXPECT_EQ(m->bytes().data(), before);  // pointers into the file stay valid
  ASSERT_EQ(m->size(), data.size());
  EXPECT_EQ(std::memcmp(m->bytes().data(), data.data(), data.size()), 0);
  EXPECT_TRUE(m->make_resident(nullptr).ok());  // once is enough
  MappedFile moved = std::move(*m);             // the moved-to mapping owns the resident pages
  EXPECT_TRUE(moved.resident());
  EXPECT_EQ(moved.bytes()[data.size() - 1], data.back());
}

TEST(MappedFile, MakeResidentRefusesAChangedFile) {
  const std::string path = test::scratch_dir("resident_changed") + "/x.bin";
  std::vector<uint8_t> data(10000, 3);
  ASSERT_TRUE(write_file_atomic(path, data).ok());
  auto m = MappedFile::open(path);
  ASSERT_TRUE(m.ok()) << m.message();
  data.assign(data.size(), 4);
  ASSERT_TRUE(write_file_atomic(path, data).ok());  // a new file of the same size under the same name
  Status s = m->make_resident(nullptr);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("changed"), std::string::npos) << s.message();
  EXPECT_FALSE(m->resident());
  EXPECT_EQ(m->bytes()[9999], 3);  // still the old mapping
}

TEST(ReadFile, ReadsFilesThatReportNoSize) {
  // /proc files stat as 0 bytes; the bench reads the CPU name from one.
  auto cpuinfo = read_file("/proc/cpuinfo");
  ASSERT_TRUE(cpuinfo.ok()) << cpuinfo.message();
  EXPECT_NE(cpuinfo->find("processor"), std::string::npos);
  const std::string dir = test::scratch_dir("read_file");
  EXPECT_FALSE(read_file(dir + "/missing").ok());
  EXPECT_FALSE(read_file(dir).ok());  // a directory reads as an error
}

}  // namespace
}  // namespace tandem
