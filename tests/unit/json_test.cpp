// The JSON output helpers: they must write the bytes SerializeJson (and so Boost.JSON's string
// escaping) writes, and parse as deep as ingest accepts.
#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include "common/json.hpp"

namespace xtrace::common {
namespace {

TEST(Json, StringsAreEscapedAsBoostEscapesThem) {
  for (int c = 0; c < 256; ++c) {
    const std::string s = std::string("a") + static_cast<char>(c) + "b";
    std::string out;
    AppendJsonString(out, s);
    EXPECT_EQ(out, boost::json::serialize(boost::json::string_view(s))) << "byte " << c;
  }
  std::string out;
  AppendJsonString(out, "quote \" backslash \\ tab \t é 😀");
  EXPECT_EQ(out, R"("quote \" backslash \\ tab \t é 😀")");
}

TEST(Json, CompactCopyDropsOnlyTheWhitespaceBetweenTokens) {
  const auto compact = [](std::string_view in) {
    std::string out;
    AppendCompactJson(out, in);
    return out;
  };
  // PostgreSQL's jsonb output form.
  EXPECT_EQ(compact(R"({"a b": [1, 2.5, {"c\"": " x , y "}], "d": true, "e": null})"),
            R"({"a b":[1,2.5,{"c\"":" x , y "}],"d":true,"e":null})");
  EXPECT_EQ(compact("[\"x\\\\\", \"\\\\\\\"\" ,\n\t 1 ]"), R"(["x\\","\\\"",1])");
  EXPECT_EQ(compact(R"("only a string")"), R"("only a string")");
  EXPECT_EQ(compact("-1.5e-7"), "-1.5e-7");
  EXPECT_EQ(compact("{}"), "{}");
}

TEST(Json, WriterWritesWhatSerializeWrites) {
  const boost::json::value doc =
      ParseJson(R"({"id":"x","n":null,"b":false,"i":-3,"d":1.0,"f":0.25,"s":"a\"b",)"
                R"("o":{"a":[],"b":{},"c":[1,[2,{}]]},"last":[true,"z"]})");
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("id");
  w.String("x");
  w.Key("n");
  w.Null();
  w.Key("b");
  w.Bool(false);
  w.Key("i");
  w.Int(-3);
  w.Key("d");
  w.Double(1.0);
  w.Key("f");
  w.Double(0.25);
  w.Key("s");
  w.String("a\"b");
  w.Key("o");
  w.Json(R"({"a": [], "b": {}, "c": [1, [2, {}]]})");
  w.Key("last");
  w.BeginArray();
  w.Bool(true);
  w.String("z");
  w.EndArray();
  w.EndObject();
  EXPECT_EQ(out, SerializeJson(doc));
}

TEST(Json, ParsesAsDeepAsIngestAccepts) {
  const auto nested = [](size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
  };
  boost::system::error_code ec;
  ParseJson(nested(kMaxJsonDepth), ec);
  EXPECT_FALSE(ec) << ec.message();
  ParseJson(nested(kMaxJsonDepth + 1), ec);
  EXPECT_TRUE(ec);
  EXPECT_THROW(ParseJson(nested(kMaxJsonDepth + 1)), boost::system::system_error);
}

}  // namespace
}  // namespace xtrace::common
