#include "auth/scope.h"

#include <fmt/format.h>

#include <algorithm>

namespace wharf::auth {
namespace {

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }

bool ValidType(std::string_view t) {
  return !t.empty() && std::all_of(t.begin(), t.end(), IsLower);
}

bool ValidName(std::string_view n) {
  if (n.empty() || n.front() == '/' || n.back() == '/' || n.find("//") != n.npos) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return IsLower(c) || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/';
  });
}

bool ValidAction(std::string_view a) {
  return a == "*" || (!a.empty() && std::all_of(a.begin(), a.end(), IsLower));
}

void AddActions(std::vector<std::string>& into, const std::vector<std::string>& from) {
  for (const auto& a : from) {
    if (std::find(into.begin(), into.end(), a) == into.end()) into.push_back(a);
  }
}

}  // namespace

Result<Scope> ParseScope(std::string_view text) {
  if (text.size() > kMaxScopeBytes) return Err(TooLarge("scope too long"));
  size_t first = text.find(':');
  size_t last = text.rfind(':');
  if (first == text.npos || first == last) {
    return Err(InvalidArgument("scope is not type:name:actions"));
  }
  Scope s;
  std::string_view type = text.substr(0, first);
  if (size_t open = type.find('('); open != type.npos) {
    if (type.back() != ')') return Err(InvalidArgument("scope type class not closed"));
    s.klass = std::string(type.substr(open + 1, type.size() - open - 2));
    type = type.substr(0, open);
    if (!ValidType(s.klass)) return Err(InvalidArgument("scope type class malformed"));
  }
  if (!ValidType(type)) return Err(InvalidArgument("scope type malformed"));
  s.type = std::string(type);
  std::string_view name = text.substr(first + 1, last - first - 1);
  if (!ValidName(name)) return Err(InvalidArgument("scope name malformed"));
  s.name = std::string(name);
  std::string_view actions = text.substr(last + 1);
  while (true) {
    size_t comma = actions.find(',');
    std::string_view a = actions.substr(0, comma);
    if (!ValidAction(a)) return Err(InvalidArgument("scope action malformed"));
    AddActions(s.actions, {std::string(a)});
    if (comma == actions.npos) break;
    actions.remove_prefix(comma + 1);
  }
  return s;
}

Result<std::vector<Scope>> ParseScopes(const std::vector<std::string_view>& values) {
  std::vector<Scope> out;
  for (std::string_view v : values) {
    while (!v.empty()) {
      size_t sp = v.find(' ');
      std::string_view one = v.substr(0, sp);
      v.remove_prefix(sp == v.npos ? v.size() : sp + 1);
      if (one.empty()) continue;
      WHARF_ASSIGN_OR_RETURN(Scope s, ParseScope(one));
      auto same = std::find_if(out.begin(), out.end(), [&](const Scope& o) {
        return o.type == s.type && o.klass == s.klass && o.name == s.name;
      });
      if (same != out.end()) {
        AddActions(same->actions, s.actions);
        continue;
      }
      if (out.size() == kMaxScopes) return Err(TooLarge("too many scopes"));
      out.push_back(std::move(s));
    }
  }
  return out;
}

std::string FormatScope(const Scope& s) {
  std::string out = s.type;
  if (!s.klass.empty()) out += "(" + s.klass + ")";
  out += ":" + s.name + ":";
  for (size_t i = 0; i < s.actions.size(); ++i) out += (i ? "," : "") + s.actions[i];
  return out;
}

std::string GoQuote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\x{:02x}", c);
        } else {
          out += char(c);
        }
    }
  }
  return out + "\"";
}

std::string BasicChallenge(std::string_view realm) { return "Basic realm=" + GoQuote(realm); }

std::string BearerChallenge(std::string_view realm, std::string_view service,
                            const std::vector<Scope>& scopes, std::string_view error) {
  std::string out = "Bearer realm=" + GoQuote(realm) + ",service=" + GoQuote(service);
  if (!scopes.empty()) {
    std::string joined;
    for (const auto& s : scopes) joined += (joined.empty() ? "" : " ") + FormatScope(s);
    out += ",scope=" + GoQuote(joined);
  }
  if (!error.empty()) out += ",error=" + GoQuote(error);
  return out;
}

}  // namespace wharf::auth
