// The one parser of a chunkserver's inventory (GET /v1/chunks), against hostile input.
#include "chunkserver/chunk_client.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/checksum.h"

namespace wharf {
namespace {

using nlohmann::json;

const std::string kId(32, 'a');
const std::string kId2(32, 'b');

json Entry() {
  return {{"id", kId}, {"size", 10}, {"checksum", FormatChecksum(7)}, {"mtime", 1234}};
}

TEST(InventoryParseTest, ParsesAPage) {
  json e2 = Entry();
  e2["id"] = kId2;
  e2["mtime"] = -5;  // a clock before 1970 is odd, not malformed
  json page = {{"chunks", {Entry(), e2}}, {"next", kId2}};
  auto p = ParseInventoryPage(page.dump());
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  ASSERT_EQ(p->chunks.size(), 2u);
  EXPECT_EQ(p->chunks[0], (InventoryEntry{kId, 10, 7, 1234}));
  EXPECT_EQ(p->chunks[1].mtime_unix, -5);
  EXPECT_EQ(p->next, kId2);
  // The last page: next null or absent.
  for (json last :
       {json{{"chunks", json::array()}, {"next", nullptr}}, json{{"chunks", json::array()}}}) {
    auto q = ParseInventoryPage(last.dump());
    ASSERT_TRUE(q.has_value()) << last.dump();
    EXPECT_TRUE(q->chunks.empty());
    EXPECT_TRUE(q->next.empty());
  }
}

TEST(InventoryParseTest, RejectsHostileInputWithoutThrowing) {
  std::vector<std::string> bad = {
      "",
      "not json",
      "[]",
      "42",
      "\"chunks\"",
      "null",
      R"({})",
      R"({"chunks": {}})",
      R"({"chunks": "x"})",
      R"({"chunks": [1]})",
      R"({"chunks": [null]})",
      R"({"chunks": [[]]})",
  };
  // Each field missing, or of the wrong type, or out of range.
  for (const char* key : {"id", "size", "checksum", "mtime"}) {
    json e = Entry();
    e.erase(key);
    bad.push_back(json{{"chunks", {e}}}.dump());
    for (json wrong :
         {json("12"), json(1.5), json(nullptr), json::array(), json::object(), json(true)}) {
      json w = Entry();
      w[key] = wrong;
      if (w[key].is_string() && (std::string(key) == "id" || std::string(key) == "checksum"))
        continue;  // a string id/checksum is covered by the malformed cases below
      bad.push_back(json{{"chunks", {w}}}.dump());
    }
  }
  for (std::string id : {std::string(""), std::string(31, 'a'), std::string(32, 'A'),
                         std::string("../../../../etc/passwd"), std::string(33, 'a')}) {
    json e = Entry();
    e["id"] = id;
    bad.push_back(json{{"chunks", {e}}}.dump());
  }
  for (std::string sum : {"", "xxh3:", "crc:0000000000000000", "xxh3:zz00000000000000"}) {
    json e = Entry();
    e["checksum"] = sum;
    bad.push_back(json{{"chunks", {e}}}.dump());
  }
  // Huge numbers: past uint64 (parsed as floats), negative sizes, mtime past int64.
  bad.push_back(R"({"chunks": [{"id": ")" + kId +
                R"(", "size": 1e30, "checksum": "xxh3:0000000000000007", "mtime": 1}]})");
  bad.push_back(
      R"({"chunks": [{"id": ")" + kId +
      R"(", "size": 184467440737095516150, "checksum": "xxh3:0000000000000007", "mtime": 1}]})");
  bad.push_back(R"({"chunks": [{"id": ")" + kId +
                R"(", "size": -1, "checksum": "xxh3:0000000000000007", "mtime": 1}]})");
  bad.push_back(
      R"({"chunks": [{"id": ")" + kId +
      R"(", "size": 1, "checksum": "xxh3:0000000000000007", "mtime": 18446744073709551615}]})");
  // A malformed next (it goes into the next request's query string).
  for (json next : {json(""), json("a&b=c"), json(12), json::array(), json(std::string(31, 'a'))}) {
    bad.push_back(json{{"chunks", json::array()}, {"next", next}}.dump());
  }
  for (const auto& text : bad) {
    Result<InventoryPage> r = Err(Internal("unset"));
    EXPECT_NO_THROW(r = ParseInventoryPage(text)) << text;
    EXPECT_FALSE(r.has_value()) << text;
    if (!r) {
      EXPECT_EQ(r.error().code(), Code::kInvalidArgument) << text;
    }
  }
}

}  // namespace
}  // namespace wharf
