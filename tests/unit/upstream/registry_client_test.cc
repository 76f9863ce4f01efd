#include "upstream/registry_client.h"

#include <gtest/gtest.h>

#include "common/digest.h"
#include "common/log.h"
#include "fakes/fake_registry.h"

namespace wharf::upstream {
namespace {

constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";

class RegistryClientTest : public ::testing::Test {
 protected:
  void StartFake(FakeRegistry::Auth auth = FakeRegistry::Auth::kNone) {
    FakeRegistry::Options o;
    o.auth = auth;
    fake_ = std::make_unique<FakeRegistry>(io_.get_executor(), o);
    ASSERT_TRUE(fake_->Start().ok());
  }
  std::unique_ptr<RegistryClient> Client(bool credentials = false) {
    RegistryOptions o;
    o.url = fake_->url();
    o.backoff_initial = std::chrono::milliseconds(1);
    o.backoff_max = std::chrono::milliseconds(5);
    if (credentials) {
      o.user = "alice";
      o.password = "secret";
    }
    auto c = RegistryClient::Create(io_.get_executor(), o);
    EXPECT_TRUE(c) << c.error().ToString();
    return std::move(*c);
  }
  template <typename F>
  void Run(F f) {
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          co_await f();
          done = true;
          fake_->Stop();
        },
        asio::detached);
    io_.run();
    EXPECT_TRUE(done);
  }
  static awaitable<Result<std::string>> ReadAll(UpstreamBlob& blob, size_t piece = 7) {
    std::string out;
    std::vector<char> buf(piece);
    for (;;) {
      WHARF_CO_ASSIGN_OR_RETURN(size_t n, co_await blob.Read(buf.data(), buf.size()));
      if (n == 0) break;
      out.append(buf.data(), n);
    }
    co_return out;
  }
  static std::string Bytes(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) % 251);
    return s;
  }
  asio::io_context io_;
  std::unique_ptr<FakeRegistry> fake_;
};

TEST_F(RegistryClientTest, ManifestByTagAndDigestAndBlobStream) {
  StartFake();
  const std::string blob = Bytes(300000);
  const std::string bd = fake_->AddBlob(blob);
  const std::string manifest = R"({"schemaVersion":2})";
  const std::string md = fake_->AddManifest("team/app", "v1", manifest, kOciManifest);
  Run([&]() -> awaitable<void> {
    auto c = Client();
    auto m = co_await c->GetManifest("team/app", "v1");
    EXPECT_TRUE(m) << m.error().ToString();
    if (!m) co_return;
    EXPECT_EQ(m->content, manifest);
    EXPECT_EQ(m->media_type, kOciManifest);
    EXPECT_EQ(m->digest.ToString(), md);
    auto byd = co_await c->GetManifest("team/app", md);
    EXPECT_TRUE(byd);
    auto head = co_await c->HeadManifest("team/app", "v1");
    EXPECT_TRUE(head);
    if (head) {
      EXPECT_EQ(head->digest.ToString(), md);
    }
    auto missing = co_await c->GetManifest("team/app", "nope");
    EXPECT_EQ(missing.error().code(), Code::kNotFound);

    auto size = co_await c->HeadBlob("team/app", *Digest::Parse(bd));
    EXPECT_TRUE(size);
    if (size) {
      EXPECT_EQ(*size, blob.size());
    }
    auto s = co_await c->OpenBlob("team/app", *Digest::Parse(bd));
    EXPECT_TRUE(s) << s.error().ToString();
    if (!s) co_return;
    EXPECT_EQ((*s)->size(), blob.size());
    auto got = co_await ReadAll(**s, 65536);
    EXPECT_TRUE(got) << got.error().ToString();
    EXPECT_TRUE(got && *got == blob);
    // Keep-alive: everything went over one connection.
    EXPECT_EQ(c->transport().connections_opened(), 1u);
  });
}

TEST_F(RegistryClientTest, ManifestDigestMismatchIsAnError) {
  StartFake();
  const std::string md = fake_->AddManifest("a", "v1", R"({"schemaVersion":2})", kOciManifest);
  fake_->faults.corrupt = true;
  Run([&]() -> awaitable<void> {
    auto c = Client();
    auto m = co_await c->GetManifest("a", md);
    EXPECT_FALSE(m);
    if (!m) {
      EXPECT_EQ(m.error().code(), Code::kDigestMismatch);
    }
    // By tag, the Docker-Content-Digest header disagrees with the content.
    auto t = co_await c->GetManifest("a", "v1");
    EXPECT_FALSE(t);
    if (!t) {
      EXPECT_EQ(t.error().code(), Code::kDigestMismatch);
    }
  });
}

TEST_F(RegistryClientTest, BlobWithWrongBytesFailsBeforeTheLastPiece) {
  StartFake();
  const std::string blob = Bytes(1000);
  const std::string bd = fake_->AddBlob(blob);
  fake_->faults.corrupt = true;
  Run([&]() -> awaitable<void> {
    auto c = Client();
    auto s = co_await c->OpenBlob("a", *Digest::Parse(bd));
    EXPECT_TRUE(s);
    if (!s) co_return;
    std::string out;
    char buf[100];
    Status err;
    for (;;) {
      auto n = co_await (*s)->Read(buf, sizeof buf);
      if (!n) {
        err = n.error();
        break;
      }
      if (*n == 0) break;
      out.append(buf, *n);
    }
    EXPECT_EQ(err.code(), Code::kDigestMismatch);
    EXPECT_EQ(out.size(), 900u);  // the last piece was held back
  });
}

TEST_F(RegistryClientTest, BrokenBlobTransferResumesWithRange) {
  StartFake();
  const std::string blob = Bytes(200000);
  const std::string bd = fake_->AddBlob(blob);
  fake_->faults.cut_blob = 2;
  fake_->faults.cut_after = 70000;
  Run([&]() -> awaitable<void> {
    auto c = Client();
    auto s = co_await c->OpenBlob("a", *Digest::Parse(bd));
    EXPECT_TRUE(s);
    if (!s) co_return;
    auto got = co_await ReadAll(**s, 8192);
    EXPECT_TRUE(got) << got.error().ToString();
    EXPECT_TRUE(got && *got == blob);
    EXPECT_EQ(c->stats().resumes, 2u);
    EXPECT_EQ(fake_->counters.range_gets, 2);
  });
}

TEST_F(RegistryClientTest, ResumesAreBounded) {
  StartFake();
  const std::string blob = Bytes(50000);
  const std::string bd = fake_->AddBlob(blob);
  fake_->faults.cut_blob = 100;
  fake_->faults.cut_after = 10;
  Run([&]() -> awaitable<void> {
    auto c = Client();
    auto s = co_await c->OpenBlob("a", *Digest::Parse(bd));
    EXPECT_TRUE(s);
    if (!s) co_return;
    auto got = co_await ReadAll(**s, 8192);
    EXPECT_FALSE(got);
    if (!got) {
      EXPECT_EQ(got.error().code(), Code::kUnavailable);
    }
    EXPECT_EQ(c->stats().resumes, 5u);
  });
}

TEST_F(RegistryClientTest, UpstreamIgnoringRangeStillResumes) {
  StartFake();
  const std::string blob = Bytes(100000);
  const std::string bd = fake_->AddBlob(blob);
  fake_->faults.cut_blob = 1;
  fake_->faults.cut_after = 30000;
  fake_->faults.ignore_range = true;
  Run([&]() -> awaitable<void> {
    auto c = Client();
    auto s = co_await c->OpenBlob("a", *Digest::Parse(bd));
    EXPECT_TRUE(s);
    if (!s) co_return;
    auto got = co_await ReadAll(**s, 8192);
    EXPECT_TRUE(got && *got == blob);
  });
}

TEST_F(RegistryClientTest, RetriesServiceUnavailableWithBackoff) {
  StartFake();
  const std::string md = fake_->AddManifest("a", "v1", "{}", kOciManifest);
  fake_->faults.fail_503 = 3;
  Run([&]() -> awaitable<void> {
    auto c = Client();
    auto m = co_await c->GetManifest("a", "v1");
    EXPECT_TRUE(m) << m.error().ToString();
    EXPECT_EQ(c->stats().retries, 3u);
    fake_->faults.fail_503 = 10;
    auto gone = co_await c->GetManifest("a", "v1");
    EXPECT_FALSE(gone);
    if (!gone) {
      EXPECT_EQ(gone.error().code(), Code::kUnavailable);
    }
  });
}

TEST_F(RegistryClientTest, UnreachableUpstreamIsUnavailable) {
  StartFake();
  std::string url = fake_->url();
  fake_->Stop();
  Run([&]() -> awaitable<void> {
    RegistryOptions o;
    o.url = url;
    o.backoff_initial = std::chrono::milliseconds(1);
    auto c = RegistryClient::Create(io_.get_executor(), o);
    EXPECT_TRUE(c);
    if (!c) co_return;
    auto m = co_await (*c)->GetManifest("a", "v1");
    EXPECT_FALSE(m);
    if (!m) {
      EXPECT_EQ(m.error().code(), Code::kUnavailable);
    }
    EXPECT_EQ((*c)->stats().retries, 3u);
  });
}

TEST_F(RegistryClientTest, BasicAuth) {
  StartFake(FakeRegistry::Auth::kBasic);
  fake_->AddManifest("a", "v1", "{}", kOciManifest);
  Run([&]() -> awaitable<void> {
    auto anon = Client(false);
    auto refused = co_await anon->GetManifest("a", "v1");
    EXPECT_FALSE(refused);
    if (!refused) {
      EXPECT_EQ(refused.error().code(), Code::kUnavailable);
    }
    auto c = Client(true);
    for (int i = 0; i < 3; ++i) {
      auto m = co_await c->GetManifest("a", "v1");
      EXPECT_TRUE(m) << m.error().ToString();
    }
    // One 401 for anon and one for the first request of c; then Basic goes along.
    EXPECT_EQ(fake_->counters.unauthorized, 2);
  });
}

TEST_F(RegistryClientTest, BearerTokenFlowIsCached) {
  StartFake(FakeRegistry::Auth::kBearer);
  const std::string bd = fake_->AddBlob(Bytes(5000));
  fake_->AddManifest("team/app", "v1", "{}", kOciManifest);
  Run([&]() -> awaitable<void> {
    auto c = Client(true);
    for (int i = 0; i < 3; ++i) {
      auto m = co_await c->GetManifest("team/app", "v1");
      EXPECT_TRUE(m) << m.error().ToString();
    }
    auto s = co_await c->OpenBlob("team/app", *Digest::Parse(bd));
    EXPECT_TRUE(s) << s.error().ToString();
    if (s) {
      auto got = co_await ReadAll(**s, 4096);
      EXPECT_TRUE(got);
    }
    EXPECT_EQ(fake_->counters.token_requests, 1);
    EXPECT_EQ(c->stats().token_fetches, 1u);
    // Without credentials the realm refuses: a clear error.
    auto anon = Client(false);
    auto m = co_await anon->GetManifest("team/app", "v1");
    EXPECT_FALSE(m);
    if (!m) {
      EXPECT_EQ(m.error().code(), Code::kUnavailable);
      EXPECT_NE(m.error().message().find("token realm"), std::string::npos);
    }
  });
}

TEST_F(RegistryClientTest, PushBlobAndManifestSkippingWhatIsThere) {
  StartFake(FakeRegistry::Auth::kBearer);
  const std::string blob = Bytes(3u << 20);
  const Digest d = DigestOf(blob);
  Run([&]() -> awaitable<void> {
    auto c = Client(true);
    int calls = 0;
    BodyWriter body =
        [&blob,
         &calls](std::function<awaitable<Status>(std::string_view)> sink) -> awaitable<Status> {
      ++calls;
      for (size_t off = 0; off < blob.size(); off += 1u << 20) {
        Status st = co_await sink(std::string_view(blob).substr(off, 1u << 20));
        if (!st.ok()) co_return st;
      }
      co_return Status::Ok();
    };
    auto pushed = co_await c->PushBlob("team/app", d, blob.size(), body);
    EXPECT_TRUE(pushed) << pushed.error().ToString();
    EXPECT_TRUE(pushed && *pushed);
    EXPECT_EQ(fake_->blobs[d.ToString()], blob);
    auto again = co_await c->PushBlob("team/app", d, blob.size(), body);
    EXPECT_TRUE(again && !*again);
    EXPECT_EQ(calls, 1);
    std::string manifest = R"({"schemaVersion":2,"layers":[]})";
    auto md = co_await c->PutManifest("team/app", "v2", manifest, kOciManifest);
    EXPECT_TRUE(md) << md.error().ToString();
    EXPECT_EQ(fake_->tags["team/app:v2"], DigestOf(manifest).ToString());
    EXPECT_EQ(fake_->counters.blob_puts, 1);
  });
}

TEST_F(RegistryClientTest, PushRetriesAfterServiceUnavailable) {
  StartFake();
  const std::string blob = Bytes(1000);
  const Digest d = DigestOf(blob);
  Run([&]() -> awaitable<void> {
    auto c = Client();
    fake_->faults.fail_503 = 2;
    BodyWriter body =
        [&blob](std::function<awaitable<Status>(std::string_view)> sink) -> awaitable<Status> {
      co_return co_await sink(blob);
    };
    auto pushed = co_await c->PushBlob("a", d, blob.size(), body);
    EXPECT_TRUE(pushed) << pushed.error().ToString();
    EXPECT_EQ(fake_->blobs[d.ToString()], blob);
  });
}

}  // namespace
}  // namespace wharf::upstream
