#include "registry/route.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace wharf {
namespace {

const std::string kSha = "sha256:" + std::string(64, 'b');
const std::string kUpload = std::string(32, 'f');

Route Ok(std::string_view path) {
  auto r = ParseRoute(path);
  EXPECT_TRUE(r.has_value()) << path << " -> " << r.error().ToString();
  return r ? *r : Route{};
}

Code ErrorOf(std::string_view path) {
  auto r = ParseRoute(path);
  EXPECT_FALSE(r.has_value()) << path << " parsed as name=" << (r ? r->name : "");
  return r ? Code::kOk : r.error().code();
}

TEST(ParseRouteTest, BaseAndCatalog) {
  EXPECT_EQ(Ok("/v2/").kind, RouteKind::kBase);
  EXPECT_EQ(Ok("/v2").kind, RouteKind::kBase);
  EXPECT_EQ(Ok("/v2/?x=1").kind, RouteKind::kBase);
  EXPECT_EQ(Ok("/v2/_catalog").kind, RouteKind::kCatalog);
  EXPECT_EQ(Ok("/v2/_catalog?n=10&last=a").kind, RouteKind::kCatalog);
}

TEST(ParseRouteTest, TagsList) {
  EXPECT_EQ(Ok("/v2/library/ubuntu/tags/list"),
            (Route{RouteKind::kTagsList, "library/ubuntu", "", ""}));
  EXPECT_EQ(Ok("/v2/a/tags/list?n=5&last=x").name, "a");
}

TEST(ParseRouteTest, Manifest) {
  EXPECT_EQ(Ok("/v2/a/b/manifests/latest"), (Route{RouteKind::kManifest, "a/b", "latest", ""}));
  EXPECT_EQ(Ok("/v2/a/manifests/" + kSha), (Route{RouteKind::kManifest, "a", kSha, ""}));
}

TEST(ParseRouteTest, Blob) {
  EXPECT_EQ(Ok("/v2/a/b/c/blobs/" + kSha), (Route{RouteKind::kBlob, "a/b/c", kSha, ""}));
}

TEST(ParseRouteTest, Uploads) {
  EXPECT_EQ(Ok("/v2/a/blobs/uploads/"), (Route{RouteKind::kUploadStart, "a", "", ""}));
  EXPECT_EQ(Ok("/v2/a/blobs/uploads"), (Route{RouteKind::kUploadStart, "a", "", ""}));
  EXPECT_EQ(Ok("/v2/a/blobs/uploads/?digest=" + kSha).kind, RouteKind::kUploadStart);
  EXPECT_EQ(Ok("/v2/a/blobs/uploads/?mount=" + kSha + "&from=b").kind, RouteKind::kUploadStart);
  EXPECT_EQ(Ok("/v2/x/y/blobs/uploads/" + kUpload),
            (Route{RouteKind::kUpload, "x/y", "", kUpload}));
  EXPECT_EQ(Ok("/v2/x/blobs/uploads/" + kUpload + "?digest=" + kSha).upload_id, kUpload);
}

TEST(ParseRouteTest, Referrers) {
  EXPECT_EQ(Ok("/v2/a/referrers/" + kSha), (Route{RouteKind::kReferrers, "a", kSha, ""}));
  EXPECT_EQ(Ok("/v2/a/referrers/" + kSha + "?artifactType=x%2Fy").reference, kSha);
}

TEST(ParseRouteTest, NamesContainingEndpointWordsParseFromTheRight) {
  EXPECT_EQ(Ok("/v2/foo/blobs/bar/manifests/latest"),
            (Route{RouteKind::kManifest, "foo/blobs/bar", "latest", ""}));
  EXPECT_EQ(Ok("/v2/foo/manifests/bar/blobs/" + kSha),
            (Route{RouteKind::kBlob, "foo/manifests/bar", kSha, ""}));
  EXPECT_EQ(Ok("/v2/blobs/uploads/blobs/uploads/" + kUpload),
            (Route{RouteKind::kUpload, "blobs/uploads", "", kUpload}));
  EXPECT_EQ(Ok("/v2/tags/list/tags/list"), (Route{RouteKind::kTagsList, "tags/list", "", ""}));
  EXPECT_EQ(Ok("/v2/a/manifests/blobs/uploads"),
            (Route{RouteKind::kUploadStart, "a/manifests", "", ""}));
  EXPECT_EQ(Ok("/v2/referrers/referrers/x"), (Route{RouteKind::kReferrers, "referrers", "x", ""}));
  // "uploads" as the last segment after "/blobs/" is the upload endpoint, not a blob.
  EXPECT_EQ(Ok("/v2/a/blobs/uploads").kind, RouteKind::kUploadStart);
  // A reference is passed through unvalidated: handlers choose the error code.
  EXPECT_EQ(Ok("/v2/a/manifests/..").reference, "..");
  EXPECT_EQ(Ok("/v2/a/blobs/not-a-digest").reference, "not-a-digest");
  EXPECT_EQ(Ok("/v2/a/blobs/uploads/xyz").upload_id, "xyz");
}

TEST(ParseRouteTest, NotFound) {
  for (std::string_view p : {"",
                             "/",
                             "//",
                             "/v1/",
                             "/v2x/a/tags/list",
                             "/V2/",
                             "v2/",
                             "/v2//",
                             "/v2/a",
                             "/v2/a/",
                             "/v2/a/b",
                             "/v2/a/tags",
                             "/v2/a/tags/list/",
                             "/v2/a/tags/lists",
                             "/v2/a/manifests/",
                             "/v2/a/manifests/latest/",
                             "/v2/a/blobs/",
                             "/v2/a/referrers/",
                             "/v2/a/blobs/uploads/x/",
                             "/v2/a/blobs/uploads/../../",
                             "/v2/a/unknown/x",
                             "/v2/_catalog/",
                             "/v2/_catalog/x",
                             "/v2/blobs/uploads/",
                             "/v2/tags/list",
                             "/v2/manifests/x",
                             "/v2/a/manifests//"}) {
    EXPECT_EQ(ErrorOf(p), Code::kNotFound) << "'" << p << "'";
  }
  EXPECT_EQ(ErrorOf("/v2/" + std::string(100000, 'a') + "/tags/list"), Code::kNotFound);
}

TEST(ParseRouteTest, InvalidNames) {
  for (const std::string& p : std::vector<std::string>{
           "/v2/../x/blobs/" + kSha,
           "/v2/a/../b/manifests/latest",
           "/v2/./a/tags/list",
           "/v2//a/manifests/latest",
           "/v2//manifests/latest",
           "/v2//tags/list",
           "/v2//blobs/uploads/",
           "/v2/a//b/tags/list",
           "/v2/a//tags/list",
           "/v2/Upper/tags/list",
           "/v2/a%2Fb/tags/list",
           "/v2/a%2fb/manifests/x",
           "/v2/a b/tags/list",
           "/v2/a-/blobs/" + kSha,
           "/v2/_catalog/tags/list",
           "/v2/" + std::string(256, 'a') + "/tags/list",
           "/v2/" + std::string(300, 'a') + "/blobs/uploads/",
       }) {
    EXPECT_EQ(ErrorOf(p), Code::kInvalidArgument) << "'" << p << "'";
  }
  using namespace std::string_literals;
  EXPECT_EQ(ErrorOf("/v2/a\0b/tags/list"s), Code::kInvalidArgument);
}

TEST(ParseRouteTest, LongestValidName) {
  std::string name(255, 'a');
  EXPECT_EQ(Ok("/v2/" + name + "/tags/list").name, name);
}

TEST(UploadIdTest, Validity) {
  EXPECT_TRUE(ValidUploadId(kUpload));
  EXPECT_TRUE(ValidUploadId("0123456789abcdef0123456789abcdef"));
  EXPECT_TRUE(ValidUploadId(std::string(128, 'a')));
  EXPECT_FALSE(ValidUploadId(std::string(129, 'a')));
  EXPECT_FALSE(ValidUploadId(std::string(31, 'a')));
  EXPECT_FALSE(ValidUploadId(""));
  EXPECT_FALSE(ValidUploadId("0123456789ABCDEF0123456789abcdef"));
  EXPECT_FALSE(ValidUploadId("0123456789abcdef0123456789abcdeg"));
  EXPECT_FALSE(ValidUploadId("../../0123456789abcdef0123456789ab"));
}

TEST(UploadIdTest, NewIdsAreValidAndDistinct) {
  std::string a = NewUploadId(), b = NewUploadId();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_TRUE(ValidUploadId(a));
  EXPECT_TRUE(ValidUploadId(b));
  EXPECT_NE(a, b);
}

TEST(ParseRouteTest, ViewPointsIntoThePath) {
  std::string path = "/v2/a/blobs/b/blobs/uploads/0123?x=/manifests/y#z";
  auto v = ParseRouteView(path);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->kind, RouteKind::kUpload);
  EXPECT_EQ(v->name, "a/blobs/b");
  EXPECT_EQ(v->upload_id, "0123");
  EXPECT_TRUE(v->reference.empty());
  EXPECT_EQ(v->name.data(), path.data() + 4);
  EXPECT_FALSE(ParseRouteView(""));
  EXPECT_FALSE(ParseRouteView("/v2/x/y"));
  EXPECT_FALSE(ParseRouteView("/v2//blobs"));
}

}  // namespace
}  // namespace wharf
