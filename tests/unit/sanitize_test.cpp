#include <gtest/gtest.h>

#include "projector/sanitize.hpp"

namespace xtrace::projector {
namespace {

TEST(Sanitize, TextReplacesNulOnly) {
  EXPECT_EQ(SanitizeText(std::string("a\0b", 3)),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(SanitizeText("plain é"), "plain é");
}

TEST(Sanitize, JsonReplacesNulEscapesButNotEscapedBackslashes) {
  EXPECT_EQ(SanitizeJson(R"({"a":"x\u0000y"})"), R"({"a":"x\ufffdy"})");
  EXPECT_EQ(SanitizeJson(R"({"a":"\\u0000"})"), R"({"a":"\\u0000"})");    // literal text
  EXPECT_EQ(SanitizeJson(R"({"a":"\\\u0000"})"), R"({"a":"\\\ufffd"})");  // backslash, then NUL
  EXPECT_EQ(SanitizeJson(R"({"a":"\u00001"})"), R"({"a":"\ufffd1"})");
  EXPECT_EQ(SanitizeJson(R"(["\n","\u0041"])"), R"(["\n","\u0041"])");
  EXPECT_EQ(SanitizeJson("\\"), "\\");  // a dangling backslash is copied, not read past
}

}  // namespace
}  // namespace xtrace::projector
