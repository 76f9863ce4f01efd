#include "meta/meta_url.h"

namespace wharf {

std::string RedactMetaUrl(std::string_view url) {
  std::string out(url);
  size_t scheme_end = out.find("://");
  if (scheme_end == std::string::npos) return out;
  size_t authority = scheme_end + 3;
  size_t path = out.find_first_of("/?", authority);
  size_t at = out.rfind('@', path == std::string::npos ? out.size() : path);
  if (at != std::string::npos && at >= authority) {
    size_t colon = out.find(':', authority);
    if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
  }
  size_t query = out.find('?');
  for (size_t pos = query; pos != std::string::npos && pos < out.size();) {
    size_t start = pos + 1;
    size_t end = out.find('&', start);
    std::string_view param(out.data() + start,
                           (end == std::string::npos ? out.size() : end) - start);
    if (param.starts_with("password=")) {
      out.replace(start + 9, param.size() - 9, "***");
      end = out.find('&', start);
    }
    pos = end;
  }
  return out;
}

}  // namespace wharf
