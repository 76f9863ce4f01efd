#include "auth/htpasswd.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "test_files.h"

namespace wharf::auth {
namespace {

using namespace std::string_literals;

// Made by `htpasswd -nbB alice secret` (cost 5) and `htpasswd -nbB -C 4 bob 'pa:ss word'`.
constexpr char kAlice[] = "alice:$2y$05$tlRGztm6hjoeTlRAEdNL4O8zGZ2oOcM5m88DZip2YFzNyywlvEwqK";

// Runs the real `htpasswd -nbB` (apache2-utils); empty when it is not installed.
std::string RealHtpasswdLine(const std::string& user, const std::string& password) {
  std::string cmd = "htpasswd -nbB -C 4 '" + user + "' '" + password + "' 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string out;
  char buf[256];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  if (pclose(p) != 0) return "";
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

TEST(HtpasswdTest, VerifiesAFileMadeByRealHtpasswd) {
  std::string carol = RealHtpasswdLine("carol", "c0rrect horse");
  std::string dave = RealHtpasswdLine("dave", "x");
  if (carol.empty()) GTEST_SKIP() << "htpasswd (apache2-utils) not installed";
  auto h = Htpasswd::Parse(std::string(kAlice) + "\n# a comment\n\n" + carol + "\r\n" + dave);
  ASSERT_TRUE(h) << h.error().ToString();
  EXPECT_EQ(h->size(), 3u);
  EXPECT_TRUE(h->Verify("carol", "c0rrect horse"));
  EXPECT_FALSE(h->Verify("carol", "c0rrect horsE"));
  EXPECT_FALSE(h->Verify("carol", "c0rrect horse "));
  EXPECT_TRUE(h->Verify("dave", "x"));
  EXPECT_FALSE(h->Verify("dave", ""));
  EXPECT_TRUE(h->Verify("alice", "secret"));
  EXPECT_FALSE(h->Verify("alice", "c0rrect horse"));
  EXPECT_FALSE(h->Verify("nobody", "secret"));
  EXPECT_FALSE(h->Verify("", ""));
}

TEST(HtpasswdTest, RemembersAMatchButNeverAWrongPassword) {
  auto h = Htpasswd::Parse(std::string(kAlice) + "\n");
  ASSERT_TRUE(h.has_value()) << h.error().message();
  EXPECT_TRUE(h->Verify("alice", "secret"));
  EXPECT_EQ(h->bcrypt_checks(), 1u);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(h->Verify("alice", "secret"));
  EXPECT_EQ(h->bcrypt_checks(), 1u);  // remembered: no bcrypt per request
  EXPECT_FALSE(h->Verify("alice", "secreT"));
  EXPECT_FALSE(h->Verify("alice", "secret "));
  EXPECT_FALSE(h->Verify("alice", ""));
  EXPECT_EQ(h->bcrypt_checks(), 4u);  // every wrong password costs a bcrypt
  EXPECT_TRUE(h->Verify("alice", "secret"));
  EXPECT_EQ(h->bcrypt_checks(), 4u);
  // Another parse (the file re-read) remembers nothing of this one.
  auto again = Htpasswd::Parse(std::string(kAlice) + "\n");
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->Verify("alice", "secret"));
  EXPECT_EQ(again->bcrypt_checks(), 1u);
  // A user whose hash changed in the file: the old password, remembered by the old parse, does
  // not match the new one.
  std::string other = RealHtpasswdLine("alice", "new password");
  if (other.empty()) GTEST_SKIP() << "htpasswd (apache2-utils) not installed";
  auto changed = Htpasswd::Parse(other + "\n");
  ASSERT_TRUE(changed.has_value());
  EXPECT_FALSE(changed->Verify("alice", "secret"));
  EXPECT_TRUE(changed->Verify("alice", "new password"));
}

TEST(HtpasswdTest, AcceptsEveryBcryptVariant) {
  // One hash, three version letters: libxcrypt verifies each ($2a$ and $2b$ hash the same for
  // passwords under 255 bytes; $2y$ is PHP's name for $2b$).
  std::string hash = "$05$tlRGztm6hjoeTlRAEdNL4O8zGZ2oOcM5m88DZip2YFzNyywlvEwqK";
  for (std::string v : {"$2y", "$2b", "$2a"}) {
    EXPECT_TRUE(BcryptMatches("secret", v + hash)) << v;
    EXPECT_FALSE(BcryptMatches("Secret", v + hash)) << v;
  }
}

TEST(HtpasswdTest, PasswordsWithNulOrOverTheLimitNeverMatch) {
  auto h = Htpasswd::Parse(kAlice);
  ASSERT_TRUE(h);
  EXPECT_FALSE(h->Verify("alice", "secret\0tail"s));  // crypt() would see "secret"
  EXPECT_FALSE(h->Verify("alice", "secret" + std::string(2000, 'x')));
}

TEST(HtpasswdTest, RefusesOtherHashTypesNamingLineAndUser) {
  struct Case {
    std::string line;
    std::string expect;
  };
  for (const Case& c : std::vector<Case>{
           {"bob:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/", "apr1-md5"},
           {"bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "sha1"},
           {"bob:$6$saltsalt$abcdefghijk", "sha-crypt"},
           {"bob:$5$saltsalt$abcdefghijk", "sha-crypt"},
           {"bob:$1$saltsalt$abcdefghijk", "md5-crypt"},
           {"bob:rqXexS6ZhobKA", "des-crypt or plain text"},
           {"bob:password", "des-crypt or plain text"},
           {"bob:", "an empty hash"},
           {"bob:$2y$03$tlRGztm6hjoeTlRAEdNL4O8zGZ2oOcM5m88DZip2YFzNyywlvEwqK", "cost"},
           {"bob:$2x$05$tlRGztm6hjoeTlRAEdNL4O8zGZ2oOcM5m88DZip2YFzNyywlvEwqK", "malformed"},
           {"bob:$2y$05$tlRGztm6hjoeTlRAEdNL4O8zGZ2oOcM5m88DZip2YFzNyywlvEwq", "malformed"},
           {"bob:$2y$05$tlRGztm6hjoeTlRAEdNL4O8zGZ2oOcM5m88DZip2YFzNyywlvEwq!", "malformed"},
       }) {
    auto h = Htpasswd::Parse(std::string(kAlice) + "\n\n" + c.line + "\n");
    ASSERT_FALSE(h) << c.line;
    EXPECT_EQ(h.error().code(), Code::kInvalidArgument);
    const std::string& m = h.error().message();
    EXPECT_NE(m.find("line 3 user bob:"), std::string::npos) << m;
    EXPECT_NE(m.find(c.expect), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_EQ(m.find("HqJZ"), std::string::npos) << "the hash must not be echoed: " << m;
  }
}

TEST(HtpasswdTest, HostileLinesAreOneLineErrors) {
  struct Case {
    std::string content;
    std::string expect;
  };
  std::string alice(kAlice);
  for (const Case& c : std::vector<Case>{
           {"nocolon\n", "line 1: no ':'"},
           {alice + "\n:" + alice.substr(6), "line 2: empty user"},
           {alice + "\n" + alice + "\n", "line 2 user alice: duplicate user"},
           {std::string(2000, 'a') + alice.substr(5), "line 1: longer than 1024 bytes"},
           {alice + "\n" + std::string(64 * 1024, 'x') + "\n", "line 2: longer than"},
           {"a\x01" + alice.substr(5), "line 1 user a\\x01: user name"},
           {std::string(300, 'u') + alice.substr(5), "user name over 255 bytes"},
           {"\xff\xfe\x00\x01:\x80\x81"s, "line 1 user \\xff\\xfe\\x00\\x01: user name"},
           {std::string("bin\0ary", 7) + alice.substr(5), "line 1 user bin\\x00ary"},
       }) {
    auto h = Htpasswd::Parse(c.content);
    ASSERT_FALSE(h) << c.expect;
    EXPECT_NE(h.error().message().find(c.expect), std::string::npos) << h.error().message();
    EXPECT_EQ(h.error().message().find('\n'), std::string::npos);
  }
}

TEST(HtpasswdTest, EmptyFileHasNoUsers) {
  auto h = Htpasswd::Parse("# nobody yet\n\n   \n");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->size(), 0u);
  EXPECT_FALSE(h->Verify("alice", "secret"));
}

TEST(HtpasswdFileTest, ReloadsOnChangeAndKeepsTheLastGoodFile) {
  TempDir dir;
  std::string path = dir.File("htpasswd");
  ReplaceFile(path, std::string(kAlice) + "\n");
  HtpasswdFile file(path, &Htpasswd::Parse);
  ASSERT_TRUE(file.Load().ok());
  auto unchanged = file.ReloadIfChanged();
  ASSERT_TRUE(unchanged);
  EXPECT_FALSE(*unchanged);
  EXPECT_TRUE(file.Current()->Verify("alice", "secret"));

  std::string bob = RealHtpasswdLine("bob", "hunter2");
  if (bob.empty()) bob = "bob:$2y$05$tlRGztm6hjoeTlRAEdNL4O8zGZ2oOcM5m88DZip2YFzNyywlvEwqK";
  std::string bob_password = bob.find("tlRG") == std::string::npos ? "hunter2" : "secret";
  ReplaceFile(path, bob + "\n");
  auto changed = file.ReloadIfChanged();
  ASSERT_TRUE(changed) << changed.error().ToString();
  EXPECT_TRUE(*changed);
  EXPECT_FALSE(file.Current()->HasUser("alice"));
  EXPECT_TRUE(file.Current()->Verify("bob", bob_password));

  // A bad file: the error is reported once, the last good content stays.
  ReplaceFile(path, "bob:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n");
  auto bad = file.ReloadIfChanged();
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find(path + ": line 1 user bob"), std::string::npos);
  auto again = file.ReloadIfChanged();
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  EXPECT_TRUE(file.Current()->Verify("bob", bob_password));

  // The file disappears: reported once, the last good content stays; it comes back fixed.
  std::filesystem::remove(path);
  EXPECT_FALSE(file.ReloadIfChanged());
  EXPECT_TRUE(file.ReloadIfChanged());
  EXPECT_TRUE(file.Current()->HasUser("bob"));
  ReplaceFile(path, std::string(kAlice) + "\n");
  auto fixed = file.ReloadIfChanged();
  ASSERT_TRUE(fixed);
  EXPECT_TRUE(*fixed);
  EXPECT_TRUE(file.Current()->HasUser("alice"));
}

TEST(HtpasswdFileTest, LoadFailsOnMissingOrBadFile) {
  TempDir dir;
  HtpasswdFile missing(dir.File("none"), &Htpasswd::Parse);
  EXPECT_EQ(missing.Load().code(), Code::kNotFound);
  EXPECT_EQ(missing.Current(), nullptr);
  ReplaceFile(dir.File("bad"), "alice:plain\n");
  HtpasswdFile bad(dir.File("bad"), &Htpasswd::Parse);
  Status st = bad.Load();
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("line 1 user alice"), std::string::npos);
  HtpasswdFile directory(dir.File(""), &Htpasswd::Parse);
  EXPECT_FALSE(directory.Load().ok());
}

TEST(HtpasswdFileTest, InPlaceRewriteOfTheSameSizeIsSeen) {
  TempDir dir;
  std::string path = dir.File("htpasswd");
  ReplaceFile(path, std::string(kAlice) + "\n");
  HtpasswdFile file(path, &Htpasswd::Parse);
  ASSERT_TRUE(file.Load().ok());
  std::string renamed = std::string(kAlice);
  renamed[0] = 'A';  // same size, same inode: only the mtime/ctime tells
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << renamed << "\n";
  }
  struct timespec times[2] = {{0, UTIME_NOW}, {12345, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  auto r = file.ReloadIfChanged();
  ASSERT_TRUE(r);
  EXPECT_TRUE(*r);
  EXPECT_TRUE(file.Current()->HasUser("Alice"));
}

}  // namespace
}  // namespace wharf::auth
