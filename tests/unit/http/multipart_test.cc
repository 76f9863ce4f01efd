#include "http/multipart.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace wharf {
namespace {

using Event = MultipartParser::Event;

struct Got {
  MultipartPart part;
  std::string body;
};

struct Outcome {
  std::vector<Got> parts;
  Status status;            // the error, or Ok when the closing delimiter was reached
  size_t max_buffered = 0;  // the most the parser held at once
};

// Feeds `body` to a parser in pieces of `piece` bytes and collects what it reports.
Outcome Parse(std::string_view body, std::string_view boundary, size_t piece = 1 << 16,
              MultipartLimits limits = {}) {
  MultipartParser p(boundary, limits);
  Outcome out;
  size_t fed = 0;
  for (;;) {
    Result<Event> e = p.Next();
    out.max_buffered = std::max(out.max_buffered, p.buffered());
    if (!e) {
      out.status = e.error();
      // Sticky.
      Result<Event> again = p.Next();
      EXPECT_FALSE(again.has_value());
      if (!again) {
        EXPECT_EQ(again.error().code(), out.status.code());
      }
      return out;
    }
    switch (*e) {
      case Event::kNeedInput:
        if (fed == body.size()) {
          p.FeedEnd();
        } else {
          size_t n = std::min(piece, body.size() - fed);
          p.Feed(body.substr(fed, n));
          fed += n;
        }
        break;
      case Event::kPartBegin:
        out.parts.push_back(Got{p.part(), {}});
        break;
      case Event::kPartData:
        EXPECT_FALSE(p.data().empty());
        out.parts.back().body += p.data();
        break;
      case Event::kPartEnd:
        break;
      case Event::kEnd:
        return out;
    }
  }
}

std::string Binary() {
  std::string s;
  for (int i = 0; i < 3000; ++i) s.push_back(static_cast<char>((i * 131 + 7) % 256));
  // Near misses of the delimiter, inside the content.
  s += "\r\n--XyZbound";  // a prefix of the delimiter
  s += "--XyZboundary";   // the boundary without the CRLF before it
  s += "\r\n-\r\n--\r\r\n--XyZboundar";
  s += std::string("\0\r\n\0", 4);
  return s;
}

std::string Form(std::string_view boundary, const std::string& bin) {
  std::string b = std::string(boundary);
  return "--" + b +
         "\r\n"
         "Content-Disposition: form-data; name=\"file\"; filename=\"photo.jpg\"\r\n"
         "Content-Type: image/jpeg\r\n"
         "\r\n" +
         bin + "\r\n--" + b +
         "\r\n"
         "Content-Disposition: form-data; name=\"note\"\r\n"
         "\r\n"
         "hello\r\n--" +
         b +
         "\r\n"
         "content-disposition: FORM-DATA; NAME=other; FileName=\"a \\\"q\\\".txt\"; "
         "filename*=UTF-8''x\r\n"
         "\r\n"
         "\r\n--" +
         b + "--\r\n";
}

void ExpectForm(const Outcome& o, const std::string& bin) {
  ASSERT_TRUE(o.status.ok()) << o.status.ToString();
  ASSERT_EQ(o.parts.size(), 3u);
  EXPECT_EQ(o.parts[0].part.name, "file");
  EXPECT_EQ(o.parts[0].part.filename, "photo.jpg");
  EXPECT_EQ(o.parts[0].part.content_type, "image/jpeg");
  EXPECT_EQ(o.parts[0].body, bin);
  EXPECT_EQ(o.parts[1].part.name, "note");
  EXPECT_FALSE(o.parts[1].part.filename.has_value());
  EXPECT_EQ(o.parts[1].part.content_type, "");
  EXPECT_EQ(o.parts[1].body, "hello");
  EXPECT_EQ(o.parts[2].part.name, "other");
  EXPECT_EQ(o.parts[2].part.filename, "a \"q\".txt");
  EXPECT_EQ(o.parts[2].body, "");
}

TEST(MultipartBoundary, Forms) {
  EXPECT_EQ(*ParseMultipartBoundary("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(*ParseMultipartBoundary("Multipart/Form-Data;BOUNDARY=----WebKitFormBoundaryx7"),
            "----WebKitFormBoundaryx7");
  EXPECT_EQ(*ParseMultipartBoundary("multipart/form-data; charset=utf-8; boundary=\"a b:c\""),
            "a b:c");
  EXPECT_EQ(*ParseMultipartBoundary("multipart/form-data; boundary=\"q'x\\(\""), "q'x(");
  EXPECT_EQ(*ParseMultipartBoundary("multipart/form-data; boundary=a=b"), "a=b");
  EXPECT_EQ(*ParseMultipartBoundary("multipart/form-data; boundary=" + std::string(70, 'x')),
            std::string(70, 'x'));
}

TEST(MultipartBoundary, Refusals) {
  for (const std::string& ct : std::vector<std::string>{
           "multipart/form-data",
           "multipart/form-data;",
           "multipart/form-data; boundary=",
           "multipart/form-data; boundary=\"\"",
           "multipart/form-data; boundary=" + std::string(71, 'x'),
           std::string("multipart/form-data; boundary=\"ends with space \""),
           std::string("multipart/form-data; boundary=\"semi;colon\""),
           std::string("multipart/form-data; boundary=\"unterminated"),
           std::string("multipart/form-data; boundary=a; boundary=b"),
           std::string("multipart/form-data; boundary"),
           std::string("multipart/form-data boundary=a"),
           std::string("multipart/mixed; boundary=a"),
           std::string("text/plain"),
           std::string(""),
       }) {
    auto b = ParseMultipartBoundary(ct);
    ASSERT_FALSE(b.has_value()) << ct;
    EXPECT_EQ(b.error().code(), Code::kInvalidArgument) << ct;
    EXPECT_FALSE(b.error().message().empty());
  }
  EXPECT_TRUE(IsMultipartFormData("multipart/form-data; boundary"));
  EXPECT_TRUE(IsMultipartFormData(" MULTIPART/FORM-DATA "));
  EXPECT_FALSE(IsMultipartFormData("multipart/mixed; boundary=a"));
  EXPECT_FALSE(IsMultipartFormData("application/octet-stream"));
}

TEST(MultipartParser, WholeForm) {
  const std::string bin = Binary();
  ExpectForm(Parse(Form("XyZboundary", bin), "XyZboundary"), bin);
}

TEST(MultipartParser, EverySplitOfTheInputGivesTheSameParts) {
  // Delimiters straddle the edges of the pieces at every offset.
  const std::string bin = Binary();
  const std::string body = Form("XyZboundary", bin);
  for (size_t piece : {1, 2, 3, 5, 7, 13, 16, 17, 31, 64, 100, 1000}) {
    SCOPED_TRACE(piece);
    ExpectForm(Parse(body, "XyZboundary", piece), bin);
  }
}

TEST(MultipartParser, PreambleEpilogueAndPadding) {
  std::string body =
      "This is the preamble.\r\n--b \t\r\n"
      "Content-Disposition: form-data; name=f; filename=x\r\n\r\n"
      "data\r\n--b--  \r\nepilogue --b\r\n";
  Outcome o = Parse(body, "b", 3);
  ASSERT_TRUE(o.status.ok()) << o.status.ToString();
  ASSERT_EQ(o.parts.size(), 1u);
  EXPECT_EQ(o.parts[0].body, "data");
  // An empty preamble line.
  o = Parse("\r\n--b\r\nContent-Disposition: form-data; name=f\r\n\r\nx\r\n--b--", "b");
  ASSERT_TRUE(o.status.ok()) << o.status.ToString();
  EXPECT_EQ(o.parts.at(0).body, "x");
}

TEST(MultipartParser, BackslashesEscapeOnlySeparators) {
  Outcome o = Parse(
      "--b\r\nContent-Disposition: form-data; name=f; filename=\"C:\\dir\\a \\\"q\\\" "
      "\\\\x.txt\"\r\n"
      "\r\nx\r\n--b--",
      "b");
  ASSERT_TRUE(o.status.ok()) << o.status.ToString();
  EXPECT_EQ(o.parts.at(0).part.filename, "C:\\dir\\a \"q\" \\x.txt");
  EXPECT_EQ(*CleanFileName(*o.parts.at(0).part.filename), "x.txt");
}

TEST(MultipartParser, TruncatedAnywhereIsAnError) {
  const std::string bin = Binary().substr(0, 200);
  const std::string body = Form("XyZboundary", bin);
  const size_t close = body.rfind("--XyZboundary--") + std::string("--XyZboundary--").size();
  for (size_t n = 0; n < close; ++n) {
    Outcome o = Parse(body.substr(0, n), "XyZboundary", 7);
    ASSERT_FALSE(o.status.ok()) << "prefix of " << n << " bytes was accepted";
    EXPECT_EQ(o.status.code(), Code::kInvalidArgument) << n;
  }
  EXPECT_TRUE(Parse(body.substr(0, close), "XyZboundary").status.ok());
}

TEST(MultipartParser, NoClosingDelimiter) {
  Outcome o = Parse("--b\r\nContent-Disposition: form-data; name=f; filename=x\r\n\r\ndata", "b");
  ASSERT_FALSE(o.status.ok());
  EXPECT_NE(o.status.message().find("no closing delimiter"), std::string::npos)
      << o.status.ToString();
  o = Parse("--b\r\nContent-Disposition: form-data; name=f\r\n\r\ndata\r\n--b\r\n", "b");
  EXPECT_EQ(o.status.code(), Code::kInvalidArgument);
}

TEST(MultipartParser, MissingOrWrongBoundaryInTheBody) {
  // Small: the body ends without one.
  Outcome o = Parse("just some bytes", "b");
  EXPECT_EQ(o.status.code(), Code::kInvalidArgument);
  o = Parse("", "b");
  EXPECT_EQ(o.status.code(), Code::kInvalidArgument);
  // Large: refused after the preamble limit, holding little.
  std::string big(4 << 20, 'a');
  o = Parse(big, "b", 4096);
  EXPECT_EQ(o.status.code(), Code::kInvalidArgument);
  EXPECT_NE(o.status.message().find("no multipart boundary"), std::string::npos);
  EXPECT_LT(o.max_buffered, 4096u + 16);
  // The boundary string with trailing garbage is not a delimiter line.
  o = Parse("--bx\r\nContent-Disposition: form-data; name=f\r\n\r\nx\r\n--b--", "b");
  EXPECT_EQ(o.status.code(), Code::kInvalidArgument);
  o = Parse("--b\r\nContent-Disposition: form-data; name=f\r\n\r\nx\r\n--b-x", "b");
  EXPECT_EQ(o.status.code(), Code::kInvalidArgument);
  o = Parse("--b" + std::string(1000, ' ') + "\r\n", "b");
  EXPECT_EQ(o.status.code(), Code::kInvalidArgument);
}

TEST(MultipartParser, HeaderBombsAreRefusedEarly) {
  // One endless header line.
  std::string body = "--b\r\nContent-Disposition: form-data; name=\"" + std::string(1 << 20, 'n');
  Outcome o = Parse(body, "b", 4096);
  EXPECT_EQ(o.status.code(), Code::kTooLarge);
  EXPECT_LT(o.max_buffered, 8 * 1024 + 4096 + 8);
  // Many small header lines.
  body = "--b\r\nContent-Disposition: form-data; name=f\r\n";
  for (int i = 0; i < 20; ++i) body += "X-H" + std::to_string(i) + ": v\r\n";
  body += "\r\nx\r\n--b--";
  o = Parse(body, "b");
  EXPECT_EQ(o.status.code(), Code::kTooLarge);
  // A header block just under the limit is fine.
  MultipartLimits small;
  small.max_header_bytes = 100;
  std::string hdr = "Content-Disposition: form-data; name=f";
  hdr += "\r\nX: " + std::string(100 - hdr.size() - 5, 'v');
  ASSERT_EQ(hdr.size(), 100u);
  EXPECT_TRUE(Parse("--b\r\n" + hdr + "\r\n\r\nx\r\n--b--", "b", 1, small).status.ok());
  hdr += "v";
  EXPECT_EQ(Parse("--b\r\n" + hdr + "\r\n\r\nx\r\n--b--", "b", 1, small).status.code(),
            Code::kTooLarge);
}

TEST(MultipartParser, TooManyParts) {
  MultipartLimits limits;
  limits.max_parts = 3;
  std::string body;
  for (int i = 0; i < 4; ++i) body += "--b\r\nContent-Disposition: form-data; name=f\r\n\r\nx\r\n";
  body += "--b--";
  Outcome o = Parse(body, "b", 5, limits);
  EXPECT_EQ(o.status.code(), Code::kTooLarge);
  EXPECT_EQ(o.parts.size(), 3u);
  body = body.substr(body.find("--b\r\n", 1));  // three parts
  EXPECT_TRUE(Parse(body, "b", 5, limits).status.ok());
}

TEST(MultipartParser, MalformedPartHeaders) {
  const std::string cd = "Content-Disposition: form-data; name=f";
  for (const std::string& headers : std::vector<std::string>{
           std::string(""),                          // no Content-Disposition
           std::string("Content-Type: text/plain"),  // no Content-Disposition
           cd + "\nX: y",                            // bare LF
           cd + "\rX: y",                            // bare CR
           cd + "\r\n folded",                       // obs-fold
           cd + "\r\nno colon here",                 //
           cd + "\r\n: empty name",                  //
           cd + "\r\nBad Name: v",                   //
           cd + "\r\n" + cd,                         // twice
           std::string("Content-Disposition: attachment; name=f"),
           std::string("Content-Disposition: form-data; filename=x"),  // no name
           std::string("Content-Disposition: form-data; name=a; name=b"),
           std::string("Content-Disposition: form-data; name=\"unterminated"),
           cd + "\r\nContent-Type: nonsense",                  //
           cd + "\r\nContent-Type: a/b\r\nContent-Type: c/d",  //
           cd + "\r\nContent-Transfer-Encoding: base64",       //
           cd + "\r\nX: bell\a",                               // control character
       }) {
    std::string body = "--b\r\n" + headers + "\r\n\r\nx\r\n--b--";
    Outcome o = Parse(body, "b");
    EXPECT_FALSE(o.status.ok()) << headers;
    EXPECT_TRUE(o.parts.empty()) << headers;
  }
  // Accepted: a binary transfer encoding, unknown headers, UTF-8 in a file name.
  Outcome o = Parse("--b\r\n" + cd +
                        "; filename=\"\xc3\xa9t\xc3\xa9.png\"\r\nContent-Transfer-Encoding: "
                        "BINARY\r\nX-Other: 1\r\n\r\nx\r\n--b--",
                    "b");
  ASSERT_TRUE(o.status.ok()) << o.status.ToString();
  EXPECT_EQ(o.parts.at(0).part.filename, "\xc3\xa9t\xc3\xa9.png");
}

TEST(MultipartParser, LargePartStreamsWithBoundedMemory) {
  std::string content(10 << 20, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 7919 >> 3);
  std::string body = "--bnd\r\nContent-Disposition: form-data; name=f; filename=big\r\n\r\n" +
                     content + "\r\n--bnd--\r\n";
  Outcome o = Parse(body, "bnd", 64 * 1024);
  ASSERT_TRUE(o.status.ok()) << o.status.ToString();
  ASSERT_EQ(o.parts.size(), 1u);
  EXPECT_TRUE(o.parts[0].body == content);
  EXPECT_LE(o.max_buffered, 64 * 1024 + 16u);
}

TEST(MultipartFileName, Clean) {
  EXPECT_EQ(*CleanFileName("photo.jpg"), "photo.jpg");
  EXPECT_EQ(*CleanFileName("C:\\Users\\me\\photo.jpg"), "photo.jpg");
  EXPECT_EQ(*CleanFileName("../../etc/passwd"), "passwd");
  EXPECT_EQ(*CleanFileName("dir/"), "");
  EXPECT_EQ(*CleanFileName(".."), "");
  EXPECT_EQ(*CleanFileName(""), "");
  EXPECT_EQ(*CleanFileName("\xc3\xa9t\xc3\xa9 \"x\".png"), "\xc3\xa9t\xc3\xa9 \"x\".png");
  EXPECT_EQ(*CleanFileName(std::string(255, 'a')), std::string(255, 'a'));
  EXPECT_EQ(CleanFileName(std::string(256, 'a')).error().code(), Code::kInvalidArgument);
  EXPECT_EQ(CleanFileName("a\nb").error().code(), Code::kInvalidArgument);
  EXPECT_EQ(CleanFileName(std::string("a\0b", 3)).error().code(), Code::kInvalidArgument);
}

TEST(MultipartFileName, ContentDisposition) {
  EXPECT_EQ(FormatContentDisposition(""), "");
  EXPECT_EQ(FormatContentDisposition("photo.jpg"), "inline; filename=\"photo.jpg\"");
  EXPECT_EQ(FormatContentDisposition("a \"b\" \\c"), "inline; filename=\"a \\\"b\\\" \\\\c\"");
  EXPECT_EQ(FormatContentDisposition("\xc3\xa9.png"),
            "inline; filename=\"__.png\"; filename*=UTF-8''%C3%A9.png");
  // What is formatted parses back to the name.
  for (const std::string& name :
       std::vector<std::string>{"photo.jpg", "a \"b\" \\c", "semi;colon=x.txt", "x"}) {
    auto h = ParseHeaderParameters(FormatContentDisposition(name));
    ASSERT_TRUE(h.has_value()) << name;
    EXPECT_EQ(h->type, "inline");
    ASSERT_NE(h->Find("filename"), nullptr);
    EXPECT_EQ(*h->Find("filename"), name);
  }
}

}  // namespace
}  // namespace wharf
