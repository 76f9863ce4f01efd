#include "upstream/www_authenticate.h"

#include <cctype>

namespace wharf::upstream {
namespace {

// RFC 7230 tchar.
bool IsTchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

// token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool IsToken68Char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
         c == '~' || c == '+' || c == '/';
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}
  bool AtEnd() const { return pos_ >= s_.size(); }
  char Peek() const { return AtEnd() ? '\0' : s_[pos_]; }
  void SkipSpace() {
    while (!AtEnd() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  // Skips whitespace and empty list elements (",  ,").
  void SkipListSeparators() {
    while (!AtEnd() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == ',')) ++pos_;
  }
  std::string_view Token() {
    size_t start = pos_;
    while (!AtEnd() && IsTchar(s_[pos_])) ++pos_;
    return s_.substr(start, pos_ - start);
  }
  Result<std::string> Quoted() {
    ++pos_;  // the opening quote
    std::string out;
    while (!AtEnd()) {
      char c = s_[pos_++];
      if (c == '"') return out;
      if (c == '\\') {
        if (AtEnd()) break;
        c = s_[pos_++];
      }
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
        return Err(InvalidArgument("control character in a quoted string"));
      }
      out += c;
    }
    return Err(InvalidArgument("unterminated quoted string"));
  }
  size_t pos() const { return pos_; }
  void Rewind(size_t p) { pos_ = p; }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

// After the scheme: either a token68 or a list of auth-params, up to the next challenge.
Status ParseParams(Parser& p, AuthChallenge& ch) {
  p.SkipSpace();
  // token68: its characters, then only '='s, then the end or a comma.
  {
    size_t start = p.pos();
    std::string t68;
    while (!p.AtEnd() && IsToken68Char(p.Peek())) {
      t68 += p.Peek();
      p.Rewind(p.pos() + 1);
    }
    size_t eqs = 0;
    while (p.Peek() == '=') {
      ++eqs;
      p.Rewind(p.pos() + 1);
    }
    p.SkipSpace();
    // A word (with '='s only at its end) alone before a comma or the end cannot be a
    // parameter (a parameter's value is never empty): it is a token68.
    if (!t68.empty() && (p.AtEnd() || p.Peek() == ',')) {
      ch.token68 = t68 + std::string(eqs, '=');
      return Status::Ok();
    }
    p.Rewind(start);
  }
  for (;;) {
    p.SkipSpace();
    if (p.AtEnd()) return Status::Ok();
    size_t before = p.pos();
    std::string_view name = p.Token();
    if (name.empty()) return InvalidArgument("expected a parameter name");
    p.SkipSpace();
    if (p.Peek() != '=') {
      // Not a parameter: the scheme of the next challenge (only after a comma).
      p.Rewind(before);
      return Status::Ok();
    }
    p.Rewind(p.pos() + 1);
    p.SkipSpace();
    std::string value;
    if (p.Peek() == '"') {
      WHARF_ASSIGN_OR_RETURN(value, p.Quoted());
    } else {
      std::string_view v = p.Token();
      if (v.empty()) return InvalidArgument("parameter " + std::string(name) + " has no value");
      value = std::string(v);
    }
    if (ch.params.size() >= kMaxChallengeParams) return InvalidArgument("too many parameters");
    ch.params.emplace(Lower(name), std::move(value));  // the first of a repeated name wins
    p.SkipSpace();
    if (p.AtEnd()) return Status::Ok();
    if (p.Peek() != ',') return InvalidArgument("expected ',' between parameters");
    p.SkipListSeparators();
    if (p.AtEnd()) return Status::Ok();
  }
}

}  // namespace

std::string AuthChallenge::param(const std::string& name) const {
  auto it = params.find(name);
  return it == params.end() ? std::string() : it->second;
}

Result<std::vector<AuthChallenge>> ParseWwwAuthenticate(std::string_view header) {
  if (header.size() > kMaxChallengeHeaderBytes) {
    return Err(InvalidArgument("WWW-Authenticate header too long"));
  }
  for (char c : header) {
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
      return Err(InvalidArgument("control character in WWW-Authenticate"));
    }
  }
  std::vector<AuthChallenge> out;
  Parser p(header);
  for (;;) {
    p.SkipListSeparators();
    if (p.AtEnd()) break;
    std::string_view scheme = p.Token();
    if (scheme.empty()) return Err(InvalidArgument("expected an auth scheme"));
    if (!p.AtEnd() && p.Peek() != ' ' && p.Peek() != '\t' && p.Peek() != ',') {
      return Err(InvalidArgument("malformed auth scheme"));
    }
    AuthChallenge ch;
    ch.scheme = Lower(scheme);
    if (p.Peek() != ',') WHARF_RETURN_IF_ERROR(ParseParams(p, ch));
    if (out.size() >= kMaxChallengeParams) return Err(InvalidArgument("too many challenges"));
    out.push_back(std::move(ch));
  }
  if (out.empty()) return Err(InvalidArgument("no challenge in WWW-Authenticate"));
  return out;
}

}  // namespace wharf::upstream
