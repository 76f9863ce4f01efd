#include "registry/errors.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace wharf {
namespace {

using Json = nlohmann::json;

TEST(OciErrorTest, TableMatchesSpec) {
  struct Want {
    OciError e;
    std::string_view code;
    int status;
  };
  for (const Want& w : {
           Want{OciError::kBlobUnknown, "BLOB_UNKNOWN", 404},
           Want{OciError::kBlobUploadInvalid, "BLOB_UPLOAD_INVALID", 400},
           Want{OciError::kBlobUploadUnknown, "BLOB_UPLOAD_UNKNOWN", 404},
           Want{OciError::kDigestInvalid, "DIGEST_INVALID", 400},
           Want{OciError::kManifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN", 400},
           Want{OciError::kManifestInvalid, "MANIFEST_INVALID", 400},
           Want{OciError::kManifestUnknown, "MANIFEST_UNKNOWN", 404},
           Want{OciError::kNameInvalid, "NAME_INVALID", 400},
           Want{OciError::kNameUnknown, "NAME_UNKNOWN", 404},
           Want{OciError::kSizeInvalid, "SIZE_INVALID", 400},
           Want{OciError::kUnauthorized, "UNAUTHORIZED", 401},
           Want{OciError::kDenied, "DENIED", 403},
           Want{OciError::kUnsupported, "UNSUPPORTED", 405},
           Want{OciError::kTooManyRequests, "TOOMANYREQUESTS", 429},
           Want{OciError::kRangeInvalid, "BLOB_UPLOAD_INVALID", 416},
           Want{OciError::kUnavailable, "UNAVAILABLE", 503},
           Want{OciError::kInternal, "UNKNOWN", 500},
       }) {
    EXPECT_EQ(OciErrorCode(w.e), w.code);
    EXPECT_EQ(OciErrorStatus(w.e), w.status) << w.code;
    EXPECT_FALSE(GetOciErrorInfo(w.e).message.empty()) << w.code;
  }
}

TEST(OciErrorBodyTest, DefaultMessageNoDetail) {
  Json j = Json::parse(OciErrorBody(OciError::kBlobUnknown));
  ASSERT_EQ(j["errors"].size(), 1u);
  EXPECT_EQ(j["errors"][0]["code"], "BLOB_UNKNOWN");
  EXPECT_EQ(j["errors"][0]["message"], "blob unknown to registry");
  EXPECT_FALSE(j["errors"][0].contains("detail"));
}

TEST(OciErrorBodyTest, MessageAndDetail) {
  std::string body =
      OciErrorBody(OciError::kDigestInvalid, "bad digest", Json{{"digest", "sha256:x"}});
  EXPECT_EQ(body, R"({"errors":[{"code":"DIGEST_INVALID","message":"bad digest",)"
                  R"("detail":{"digest":"sha256:x"}}]})");
}

TEST(OciErrorBodyTest, HostileTextIsEscapedNeverThrows) {
  std::string msg = "quote\" backslash\\ newline\n nul";
  msg += '\0';
  msg += " bad utf8 \xff\xfe </script>";
  std::string body;
  ASSERT_NO_THROW(body = OciErrorBody(OciError::kNameInvalid, msg, Json("\xc3\x28")));
  Json j = Json::parse(body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << body;
  std::string got = j["errors"][0]["message"];
  EXPECT_NE(got.find("quote\" backslash\\ newline\n nul"), std::string::npos);
  EXPECT_NE(got.find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD
  EXPECT_TRUE(j["errors"][0]["detail"].is_string());
}

}  // namespace
}  // namespace wharf
