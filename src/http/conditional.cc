#include "http/conditional.h"

namespace wharf {
namespace {

std::string_view StripWeak(std::string_view tag) {
  if (tag.size() >= 2 && tag[0] == 'W' && tag[1] == '/') tag.remove_prefix(2);
  return tag;
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

}  // namespace

bool IfNoneMatchHits(std::string_view header, std::string_view etag) {
  const std::string_view want = StripWeak(etag);
  size_t i = 0;
  const size_t n = header.size();
  auto skip_space = [&] {
    while (i < n && IsSpace(header[i])) ++i;
  };
  skip_space();
  if (i < n && header[i] == '*') {
    ++i;
    skip_space();
    return i == n;
  }
  bool any = false;
  while (i < n) {
    skip_space();
    if (i < n && header[i] == ',') {  // empty list elements are allowed
      ++i;
      continue;
    }
    if (i == n) break;
    const size_t start = i;
    if (header.substr(i, 2) == "W/") i += 2;
    if (i >= n || header[i] != '"') return false;
    const size_t close = header.find('"', i + 1);
    if (close == std::string_view::npos) return false;
    i = close + 1;
    if (StripWeak(header.substr(start, i - start)) == want) any = true;
    skip_space();
    if (i < n && header[i] != ',') return false;
  }
  return any;
}

awaitable<bool> RespondIfNotModified(Exchange& ex, std::string_view etag) {
  if (ex.method() != http::verb::get && ex.method() != http::verb::head) co_return false;
  std::string_view inm = ex.header(http::field::if_none_match);
  if (inm.empty() || !IfNoneMatchHits(inm, etag)) co_return false;
  (void)co_await ex.Respond(http::status::not_modified, std::string(), "");
  co_return true;
}

}  // namespace wharf
