#include "http/multipart.h"

#include <fmt/format.h>

#include <algorithm>

namespace wharf {
namespace {

constexpr size_t kMaxBoundary = 70;      // RFC 2046 §5.1.1
constexpr size_t kMaxPadding = 256;      // transport padding after a boundary
constexpr size_t kMaxFileName = 255;     // bytes, as most file systems allow
constexpr size_t kMaxContentType = 255;  // a part's Content-Type
constexpr size_t kMaxFieldName = 1024;   // a part's form field name

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool IsTokenChar(char c) {  // RFC 9110 tchar
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsBoundaryChar(char c) {  // RFC 2046 bchars
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

// Control characters other than HTAB (and DEL): never allowed in a header value.
bool IsControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u < 0x20 && c != '\t') || u == 0x7f;
}

bool IsWsp(char c) { return c == ' ' || c == '\t'; }

void SkipWsp(std::string_view s, size_t* i) {
  while (*i < s.size() && IsWsp(s[*i])) ++*i;
}

std::string_view TrimWsp(std::string_view s) {
  while (!s.empty() && IsWsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsWsp(s.back())) s.remove_suffix(1);
  return s;
}

std::string LowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

// A quoted-string starting at s[*i] == '"' (RFC 9110 §5.6.4). A backslash escapes only a
// separator (a quote, a backslash, ...) and is kept before anything else, as Go's mime package
// does: browsers send Windows paths in file names without escaping their backslashes.
Result<std::string> QuotedString(std::string_view s, size_t* i) {
  std::string out;
  for (++*i; *i < s.size(); ++*i) {
    char c = s[*i];
    if (c == '"') {
      ++*i;
      return out;
    }
    if (c == '\\' && *i + 1 < s.size() &&
        std::string_view("()<>@,;:\\\"/[]?=").find(s[*i + 1]) != std::string_view::npos) {
      c = s[++*i];
    }
    if (IsControl(c)) return Err(InvalidArgument("control character in a quoted string"));
    out.push_back(c);
  }
  return Err(InvalidArgument("unterminated quoted string"));
}

}  // namespace

const std::string* HeaderParameters::Find(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) return &v;
  }
  return nullptr;
}

Result<HeaderParameters> ParseHeaderParameters(std::string_view value) {
  HeaderParameters out;
  size_t i = 0;
  SkipWsp(value, &i);
  size_t start = i;
  while (i < value.size() && (IsTokenChar(value[i]) || value[i] == '/')) ++i;
  if (i == start) return Err(InvalidArgument("header value has no type"));
  out.type = LowerCopy(value.substr(start, i - start));
  for (;;) {
    SkipWsp(value, &i);
    if (i == value.size()) return out;
    if (value[i] != ';') {
      return Err(InvalidArgument(fmt::format("unexpected character at offset {} of a header", i)));
    }
    ++i;
    SkipWsp(value, &i);
    if (i == value.size()) return out;  // a trailing ';'
    start = i;
    while (i < value.size() && IsTokenChar(value[i])) ++i;
    if (i == start) return Err(InvalidArgument("header parameter without a name"));
    std::string name = LowerCopy(value.substr(start, i - start));
    SkipWsp(value, &i);
    if (i == value.size() || value[i] != '=') {
      return Err(InvalidArgument(fmt::format("header parameter {} has no value", name)));
    }
    ++i;
    SkipWsp(value, &i);
    std::string v;
    if (i < value.size() && value[i] == '"') {
      WHARF_ASSIGN_OR_RETURN(v, QuotedString(value, &i));
    } else {
      // Unquoted: a token, leniently anything up to ';' or white space (boundaries such as
      // `a=b` are sent unquoted by some clients).
      start = i;
      while (i < value.size() && value[i] != ';' && !IsWsp(value[i]) && value[i] != '"' &&
             !IsControl(value[i])) {
        ++i;
      }
      if (i == start)
        return Err(InvalidArgument(fmt::format("header parameter {} is empty", name)));
      v = std::string(value.substr(start, i - start));
    }
    if (out.Find(name) != nullptr) {
      return Err(InvalidArgument(fmt::format("header parameter {} given twice", name)));
    }
    out.params.emplace_back(std::move(name), std::move(v));
  }
}

bool IsMultipartFormData(std::string_view content_type) {
  std::string_view type = TrimWsp(content_type.substr(0, content_type.find(';')));
  return EqualsNoCase(type, "multipart/form-data");
}

Result<std::string> ParseMultipartBoundary(std::string_view content_type) {
  if (!IsMultipartFormData(content_type)) {
    return Err(InvalidArgument("Content-Type is not multipart/form-data"));
  }
  Result<HeaderParameters> h = ParseHeaderParameters(content_type);
  if (!h) return Err(InvalidArgument("multipart Content-Type: " + h.error().message()));
  const std::string* b = h->Find("boundary");
  if (b == nullptr) return Err(InvalidArgument("multipart Content-Type has no boundary"));
  if (b->empty() || b->size() > kMaxBoundary) {
    return Err(InvalidArgument(fmt::format("multipart boundary must be 1 to {} characters, not {}",
                                           kMaxBoundary, b->size())));
  }
  if (!std::all_of(b->begin(), b->end(), IsBoundaryChar) || b->back() == ' ') {
    return Err(InvalidArgument("multipart boundary has a character RFC 2046 does not allow"));
  }
  return *b;
}

Result<std::string> CleanFileName(std::string_view filename) {
  for (char c : filename) {
    if (IsControl(c)) return Err(InvalidArgument("file name holds a control character"));
  }
  size_t slash = filename.find_last_of("/\\");
  if (slash != std::string_view::npos) filename.remove_prefix(slash + 1);
  if (filename == "." || filename == "..") filename = {};
  if (filename.size() > kMaxFileName) {
    return Err(InvalidArgument(fmt::format("file name over {} bytes", kMaxFileName)));
  }
  return std::string(filename);
}

std::string FormatContentDisposition(std::string_view filename) {
  if (filename.empty()) return {};
  std::string quoted;
  bool ascii = true;
  for (char c : filename) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      ascii = false;
      quoted.push_back('_');
      continue;
    }
    if (c == '"' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  std::string out = "inline; filename=\"" + quoted + "\"";
  if (!ascii) {
    out += "; filename*=UTF-8''";
    for (char c : filename) {
      const auto u = static_cast<unsigned char>(c);
      if ((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
          std::string_view("!#$&+-.^_`|~").find(c) != std::string_view::npos) {
        out.push_back(c);
      } else {
        out += fmt::format("%{:02X}", u);
      }
    }
  }
  return out;
}

// ---- MultipartParser ----

MultipartParser::MultipartParser(std::string_view boundary, MultipartLimits limits)
    : delimiter_("\r\n--" + std::string(boundary)),
      searcher_(delimiter_.begin(), delimiter_.end()),
      limits_(limits) {}

void MultipartParser::Feed(std::string_view bytes) {
  data_ = {};
  if (pos_ > 0) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

Result<MultipartParser::Event> MultipartParser::Fail(Status st) {
  error_ = st;
  return Err(std::move(st));
}

Result<MultipartParser::Event> MultipartParser::Next() {
  if (!error_.ok()) return Err(error_);
  data_ = {};
  return Step();
}

Result<MultipartParser::Event> MultipartParser::Step() {
  for (;;) {
    const std::string_view avail = std::string_view(buf_).substr(pos_);
    switch (state_) {
      case State::kStart: {
        // The first delimiter may open the body without the CRLF before it.
        const std::string_view dash = std::string_view(delimiter_).substr(2);
        const size_t n = std::min(avail.size(), dash.size());
        if (avail.substr(0, n) == dash.substr(0, n)) {
          if (n < dash.size()) {
            if (eof_) return Fail(InvalidArgument("multipart body ends before its first boundary"));
            return Event::kNeedInput;
          }
          pos_ += dash.size();
          state_ = State::kAfterBoundary;
        } else {
          state_ = State::kPreamble;
        }
        continue;
      }
      case State::kPreamble:
        return Body(/*discard=*/true);
      case State::kAfterBoundary:
        return AfterBoundary();
      case State::kHeaders:
        return Headers();
      case State::kBody:
        return Body(/*discard=*/false);
      case State::kEnd:
        return Event::kEnd;
    }
  }
}

// After "--boundary": "--" closes the body; else transport padding, CRLF, and a part.
Result<MultipartParser::Event> MultipartParser::AfterBoundary() {
  const std::string_view avail = std::string_view(buf_).substr(pos_);
  if (!avail.empty() && avail[0] == '-') {
    if (avail.size() < 2) {
      if (eof_) return Fail(InvalidArgument("multipart body ends inside its closing delimiter"));
      return Event::kNeedInput;
    }
    if (avail[1] != '-') return Fail(InvalidArgument("multipart boundary followed by '-'"));
    pos_ += 2;
    state_ = State::kEnd;  // the epilogue, if any, is not looked at
    return Event::kEnd;
  }
  size_t i = 0;
  while (i < avail.size() && i <= kMaxPadding && IsWsp(avail[i])) ++i;
  if (i > kMaxPadding) return Fail(InvalidArgument("multipart boundary padding too long"));
  if (avail.size() < i + 2) {
    if (eof_)
      return Fail(
          InvalidArgument("multipart body ends after a boundary: no closing "
                          "delimiter"));
    return Event::kNeedInput;
  }
  if (avail[i] != '\r' || avail[i + 1] != '\n') {
    return Fail(
        InvalidArgument("multipart boundary not followed by CRLF (or a boundary string "
                        "inside a part)"));
  }
  if (parts_ == limits_.max_parts) {
    return Fail(TooLarge(fmt::format("multipart body has more than {} parts", limits_.max_parts)));
  }
  pos_ += i + 2;
  state_ = State::kHeaders;
  return Step();
}

Result<MultipartParser::Event> MultipartParser::Headers() {
  const std::string_view avail = std::string_view(buf_).substr(pos_);
  size_t end = std::string_view::npos, skip = 0;
  if (avail.size() >= 2 && avail.substr(0, 2) == "\r\n") {
    end = 0;  // no header fields at all
    skip = 2;
  } else {
    end = avail.substr(0, limits_.max_header_bytes + 4).find("\r\n\r\n");
    skip = 4;
  }
  if (end == std::string_view::npos) {
    if (avail.size() >= limits_.max_header_bytes + 4) {
      return Fail(TooLarge(
          fmt::format("multipart part header block over {} bytes", limits_.max_header_bytes)));
    }
    if (eof_) return Fail(InvalidArgument("multipart body ends inside a part's headers"));
    return Event::kNeedInput;
  }
  if (end > limits_.max_header_bytes) {
    return Fail(TooLarge(
        fmt::format("multipart part header block over {} bytes", limits_.max_header_bytes)));
  }
  Status st = ParseHeaderBlock(avail.substr(0, end));
  if (!st.ok()) return Fail(std::move(st));
  pos_ += end + skip;
  ++parts_;
  state_ = State::kBody;
  return Event::kPartBegin;
}

Status MultipartParser::ParseHeaderBlock(std::string_view block) {
  part_ = MultipartPart{};
  bool have_disposition = false, have_type = false;
  size_t fields = 0;
  while (!block.empty()) {
    size_t eol = block.find("\r\n");
    std::string_view line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view{} : block.substr(eol + 2);
    if (line.find_first_of("\r\n") != std::string_view::npos) {
      return InvalidArgument("bare CR or LF in a multipart part header");
    }
    if (IsWsp(line.empty() ? 'x' : line[0])) {
      return InvalidArgument("folded multipart part header lines are not allowed");
    }
    if (++fields > limits_.max_headers) {
      return TooLarge(
          fmt::format("multipart part has more than {} header fields", limits_.max_headers));
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 ||
        !std::all_of(line.begin(), line.begin() + colon, IsTokenChar)) {
      return InvalidArgument("malformed multipart part header line");
    }
    std::string_view name = line.substr(0, colon);
    std::string_view value = TrimWsp(line.substr(colon + 1));
    if (std::any_of(value.begin(), value.end(), IsControl)) {
      return InvalidArgument("control character in a multipart part header");
    }
    if (EqualsNoCase(name, "content-disposition")) {
      if (have_disposition) return InvalidArgument("multipart part has two Content-Disposition");
      have_disposition = true;
      Result<HeaderParameters> h = ParseHeaderParameters(value);
      if (!h) return InvalidArgument("multipart Content-Disposition: " + h.error().message());
      if (h->type != "form-data") {
        return InvalidArgument("multipart part is not Content-Disposition: form-data");
      }
      const std::string* field = h->Find("name");
      if (field == nullptr) return InvalidArgument("multipart part has no name parameter");
      if (field->size() > kMaxFieldName) return TooLarge("multipart field name too long");
      part_.name = *field;
      if (const std::string* f = h->Find("filename")) part_.filename = *f;
    } else if (EqualsNoCase(name, "content-type")) {
      if (have_type) return InvalidArgument("multipart part has two Content-Type");
      have_type = true;
      if (value.size() > kMaxContentType) return TooLarge("multipart part Content-Type too long");
      Result<HeaderParameters> h = ParseHeaderParameters(value);
      if (!h || h->type.find('/') == std::string::npos) {
        return InvalidArgument("malformed multipart part Content-Type");
      }
      part_.content_type = std::string(value);
    } else if (EqualsNoCase(name, "content-transfer-encoding")) {
      if (!EqualsNoCase(value, "binary") && !EqualsNoCase(value, "8bit") &&
          !EqualsNoCase(value, "7bit")) {
        return InvalidArgument(
            fmt::format("multipart Content-Transfer-Encoding {} is not supported", value));
      }
    }
  }
  if (!have_disposition) return InvalidArgument("multipart part has no Content-Disposition");
  return Status::Ok();
}

// In a part's body (or the preamble, which is dropped): everything up to the next delimiter.
Result<MultipartParser::Event> MultipartParser::Body(bool discard) {
  const auto begin = buf_.cbegin() + static_cast<std::ptrdiff_t>(pos_);
  const auto found = std::search(begin, buf_.cend(), searcher_);
  const size_t avail = buf_.size() - pos_;
  size_t take = 0;
  bool at_delimiter = false;
  if (found != buf_.cend()) {
    take = static_cast<size_t>(found - begin);
    at_delimiter = true;
  } else if (avail >= delimiter_.size()) {
    take = avail - (delimiter_.size() - 1);  // the rest may start a delimiter
  }
  if (discard) {
    preamble_ += take;
    if (preamble_ > limits_.max_preamble) {
      return Fail(InvalidArgument(fmt::format(
          "no multipart boundary in the first {} bytes of the body", limits_.max_preamble)));
    }
    pos_ += take;
    take = 0;
  }
  if (take > 0) {
    data_ = std::string_view(buf_).substr(pos_, take);
    pos_ += take;
    return Event::kPartData;
  }
  if (at_delimiter) {
    pos_ += delimiter_.size();
    const bool was_body = state_ == State::kBody;
    state_ = State::kAfterBoundary;
    if (was_body) return Event::kPartEnd;
    return AfterBoundary();
  }
  if (eof_) {
    return Fail(InvalidArgument(discard ? "multipart body holds no boundary"
                                        : "multipart body ends inside a part: no closing "
                                          "delimiter"));
  }
  return Event::kNeedInput;
}

}  // namespace wharf
