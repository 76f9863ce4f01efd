// The request pipeline: a route table and a filter chain in front of the handlers (Envoy's
// decodeHeaders filters before its router is the model).
//
//   request head read by the Server
//     -> Router::Dispatch: resolve the route (context().route = its name)
//     -> filters, in the order added: each continues or answers (and so ends the request)
//     -> the route's handler, or 404 / 405 when no route took the request
//     -> at the end of the exchange: observers (the access log, wharf_<c>_requests_total)
//
// Authentication, access logging and rate limits are filters; handlers never check
// credentials themselves.
//
//   Router r({.component = "gateway"});
//   r.AddFilter(std::make_shared<AccessLogFilter>(log));
//   AddOpsRoutes(r, [this] { return Health(); });
//   r.Add({"registry", {}, PathMatch::Subtree("/v2"), handler});
//   Server server(ex, so, r.AsHandler());
//
// Threading: routes and filters are added before the server starts; Dispatch runs on the
// server's executor and reads the table without locks. The Router must outlive the Server.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "http/server.h"

namespace wharf {

// Which paths a route takes.
class PathMatch {
 public:
  static PathMatch Exact(std::string path) { return PathMatch(Kind::kExact, std::move(path)); }
  // Every path starting with `prefix` ("/v1/chunks/" takes "/v1/chunks/abc", not "/v1/chunks").
  static PathMatch Prefix(std::string prefix) {
    return PathMatch(Kind::kPrefix, std::move(prefix));
  }
  // `root` itself and everything under it ("/v2" takes "/v2" and "/v2/x", not "/v2x").
  static PathMatch Subtree(std::string root) { return PathMatch(Kind::kSubtree, std::move(root)); }
  bool Matches(std::string_view path) const;

 private:
  enum class Kind { kExact, kPrefix, kSubtree };
  PathMatch(Kind k, std::string p) : kind_(k), path_(std::move(p)) {}
  Kind kind_;
  std::string path_;
};

struct HttpRoute {
  std::string name;                 // in logs and metrics: keep the set small and fixed
  std::vector<http::verb> methods;  // empty: every method
  PathMatch path;
  Handler handler;
  // Served on the connection slots kept in reserve for operations (ServerOptions::
  // reserved_connections): /healthz and /metrics, so that they answer when a flood of
  // connections holds every ordinary slot.
  bool ops = false;
};

// One step of the chain. Runs after routing (context().route is set, "" when no route
// matched: filters see 404s and 405s too) and before the handler.
class Filter {
 public:
  enum class Result {
    kContinue,  // on to the next filter, then the handler
    kStop,      // the filter has answered (Respond / BeginResponse): the request ends here
  };
  virtual ~Filter() = default;
  virtual awaitable<Result> OnRequest(Exchange& ex) = 0;
};

class Router {
 public:
  struct Options {
    // Requests are counted in wharf_<component>_requests_total{route,code,...labels}.
    std::string component = "http";
    Labels metric_labels = {};
    // A path that some route takes but not with this method: 405 with an Allow header (true),
    // or the same answer as an unknown path (false).
    bool answer_405 = true;
  };
  explicit Router(Options options);

  // Routes are tried in the order added; the first whose path and method match takes the
  // request. A route without a handler is a bug (crashes at Add).
  void Add(HttpRoute route);
  void AddFilter(std::shared_ptr<Filter> filter);

  // What Dispatch would do with (method, path): the route, or none with the methods that the
  // path takes ("GET, HEAD" for a 405's Allow header; "" for an unknown path).
  struct Resolution {
    const HttpRoute* route = nullptr;
    std::string allow;
  };
  Resolution Resolve(http::verb method, std::string_view path) const;

  // Serves one exchange through the pipeline. Always responds (or leaves it to the server's
  // "no response" 500 when a handler or filter failed to).
  awaitable<void> Dispatch(Exchange& ex) const;
  // A Server handler that calls Dispatch; the Router must outlive the Server.
  Handler AsHandler() const;

  // Route name of requests no route took.
  static constexpr std::string_view kNoRoute = "none";

 private:
  void CountAtEnd(Exchange& ex) const;
  Options options_;
  std::vector<HttpRoute> routes_;
  std::vector<std::shared_ptr<Filter>> filters_;
};

// GET/HEAD /healthz ("healthz"; `healthy` decides 200 or 503) and /metrics ("metrics"), both
// allowed on the reserved connection slots.
void AddOpsRoutes(Router& router, std::function<Status()> healthy);

}  // namespace wharf
