#include "registry/manifest.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace wharf {
namespace {

using Json = nlohmann::json;

std::string Sha(char c) { return "sha256:" + std::string(64, c); }
Digest D(char c) { return *Digest::Parse(Sha(c)); }

Json Desc(std::string_view media_type, char digest, int64_t size) {
  return Json{{"mediaType", media_type}, {"digest", Sha(digest)}, {"size", size}};
}

Json ImageManifest() {
  return Json{
      {"schemaVersion", 2},
      {"mediaType", kOciManifestMediaType},
      {"config", Desc("application/vnd.oci.image.config.v1+json", 'c', 7023)},
      {"layers", Json::array({Desc("application/vnd.oci.image.layer.v1.tar+gzip", '1', 32654),
                              Desc("application/vnd.oci.image.layer.v1.tar+gzip", '2', 16724)})}};
}

Json Index() {
  Json m = Desc(kOciManifestMediaType, 'a', 7143);
  m["platform"] = Json{{"architecture", "amd64"}, {"os", "linux"}};
  return Json{{"schemaVersion", 2},
              {"mediaType", kOciIndexMediaType},
              {"manifests", Json::array({m, Desc(kOciManifestMediaType, 'b', 7682)})}};
}

Result<ManifestInfo> Parse(const Json& j, std::string_view content_type = "") {
  return ParseManifest(content_type, j.dump());
}

// Expects kInvalidArgument and returns its message.
std::string Invalid(std::string_view content_type, std::string_view body) {
  Result<ManifestInfo> r;
  EXPECT_NO_THROW(r = ParseManifest(content_type, body));
  EXPECT_FALSE(r.has_value()) << body.substr(0, 200);
  if (r) return "";
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument) << r.error().ToString();
  return r.error().message();
}
std::string Invalid(const Json& j) { return Invalid("", j.dump()); }

TEST(ParseManifestTest, OciImageManifest) {
  auto r = Parse(ImageManifest(), "application/vnd.oci.image.manifest.v1+json");
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->media_type, kOciManifestMediaType);
  EXPECT_FALSE(r->is_index);
  EXPECT_EQ(r->blobs, (std::vector<Digest>{D('c'), D('1'), D('2')}));
  EXPECT_TRUE(r->manifests.empty());
  EXPECT_EQ(r->subject, std::nullopt);
  EXPECT_EQ(r->artifact_type, "application/vnd.oci.image.config.v1+json");
  EXPECT_EQ(r->annotations, "{}");
}

TEST(ParseManifestTest, DockerManifestV2) {
  Json j = ImageManifest();
  j["mediaType"] = kDockerManifestMediaType;
  j["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json";
  auto r = Parse(j, kDockerManifestMediaType);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->media_type, kDockerManifestMediaType);
  EXPECT_EQ(r->blobs.size(), 3u);
}

TEST(ParseManifestTest, IndexAndManifestList) {
  auto r = Parse(Index());
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_TRUE(r->is_index);
  EXPECT_EQ(r->manifests, (std::vector<Digest>{D('a'), D('b')}));
  EXPECT_TRUE(r->blobs.empty());
  EXPECT_EQ(r->artifact_type, "");

  Json list = Index();
  list["mediaType"] = kDockerManifestListMediaType;
  r = Parse(list);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_TRUE(r->is_index);
  EXPECT_EQ(r->media_type, kDockerManifestListMediaType);
}

TEST(ParseManifestTest, EmptyLayersAndEmptyIndexAreValid) {
  Json j = ImageManifest();
  j["layers"] = Json::array();
  EXPECT_TRUE(Parse(j).has_value());
  Json i = Index();
  i["manifests"] = Json::array();
  EXPECT_TRUE(Parse(i).has_value());
}

TEST(ParseManifestTest, ArtifactWithSubject) {
  Json j = ImageManifest();
  j["artifactType"] = "application/vnd.example.sbom.v1";
  j["config"] = Desc("application/vnd.oci.empty.v1+json", '4', 2);
  j["subject"] = Desc(kOciManifestMediaType, 'e', 1234);
  j["annotations"] = Json{{"org.opencontainers.image.created", "2024-01-01T00:00:00Z"}, {"b", "2"}};
  auto r = Parse(j);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->subject, D('e'));
  EXPECT_EQ(r->artifact_type, "application/vnd.example.sbom.v1");
  EXPECT_EQ(Json::parse(r->annotations), j["annotations"]);
  auto round = ParseAnnotations(r->annotations);
  ASSERT_TRUE(round.has_value());
  EXPECT_EQ(round->at("b"), "2");
}

TEST(ParseManifestTest, IndexWithSubjectAndArtifactType) {
  Json i = Index();
  i["subject"] = Desc(kOciManifestMediaType, 'e', 1);
  i["artifactType"] = "application/vnd.example+type";
  auto r = Parse(i);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->subject, D('e'));
  EXPECT_EQ(r->artifact_type, "application/vnd.example+type");
}

TEST(ParseManifestTest, ArtifactStyleBlobs) {
  Json j = ImageManifest();
  j["blobs"] = Json::array({Desc("application/octet-stream", '9', 5)});
  auto r = Parse(j);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->blobs.back(), D('9'));
  j["blobs"] = "nope";
  Invalid(j);
}

TEST(ParseManifestTest, DescriptorOptionalFields) {
  Json j = ImageManifest();
  j["layers"][0]["urls"] = Json::array({"https://example.com/layer"});
  j["layers"][0]["annotations"] = Json{{"k", "v"}};
  j["layers"][0]["data"] = "e30=";
  j["layers"][0]["artifactType"] = "application/x-thing";
  j["unknownField"] = Json{{"anything", Json::array({1, 2, 3})}};  // unknown fields are ignored
  EXPECT_TRUE(Parse(j).has_value());
  for (auto [key, bad] :
       std::vector<std::pair<const char*, Json>>{{"urls", "x"},
                                                 {"urls", Json::array({1})},
                                                 {"annotations", Json::array()},
                                                 {"annotations", Json{{"k", 1}}},
                                                 {"annotations", Json{{"k", nullptr}}},
                                                 {"data", 5},
                                                 {"platform", "linux"},
                                                 {"artifactType", 3},
                                                 {"artifactType", "not a media type"}}) {
    Json k = ImageManifest();
    k["layers"][0][key] = bad;
    EXPECT_NE(Invalid(k).find("layers[0]"), std::string::npos) << key << "=" << bad;
  }
}

TEST(ParseManifestTest, MediaTypeFromHeaderWhenBodyHasNone) {
  Json j = ImageManifest();
  j.erase("mediaType");
  auto r = Parse(j, "Application/VND.OCI.Image.Manifest.v1+JSON; charset=utf-8");
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->media_type, kOciManifestMediaType);
  Json i = Index();
  i.erase("mediaType");
  r = Parse(i, kOciIndexMediaType);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->is_index);
  // Neither: unknown.
  Invalid(j);
}

TEST(ParseManifestTest, MediaTypeConflicts) {
  Invalid(kOciIndexMediaType, ImageManifest().dump());
  Invalid("application/json", ImageManifest().dump());
  Json j = ImageManifest();
  j["mediaType"] = "application/vnd.docker.distribution.manifest.v1+prettyjws";
  Invalid(j);
  j["mediaType"] = "application/vnd.oci.image.manifest.v1+json ";
  Invalid(j);
  j["mediaType"] = "APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON";
  Invalid(j);
  j["mediaType"] = 5;
  Invalid(j);
  j["mediaType"] = nullptr;
  Invalid(j);
  j.erase("mediaType");
  Invalid("text/plain", j.dump());
}

TEST(ParseManifestTest, TypeConfusionRejected) {
  Json j = ImageManifest();
  j["manifests"] = Json::array();
  Invalid(j);
  Json i = Index();
  i["layers"] = Json::array();
  Invalid(i);
  i = Index();
  i["config"] = Desc("application/vnd.oci.image.config.v1+json", 'c', 1);
  Invalid(i);
}

TEST(ParseManifestTest, SchemaVersion) {
  for (Json v : {Json(1), Json(3), Json(-2), Json(2.0), Json("2"), Json(nullptr), Json::array({2}),
                 Json(18446744073709551615ull), Json(true)}) {
    Json j = ImageManifest();
    j["schemaVersion"] = v;
    Invalid(j);
  }
  Json j = ImageManifest();
  j.erase("schemaVersion");
  Invalid(j);
}

TEST(ParseManifestTest, RequiredParts) {
  Json j = ImageManifest();
  j.erase("config");
  Invalid(j);
  j = ImageManifest();
  j.erase("layers");
  Invalid(j);
  for (Json bad : {Json("x"), Json(nullptr), Json::object(), Json(1)}) {
    j = ImageManifest();
    j["layers"] = bad;
    Invalid(j);
    j = ImageManifest();
    j["config"] = bad;
    Invalid(j);
    Json i = Index();
    i["manifests"] = bad;
    Invalid(i);
  }
  Json i = Index();
  i.erase("manifests");
  Invalid(i);
  i = Index();
  i["manifests"].push_back("sha256:abc");
  Invalid(i);
}

TEST(ParseManifestTest, DescriptorDigests) {
  for (Json bad : {Json("sha256:abc"), Json("sha256:" + std::string(64, 'A')), Json(""),
                   Json("md5:" + std::string(32, 'a')), Json(5), Json(nullptr),
                   Json("sha256:" + std::string(64, 'a') + "\n"), Json(Json::array())}) {
    Json j = ImageManifest();
    j["layers"][1]["digest"] = bad;
    EXPECT_NE(Invalid(j).find("layers[1]"), std::string::npos) << bad;
  }
  Json j = ImageManifest();
  j["layers"][1].erase("digest");
  Invalid(j);
  j = ImageManifest();
  j["layers"][1]["digest"] = "sha512:" + std::string(128, 'e');
  EXPECT_TRUE(Parse(j).has_value());
}

TEST(ParseManifestTest, DescriptorSizes) {
  for (Json bad : {Json(-1), Json(1.5), Json(1e30), Json("5"), Json(nullptr), Json(true),
                   Json(9223372036854775808ull), Json(18446744073709551615ull)}) {
    Json j = ImageManifest();
    j["config"]["size"] = bad;
    Invalid(j);
  }
  Json j = ImageManifest();
  j["config"].erase("size");
  Invalid(j);
  j = ImageManifest();
  j["config"]["size"] = 9223372036854775807ll;
  EXPECT_TRUE(Parse(j).has_value());
  j["config"]["size"] = 0;
  EXPECT_TRUE(Parse(j).has_value());
  // Numbers too large for any C++ type: the parser makes them doubles (or fails), never UB.
  std::string body = ImageManifest().dump();
  std::string huge = body;
  huge.replace(huge.find("7023"), 4, std::string(400, '9'));
  Invalid("", huge);
  std::string exp = body;
  exp.replace(exp.find("7023"), 4, "1e400");
  Invalid("", exp);
}

TEST(ParseManifestTest, DescriptorMediaTypes) {
  for (Json bad :
       {Json(""), Json("text"), Json("/json"), Json("text/"), Json("a/b/c"),
        Json("text/plain; charset=utf-8"), Json("te xt/plain"), Json("text/plain\r\nX: y"),
        Json(std::string(300, 'a') + "/b"), Json(1), Json(nullptr)}) {
    Json j = ImageManifest();
    j["layers"][0]["mediaType"] = bad;
    Invalid(j);
  }
  Json j = ImageManifest();
  j["layers"][0].erase("mediaType");
  Invalid(j);
}

TEST(ParseManifestTest, ManifestAnnotationsAndArtifactTypeTypes) {
  for (Json bad : {Json("x"), Json::array(), Json{{"a", Json{{"b", "c"}}}}, Json{{"a", 1}}}) {
    Json j = ImageManifest();
    j["annotations"] = bad;
    Invalid(j);
  }
  for (Json bad : {Json(1), Json(""), Json("nope"), Json::object()}) {
    Json j = ImageManifest();
    j["artifactType"] = bad;
    Invalid(j);
  }
  for (Json bad : {Json("x"), Json::array(), Json(nullptr), Json{{"digest", Sha('e')}}}) {
    Json j = ImageManifest();
    j["subject"] = bad;
    Invalid(j);
  }
}

TEST(ParseManifestTest, NotAnObject) {
  for (std::string_view body : {"", " ", "null", "[]", "2", "\"x\"", "true", "[{}]"}) {
    Invalid(kOciManifestMediaType, body);
  }
}

TEST(ParseManifestTest, TruncatedJson) {
  std::string body = ImageManifest().dump();
  for (size_t n = 0; n < body.size(); n += 7) Invalid(kOciManifestMediaType, body.substr(0, n));
  Invalid(kOciManifestMediaType, body + "}");
  Invalid(kOciManifestMediaType, body + "{}");
  Invalid(kOciManifestMediaType, body + ",");
}

TEST(ParseManifestTest, DeepNestingRejectedBeforeParsing) {
  std::string deep(10000, '[');
  deep += std::string(10000, ']');
  EXPECT_NE(Invalid("", deep).find("nested"), std::string::npos);
  std::string objects;
  for (int i = 0; i < 10000; ++i) objects += "{\"a\":";
  objects += "1" + std::string(10000, '}');
  Invalid("", objects);
  // Deep nesting hidden in an ignored field of an otherwise valid manifest.
  Json j = ImageManifest();
  std::string body = j.dump();
  body.insert(1, "\"x\":" + deep + ",");
  EXPECT_NE(Invalid("", body).find("nested"), std::string::npos);
  // Unbalanced openers only (truncated deep document).
  Invalid("", std::string(100000, '{'));
  // Brackets inside strings do not count.
  j["annotations"] = Json{{"k", std::string(1000, '[') + "\\\"" + std::string(1000, '{')}};
  EXPECT_TRUE(Parse(j).has_value());
  // Nesting at the limit is fine.
  std::string ok = j.dump();
  std::string nest62 = std::string(62, '[') + std::string(62, ']');
  ok.insert(1, "\"x\":" + nest62 + ",");
  EXPECT_TRUE(ParseManifest("", ok).has_value());
}

TEST(ParseManifestTest, DuplicateKeysRejected) {
  std::string body = ImageManifest().dump();
  // Top level.
  std::string dup = body;
  dup.insert(1, "\"layers\":[],");
  EXPECT_NE(Invalid("", dup).find("duplicate"), std::string::npos);
  // Nested in a descriptor.
  dup = body;
  size_t at = dup.find("\"digest\"");
  dup.insert(at, "\"digest\":\"" + Sha('f') + "\",");
  EXPECT_NE(Invalid("", dup).find("duplicate"), std::string::npos);
  // Same key in sibling objects is fine.
  Json j = ImageManifest();
  j["annotations"] = Json{{"digest", "x"}};
  EXPECT_TRUE(Parse(j).has_value());
}

TEST(ParseManifestTest, NulBytesAndInvalidUtf8) {
  using namespace std::string_literals;
  std::string body = ImageManifest().dump();
  Invalid("", body + "\0"s);
  Invalid("", body + "\0{\"junk\""s);  // nlohmann's lexer alone stops at the NUL
  Invalid("", "\0"s + body);
  std::string in_string = body;
  in_string.insert(in_string.find("7023") - 8, "\"x\":\"a\0b\","s);
  Invalid("", in_string);
  Json j = ImageManifest();
  std::string bad_utf8 = j.dump();
  bad_utf8.insert(1, "\"x\":\"\xff\xfe\",");
  Invalid("", bad_utf8);
  std::string overlong = j.dump();
  overlong.insert(1, "\"x\":\"\xc0\xaf\",");
  Invalid("", overlong);
  std::string surrogate = j.dump();
  surrogate.insert(1, "\"x\":\"\xed\xa0\x80\",");
  Invalid("", surrogate);
  // Escaped NUL and lone surrogate escapes.
  std::string escaped = j.dump();
  escaped.insert(1, R"("x":"\u0000",)");
  EXPECT_TRUE(ParseManifest("", escaped).has_value());
  std::string lone = j.dump();
  lone.insert(1, R"("x":"\ud800",)");
  Invalid("", lone);
}

TEST(ParseManifestTest, TooLarge) {
  Json j = ImageManifest();
  j["annotations"] = Json{{"big", std::string(kMaxManifestBytes, 'x')}};
  auto r = Parse(j);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kTooLarge);
}

TEST(ValidMediaTypeTest, Grammar) {
  EXPECT_TRUE(ValidMediaType("application/vnd.oci.image.layer.v1.tar+gzip"));
  EXPECT_TRUE(ValidMediaType("application/vnd.cncf.helm.chart.content.v1.tar+gzip"));
  EXPECT_TRUE(ValidMediaType("a/b"));
  EXPECT_FALSE(ValidMediaType("a/b/c"));
  EXPECT_FALSE(ValidMediaType("a/+b"));
  EXPECT_FALSE(ValidMediaType("a/b;c=d"));
}

TEST(MakeReferrersIndexTest, Empty) {
  EXPECT_EQ(MakeReferrersIndex({}),
            R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
            R"("manifests":[]})");
}

TEST(MakeReferrersIndexTest, Entries) {
  std::vector<Descriptor> descs = {
      {std::string(kOciManifestMediaType),
       D('a'),
       1234,
       "application/vnd.example.sbom",
       {{"org.example.k", "v"}}},
      {std::string(kOciIndexMediaType), D('b'), 99, "", {}},
  };
  std::string body = MakeReferrersIndex(descs);
  Json j = Json::parse(body);
  EXPECT_EQ(j["schemaVersion"], 2);
  EXPECT_EQ(j["mediaType"], kOciIndexMediaType);
  ASSERT_EQ(j["manifests"].size(), 2u);
  const Json& a = j["manifests"][0];
  EXPECT_EQ(a["mediaType"], kOciManifestMediaType);
  EXPECT_EQ(a["digest"], Sha('a'));
  EXPECT_EQ(a["size"], 1234);
  EXPECT_EQ(a["artifactType"], "application/vnd.example.sbom");
  EXPECT_EQ(a["annotations"], (Json{{"org.example.k", "v"}}));
  const Json& b = j["manifests"][1];
  EXPECT_FALSE(b.contains("artifactType"));
  EXPECT_FALSE(b.contains("annotations"));
  // The result is itself a valid index.
  auto r = ParseManifest(kOciIndexMediaType, body);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->manifests, (std::vector<Digest>{D('a'), D('b')}));
}

TEST(MakeReferrersIndexTest, HostileAnnotationsNeverThrow) {
  Descriptor d{std::string(kOciManifestMediaType), D('a'), 1, "", {{"k\xff", "\"v\"\xc3"}}};
  std::string body;
  ASSERT_NO_THROW(body = MakeReferrersIndex({d}));
  EXPECT_FALSE(Json::parse(body, nullptr, false).is_discarded());
}

TEST(AnnotationsTest, RoundTripAndHostile) {
  EXPECT_EQ(SerializeAnnotations({}), "{}");
  auto r = ParseAnnotations(SerializeAnnotations({{"a", "1"}, {"b", "\"2\""}}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, (Annotations{{"a", "1"}, {"b", "\"2\""}}));
  EXPECT_TRUE(ParseAnnotations("{}")->empty());
  for (std::string_view bad : {"", "[]", "null", "{\"a\":1}", "{\"a\":\"x\",\"a\":\"y\"}", "{",
                               "{\"a\":{\"b\":\"c\"}}", "[[[[[[[[[[[[[[[[[["}) {
    auto p = ParseAnnotations(bad);
    ASSERT_FALSE(p.has_value()) << bad;
    EXPECT_EQ(p.error().code(), Code::kInvalidArgument);
  }
}

TEST(ParseManifestTest, ForeignLayersWithUrlsNeedNoBlob) {
  Json m = ImageManifest();
  Json win = Desc("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", '3', 1000);
  win["urls"] = Json::array({"https://mcr.microsoft.com/v2/windows/blobs/" + Sha('3')});
  Json oci = Desc("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", '4', 10);
  oci["urls"] = Json::array({"http://example.com/layer"});
  // Non-distributable but without URLs: an ordinary blob, which must be pushed.
  Json no_urls = Desc("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", '5', 10);
  // URLs on an ordinary layer type do not make it foreign.
  Json plain = Desc("application/vnd.oci.image.layer.v1.tar+gzip", '6', 10);
  plain["urls"] = Json::array({"https://example.com/x"});
  m["layers"].push_back(win);
  m["layers"].push_back(oci);
  m["layers"].push_back(no_urls);
  m["layers"].push_back(plain);
  auto r = Parse(m);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->blobs, (std::vector<Digest>{D('c'), D('1'), D('2'), D('5'), D('6')}));
  EXPECT_EQ(r->foreign, (std::vector<Digest>{D('3'), D('4')}));
}

TEST(ParseManifestTest, ForeignLayerUrlsMustBeAbsoluteHttp) {
  for (const char* bad : {"ftp://example.com/x", "/relative", "https://example.com/x#frag",
                          "https://exa mple.com/x", "javascript:alert(1)", ""}) {
    Json m = ImageManifest();
    Json win = Desc("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", '3', 1000);
    win["urls"] = Json::array({"https://ok.example.com/a", bad});
    m["layers"].push_back(win);
    EXPECT_NE(Invalid(m).find("urls"), std::string::npos) << bad;
  }
  Json m = ImageManifest();
  Json win = Desc("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", '3', 1000);
  win["urls"] = Json::array({"https://example.com/" + std::string(3000, 'a')});
  m["layers"].push_back(win);
  EXPECT_NE(Invalid(m).find("urls"), std::string::npos);
}

}  // namespace
}  // namespace wharf
