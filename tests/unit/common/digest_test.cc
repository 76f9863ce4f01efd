// Regressions found by fuzz/digest_fuzz.cc (the crashing input is in fuzz/corpus/digest/).
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "common/digest.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <cstddef>
#include <cstring>
#include <string>

namespace wharf {
namespace {

// `state` with the unsigned field at `offset` set to `v`.
std::string With(std::string state, size_t offset, unsigned v) {
  std::memcpy(state.data() + offset, &v, sizeof v);
  return state;
}

// A stored hash state comes back from the metadata store; SHA*_Update indexes its block buffer
// with the state's `num` and SHA*_Final writes `md_len` bytes, so a damaged state used to be
// restored as is and the next Update wrote far out of bounds (ASan: SEGV in SHA512_Update).
TEST(HasherRestoreFuzzRegressionTest, RefusesInconsistentState) {
  Hasher h256;
  h256.Update("abc");
  const std::string s256 = h256.SaveState();
  Hasher h512(DigestAlgorithm::kSha512);
  h512.Update(std::string(130, 'z'));
  const std::string s512 = h512.SaveState();

  const auto refused = [](DigestAlgorithm a, const std::string& state) {
    auto r = Hasher::RestoreState(a, state);
    return !r.has_value() && r.error().code() == Code::kInvalidArgument;
  };
  const auto k256 = DigestAlgorithm::kSha256;
  const auto k512 = DigestAlgorithm::kSha512;
  EXPECT_TRUE(refused(k256, With(s256, offsetof(SHA256_CTX, num), 0x31313131)));
  EXPECT_TRUE(refused(k256, With(s256, offsetof(SHA256_CTX, num), SHA256_CBLOCK)));
  EXPECT_TRUE(refused(k256, With(s256, offsetof(SHA256_CTX, num), 4)));  // 3 bytes were hashed
  EXPECT_TRUE(refused(k256, With(s256, offsetof(SHA256_CTX, md_len), 64)));
  EXPECT_TRUE(refused(k512, With(s512, offsetof(SHA512_CTX, num), 0x5a5a5a5a)));
  EXPECT_TRUE(refused(k512, With(s512, offsetof(SHA512_CTX, num), SHA512_CBLOCK)));
  EXPECT_TRUE(refused(k512, With(s512, offsetof(SHA512_CTX, md_len), 1000)));
  EXPECT_TRUE(refused(k512, s256));  // another algorithm's state: the wrong size

  // Consistent states still resume to the digest of the whole input.
  auto r256 = Hasher::RestoreState(k256, s256);
  ASSERT_TRUE(r256.has_value());
  r256->Update("def");
  EXPECT_EQ(r256->Finish(), DigestOf("abcdef"));
  auto r512 = Hasher::RestoreState(k512, s512);
  ASSERT_TRUE(r512.has_value());
  r512->Update("!");
  EXPECT_EQ(r512->Finish(), DigestOf(std::string(130, 'z') + "!", k512));
}

}  // namespace
}  // namespace wharf
