// RenderStatusPage and HtmlEscape: the status page's HTML, from data gathered elsewhere.
#include "gateway/status_page.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

#include "common/units.h"
#include "registry/names.h"

namespace wharf {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// The length of the valid UTF-8 sequence at s[i], or 0.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n = 0;
  uint32_t min = 0;
  uint32_t cp = 0;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    n = 2, min = 0x80, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, min = 0x800, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, min = 0x10000, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

std::string UtcTime(int64_t unix) {
  std::time_t t = static_cast<std::time_t>(unix);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return "?";
  char buf[32];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return std::string(buf, n);
}

std::string Ago(int64_t now, int64_t then) {
  int64_t s = std::max<int64_t>(0, now - then);
  if (s < 120) return fmt::format("{} s ago", s);
  if (s < 7200) return fmt::format("{} min ago", s / 60);
  return fmt::format("{} h ago", s / 3600);
}

std::string MoreText(uint64_t n, bool capped, std::string_view what) {
  if (n == 0 && !capped) return "";
  return fmt::format("and {}{} more {}", capped ? "more than " : "", n, what);
}

constexpr std::string_view kStyle = R"css(
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.4em 0 .5em}
.sub{color:#666;font-size:.9em}
table{border-collapse:collapse;margin:.3em 0 1em;background:#fff}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}
.group{border:1px solid #ccc;border-radius:4px;padding:.5em .8em;margin:.6em 0;background:#fff}
.state{font-weight:600}.active{color:#17702a}.syncing{color:#8a6d00}
.readonly{color:#a04a00}.offline{color:#b00020}
.yes{color:#17702a}.no{color:#b00020}
.bar{width:14em;height:.9em;background:#e4e4e4;border-radius:3px;overflow:hidden;
display:inline-block;vertical-align:middle}
.fill{display:block;height:100%;background:#3a7bd5}.fill.high{background:#d9822b}.fill.full{background:#c62828}
code{font-size:.9em}.err{color:#b00020}
)css";

void RenderMember(std::string& out, const MemberInfo& m) {
  const uint64_t used = m.capacity > m.free ? m.capacity - m.free : 0;
  const double pct =
      m.capacity == 0 ? 0.0 : std::min(100.0, 100.0 * static_cast<double>(used) / m.capacity);
  const char* level = pct >= 95 ? " full" : pct >= 80 ? " high" : "";
  const std::string state(MemberStateName(m.state));
  out += fmt::format(
      "<tr class=\"member\"><td>{}</td><td><code>{}</code></td>"
      "<td class=\"state {}\">{}</td><td class=\"n\">{}</td>"
      "<td><span class=\"bar\" title=\"{:.1f}% used\"><span class=\"fill{}\" "
      "style=\"width:{:.1f}%\"></span></span> {:.0f}%</td>"
      "<td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
      HtmlEscape(m.id), HtmlEscape(m.addr), state, state, m.chunks, pct, level, pct, pct,
      HtmlEscape(FormatBytes(m.free)), HtmlEscape(FormatBytes(m.capacity)));
}

void RenderCluster(std::string& out, const StatusPageData& d) {
  out += "<h2 id=\"cluster\">Cluster</h2>\n";
  if (!d.cluster) {
    out += "<p class=\"err\">No cluster map yet: no master has answered.</p>\n";
    return;
  }
  out += fmt::format("<p class=\"sub\">map version {}, {} group{}</p>\n", d.cluster->version,
                     d.cluster->groups.size(), d.cluster->groups.size() == 1 ? "" : "s");
  for (const GroupInfo& g : d.cluster->groups) {
    out += fmt::format(
        "<div class=\"group\" id=\"group-{}\"><strong>group {}</strong> "
        "<span class=\"{}\">{}</span> <span class=\"sub\">{} member{}</span>\n",
        HtmlEscape(g.id), HtmlEscape(g.id), g.writable ? "yes" : "no",
        g.writable ? "writable" : "not writable", g.members.size(),
        g.members.size() == 1 ? "" : "s");
    out +=
        "<table><tr><th>member</th><th>address</th><th>state</th><th>chunks</th>"
        "<th>used</th><th>free</th><th>capacity</th></tr>\n";
    for (const MemberInfo& m : g.members) RenderMember(out, m);
    out += "</table></div>\n";
  }
}

void RenderTotals(std::string& out, const StatusPageData& d) {
  out += "<h2 id=\"stored\">Stored</h2>\n";
  if (!d.totals) {
    out += "<p class=\"sub\">Not counted yet.</p>\n";
    return;
  }
  const StoredTotals& t = *d.totals;
  out += fmt::format("<p class=\"sub\">counted {}</p>\n", Ago(d.now_unix, d.totals_unix));
  out += "<table><tr><th></th><th>count</th><th>bytes</th></tr>\n";
  auto row = [&out](std::string_view what, uint64_t n, std::optional<uint64_t> bytes) {
    out += fmt::format(
        "<tr><td>{}</td><td class=\"n\" id=\"stored-{}\">{}</td><td class=\"n\">{}</td></tr>\n",
        what, what, n, bytes ? FormatBytes(*bytes) : std::string());
  };
  row("blobs", t.blobs, t.blob_bytes);
  row("manifests", t.manifests, t.manifest_bytes);
  row("files", t.files, t.file_bytes);
  row("repositories", t.repositories, std::nullopt);
  row("tags", t.tags, std::nullopt);
  out += "</table>\n";
}

void RenderRepos(std::string& out, const StatusPageData& d) {
  out += "<h2 id=\"repositories\">Repositories</h2>\n";
  if (!d.repos_error.empty()) {
    out += "<p class=\"err\">" + HtmlEscape(d.repos_error) + "</p>\n";
    return;
  }
  if (d.repos.empty()) {
    out += d.first_page ? "<p class=\"sub\">No repositories you may pull.</p>\n"
                        : "<p class=\"sub\">No repositories after this point.</p>\n";
  } else {
    out += "<table><tr><th>repository</th><th>tag</th><th>digest</th><th>size</th></tr>\n";
    for (const StatusPageRepo& r : d.repos) {
      const size_t rows = std::max<size_t>(1, r.tags.size()) + (r.more_tags || r.more_tags_capped);
      const std::string name = HtmlEscape(r.name);
      out +=
          fmt::format("<tr class=\"repo\"><td rowspan=\"{}\"><strong>{}</strong></td>", rows, name);
      if (r.tags.empty()) out += "<td colspan=\"3\" class=\"sub\">no tags</td></tr>\n";
      for (size_t i = 0; i < r.tags.size(); ++i) {
        const StatusPageTag& t = r.tags[i];
        if (i > 0) out += "<tr>";
        std::string size = t.size ? FormatBytes(*t.size) : std::string("?");
        if (t.index) size += " (index)";
        out += fmt::format(
            "<td class=\"tag\">{}</td><td><code title=\"{}\">{}</code></td>"
            "<td class=\"n\">{}</td></tr>\n",
            HtmlEscape(t.name), HtmlEscape(t.digest),
            HtmlEscape(t.digest.substr(0, std::min<size_t>(t.digest.size(), 19))),
            HtmlEscape(size));
      }
      if (r.more_tags || r.more_tags_capped) {
        out += "<tr><td colspan=\"3\" class=\"sub\">" +
               MoreText(r.more_tags, r.more_tags_capped, "tags") + "</td></tr>\n";
      }
    }
    out += "</table>\n";
  }
  if (d.more_repos || d.more_repos_capped) {
    out += "<p>" + MoreText(d.more_repos, d.more_repos_capped, "repositories");
    if (!d.repos.empty()) {
      // Names are valid repository names ([a-z0-9._/-]): nothing to percent-encode but '/'.
      out += " &middot; <a id=\"next\" href=\"?last=" + HtmlEscape(d.repos.back().name) +
             "\">next page</a>";
    }
    out += "</p>\n";
  }
  if (!d.first_page) out += "<p><a href=\"./\">first page</a></p>\n";
}

void RenderGc(std::string& out, const StatusPageData& d) {
  out += "<h2 id=\"gc\">Garbage collection</h2>\n";
  if (!d.gc) {
    out += "<p class=\"sub\">No round has finished since this gateway started.</p>\n";
    return;
  }
  const GcReport& r = d.gc->report;
  out += fmt::format("<p class=\"sub\">last round finished {} ({}), {} round{} so far</p>\n",
                     UtcTime(d.gc->finished_unix), Ago(d.now_unix, d.gc->finished_unix),
                     d.gc->rounds, d.gc->rounds == 1 ? "" : "s");
  out += "<table><tr><th>freed in that round</th><th></th></tr>\n";
  auto row = [&out](std::string_view what, std::string value) {
    out += fmt::format("<tr><td>{}</td><td class=\"n\">{}</td></tr>\n", what, value);
  };
  row("manifests", std::to_string(r.manifests));
  row("blob links", std::to_string(r.links));
  row("blobs", fmt::format("{} ({})", r.blobs, FormatBytes(r.blob_bytes)));
  row("chunks deleted", fmt::format("{} ({})", r.chunks_deleted, FormatBytes(r.bytes_deleted)));
  row("upload sessions expired", std::to_string(r.uploads_expired));
  out += "</table>\n";
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      size_t n = Utf8SequenceLength(text, i);
      if (n == 0) {
        out += kReplacement;
        ++i;
      } else {
        out.append(text.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '\t':
      case '\n':
        out += static_cast<char>(c);
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += kReplacement;
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  return out;
}

std::string RenderStatusPage(const StatusPageData& d) {
  std::string out;
  out.reserve(16 << 10);
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>wharf status</title>\n<style>";
  out += kStyle;
  out += "</style></head><body>\n<h1>wharf</h1>\n";
  out += fmt::format(
      "<p class=\"sub\">gateway {} &middot; {}{}</p>\n", HtmlEscape(d.version), UtcTime(d.now_unix),
      d.caller.empty() ? std::string() : " &middot; signed in as " + HtmlEscape(d.caller));
  RenderCluster(out, d);
  RenderTotals(out, d);
  RenderRepos(out, d);
  RenderGc(out, d);
  out += "</body></html>\n";
  return out;
}

Result<std::optional<std::string>> ParseStatusPageLast(std::optional<std::string> last) {
  if (!last) return std::optional<std::string>();
  if (last->empty()) return std::optional<std::string>();
  if (!ValidRepositoryName(*last)) return Err(InvalidArgument("last: not a repository name"));
  return last;
}

}  // namespace wharf
