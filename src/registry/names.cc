#include "registry/names.h"

namespace wharf {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsTagChar(char c) {
  return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-';
}

// Consumes one name component from the front of `s` (up to, not including, a '/').
// Returns false if the text there is not a component.
bool ConsumeComponent(std::string_view& s) {
  size_t i = 0;
  while (true) {
    size_t run = i;
    while (i < s.size() && IsLowerAlnum(s[i])) ++i;
    if (i == run) return false;  // empty, or a separator not followed by [a-z0-9]
    if (i == s.size() || s[i] == '/') break;
    // A separator: ".", "_", "__" or one or more "-".
    if (s[i] == '.') {
      ++i;
    } else if (s[i] == '_') {
      ++i;
      if (i < s.size() && s[i] == '_') ++i;
    } else if (s[i] == '-') {
      while (i < s.size() && s[i] == '-') ++i;
    } else {
      return false;
    }
  }
  s.remove_prefix(i);
  return true;
}

}  // namespace

bool ValidRepositoryName(std::string_view name) {
  if (name.empty() || name.size() > kMaxRepositoryNameLength) return false;
  std::string_view rest = name;
  while (true) {
    if (!ConsumeComponent(rest)) return false;
    if (rest.empty()) return true;
    rest.remove_prefix(1);  // the '/'; an empty component after it fails above
  }
}

bool ValidTag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  if (tag[0] == '.' || tag[0] == '-') return false;
  for (char c : tag) {
    if (!IsTagChar(c)) return false;
  }
  return true;
}

Result<Reference> ParseReference(std::string_view s) {
  Reference ref;
  if (s.find(':') != std::string_view::npos) {
    WHARF_ASSIGN_OR_RETURN(ref.digest, Digest::Parse(s));
    return ref;
  }
  if (!ValidTag(s)) return Err(InvalidArgument("invalid tag"));
  ref.tag = std::string(s);
  return ref;
}

}  // namespace wharf
