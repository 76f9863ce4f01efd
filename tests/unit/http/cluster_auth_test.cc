#include "http/cluster_auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "common/async.h"
#include "common/checksum.h"
#include "common/fs.h"
#include "common/metrics.h"
#include "http/client.h"

namespace wharf {
namespace {

using Failure = ClusterAuthVerifier::Failure;
using V = http::verb;

constexpr int64_t kNow = 1'700'000'000'000;
const std::string kSecret(40, 's');

std::shared_ptr<const ClusterKey> Key(const std::string& secret = kSecret) {
  auto k = ClusterKey::FromSecret(secret);
  EXPECT_TRUE(k.has_value());
  return *k;
}

constexpr std::string_view kMemberA = "10.0.0.1:7001";

// A signed request as the HttpClient would send it to member A (kMemberA), turned into what
// the verifier reads.
struct Signed {
  std::string method, authority, target, date, nonce, signature, checksum;
  bool has_body = false;
  ClusterAuthVerifier::Request request() const {
    return {method, target, authority, date, nonce, signature, checksum, has_body};
  }
};

Signed Sign(const ClusterKey& key, std::string method, std::string target,
            std::string checksum = "", int64_t now = kNow, std::string_view authority = kMemberA) {
  Signed s{std::move(method),
           std::string(authority),
           std::move(target),
           "",
           "",
           "",
           std::move(checksum),
           false};
  s.has_body = !s.checksum.empty();
  for (auto& [k, v] : SignRequest(key, s.method, s.authority, s.target, s.checksum, now)) {
    if (k == kDateHeader) s.date = v;
    if (k == kNonceHeader) s.nonce = v;
    if (k == kSignatureHeader) s.signature = v;
  }
  return s;
}

class VerifierTest : public ::testing::Test {
 protected:
  ClusterAuthVerifier::Options Opts(size_t max_nonces = 1024) {
    ClusterAuthVerifier::Options o;
    o.max_skew = std::chrono::seconds(60);
    o.max_nonces = max_nonces;
    o.now_ms = [this] { return now_; };
    o.names = {std::string(kMemberA)};
    return o;
  }
  int64_t now_ = kNow;
  std::shared_ptr<const ClusterKey> key_ = Key();
};

TEST_F(VerifierTest, GoodProofPassesOnce) {
  ClusterAuthVerifier v(key_, Opts());
  const std::string sum = FormatChecksum(ChecksumOf("body"));
  Signed s = Sign(*key_, "PUT", "/v1/chunks/00112233445566778899aabbccddeeff", sum);
  EXPECT_EQ(v.Verify(s.request()), Failure::kNone);
  EXPECT_EQ(v.Verify(s.request()), Failure::kReplay);  // the same request again
  Signed g = Sign(*key_, "GET", "/v1/chunks?limit=10&after=00");
  EXPECT_EQ(v.Verify(g.request()), Failure::kNone);
}

TEST_F(VerifierTest, EveryCoveredPartIsTamperEvident) {
  ClusterAuthVerifier v(key_, Opts());
  const std::string sum = FormatChecksum(ChecksumOf("body"));
  const Signed base = Sign(*key_, "DELETE", "/v1/members/g1-a?force=1", sum);
  auto tampered = [&](auto change) {
    Signed s = base;
    change(s);
    return v.Verify(s.request());
  };
  EXPECT_EQ(tampered([](Signed& s) { s.method = "GET"; }), Failure::kSignature);
  EXPECT_EQ(tampered([](Signed& s) { s.authority = "10.0.0.1:7002"; }), Failure::kSignature);
  EXPECT_EQ(tampered([](Signed& s) { s.target = "/v1/members/g1-b?force=1"; }),
            Failure::kSignature);
  EXPECT_EQ(tampered([](Signed& s) { s.target = "/v1/members/g1-a"; }), Failure::kSignature);
  EXPECT_EQ(tampered([](Signed& s) { s.target = "/v1/members/g1-a?force=0"; }),
            Failure::kSignature);
  EXPECT_EQ(tampered([](Signed& s) { s.checksum = FormatChecksum(ChecksumOf("other")); }),
            Failure::kSignature);
  EXPECT_EQ(tampered([](Signed& s) { s.date = std::to_string(kNow + 1); }), Failure::kSignature);
  EXPECT_EQ(tampered([](Signed& s) { s.nonce[0] = s.nonce[0] == 'a' ? 'b' : 'a'; }),
            Failure::kSignature);
  EXPECT_EQ(tampered([](Signed& s) { s.signature[5] = s.signature[5] == '0' ? '1' : '0'; }),
            Failure::kSignature);
  // Another key's signature.
  auto other = Key(std::string(40, 'o'));
  Signed o = Sign(*other, "DELETE", "/v1/members/g1-a?force=1", sum);
  EXPECT_EQ(v.Verify(o.request()), Failure::kSignature);
  // Failed attempts take no place in the nonce cache: the genuine request still passes.
  EXPECT_EQ(v.nonces_for_test(), 0u);
  EXPECT_EQ(v.Verify(base.request()), Failure::kNone);
}

TEST_F(VerifierTest, DateOutsideTheWindowIsRefused) {
  ClusterAuthVerifier v(key_, Opts());
  EXPECT_EQ(v.Verify(Sign(*key_, "GET", "/v1/map", "", kNow - 61'000).request()), Failure::kSkew);
  EXPECT_EQ(v.Verify(Sign(*key_, "GET", "/v1/map", "", kNow + 61'000).request()), Failure::kSkew);
  EXPECT_EQ(v.Verify(Sign(*key_, "GET", "/v1/map", "", kNow - 59'000).request()), Failure::kNone);
  EXPECT_EQ(v.Verify(Sign(*key_, "GET", "/v1/map", "", kNow + 59'000).request()), Failure::kNone);
  // A request replayed once its date left the window is refused for its date.
  Signed s = Sign(*key_, "GET", "/v1/map");
  EXPECT_EQ(v.Verify(s.request()), Failure::kNone);
  now_ += 120'000;
  EXPECT_EQ(v.Verify(s.request()), Failure::kSkew);
}

TEST_F(VerifierTest, MissingHeaders) {
  ClusterAuthVerifier v(key_, Opts());
  const Signed base = Sign(*key_, "GET", "/v1/status");
  for (int i = 0; i < 3; ++i) {
    Signed s = base;
    (i == 0 ? s.date : i == 1 ? s.nonce : s.signature).clear();
    EXPECT_EQ(v.Verify(s.request()), Failure::kMissing) << i;
  }
  ClusterAuthVerifier::Request bare;
  bare.method = "GET";
  bare.target = "/v1/status";
  EXPECT_EQ(v.Verify(bare), Failure::kMissing);
}

TEST_F(VerifierTest, HostileHeaderValuesAreMalformedNeverACrash) {
  ClusterAuthVerifier v(key_, Opts());
  const Signed base = Sign(*key_, "GET", "/v1/status");
  const std::string big(64 * 1024, 'a');
  for (std::string date : {"-1", "+1700000000000", "17e11", " 1700000000000", "1700000000000 ",
                           "9999999999999999999999", "0x10", "１", big.c_str()}) {
    Signed s = base;
    s.date = date;
    EXPECT_EQ(v.Verify(s.request()), Failure::kMalformed) << date.substr(0, 30);
  }
  for (std::string nonce : {std::string(31, 'a'), std::string(33, 'a'), std::string(32, 'A'),
                            std::string(32, 'g'), std::string(31, 'a') + '\n', big}) {
    Signed s = base;
    s.nonce = nonce;
    EXPECT_EQ(v.Verify(s.request()), Failure::kMalformed) << nonce.substr(0, 40);
  }
  for (std::string sig : {std::string(63, 'a'), std::string(65, 'a'), std::string(64, 'Z'),
                          base.signature.substr(0, 62) + "\r\n", big}) {
    Signed s = base;
    s.signature = sig;
    EXPECT_EQ(v.Verify(s.request()), Failure::kMalformed) << sig.substr(0, 70);
  }
  for (std::string sum : {"xxh3:", "crc32:00000000", "xxh3:0011223344556677ff", big.c_str()}) {
    Signed s = Sign(*key_, "PUT", "/v1/chunks/x", sum);
    EXPECT_EQ(v.Verify(s.request()), Failure::kMalformed) << sum.substr(0, 30);
  }
  // A body needs the checksum the signature covers.
  Signed body = Sign(*key_, "POST", "/v1/heartbeat");
  body.has_body = true;
  EXPECT_EQ(v.Verify(body.request()), Failure::kMalformed);
}

TEST_F(VerifierTest, NonceCacheIsBoundedAndNeverReopensAReplay) {
  ClusterAuthVerifier v(key_, Opts(/*max_nonces=*/4));
  std::vector<Signed> sent;
  for (int i = 0; i < 10; ++i) {
    sent.push_back(Sign(*key_, "GET", "/v1/map", "", kNow - 10'000 + i));
    EXPECT_EQ(v.Verify(sent.back().request()), Failure::kNone) << i;
  }
  EXPECT_LE(v.nonces_for_test(), 4u);
  // Every one of them, evicted from the cache or not, is refused when replayed.
  for (const auto& s : sent) EXPECT_EQ(v.Verify(s.request()), Failure::kReplay);
  // Newer requests still pass.
  EXPECT_EQ(v.Verify(Sign(*key_, "GET", "/v1/map").request()), Failure::kNone);
  // Entries that left the window are forgotten.
  now_ += 200'000;
  EXPECT_EQ(v.Verify(Sign(*key_, "GET", "/v1/map", "", now_).request()), Failure::kNone);
  EXPECT_EQ(v.nonces_for_test(), 1u);
}

TEST(ClusterAuthNames, FailureReasons) {
  EXPECT_EQ(ClusterAuthVerifier::FailureName(Failure::kReplay), "replay");
  EXPECT_EQ(ClusterAuthVerifier::FailureName(Failure::kSkew), "clock_skew");
  EXPECT_EQ(ClusterAuthVerifier::FailureName(Failure::kReceiver), "receiver");
  EXPECT_EQ(SignedString("GET", "h:1", "/a?b=c", "1", "n", ""),
            "wharf-cluster-v2\nGET\nh:1\n/a?b=c\n1\nn\n");
}

// A request signed for member A and replayed to member B (same key, its own nonce cache)
// within the window: B refuses it, whatever Host the replay carries.
TEST_F(VerifierTest, ARequestForOneMemberIsRefusedByAnother) {
  ClusterAuthVerifier::Options ob = Opts();
  ob.names = {"10.0.0.2:7001"};
  ClusterAuthVerifier a(key_, Opts()), b(key_, ob);
  const Signed for_a = Sign(*key_, "DELETE", "/v1/chunks/00112233445566778899aabbccddeeff");
  EXPECT_EQ(b.Verify(for_a.request()), Failure::kReceiver);  // sent to B with A's Host
  Signed at_b = for_a;
  at_b.authority = "10.0.0.2:7001";  // B's Host: the signature no longer holds
  EXPECT_EQ(b.Verify(at_b.request()), Failure::kSignature);
  EXPECT_EQ(b.nonces_for_test(), 0u);
  EXPECT_EQ(a.Verify(for_a.request()), Failure::kNone);  // the genuine request at A passes
  // Signed for B, it passes at B.
  EXPECT_EQ(b.Verify(Sign(*key_, "GET", "/v1/chunks", "", kNow, "10.0.0.2:7001").request()),
            Failure::kNone);
  // Without a Host there is nothing to bind to.
  EXPECT_EQ(b.Verify(Sign(*key_, "GET", "/v1/map", "", kNow, "").request()), Failure::kReceiver);
}

TEST_F(VerifierTest, ReceiverNames) {
  using Names = std::vector<std::string>;
  EXPECT_EQ(ReceiverNames("10.0.0.1:7001", {"cs1.example:7001", "0.0.0.0:7001", "[::]:7001",
                                            "10.0.0.9:0", "", "nohost", ":1", "10.0.0.1:7001"}),
            (Names{"10.0.0.1:7001", "cs1.example:7001"}));
  EXPECT_EQ(ReceiverNames("127.0.0.1:7005", {"127.0.0.1:0"}),
            (Names{"127.0.0.1:7005", "localhost:7005", "[::1]:7005"}));
  EXPECT_EQ(ReceiverNames("0.0.0.0:7005", {"0.0.0.0:7005", "master.example:7005"}),
            (Names{"localhost:7005", "127.0.0.1:7005", "[::1]:7005", "master.example:7005"}));
  EXPECT_EQ(ReceiverNames("", {}), Names{});
  ClusterAuthVerifier::Options o = Opts();
  o.names = ReceiverNames("172.17.0.2:7001", {"cs1.example:7001"});
  ClusterAuthVerifier v(key_, o);
  EXPECT_TRUE(v.NamesReceiver("cs1.example:7001"));
  EXPECT_TRUE(v.NamesReceiver("CS1.Example:7001"));  // DNS names are case-insensitive
  EXPECT_TRUE(v.NamesReceiver("172.17.0.2:7001"));
  EXPECT_FALSE(v.NamesReceiver("cs2.example:7001"));
  EXPECT_FALSE(v.NamesReceiver("cs1.example:7002"));
  EXPECT_FALSE(v.NamesReceiver("cs1.example"));
  EXPECT_FALSE(v.NamesReceiver("172.17.0.3:7001"));
  EXPECT_FALSE(v.NamesReceiver("localhost:7001"));  // not a loopback daemon
  EXPECT_FALSE(v.NamesReceiver(""));
  EXPECT_FALSE(v.NamesReceiver(std::string(64 * 1024, 'a')));
  EXPECT_FALSE(v.NamesReceiver("cs1.example:7001\r\nX: y"));
}

class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("wharf-key-" + RandomHex(6));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& content, mode_t mode) {
    std::string p = (dir_ / name).string();
    std::ofstream(p) << content;
    ::chmod(p.c_str(), mode);
    return p;
  }
  std::filesystem::path dir_;
};

TEST_F(KeyFileTest, LoadRefusesWhatIsNotAPrivateLongEnoughFile) {
  EXPECT_TRUE(ClusterKey::Load(Write("good", std::string(64, 'k') + "\n", 0600)).has_value());
  EXPECT_TRUE(ClusterKey::Load(Write("ro", std::string(32, 'k'), 0400)).has_value());
  struct Case {
    std::string path, want;
  };
  std::vector<Case> bad = {
      {(dir_ / "absent").string(), "cannot open"},
      {Write("short", std::string(31, 'k') + "\n\n  ", 0600), "too short"},
      {Write("empty", "", 0600), "too short"},
      {Write("group", std::string(64, 'k'), 0640), "chmod 600"},
      {Write("world", std::string(64, 'k'), 0604), "chmod 600"},
      {Write("gwrite", std::string(64, 'k'), 0620), "chmod 600"},
      {Write("huge", std::string(5000, 'k'), 0600), "not a key file"},
      {dir_.string(), "not a regular file"},
  };
  std::filesystem::create_symlink(dir_ / "good", dir_ / "link");
  bad.push_back({(dir_ / "link").string(), "cannot open"});
  for (const auto& c : bad) {
    auto k = ClusterKey::Load(c.path);
    ASSERT_FALSE(k.has_value()) << c.path;
    EXPECT_NE(k.error().message().find(c.want), std::string::npos) << k.error().message();
    EXPECT_NE(k.error().message().find(c.path), std::string::npos) << k.error().message();
    EXPECT_EQ(k.error().message().find('\n'), std::string::npos) << "one line";
  }
}

TEST_F(KeyFileTest, LoadOrCreateMakesAPrivateRandomKeyOnceAndKeepsIt) {
  const std::string p = (dir_ / "cluster.key").string();
  auto a = ClusterKey::LoadOrCreate(p);
  ASSERT_TRUE(a.has_value()) << a.error().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_GE(st.st_size, 64);
  auto b = ClusterKey::LoadOrCreate(p);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ((*a)->Mac("x"), (*b)->Mac("x"));  // the same key, not a new one
  const std::string q = (dir_ / "other.key").string();
  auto c = ClusterKey::LoadOrCreate(q);
  ASSERT_TRUE(c.has_value());
  EXPECT_NE((*a)->Mac("x"), (*c)->Mac("x"));  // random
}

// The filter and the client together, over real connections.
class ClusterAuthFilterTest : public ::testing::Test {
 protected:
  void Start(std::shared_ptr<const ClusterKey> key) {
    router_ = std::make_unique<Router>(Router::Options{.component = "cat"});
    AddOpsRoutes(*router_, [] { return Status::Ok(); });
    router_->Add({"delete",
                  {V::delete_},
                  PathMatch::Prefix("/thing/"),
                  [this](Exchange& ex) -> awaitable<void> {
                    ++deleted_;
                    (void)co_await ex.Respond(http::status::no_content);
                  }});
    router_->Add(
        {"post", {V::post}, PathMatch::Exact("/post"), [this](Exchange& ex) -> awaitable<void> {
           auto body = co_await ex.ReadAll(1 << 20);
           if (!body) {
             (void)co_await ex.Respond(http::status::bad_request, body.error().message());
             co_return;
           }
           posted_ = *body;
           (void)co_await ex.Respond(http::status::ok, "ok");
         }});
    server_ = std::make_unique<Server>(io_.get_executor(), ServerOptions{}, router_->AsHandler());
    ASSERT_TRUE(server_->Listen("127.0.0.1:0").ok());
    addr_ = server_->local_address();
    ClusterAuthFilter::Options ao;
    ao.component = "cat";
    ao.metric_labels = {{"t", "1"}};
    ao.verifier.names = ReceiverNames(addr_, {});
    router_->AddFilter(std::make_shared<ClusterAuthFilter>(key, ao));
    server_->Start();
  }
  template <typename F>
  void Run(F f) {
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          co_await f();
          done = true;
          server_->Stop();
        },
        asio::detached);
    io_.run();
    EXPECT_TRUE(done);
  }
  static double Failures(const std::string& reason) {
    return Metrics()
        .Counter("wharf_cat_auth_failures_total", "", {{"reason", reason}, {"t", "1"}})
        .Value();
  }
  asio::io_context io_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<Server> server_;
  std::string addr_;
  int deleted_ = 0;
  std::string posted_;
};

TEST_F(ClusterAuthFilterTest, OnlySignedRequestsReachHandlers) {
  auto key = Key();
  Start(key);
  Run([&]() -> awaitable<void> {
    HttpClient open(io_.get_executor());
    ClientOptions ro, mo;
    ro.cluster_key = Key(std::string(40, 'x'));
    mo.cluster_key = key;
    HttpClient rogue(io_.get_executor(), ro);
    HttpClient member(io_.get_executor(), mo);
    const double missing = Failures("missing"), signature = Failures("signature");
    auto r = co_await open.Request(addr_, V::delete_, "/thing/1");
    EXPECT_TRUE(r && r->status == 401u);
    r = co_await rogue.Request(addr_, V::delete_, "/thing/1");
    EXPECT_TRUE(r && r->status == 401u);
    EXPECT_EQ(deleted_, 0);
    EXPECT_EQ(Failures("missing"), missing + 1);
    EXPECT_EQ(Failures("signature"), signature + 1);
    r = co_await member.Request(addr_, V::delete_, "/thing/1");
    EXPECT_TRUE(r && r->status == 204u);
    EXPECT_EQ(deleted_, 1);
    // /healthz and /metrics stay open; unknown paths are not.
    r = co_await open.Request(addr_, V::get, "/healthz");
    EXPECT_TRUE(r && r->status == 200u);
    r = co_await open.Request(addr_, V::get, "/metrics");
    EXPECT_TRUE(r && r->status == 200u);
    r = co_await open.Request(addr_, V::get, "/nothing");
    EXPECT_TRUE(r && r->status == 401u);
    // A signed body reaches the handler; a body that does not match its signed checksum
    // fails as the handler reads it.
    std::string body = "{\"x\": 1}";
    r = co_await member.Request(addr_, V::post, "/post", body);
    EXPECT_TRUE(r && r->status == 200u && posted_ == body);
    posted_.clear();
    HeaderList lie = {{"X-Wharf-Checksum", FormatChecksum(ChecksumOf("something else"))}};
    r = co_await member.Request(addr_, V::post, "/post", body, lie);
    EXPECT_TRUE(r && r->status == 400u) << (r ? r->body : r.error().ToString());
    EXPECT_TRUE(posted_.empty());
    // A signed streaming request with a body must name its checksum.
    auto call = co_await member.Open(addr_, V::post, "/post", {}, 5);
    EXPECT_FALSE(call.has_value());
  });
}

}  // namespace
}  // namespace wharf
