#include "auth/base64.h"

#include <array>

namespace wharf::auth {
namespace {

constexpr std::string_view kStd =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kUrl =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Encode(std::string_view data, std::string_view alphabet, bool pad) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8) | uint8_t(data[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += alphabet[(v >> shift) & 63];
  }
  size_t rest = data.size() - i;
  if (rest == 0) return out;
  uint32_t v = uint8_t(data[i]) << 16;
  if (rest == 2) v |= uint8_t(data[i + 1]) << 8;
  out += alphabet[(v >> 18) & 63];
  out += alphabet[(v >> 12) & 63];
  if (rest == 2) out += alphabet[(v >> 6) & 63];
  if (pad) out.append(rest == 1 ? 2 : 1, '=');
  return out;
}

std::array<int8_t, 256> ReverseTable(std::string_view alphabet) {
  std::array<int8_t, 256> t;
  t.fill(-1);
  for (size_t i = 0; i < alphabet.size(); ++i) t[uint8_t(alphabet[i])] = int8_t(i);
  return t;
}

Result<std::string> Decode(std::string_view text, std::string_view alphabet, bool padded,
                           size_t max_bytes) {
  static const auto kStdRev = ReverseTable(kStd);
  static const auto kUrlRev = ReverseTable(kUrl);
  const auto& rev = alphabet == kStd ? kStdRev : kUrlRev;
  if (padded) {
    if (text.size() % 4 != 0) return Err(InvalidArgument("base64: length not a multiple of 4"));
    size_t pads = 0;
    while (pads < 2 && pads < text.size() && text[text.size() - 1 - pads] == '=') ++pads;
    text.remove_suffix(pads);
  }
  if (text.size() % 4 == 1) return Err(InvalidArgument("base64: truncated input"));
  size_t decoded = text.size() / 4 * 3 + (text.size() % 4 ? text.size() % 4 - 1 : 0);
  if (decoded > max_bytes) {
    return Err(TooLarge("base64: decoded data over " + std::to_string(max_bytes) + " bytes"));
  }
  std::string out;
  out.reserve(decoded);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int8_t v = rev[uint8_t(c)];
    if (v < 0) return Err(InvalidArgument("base64: character outside the alphabet"));
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  if ((acc & ((1u << bits) - 1)) != 0) {
    return Err(InvalidArgument("base64: non-zero trailing bits"));
  }
  return out;
}

}  // namespace

std::string Base64Encode(std::string_view data) { return Encode(data, kStd, true); }
std::string Base64UrlEncode(std::string_view data) { return Encode(data, kUrl, false); }

Result<std::string> Base64Decode(std::string_view text, size_t max_bytes) {
  return Decode(text, kStd, true, max_bytes);
}
Result<std::string> Base64UrlDecode(std::string_view text, size_t max_bytes) {
  return Decode(text, kUrl, false, max_bytes);
}

}  // namespace wharf::auth
