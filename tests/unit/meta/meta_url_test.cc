#include "meta/meta_url.h"

#include <gtest/gtest.h>

namespace wharf {
namespace {

TEST(RedactMetaUrlTest, HidesPasswords) {
  EXPECT_EQ(RedactMetaUrl("postgres://wharf:s3cret@db:5432/wharf"),
            "postgres://wharf:***@db:5432/wharf");
  EXPECT_EQ(RedactMetaUrl("postgresql://u:p@h/d?sslmode=require&password=x&application_name=a"),
            "postgresql://u:***@h/d?sslmode=require&password=***&application_name=a");
  EXPECT_EQ(RedactMetaUrl("postgres://h/d?password=only"), "postgres://h/d?password=***");
  // An '@' in the password itself: everything up to the last '@' of the authority is hidden.
  EXPECT_EQ(RedactMetaUrl("postgres://u:p@ss@h/d"), "postgres://u:***@h/d");
}

TEST(RedactMetaUrlTest, LeavesTheRestAlone) {
  for (const char* url : {"sqlite:/var/lib/wharf/meta.db", "postgres://wharf@db/wharf",
                          "postgres://wharf@/wharf?host=/tmp/sock&port=5", "postgres://", "",
                          "postgres://h/d?", "postgres://h/d?&&", "postgres://@:/?password",
                          "::::@@@///???", "postgres://h/d?a=b@c:d"}) {
    EXPECT_EQ(RedactMetaUrl(url), url) << url;
  }
}

}  // namespace
}  // namespace wharf
