// Writes to a pull-through cache's repositories are refused (gateway/registry_handlers.h
// ProxyRefusal): the gateway answers them 405 UNSUPPORTED naming the proxy.
#include <gtest/gtest.h>

#include "gateway/registry_handlers.h"
#include "registry/errors.h"

namespace wharf {
namespace {

Route RouteOf(const std::string& path) {
  auto r = ParseRoute(path);
  EXPECT_TRUE(r) << path;
  return r ? *r : Route{};
}

TEST(ProxyRefusalTest, PushesMountsAndDeletesToAProxiedNameAreRefusedPullsAreNot) {
  GatewayOptions o;
  upstream::ProxyUpstreamOptions hub;
  hub.name = "hub";
  hub.urls = {"https://registry-1.docker.io"};
  o.proxies.push_back(hub);
  const std::string digest = "sha256:" + std::string(64, 'a');
  const std::vector<std::pair<http::verb, std::string>> refused = {
      {http::verb::post, "/v2/hub/nginx/blobs/uploads/"},
      {http::verb::post, "/v2/hub/nginx/blobs/uploads/?mount=" + digest + "&from=team/app"},
      {http::verb::patch, "/v2/hub/nginx/blobs/uploads/" + std::string(32, 'f')},
      {http::verb::put, "/v2/hub/nginx/blobs/uploads/" + std::string(32, 'f')},
      {http::verb::get, "/v2/hub/nginx/blobs/uploads/" + std::string(32, 'f')},
      {http::verb::put, "/v2/hub/nginx/manifests/latest"},
      {http::verb::delete_, "/v2/hub/nginx/manifests/" + digest},
      {http::verb::delete_, "/v2/hub/team/app/blobs/" + digest},
  };
  for (const auto& [method, path] : refused) {
    auto why = ProxyRefusal(o, RouteOf(path), method);
    ASSERT_TRUE(why) << path;
    EXPECT_NE(why->find("pull-through cache of --proxy hub (https://registry-1.docker.io)"),
              std::string::npos)
        << *why;
  }
  const std::vector<std::pair<http::verb, std::string>> allowed = {
      {http::verb::get, "/v2/hub/nginx/manifests/latest"},
      {http::verb::head, "/v2/hub/nginx/manifests/latest"},
      {http::verb::get, "/v2/hub/nginx/blobs/" + digest},
      {http::verb::head, "/v2/hub/nginx/blobs/" + digest},
      {http::verb::get, "/v2/hub/nginx/tags/list"},
      {http::verb::put, "/v2/team/app/manifests/latest"},  // not proxied
      {http::verb::post, "/v2/hubx/app/blobs/uploads/"},   // not under hub/
      {http::verb::post, "/v2/hub/blobs/uploads/"},        // the NAME itself is no cache
      {http::verb::get, "/v2/"},
  };
  for (const auto& [method, path] : allowed) {
    EXPECT_EQ(ProxyRefusal(o, RouteOf(path), method), std::nullopt) << path;
  }
  // The status and code the refusal is answered with.
  EXPECT_EQ(OciErrorStatus(OciError::kUnsupported), 405);
  // Without --proxy nothing is refused.
  EXPECT_EQ(ProxyRefusal(GatewayOptions{}, RouteOf("/v2/hub/nginx/manifests/v1"), http::verb::put),
            std::nullopt);
}

}  // namespace
}  // namespace wharf
