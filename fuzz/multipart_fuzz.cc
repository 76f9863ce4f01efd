// multipart/form-data bodies (http/multipart.h) over any bytes.
//
// Input: "<boundary>\n<body>". The first line is also tried as a Content-Type boundary
// parameter. The body is parsed three times, fed whole, a byte at a time and in pieces of
// another size: the parts, their bytes and the outcome must not depend on where the reads split
// it, the parser's buffer stays bounded, and no part's bytes hold the delimiter.
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "http/multipart.h"

namespace {

using wharf::MultipartLimits;
using wharf::MultipartParser;
using Event = MultipartParser::Event;

struct Run {
  std::vector<std::string> headers;  // "name|filename|type" per part
  std::vector<std::string> bodies;
  bool ended = false;
  wharf::Code code = wharf::Code::kOk;
  std::string message;
};

MultipartLimits SmallLimits() {
  MultipartLimits l;
  l.max_header_bytes = 256;
  l.max_headers = 4;
  l.max_parts = 8;
  l.max_preamble = 512;
  return l;
}

Run Parse(std::string_view boundary, std::string_view body, size_t piece) {
  const MultipartLimits limits = SmallLimits();
  MultipartParser p(boundary, limits);
  const size_t bound = piece + std::max<size_t>(limits.max_header_bytes + 4, 300) + boundary.size();
  Run out;
  size_t fed = 0;
  for (int steps = 0;; ++steps) {
    FUZZ_CHECK(steps < 10 * static_cast<int>(body.size()) + 100);  // progress
    auto e = p.Next();
    FUZZ_CHECK(p.buffered() <= bound);
    if (!e) {
      out.code = e.error().code();
      out.message = e.error().message();
      FUZZ_CHECK(out.code == wharf::Code::kInvalidArgument || out.code == wharf::Code::kTooLarge);
      FUZZ_CHECK(!p.Next().has_value());  // sticky
      return out;
    }
    switch (*e) {
      case Event::kNeedInput:
        if (fed == body.size()) {
          p.FeedEnd();
        } else {
          const size_t n = std::min(piece, body.size() - fed);
          p.Feed(body.substr(fed, n));
          fed += n;
        }
        break;
      case Event::kPartBegin: {
        FUZZ_CHECK(p.parts() <= limits.max_parts);
        const auto& part = p.part();
        out.headers.push_back(part.name + "|" + (part.filename ? "f:" + *part.filename : "-") +
                              "|" + part.content_type);
        out.bodies.emplace_back();
        if (part.filename) {
          auto clean = wharf::CleanFileName(*part.filename);
          if (clean) {
            FUZZ_CHECK(clean->size() <= 255);
            FUZZ_CHECK(clean->find('/') == std::string::npos);
            std::string cd = wharf::FormatContentDisposition(*clean);
            FUZZ_CHECK(cd.empty() == clean->empty());
            for (char c : cd) FUZZ_CHECK(c >= 0x20 && c < 0x7f);
            auto back = wharf::ParseHeaderParameters(cd);
            if (!clean->empty()) {
              FUZZ_CHECK(back.has_value() && back->Find("filename") != nullptr);
              bool ascii = true;
              for (char c : *clean) ascii = ascii && c >= 0x20 && c < 0x7f;
              if (ascii) FUZZ_CHECK(*back->Find("filename") == *clean);
            }
          }
        }
        break;
      }
      case Event::kPartData:
        FUZZ_CHECK(!p.data().empty());
        FUZZ_CHECK(!out.bodies.empty());
        out.bodies.back() += p.data();
        break;
      case Event::kPartEnd:
        break;
      case Event::kEnd:
        out.ended = true;
        FUZZ_CHECK(p.Next().has_value());
        return out;
    }
  }
}

void CheckBoundary(std::string_view line) {
  auto b = wharf::ParseMultipartBoundary("multipart/form-data; boundary=" + std::string(line));
  if (!b) {
    FUZZ_CHECK(b.error().code() == wharf::Code::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(!b->empty() && b->size() <= 70 && b->back() != ' ');
  // Quoted, it reads back the same.
  std::string quoted = "multipart/form-data; boundary=\"";
  for (char c : *b) {
    if (c == '"' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  auto again = wharf::ParseMultipartBoundary(quoted + "\"");
  FUZZ_CHECK(again && *again == *b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = wharf::fuzz::AsText(data, size), boundary, body;
  wharf::fuzz::SplitFirstLine(in, &boundary, &body);
  CheckBoundary(boundary);
  if (boundary.empty() || boundary.size() > 70) return 0;
  const Run whole = Parse(boundary, body, body.size() + 1);
  const std::string delimiter = "\r\n--" + std::string(boundary);
  for (const std::string& b : whole.bodies) FUZZ_CHECK(b.find(delimiter) == std::string::npos);
  for (size_t piece : {size_t{1}, 1 + size % 61}) {
    const Run split = Parse(boundary, body, piece);
    FUZZ_CHECK(split.headers == whole.headers);
    FUZZ_CHECK(split.bodies == whole.bodies);
    FUZZ_CHECK(split.ended == whole.ended);
    FUZZ_CHECK(split.code == whole.code);
    FUZZ_CHECK(split.message == whole.message);
  }
  return 0;
}
