// The status page's HTML (gateway/status_page.h) from hand-made data, hostile names included,
// and the gauges of GatewayStats.
#include "gateway/status_page.h"

#include <gtest/gtest.h>

#include "gateway/gateway_stats.h"

namespace wharf {
namespace {

constexpr std::string_view kHostile = "<script>alert(\"x\")</script>&'";
constexpr std::string_view kHostileEscaped =
    "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;";

size_t Count(std::string_view hay, std::string_view needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string_view::npos;
       at = hay.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

TEST(HtmlEscapeTest, EscapesMarkupAndReplacesWhatIsNotText) {
  EXPECT_EQ(HtmlEscape("plain name/x_y-1.2"), "plain name/x_y-1.2");
  EXPECT_EQ(HtmlEscape(kHostile), kHostileEscaped);
  EXPECT_EQ(HtmlEscape("a\tb\nc"), "a\tb\nc");
  // Control characters, NUL and DEL become U+FFFD.
  EXPECT_EQ(HtmlEscape(std::string("a\0b\x01\x1b\x7f", 6)),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  // Valid UTF-8 stays; broken sequences, overlong forms and surrogates do not.
  EXPECT_EQ(HtmlEscape("caf\xC3\xA9 \xE2\x9C\x93 \xF0\x9F\x90\xB3"),
            "caf\xC3\xA9 \xE2\x9C\x93 \xF0\x9F\x90\xB3");
  EXPECT_EQ(HtmlEscape("\xC3"), "\xEF\xBF\xBD");                                  // truncated
  EXPECT_EQ(HtmlEscape("\xC0\xBC"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '<'
  EXPECT_EQ(HtmlEscape("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(HtmlEscape("\xFF<"), "\xEF\xBF\xBD&lt;");
  EXPECT_EQ(HtmlEscape(""), "");
}

MemberInfo Member(std::string id, std::string addr, MemberState state, uint64_t capacity,
                  uint64_t free) {
  MemberInfo m;
  m.id = std::move(id);
  m.addr = std::move(addr);
  m.state = state;
  m.capacity = capacity;
  m.free = free;
  m.chunks = 7;
  return m;
}

StatusPageData SampleData() {
  StatusPageData d;
  d.version = "0.1.0";
  d.now_unix = 1'700'000'000;
  ClusterMap map;
  map.version = 9;
  GroupInfo g1{"g1",
               true,
               {Member("a1", "127.0.0.1:7001", MemberState::kActive, 1000, 250),
                Member("a2", "127.0.0.1:7002", MemberState::kActive, 1000, 0)},
               0,
               {}};
  GroupInfo g2{"g2", false, {Member("b1", "127.0.0.1:7003", MemberState::kOffline, 0, 0)}, 0, {}};
  map.groups = {g1, g2};
  d.cluster = map;
  StoredTotals t;
  t.blobs = 3;
  t.blob_bytes = 3 << 20;
  t.manifests = 2;
  t.repositories = 1;
  t.tags = 2;
  d.totals = t;
  d.totals_unix = d.now_unix - 4;
  StatusPageRepo r;
  r.name = "team/app";
  r.tags = {{"v1", "sha256:" + std::string(64, 'a'), 1536, false},
            {"multi", "sha256:" + std::string(64, 'b'), 999, true}};
  r.more_tags = 5;
  d.repos = {r};
  d.more_repos = 1000;
  d.more_repos_capped = true;
  return d;
}

TEST(StatusPageTest, ShowsEveryGroupMemberRepositoryAndTag) {
  std::string html = RenderStatusPage(SampleData());
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>"));
  EXPECT_TRUE(html.ends_with("</html>\n"));
  for (const char* want : {"group g1",
                           "group g2",
                           ">a1<",
                           ">a2<",
                           ">b1<",
                           "127.0.0.1:7003",
                           "writable",
                           "not writable",
                           "state offline",
                           "team/app",
                           ">v1<",
                           ">multi<",
                           "1.5 KiB",
                           "(index)",
                           "and 5 more tags",
                           "and more than 1000 more repositories",
                           "href=\"?last=team/app\"",
                           "id=\"stored-blobs\">3<",
                           "3.0 MiB",
                           "counted 4 s ago",
                           "No round has finished"}) {
    EXPECT_NE(html.find(want), std::string::npos) << want;
  }
  // Capacity bars: a1 is 75% used, a2 full, b1 (no capacity reported) empty.
  EXPECT_NE(html.find("style=\"width:75.0%\""), std::string::npos);
  EXPECT_NE(html.find("class=\"fill full\" style=\"width:100.0%\""), std::string::npos);
  EXPECT_NE(html.find("style=\"width:0.0%\""), std::string::npos);
  // No outside assets and nothing that runs.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
}

TEST(StatusPageTest, HostileNamesAreEscapedEverywhere) {
  StatusPageData d = SampleData();
  const std::string bad(kHostile);
  d.caller = bad;
  d.cluster->groups[0].id = bad;
  d.cluster->groups[0].members[0].id = bad;
  d.cluster->groups[0].members[0].addr = bad;
  d.repos[0].name = bad;
  d.repos[0].tags[0].name = bad;
  d.repos[0].tags[0].digest = bad;
  d.version = bad;
  std::string html = RenderStatusPage(d);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find(bad), std::string::npos);
  EXPECT_EQ(html.find("alert(\"x\")"), std::string::npos);  // not even inside an attribute
  EXPECT_GE(Count(html, kHostileEscaped), 8u);  // caller, group (twice), member, addr, repo...
  // The next-page link's attribute cannot be broken out of either.
  EXPECT_NE(html.find("href=\"?last=" + std::string(kHostileEscaped) + "\""), std::string::npos);

  StatusPageData e = SampleData();
  e.repos_error = bad;
  std::string err = RenderStatusPage(e);
  EXPECT_EQ(err.find("<script"), std::string::npos);
  EXPECT_NE(err.find(kHostileEscaped), std::string::npos);
}

TEST(StatusPageTest, EmptyStatesAndTheGcSection) {
  StatusPageData d;
  d.now_unix = 100;
  std::string html = RenderStatusPage(d);
  EXPECT_NE(html.find("No cluster map yet"), std::string::npos);
  EXPECT_NE(html.find("Not counted yet"), std::string::npos);
  EXPECT_NE(html.find("No repositories you may pull"), std::string::npos);
  d.first_page = false;
  d.gc = StatusPageGc{};
  d.gc->report.manifests = 4;
  d.gc->report.chunks_deleted = 12;
  d.gc->report.bytes_deleted = 2048;
  d.gc->finished_unix = 40;
  d.gc->rounds = 3;
  html = RenderStatusPage(d);
  EXPECT_NE(html.find("No repositories after this point"), std::string::npos);
  EXPECT_NE(html.find("href=\"./\">first page"), std::string::npos);
  EXPECT_NE(html.find("3 rounds so far"), std::string::npos);
  EXPECT_NE(html.find("12 (2.0 KiB)"), std::string::npos);
  EXPECT_NE(html.find("1970-01-01 00:00:40 UTC (60 s ago)"), std::string::npos);
}

TEST(StatusPageTest, LastMustBeARepositoryName) {
  EXPECT_FALSE(ParseStatusPageLast(std::nullopt)->has_value());
  EXPECT_FALSE(ParseStatusPageLast("")->has_value());
  EXPECT_EQ(**ParseStatusPageLast("team/app"), "team/app");
  for (std::string bad :
       {std::string("\"><script>"), std::string("UPPER"), std::string("a//b"), std::string("/a"),
        std::string(300, 'a'), std::string("a\0b", 3), std::string("a b"), std::string("..")}) {
    auto r = ParseStatusPageLast(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  }
}

TEST(GatewayStatsTest, CapacityGaugesFollowTheMap) {
  MetricsRegistry metrics;
  GatewayStats stats(metrics);
  ClusterMap map = *SampleData().cluster;
  stats.UpdateCluster(map);
  std::string text = metrics.Render();
  EXPECT_NE(text.find("wharf_gateway_member_capacity_bytes{group=\"g1\",member=\"a1\"} 1000"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("wharf_gateway_member_free_bytes{group=\"g1\",member=\"a1\"} 250"),
            std::string::npos);
  // A group holds what its smallest member holds.
  EXPECT_NE(text.find("wharf_gateway_group_capacity_bytes{group=\"g1\"} 1000"), std::string::npos);
  EXPECT_NE(text.find("wharf_gateway_group_free_bytes{group=\"g1\"} 0"), std::string::npos);
  EXPECT_NE(text.find("wharf_gateway_group_writable{group=\"g1\"} 1"), std::string::npos);
  EXPECT_NE(text.find("wharf_gateway_group_writable{group=\"g2\"} 0"), std::string::npos);
  // A member that left the map reads 0, not its last value.
  map.groups[0].members.pop_back();
  map.groups[0].members[0].free = 600;
  stats.UpdateCluster(map);
  text = metrics.Render();
  EXPECT_NE(text.find("wharf_gateway_member_free_bytes{group=\"g1\",member=\"a1\"} 600"),
            std::string::npos);
  EXPECT_NE(text.find("wharf_gateway_member_capacity_bytes{group=\"g1\",member=\"a2\"} 0"),
            std::string::npos);
  EXPECT_NE(text.find("wharf_gateway_group_free_bytes{group=\"g1\"} 600"), std::string::npos);
}

TEST(GatewayStatsTest, StoredTotalsAreGaugesAndKept) {
  MetricsRegistry metrics;
  GatewayStats stats(metrics);
  EXPECT_FALSE(stats.totals());
  StoredTotals t;
  t.blobs = 4;
  t.blob_bytes = 4096;
  t.manifests = 2;
  t.manifest_bytes = 800;
  t.files = 1;
  t.file_bytes = 5;
  t.repositories = 2;
  t.tags = 3;
  stats.UpdateTotals(t, 77);
  ASSERT_TRUE(stats.totals());
  EXPECT_EQ(stats.totals()->totals, t);
  EXPECT_EQ(stats.totals()->counted_unix, 77);
  std::string text = metrics.Render();
  for (const char* want : {"wharf_gateway_stored_objects{kind=\"blob\"} 4",
                           "wharf_gateway_stored_bytes{kind=\"blob\"} 4096",
                           "wharf_gateway_stored_objects{kind=\"manifest\"} 2",
                           "wharf_gateway_stored_bytes{kind=\"manifest\"} 800",
                           "wharf_gateway_stored_objects{kind=\"file\"} 1",
                           "wharf_gateway_stored_bytes{kind=\"file\"} 5",
                           "wharf_gateway_stored_repositories 2", "wharf_gateway_stored_tags 3"}) {
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  }
}

}  // namespace
}  // namespace wharf
