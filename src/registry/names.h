// Repository names, tags and manifest references (OCI Distribution Specification v1.1).
//
// Hand-written matchers, not std::regex: these run on every request over untrusted input, and
// std::regex is slow and recurses per character (a long hostile name can exhaust the stack).
#pragma once

#include <string>
#include <string_view>

#include "common/digest.h"
#include "common/status.h"

namespace wharf {

// The longest repository name accepted (the spec's clients limit names to 255 characters).
inline constexpr size_t kMaxRepositoryNameLength = 255;

// True when `name` matches the spec's <name> grammar and is at most 255 characters:
//   component ::= [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//   name      ::= component ( "/" component )*
bool ValidRepositoryName(std::string_view name);

// True when `tag` matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
bool ValidTag(std::string_view tag);

// What /v2/<name>/manifests/<reference> names: a tag or a digest.
struct Reference {
  std::string tag;  // empty when the reference is a digest
  Digest digest;    // empty() when the reference is a tag

  bool is_digest() const { return !digest.empty(); }
  // The tag, or the digest as "sha256:<hex>".
  std::string ToString() const { return is_digest() ? digest.ToString() : tag; }
  friend bool operator==(const Reference&, const Reference&) = default;
};

// A reference containing ':' must be a digest (Digest::Parse's errors: kInvalidArgument, or
// kUnsupported for a well-formed digest of an algorithm wharf lacks); anything else must be a
// valid tag (kInvalidArgument otherwise).
Result<Reference> ParseReference(std::string_view s);

}  // namespace wharf
