// multipart/form-data (RFC 7578 over the multipart syntax of RFC 2046 §5.1), parsed as a
// stream: the body goes through a buffer of bounded size, whatever the size of its parts.
//
//   body      = [preamble CRLF] "--" boundary *WSP CRLF part
//               *( CRLF "--" boundary *WSP CRLF part )
//               CRLF "--" boundary "--" [epilogue]
//   part      = *( header-field CRLF ) CRLF *OCTET      (the octets never hold CRLF "--" boundary)
//
// Each part names its form field in `Content-Disposition: form-data; name="…"`; a file part
// adds `filename="…"` and usually a Content-Type. Lines end in CRLF (a bare CR or LF in a part's
// header block is refused); folded header lines and any Content-Transfer-Encoding other than
// 7bit/8bit/binary are refused (RFC 7578 §4.7); `filename*` is ignored (§4.2).
//
// Everything here is plain functions and a state machine without I/O, so that the fuzz target
// drives it directly. Errors: kInvalidArgument (malformed), kTooLarge (past a limit).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace wharf {

// The boundary of a `multipart/form-data; boundary=…` Content-Type (quoted or not; 1..70
// characters of RFC 2046's bchars, not ending in a space). kInvalidArgument: another type, no
// boundary, a bad one, a parameter given twice, or a malformed header.
Result<std::string> ParseMultipartBoundary(std::string_view content_type);

// True when the Content-Type's type is multipart/form-data (any case, any parameters), so the
// request is meant as a form even when the rest of the header is broken.
bool IsMultipartFormData(std::string_view content_type);

// A header value of the form `type[/subtype] *( ";" name "=" (token | quoted-string) )`:
// the type lowercased, parameter names lowercased, quoted values unescaped.
struct HeaderParameters {
  std::string type;
  std::vector<std::pair<std::string, std::string>> params;
  // The value of parameter `name` (lowercase), if present.
  const std::string* Find(std::string_view name) const;
};
// kInvalidArgument: malformed, or one parameter given twice.
Result<HeaderParameters> ParseHeaderParameters(std::string_view value);

// The file name of a part as wharf keeps it: the last path component (browsers of old sent
// "C:\dir\photo.jpg"), at most 255 bytes; control characters are refused. "" and "." and ".."
// give "" (no name). kInvalidArgument.
Result<std::string> CleanFileName(std::string_view filename);

// `inline; filename="…"` for a kept name (quotes and backslashes escaped; bytes outside
// printable ASCII become '_'), plus `filename*=UTF-8''…` (percent-encoded) when the name is not
// plain ASCII. "" for an empty name.
std::string FormatContentDisposition(std::string_view filename);

struct MultipartLimits {
  size_t max_header_bytes = 8 * 1024;  // one part's header block
  size_t max_headers = 16;             // header fields in one part
  size_t max_parts = 256;              // parts in one body
  size_t max_preamble = 16 * 1024;     // bytes before the first boundary
};

// One part's headers.
struct MultipartPart {
  std::string name;                     // the form field
  std::optional<std::string> filename;  // present: a file part (the raw parameter value)
  std::string content_type;             // "" when the part gave none
};

// The state machine. Feed it bytes, call Next until it asks for more, repeat.
//
//   MultipartParser p(boundary);
//   for (;;) {
//     Result<Event> e = p.Next();
//     kNeedInput: p.Feed(bytes) or p.FeedEnd() at the end of the body
//     kPartBegin: p.part() holds the headers;  kPartData: p.data() is the next piece of it
//     kPartEnd:   the part is complete;        kEnd: the closing delimiter was seen
//   }
//
// Memory: the parser buffers what it was fed and not yet handed out; in a part's body it holds
// back at most the delimiter's length minus one (a delimiter may straddle two reads), in a
// header block at most max_header_bytes. An error is sticky: every later Next returns it.
// Not thread-safe; not copyable or movable (the searcher points into the parser).
class MultipartParser {
 public:
  enum class Event { kNeedInput, kPartBegin, kPartData, kPartEnd, kEnd };

  explicit MultipartParser(std::string_view boundary, MultipartLimits limits = {});
  MultipartParser(const MultipartParser&) = delete;
  MultipartParser& operator=(const MultipartParser&) = delete;

  // Appends `bytes` to what the parser holds; invalidates data().
  void Feed(std::string_view bytes);
  // The body has ended: a Next that needs more now fails (truncated body).
  void FeedEnd() { eof_ = true; }
  Result<Event> Next();

  // The current part's headers: valid from kPartBegin to the next kPartBegin.
  const MultipartPart& part() const { return part_; }
  // kPartData's piece (never empty): valid until the next Feed.
  std::string_view data() const { return data_; }
  // Parts begun so far.
  size_t parts() const { return parts_; }
  // Bytes held that were fed and not yet consumed.
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  enum class State { kStart, kPreamble, kAfterBoundary, kHeaders, kBody, kEnd };
  Result<Event> Step();
  Result<Event> AfterBoundary();
  Result<Event> Headers();
  Result<Event> Body(bool discard);
  Status ParseHeaderBlock(std::string_view block);
  Result<Event> Fail(Status st);

  const std::string delimiter_;  // CRLF "--" boundary
  const std::boyer_moore_horspool_searcher<std::string::const_iterator> searcher_;
  const MultipartLimits limits_;
  State state_ = State::kStart;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
  size_t parts_ = 0;
  size_t preamble_ = 0;
  MultipartPart part_;
  std::string_view data_;
  Status error_;
};

}  // namespace wharf
