// Form uploads (gateway/file_form.h) over the in-memory cluster: the multipart reader over a
// body arriving in pieces of any size, files stored with their names and types, and nothing
// kept when the body is broken half way.
#include "gateway/file_form.h"

#include <gtest/gtest.h>

#include <cstring>

#include "blob/blob_service.h"
#include "common/digest.h"
#include "unit/gateway/gateway_fixture.h"

namespace wharf {
namespace {

// A body that arrives `piece` bytes at a time.
class PieceSource final : public ByteSource {
 public:
  PieceSource(std::string data, size_t piece) : data_(std::move(data)), piece_(piece) {}
  awaitable<Result<size_t>> Read(void* buf, size_t n) override {
    const size_t take = std::min({n, piece_, data_.size() - off_});
    std::memcpy(buf, data_.data() + off_, take);
    off_ += take;
    co_return take;
  }

 private:
  std::string data_;
  size_t piece_;
  size_t off_ = 0;
};

std::string Content(size_t n, int seed) {
  std::string s(n, '\0');
  uint32_t x = static_cast<uint32_t>(seed) * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

std::string FilePart(const std::string& b, const std::string& field, const std::string& name,
                     const std::string& type, const std::string& bytes) {
  std::string h = "--" + b + "\r\nContent-Disposition: form-data; name=\"" + field +
                  "\"; filename=\"" + name + "\"\r\n";
  if (!type.empty()) h += "Content-Type: " + type + "\r\n";
  return h + "\r\n" + bytes + "\r\n";
}

class FileFormTest : public GatewayFixture {
 protected:
  void SetUp() override {
    GatewayFixture::SetUp();
    blobs_ = std::make_unique<BlobService>(BlobContextOf(ctx_));
    ctx_.blobs = blobs_.get();
  }
  void TearDown() override {
    blobs_.reset();
    GatewayFixture::TearDown();
  }

  Result<std::vector<FormFile>> Store(std::string body, size_t piece,
                                      std::string boundary = "b0undary") {
    Result<std::vector<FormFile>> out = Err(Internal("not run"));
    Run([&]() -> awaitable<void> {
      PieceSource src(body, piece);
      MultipartReader reader(src, boundary);
      out = co_await StoreFormFiles(ctx_, reader, "req-1");
    });
    return out;
  }

  std::string ReadFile(const std::string& id) {
    std::string got;
    Run([&]() -> awaitable<void> {
      Result<OpenedFile> f = co_await blobs_->OpenFile(id);
      if (!f) co_return;
      std::string* to = &got;
      ByteSink sink = [to](std::string_view piece) -> awaitable<Status> {
        to->append(piece);
        co_return Status::Ok();
      };
      Status st = co_await f->reader->Read(0, f->record.size, sink);
      EXPECT_TRUE(st.ok()) << st.ToString();
    });
    return got;
  }

  std::unique_ptr<BlobService> blobs_;
};

TEST_F(FileFormTest, TwoFilesAndAFieldInPiecesOfAnySize) {
  const std::string a = Content(10000, 1), b = Content(3, 2);
  const std::string body = "preamble\r\n" + FilePart("b0undary", "file", "C:\\x\\one.bin", "", a) +
                           "--b0undary\r\nContent-Disposition: form-data; name=note\r\n\r\n"
                           "some text\r\n" +
                           FilePart("b0undary", "pic", "two.png", "image/png", b) +
                           "--b0undary--\r\n";
  for (size_t piece : {1, 9, 4096, 1 << 20}) {
    SCOPED_TRACE(piece);
    auto files = Store(body, piece);
    ASSERT_TRUE(files.has_value()) << files.error().ToString();
    ASSERT_EQ(files->size(), 2u);
    const FileRecord& one = (*files)[0].file;
    EXPECT_EQ((*files)[0].field, "file");
    EXPECT_EQ(one.name, "one.bin");
    EXPECT_EQ(one.content_type, "application/octet-stream");
    EXPECT_EQ(one.size, a.size());
    EXPECT_EQ(one.digest, DigestOf(a));
    EXPECT_EQ(ReadFile(one.id), a);
    const FileRecord& two = (*files)[1].file;
    EXPECT_EQ(two.name, "two.png");
    EXPECT_EQ(two.content_type, "image/png");
    EXPECT_EQ(ReadFile(two.id), b);
    // As stored.
    auto got = meta_->GetFile(two.id);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->name, "two.png");
    EXPECT_EQ(got->content_type, "image/png");
  }
}

TEST_F(FileFormTest, AnEmptyFileInputIsSkippedButAnEmptyNamedFileIsKept) {
  const std::string body = FilePart("b0undary", "empty", "", "application/octet-stream", "") +
                           FilePart("b0undary", "zero", "zero.txt", "text/plain", "") +
                           "--b0undary--";
  auto files = Store(body, 5);
  ASSERT_TRUE(files.has_value()) << files.error().ToString();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].file.name, "zero.txt");
  EXPECT_EQ((*files)[0].file.size, 0u);
}

TEST_F(FileFormTest, ABrokenBodyKeepsNothing) {
  const std::string first = FilePart("b0undary", "f1", "first.bin", "", Content(9000, 3));
  const std::string second = FilePart("b0undary", "f2", "second.bin", "", Content(9000, 4));
  struct Case {
    std::string what, body;
    Code code;
  };
  const std::vector<Case> cases = {
      {"no closing delimiter", first + second, Code::kInvalidArgument},
      {"truncated in the second part", first + second.substr(0, 5000), Code::kInvalidArgument},
      {"a header bomb in the second part",
       first + "--b0undary\r\nContent-Disposition: form-data; name=x; filename=\"" +
           std::string(100000, 'a'),
       Code::kTooLarge},
      {"a bad second part header",
       first + "--b0undary\r\nContent-Disposition: attachment\r\n\r\nx\r\n--b0undary--",
       Code::kInvalidArgument},
      {"plain fields too large",
       first + "--b0undary\r\nContent-Disposition: form-data; name=big\r\n\r\n" +
           std::string(kMaxFormFieldBytes + 1, 'x') + "\r\n--b0undary--",
       Code::kTooLarge},
      {"only fields",
       "--b0undary\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b0undary--",
       Code::kInvalidArgument},
      {"a control character in a file name",
       first + FilePart("b0undary", "f", "a\x01.txt", "", "x") + "--b0undary--",
       Code::kInvalidArgument},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto files = Store(c.body, 4096);
    ASSERT_FALSE(files.has_value());
    EXPECT_EQ(files.error().code(), c.code) << files.error().ToString();
    // The first file had been committed: it is gone again, and every chunk written is garbage.
    size_t written = 0;
    for (const auto& put : cluster_.put_attempts()) {
      if (!put.ok) continue;
      ++written;
      auto state = meta_->GetChunkState(put.chunk_id);
      ASSERT_TRUE(state.has_value());
      EXPECT_NE(*state, ChunkState::kLive) << put.chunk_id;
    }
    EXPECT_GT(written, 0u);
  }
}

}  // namespace
}  // namespace wharf
