// wharf-loadgen: a load generator speaking the OCI registry API (and wharf's file API) over a
// pool of keep-alive connections. One JSON line per measured workload on stdout.
//
//   wharf-loadgen push  --target H:P [--repo R] [--mode mono|chunked|oneshot] [--count M]
//                       [--size S] [--conc C] [--chunk N] [--seed X] [--pull] [--tag T]
//   wharf-loadgen pull  --target H:P [--repo R] [--count M] [--size S] [--conc C] [--seed X]
//                       (blobs an earlier push of the same seed stored, or a site fetches)
//   wharf-loadgen rps   --target H:P [--repo R] --kind manifest|head [--seconds T] [--conns K]
//                       [--threads N]
//   wharf-loadgen files --target H:P [--count M] [--size S] [--conc C] [--seed X]
//   wharf-loadgen gen-oci --dir D [--count M] [--size S] [--seed X]   (an OCI layout for skopeo)
//   wharf-loadgen tcp-loop [--size S]                               (loopback TCP limit)
//   wharf-loadgen disk-chunks --dir D [--count M] [--size S] [--conc C]
//                       (disk limit of a chunkserver's write pattern: C threads each write new
//                       files of S bytes in 4 MiB writes, fdatasync, rename into place and
//                       fsync the directory, M files in all)
//
// Blob content is deterministic and cheap: a 1 MiB xorshift pattern, with (seed, index,
// block) stamped into the first 24 bytes of every 1 MiB block so that blobs differ. Digests
// are computed before the clock starts; pulls hash every byte and compare.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/asio.h"
#include "common/digest.h"
#include "common/units.h"
#include "http/client.h"

namespace wharf {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
constexpr size_t kBlock = 1 << 20;

// ---- deterministic content ----------------------------------------------------------------
const std::vector<uint8_t>& Pattern() {
  static const std::vector<uint8_t> p = [] {
    std::vector<uint8_t> v(kBlock);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < v.size(); i += 8) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      std::memcpy(&v[i], &x, 8);
    }
    return v;
  }();
  return p;
}

// Bytes [off, off+n) of blob (seed, idx).
void Fill(uint64_t seed, uint64_t idx, uint64_t off, uint8_t* dst, size_t n) {
  const auto& p = Pattern();
  while (n > 0) {
    uint64_t block = off / kBlock, r = off % kBlock;
    size_t k = std::min<uint64_t>(n, kBlock - r);
    std::memcpy(dst, p.data() + r, k);
    if (r < 24) {
      uint64_t stamp[3] = {seed, idx, block};
      size_t m = std::min<size_t>(k, 24 - r);
      std::memcpy(dst, reinterpret_cast<uint8_t*>(stamp) + r, m);
    }
    dst += k, off += k, n -= k;
  }
}

std::string DigestOfBlob(uint64_t seed, uint64_t idx, uint64_t size) {
  Hasher h;
  std::vector<uint8_t> buf(std::min<uint64_t>(size, kBlock));
  for (uint64_t off = 0; off < size; off += buf.size()) {
    size_t k = std::min<uint64_t>(buf.size(), size - off);
    Fill(seed, idx, off, buf.data(), k);
    h.Update(buf.data(), k);
  }
  return h.Finish().ToString();
}

// ---- options ------------------------------------------------------------------------------
struct Opts {
  std::string cmd, target = "127.0.0.1:5000", repo = "bench/blobs", mode = "mono", kind, dir, tag;
  uint64_t count = 1, size = 16 << 20, conc = 1, chunk = 16 << 20, seed = 1, seconds = 10,
           conns = 32, threads = 1;
  bool pull = false;
};

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "wharf-loadgen: %s\n", msg.c_str());
  std::exit(2);
}

Opts ParseOpts(int argc, char** argv) {
  Opts o;
  if (argc < 2)
    Die("usage: wharf-loadgen push|pull|rps|files|gen-oci|tcp-loop|disk-chunks [options]");
  o.cmd = argv[1];
  std::map<std::string, std::string*> strs = {{"--target", &o.target}, {"--repo", &o.repo},
                                              {"--mode", &o.mode},     {"--kind", &o.kind},
                                              {"--dir", &o.dir},       {"--tag", &o.tag}};
  std::map<std::string, uint64_t*> nums = {{"--count", &o.count}, {"--conc", &o.conc},
                                           {"--seed", &o.seed},   {"--seconds", &o.seconds},
                                           {"--conns", &o.conns}, {"--threads", &o.threads}};
  std::map<std::string, uint64_t*> sizes = {{"--size", &o.size}, {"--chunk", &o.chunk}};
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--pull") {
      o.pull = true;
      continue;
    }
    if (i + 1 >= argc) Die("missing value for " + a);
    std::string v = argv[++i];
    if (strs.count(a)) {
      *strs[a] = v;
    } else if (nums.count(a)) {
      *nums[a] = std::stoull(v);
    } else if (sizes.count(a)) {
      auto b = ParseBytes(v);
      if (!b) Die("bad size " + v);
      *sizes[a] = *b;
    } else {
      Die("unknown option " + a);
    }
  }
  if (o.conc == 0 || o.conns == 0 || o.threads == 0 || o.chunk == 0) Die("zero concurrency");
  return o;
}

double Secs(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void Emit(json j) { std::printf("%s\n", j.dump().c_str()), std::fflush(stdout); }

// ---- a group of worker coroutines ----------------------------------------------------------
struct Group {
  explicit Group(asio::any_io_executor ex) : done(ex, Clock::time_point::max()) {}
  asio::steady_timer done;
  size_t running = 0;
  uint64_t next = 0, errors = 0, ops = 0, bytes = 0;
  std::string first_error;
  void Fail(const std::string& e) {
    if (errors++ == 0) first_error = e;
  }
  void Finished() {
    if (--running == 0) done.cancel();
  }
  awaitable<void> Wait() {
    boost::system::error_code ec;
    while (running > 0) co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
};

// Location header -> request target (drops scheme://host), with a query parameter added.
std::string Target(std::string_view loc, const std::string& param = {}) {
  if (auto p = loc.find("://"); p != std::string_view::npos) {
    auto slash = loc.find('/', p + 3);
    loc = slash == std::string_view::npos ? std::string_view("/") : loc.substr(slash);
  }
  std::string t(loc);
  if (!param.empty()) t += (t.find('?') == std::string::npos ? '?' : '&') + param;
  return t;
}

// Streams bytes [off, off+n) of blob (seed, idx) as the body of an opened call.
awaitable<Status> SendBody(ClientCall& call, uint64_t seed, uint64_t idx, uint64_t off, uint64_t n,
                           std::vector<uint8_t>& buf) {
  for (uint64_t done = 0; done < n;) {
    size_t k = std::min<uint64_t>(buf.size(), n - done);
    Fill(seed, idx, off + done, buf.data(), k);
    Status st = co_await call.WriteBody(buf.data(), k);
    if (!st.ok()) co_return st;
    done += k;
  }
  co_return Status::Ok();
}

struct Reply {
  unsigned status = 0;
  std::string location, body;
};

// One request whose body is a slice of a generated blob.
awaitable<Result<Reply>> Send(HttpClient& c, const Opts& o, http::verb verb, std::string target,
                              HeaderList hdrs, uint64_t idx, uint64_t off, uint64_t n,
                              std::vector<uint8_t>& buf) {
  hdrs.emplace_back("Content-Type", "application/octet-stream");
  WHARF_CO_ASSIGN_OR_RETURN(auto call,
                            co_await c.Open(o.target, verb, std::move(target), std::move(hdrs), n));
  WHARF_CO_RETURN_IF_ERROR(co_await SendBody(*call, o.seed, idx, off, n, buf));
  WHARF_CO_RETURN_IF_ERROR(co_await call->FinishRequest());
  Reply r;
  r.status = call->status();
  r.location = std::string(call->header("Location"));
  WHARF_CO_ASSIGN_OR_RETURN(r.body, co_await call->ReadAll(1 << 20));
  co_return r;
}

Status Expect(const Result<Reply>& r, unsigned want, const char* what) {
  if (!r) return r.error();
  if (r->status != want) {
    return Internal(
        fmt::format("{}: HTTP {} (want {}): {}", what, r->status, want, r->body.substr(0, 200)));
  }
  return Status::Ok();
}

// Pushes blob idx of size o.size the way o.mode says.
awaitable<Status> PushBlob(HttpClient& c, const Opts& o, uint64_t idx, const std::string& digest,
                           std::vector<uint8_t>& buf) {
  std::string uploads = "/v2/" + o.repo + "/blobs/uploads/";
  HeaderList none;
  if (o.mode == "oneshot") {
    auto r = co_await Send(c, o, http::verb::post, uploads + "?digest=" + digest, none, idx, 0,
                           o.size, buf);
    co_return Expect(r, 201, "POST ?digest=");
  }
  auto start = co_await Send(c, o, http::verb::post, uploads, none, idx, 0, 0, buf);
  WHARF_CO_RETURN_IF_ERROR(Expect(start, 202, "POST uploads"));
  std::string loc = start->location;
  if (o.mode == "mono") {
    auto r = co_await Send(c, o, http::verb::put, Target(loc, "digest=" + digest), none, idx, 0,
                           o.size, buf);
    co_return Expect(r, 201, "PUT ?digest=");
  }
  for (uint64_t off = 0; off < o.size; off += o.chunk) {
    uint64_t n = std::min(o.chunk, o.size - off);
    HeaderList h;
    h.emplace_back("Content-Range", fmt::format("{}-{}", off, off + n - 1));
    auto r = co_await Send(c, o, http::verb::patch, Target(loc), h, idx, off, n, buf);
    WHARF_CO_RETURN_IF_ERROR(Expect(r, 202, "PATCH"));
    loc = r->location;
  }
  auto r =
      co_await Send(c, o, http::verb::put, Target(loc, "digest=" + digest), none, idx, 0, 0, buf);
  co_return Expect(r, 201, "PUT ?digest= (close)");
}

// GETs a target and checks the body's size and SHA-256.
awaitable<Status> GetVerify(HttpClient& c, const Opts& o, std::string target,
                            const std::string& digest, uint64_t size, std::vector<uint8_t>& buf) {
  HeaderList none;
  WHARF_CO_ASSIGN_OR_RETURN(auto call,
                            co_await c.Open(o.target, http::verb::get, target, none, std::nullopt));
  WHARF_CO_RETURN_IF_ERROR(co_await call->FinishRequest());
  if (call->status() != 200) {
    auto body = co_await call->ReadAll(4096);
    co_return Internal(fmt::format("GET {}: HTTP {} {}", target, call->status(),
                                   body ? body->substr(0, 200) : ""));
  }
  Hasher h;
  uint64_t got = 0;
  for (;;) {
    WHARF_CO_ASSIGN_OR_RETURN(size_t n, co_await call->ReadSome(buf.data(), buf.size()));
    if (n == 0) break;
    h.Update(buf.data(), n);
    got += n;
  }
  std::string d = h.Finish().ToString();
  if (got != size || d != digest) {
    co_return DigestMismatch(
        fmt::format("GET {}: {} bytes {} (want {} {})", target, got, d, size, digest));
  }
  co_return Status::Ok();
}

struct Job {
  const Opts* o;
  HttpClient* client;
  Group* g;
  const std::vector<std::string>* digests;
  std::vector<std::string>* ids;  // file API ids
  enum Kind { kPush, kPull, kFilePut, kFileGet } kind;
};

awaitable<void> Worker(Job j) {
  std::vector<uint8_t> buf(std::min<uint64_t>(j.o->size, kBlock));
  Group& g = *j.g;
  while (g.next < j.o->count) {
    uint64_t i = g.next++;
    const std::string& digest = (*j.digests)[i];
    Status st;
    if (j.kind == Job::kPush) {
      st = co_await PushBlob(*j.client, *j.o, i, digest, buf);
    } else if (j.kind == Job::kPull) {
      st = co_await GetVerify(*j.client, *j.o, "/v2/" + j.o->repo + "/blobs/" + digest, digest,
                              j.o->size, buf);
    } else if (j.kind == Job::kFilePut) {
      HeaderList none;
      auto r =
          co_await Send(*j.client, *j.o, http::verb::post, "/files", none, i, 0, j.o->size, buf);
      st = Expect(r, 201, "POST /files");
      if (st.ok()) {
        auto body = json::parse(r->body, nullptr, false);
        if (body.is_object() && body.contains("id") && body.value("digest", "") == digest) {
          (*j.ids)[i] = body["id"].get<std::string>();
        } else {
          st = Internal("POST /files: unexpected answer " + r->body.substr(0, 200));
        }
      }
    } else {
      st = co_await GetVerify(*j.client, *j.o, "/files/" + (*j.ids)[i], digest, j.o->size, buf);
    }
    if (st.ok()) {
      g.ops++, g.bytes += j.o->size;
    } else {
      g.Fail(st.ToString());
    }
  }
  g.Finished();
}

// Runs o.count jobs of one kind with o.conc workers; returns {seconds, group}.
awaitable<json> RunJobs(const Opts& o, HttpClient& client, Job::Kind kind, std::string name,
                        const std::vector<std::string>& digests, std::vector<std::string>& ids) {
  auto ex = co_await asio::this_coro::executor;
  Group g(ex);
  auto t0 = Clock::now();
  for (uint64_t w = 0; w < std::min(o.conc, o.count); ++w) {
    Job j{&o, &client, &g, &digests, &ids, kind};
    g.running++;
    asio::co_spawn(ex, Worker(j), asio::detached);
  }
  co_await g.Wait();
  double s = Secs(t0);
  json out = {{"workload", name},      {"target", o.target}, {"count", o.count},
              {"size", o.size},        {"conc", o.conc},     {"ok", g.ops},
              {"errors", g.errors},    {"seconds", s},       {"MBps", g.bytes / s / 1e6},
              {"ops_per_s", g.ops / s}};
  if (g.errors) out["first_error"] = g.first_error;
  co_return out;
}

std::vector<std::string> Digests(const Opts& o) {
  std::vector<std::string> d(o.count);
  for (uint64_t i = 0; i < o.count; ++i) d[i] = DigestOfBlob(o.seed, i, o.size);
  return d;
}

awaitable<Status> PutImageManifest(HttpClient& c, const Opts& o,
                                   const std::vector<std::string>& layers, uint64_t layer_size,
                                   const std::string& tag);

// With --tag, the blobs become the layers of an image manifest of that tag once pushed (after
// the clock stops; its acknowledgement is the push event replication starts from).
awaitable<void> PushCmd(const Opts& o) {
  auto ex = co_await asio::this_coro::executor;
  HttpClient client(ex);
  auto digests = Digests(o);
  std::vector<std::string> ids;
  std::string push_name = "push-" + o.mode;
  json p = co_await RunJobs(o, client, Job::kPush, push_name, digests, ids);
  p["mode"] = o.mode;
  if (o.mode == "chunked") p["chunk"] = o.chunk;
  if (!o.tag.empty() && p["errors"] == 0) {
    Status st = co_await PutImageManifest(client, o, digests, o.size, o.tag);
    if (!st.ok()) {
      p["errors"] = 1;
      p["first_error"] = st.ToString();
    }
  }
  Emit(p);
  if (o.pull) Emit(co_await RunJobs(o, client, Job::kPull, "pull", digests, ids));
}

awaitable<void> PullCmd(const Opts& o) {
  auto ex = co_await asio::this_coro::executor;
  HttpClient client(ex);
  auto digests = Digests(o);
  std::vector<std::string> ids;
  Emit(co_await RunJobs(o, client, Job::kPull, "pull", digests, ids));
}

awaitable<void> FilesCmd(const Opts& o) {
  auto ex = co_await asio::this_coro::executor;
  HttpClient client(ex);
  auto digests = Digests(o);
  std::vector<std::string> ids(o.count);
  Emit(co_await RunJobs(o, client, Job::kFilePut, "file-put", digests, ids));
  Emit(co_await RunJobs(o, client, Job::kFileGet, "file-get", digests, ids));
}

// ---- requests per second -------------------------------------------------------------------
constexpr std::string_view kManifestType = "application/vnd.oci.image.manifest.v1+json";

// Pushes a config blob, then an image manifest of `layers` (each layer_size bytes) as `tag`.
awaitable<Status> PutImageManifest(HttpClient& c, const Opts& o,
                                   const std::vector<std::string>& layers, uint64_t layer_size,
                                   const std::string& tag) {
  std::string config =
      R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
  std::string cdig = DigestOf(config).ToString();
  HeaderList h;
  h.emplace_back("Content-Type", "application/octet-stream");
  std::string uploads = "/v2/" + o.repo + "/blobs/uploads/";
  auto start = co_await c.Request(o.target, http::verb::post, uploads, "", h);
  if (!start || start->status != 202) co_return Internal("config upload start failed");
  std::string put = Target(start->header("Location"), "digest=" + cdig);
  auto r = co_await c.Request(o.target, http::verb::put, put, config, h);
  if (!r || r->status != 201) co_return Internal("config upload failed");
  json jl = json::array();
  for (const auto& d : layers) {
    jl.push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                  {"digest", d},
                  {"size", layer_size}});
  }
  json m = {{"schemaVersion", 2},
            {"mediaType", kManifestType},
            {"config",
             {{"mediaType", "application/vnd.oci.image.config.v1+json"},
              {"digest", cdig},
              {"size", config.size()}}},
            {"layers", jl}};
  std::string body = m.dump();
  HeaderList mh;
  mh.emplace_back("Content-Type", std::string(kManifestType));
  auto mr = co_await c.Request(o.target, http::verb::put, "/v2/" + o.repo + "/manifests/" + tag,
                               body, mh);
  if (!mr || mr->status != 201) {
    co_return Internal("manifest PUT failed: " +
                       (mr ? std::to_string(mr->status) + " " + mr->body : mr.error().ToString()));
  }
  co_return Status::Ok();
}

// Pushes one 4 KiB layer and tags an image of it "bench"; returns the layer digest.
awaitable<Result<std::string>> SetupManifest(HttpClient& c, Opts o) {
  o.mode = "mono", o.size = 4096;
  std::vector<uint8_t> buf(4096);
  std::string layer = DigestOfBlob(o.seed, 0, 4096);
  WHARF_CO_RETURN_IF_ERROR(co_await PushBlob(c, o, 0, layer, buf));
  const std::vector<std::string> layers = {layer};
  WHARF_CO_RETURN_IF_ERROR(co_await PutImageManifest(c, o, layers, 4096, "bench"));
  co_return layer;
}

struct RpsState {
  uint64_t ok = 0, errors = 0;
  std::string first_error;
};

awaitable<void> RpsWorker(HttpClient& c, const Opts& o, std::string target, http::verb verb,
                          Clock::time_point end, RpsState& s, Group& g) {
  HeaderList h;
  h.emplace_back("Accept", std::string(kManifestType));
  while (Clock::now() < end) {
    auto r = co_await c.Request(o.target, verb, target, "", h);
    if (r && r->status == 200) {
      s.ok++;
    } else if (s.errors++ == 0) {
      s.first_error = r ? "HTTP " + std::to_string(r->status) : r.error().ToString();
    }
  }
  g.Finished();
}

awaitable<void> RpsThread(const Opts& o, std::string target, http::verb verb, Clock::time_point end,
                          uint64_t conns, RpsState& s) {
  auto ex = co_await asio::this_coro::executor;
  ClientOptions copts;
  copts.max_idle_per_host = conns + 1;
  HttpClient client(ex, copts);
  Group g(ex);
  for (uint64_t i = 0; i < conns; ++i) {
    g.running++;
    asio::co_spawn(ex, RpsWorker(client, o, target, verb, end, s, g), asio::detached);
  }
  co_await g.Wait();
}

void RpsCmd(const Opts& o) {
  std::string layer;
  {
    asio::io_context io;
    HttpClient c(io.get_executor());
    Result<std::string> r = Err(Internal("not run"));
    auto setup = [&]() -> awaitable<void> { r = co_await SetupManifest(c, o); };
    asio::co_spawn(io, setup(), asio::detached);
    io.run();
    if (!r) Die("setup: " + r.error().ToString());
    layer = *r;
  }
  bool manifest = o.kind == "manifest";
  if (!manifest && o.kind != "head") Die("--kind manifest|head");
  std::string target = "/v2/" + o.repo + (manifest ? "/manifests/bench" : "/blobs/" + layer);
  http::verb verb = manifest ? http::verb::get : http::verb::head;
  std::vector<RpsState> states(o.threads);
  std::vector<std::thread> threads;
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::seconds(o.seconds);
  for (uint64_t t = 0; t < o.threads; ++t) {
    uint64_t conns = o.conns / o.threads + (t < o.conns % o.threads ? 1 : 0);
    threads.emplace_back([&, t, conns] {
      asio::io_context io;
      asio::co_spawn(io, RpsThread(o, target, verb, end, conns, states[t]), asio::detached);
      io.run();
    });
  }
  for (auto& th : threads) th.join();
  double s = Secs(t0);
  RpsState sum;
  for (auto& st : states) {
    sum.ok += st.ok, sum.errors += st.errors;
    if (sum.first_error.empty()) sum.first_error = st.first_error;
  }
  json out = {{"workload", manifest ? "manifest-get" : "blob-head"},
              {"target", o.target},
              {"conns", o.conns},
              {"threads", o.threads},
              {"seconds", s},
              {"ok", sum.ok},
              {"errors", sum.errors},
              {"ops_per_s", sum.ok / s}};
  if (sum.errors) out["first_error"] = sum.first_error;
  Emit(out);
}

// ---- helpers for the orchestration ---------------------------------------------------------
void GenOci(const Opts& o) {
  namespace fs = std::filesystem;
  if (o.dir.empty()) Die("--dir required");
  fs::create_directories(fs::path(o.dir) / "blobs/sha256");
  auto write_blob = [&](const std::string& digest, auto&& fill, uint64_t size) {
    std::ofstream f(fs::path(o.dir) / "blobs/sha256" / digest.substr(7), std::ios::binary);
    std::vector<uint8_t> buf(kBlock);
    for (uint64_t off = 0; off < size; off += kBlock) {
      size_t k = std::min<uint64_t>(kBlock, size - off);
      fill(off, buf.data(), k);
      f.write(reinterpret_cast<char*>(buf.data()), k);
    }
  };
  json layers = json::array();
  for (uint64_t i = 0; i < o.count; ++i) {
    std::string d = DigestOfBlob(o.seed, i, o.size);
    write_blob(
        d, [&](uint64_t off, uint8_t* p, size_t k) { Fill(o.seed, i, off, p, k); }, o.size);
    layers.push_back(
        {{"mediaType", "application/vnd.oci.image.layer.v1.tar"}, {"digest", d}, {"size", o.size}});
  }
  std::string config = fmt::format(
      R"({{"architecture":"amd64","os":"linux","config":{{"Labels":{{"seed":"{}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}})",
      o.seed);
  std::string cdig = DigestOf(config).ToString();
  std::ofstream(fs::path(o.dir) / "blobs/sha256" / cdig.substr(7)) << config;
  json m = {{"schemaVersion", 2},
            {"mediaType", kManifestType},
            {"config",
             {{"mediaType", "application/vnd.oci.image.config.v1+json"},
              {"digest", cdig},
              {"size", config.size()}}},
            {"layers", layers}};
  std::string mb = m.dump();
  std::string mdig = DigestOf(mb).ToString();
  std::ofstream(fs::path(o.dir) / "blobs/sha256" / mdig.substr(7)) << mb;
  json index = {
      {"schemaVersion", 2},
      {"manifests",
       json::array({{{"mediaType", kManifestType},
                     {"digest", mdig},
                     {"size", mb.size()},
                     {"annotations", {{"org.opencontainers.image.ref.name", "bench"}}}}})}};
  std::ofstream(fs::path(o.dir) / "index.json") << index.dump();
  std::ofstream(fs::path(o.dir) / "oci-layout") << R"({"imageLayoutVersion":"1.0.0"})";
}

// Loopback TCP: one thread sends o.size bytes, the other receives them.
void TcpLoop(const Opts& o) {
  uint64_t total = o.size;
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(ls, 1) != 0 ||
      getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    Die("tcp-loop: listen failed");
  }
  std::thread rx([&] {
    int s = accept(ls, nullptr, nullptr);
    std::vector<char> buf(kBlock);
    uint64_t got = 0;
    for (ssize_t n; got < total && (n = read(s, buf.data(), buf.size())) > 0;) got += n;
    close(s);
  });
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) Die("tcp-loop: connect");
  std::vector<char> buf(kBlock, 'x');
  auto t0 = Clock::now();
  for (uint64_t sent = 0; sent < total;) {
    ssize_t n = write(c, buf.data(), std::min<uint64_t>(buf.size(), total - sent));
    if (n <= 0) Die("tcp-loop: write");
    sent += n;
  }
  rx.join();
  double s = Secs(t0);
  close(c), close(ls);
  Emit({{"workload", "tcp-loopback"}, {"bytes", total}, {"seconds", s}, {"MBps", total / s / 1e6}});
}

// A chunkserver's writes (chunkserver/local_chunk_store.cc), without the network: the disk's
// rate for new fsynced chunk files written by several writers at once.
void DiskChunks(const Opts& o) {
  if (o.dir.empty()) Die("disk-chunks: --dir is required");
  std::error_code ec;
  std::filesystem::create_directories(o.dir, ec);
  if (ec) Die("disk-chunks: cannot create " + o.dir + ": " + ec.message());
  const size_t piece = std::min<uint64_t>(o.size, 4u << 20);
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  auto t0 = Clock::now();
  std::vector<std::thread> writers;
  for (uint64_t t = 0; t < o.conc; ++t) {
    writers.emplace_back([&, t] {
      std::vector<uint8_t> buf(piece);
      Fill(o.seed, t, 0, buf.data(), buf.size());
      for (uint64_t i; (i = next++) < o.count && !failed;) {
        const std::string sub = o.dir + "/" + std::to_string(i % 16);
        ::mkdir(sub.c_str(), 0755);
        const std::string tmp = o.dir + "/tmp." + std::to_string(i);
        const std::string dst = sub + "/" + std::to_string(i);
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        bool ok = fd >= 0;
        for (uint64_t off = 0; ok && off < o.size; off += piece) {
          const size_t n = std::min<uint64_t>(piece, o.size - off);
          ok = ::write(fd, buf.data(), n) == static_cast<ssize_t>(n);
        }
        ok = ok && ::fdatasync(fd) == 0;
        if (fd >= 0) ::close(fd);
        ok = ok && ::rename(tmp.c_str(), dst.c_str()) == 0;
        int d = ok ? ::open(sub.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        ok = ok && d >= 0 && ::fsync(d) == 0;
        if (d >= 0) ::close(d);
        if (!ok) failed = true;
      }
    });
  }
  for (auto& w : writers) w.join();
  double s = Secs(t0);
  if (failed) Die("disk-chunks: a write failed in " + o.dir);
  std::filesystem::remove_all(o.dir, ec);
  const uint64_t total = o.count * o.size;
  Emit({{"workload", "disk-chunks"},
        {"conc", o.conc},
        {"bytes", total},
        {"seconds", s},
        {"MBps", total / s / 1e6}});
}

}  // namespace
}  // namespace wharf

int main(int argc, char** argv) {
  using namespace wharf;
  Opts o = ParseOpts(argc, argv);
  if (o.cmd == "rps") {
    RpsCmd(o);
  } else if (o.cmd == "gen-oci") {
    GenOci(o);
  } else if (o.cmd == "tcp-loop") {
    TcpLoop(o);
  } else if (o.cmd == "disk-chunks") {
    DiskChunks(o);
  } else if (o.cmd == "push" || o.cmd == "pull" || o.cmd == "files") {
    if (o.mode != "mono" && o.mode != "chunked" && o.mode != "oneshot") Die("bad --mode");
    asio::io_context io;
    if (o.cmd == "push") {
      asio::co_spawn(io, PushCmd(o), asio::detached);
    } else if (o.cmd == "pull") {
      asio::co_spawn(io, PullCmd(o), asio::detached);
    } else {
      asio::co_spawn(io, FilesCmd(o), asio::detached);
    }
    io.run();
  } else {
    Die("unknown command " + o.cmd);
  }
  return 0;
}
