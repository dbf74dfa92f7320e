#include "core/utf8.h"

#include <gtest/gtest.h>

namespace tandem {
namespace {

TEST(Utf8, DecodesValidSequences) {
  const std::string s = "a\u00e9\u4e2d\U0001F600";
  size_t pos = 0, len = 0;
  EXPECT_EQ(utf8_decode(s, pos, &len), 'a');
  pos += len;
  EXPECT_EQ(utf8_decode(s, pos, &len), 0xE9u);
  EXPECT_EQ(len, 2u);
  pos += len;
  EXPECT_EQ(utf8_decode(s, pos, &len), 0x4E2Du);
  EXPECT_EQ(len, 3u);
  pos += len;
  EXPECT_EQ(utf8_decode(s, pos, &len), 0x1F600u);
  EXPECT_EQ(len, 4u);
}

TEST(Utf8, RejectsInvalidSequences) {
  size_t len = 0;
  for (std::string bad :
       {std::string("\x80"), std::string("\xC0\x80"), std::string("\xE0\x80\x80"), std::string("\xED\xA0\x80"),
        std::string("\xF4\x90\x80\x80"), std::string("\xE4\xB8"), std::string("\xFF")}) {
    EXPECT_EQ(utf8_decode(bad, 0, &len), kInvalidCodepoint) << bad.size();
    EXPECT_EQ(len, 1u);
  }
}

TEST(Utf8, AppendRoundTrips) {
  for (uint32_t cp : {0x24u, 0xA2u, 0x939u, 0x20ACu, 0xD55Cu, 0x10348u, 0x10FFFFu}) {
    std::string s;
    utf8_append(s, cp);
    size_t len = 0;
    EXPECT_EQ(utf8_decode(s, 0, &len), cp);
    EXPECT_EQ(len, s.size());
  }
}

TEST(Utf8, IncompleteTail) {
  const std::string euro = "\xE2\x82\xAC";
  EXPECT_EQ(utf8_incomplete_tail("abc"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("ab" + euro), 0u);
  EXPECT_EQ(utf8_incomplete_tail("ab" + euro.substr(0, 1)), 1u);
  EXPECT_EQ(utf8_incomplete_tail("ab" + euro.substr(0, 2)), 2u);
  EXPECT_EQ(utf8_incomplete_tail("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(utf8_incomplete_tail("a\x80"), 0u);  // stray continuation: nothing to wait for
  EXPECT_EQ(utf8_incomplete_tail(""), 0u);
}

TEST(Utf8, SanitizeReplacesInvalidBytes) {
  EXPECT_EQ(utf8_sanitize("ok"), "ok");
  EXPECT_EQ(utf8_sanitize("a\xFF"
                          "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(utf8_sanitize("\xE4\xB8"), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

}  // namespace
}  // namespace tandem
