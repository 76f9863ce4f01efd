// Strict base64 (RFC 4648 section 4, padded: HTTP Basic credentials) and base64url (section
// 5, unpadded: JWS segments). Decoding refuses anything a conforming encoder would not write:
// characters outside the alphabet, wrong padding, non-zero trailing bits, so one byte string
// has exactly one encoding.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace wharf::auth {

std::string Base64Encode(std::string_view data);
std::string Base64UrlEncode(std::string_view data);
// kInvalidArgument on malformed input; kTooLarge if the decoded size would exceed max_bytes.
Result<std::string> Base64Decode(std::string_view text, size_t max_bytes);
Result<std::string> Base64UrlDecode(std::string_view text, size_t max_bytes);

}  // namespace wharf::auth
