#include "http/router.h"

#include <algorithm>
#include <cstdlib>
#include <map>

#include "common/log.h"
#include "http/status_http.h"

namespace wharf {

bool PathMatch::Matches(std::string_view path) const {
  switch (kind_) {
    case Kind::kExact:
      return path == path_;
    case Kind::kPrefix:
      return path.starts_with(path_);
    case Kind::kSubtree:
      return path == path_ ||
             (path.starts_with(path_) && path.size() > path_.size() && path[path_.size()] == '/');
  }
  return false;
}

Router::Router(Options options) : options_(std::move(options)) {}

void Router::Add(HttpRoute route) {
  if (!route.handler) {
    GetLogger("http")->critical("route without a handler name={}", route.name);
    std::abort();
  }
  routes_.push_back(std::move(route));
}

void Router::AddFilter(std::shared_ptr<Filter> filter) { filters_.push_back(std::move(filter)); }

Router::Resolution Router::Resolve(http::verb method, std::string_view path) const {
  Resolution out;
  std::vector<http::verb> allowed;
  for (const auto& r : routes_) {
    if (!r.path.Matches(path)) continue;
    if (r.methods.empty() || std::ranges::find(r.methods, method) != r.methods.end()) {
      out.route = &r;
      out.allow.clear();
      return out;
    }
    for (http::verb v : r.methods) {
      if (std::ranges::find(allowed, v) == allowed.end()) allowed.push_back(v);
    }
  }
  for (http::verb v : allowed) {
    if (!out.allow.empty()) out.allow += ", ";
    out.allow += std::string(http::to_string(v));
  }
  return out;
}

void Router::CountAtEnd(Exchange& ex) const {
  const std::string* component = &options_.component;
  const Labels* extra = &options_.metric_labels;
  ex.AtEnd([component, extra](const Exchange& e) {
    // Cached per thread: avoids the registry lock on the hot path.
    thread_local std::map<std::tuple<const Labels*, std::string, unsigned>, CounterMetric*> cache;
    const std::string& route =
        e.context().route.empty() ? std::string(kNoRoute) : e.context().route;
    auto& slot = cache[{extra, *component + ' ' + route, e.status_code()}];
    if (!slot) {
      Labels labels{{"route", route}, {"code", std::to_string(e.status_code())}};
      labels.insert(labels.end(), extra->begin(), extra->end());
      slot = &Metrics().Counter("wharf_" + *component + "_requests_total",
                                "Requests served, by route and status code.", labels);
    }
    slot->Inc();
  });
}

awaitable<void> Router::Dispatch(Exchange& ex) const {
  Resolution res = Resolve(ex.method(), ex.path());
  ex.context().route = res.route ? res.route->name : "";
  CountAtEnd(ex);
  if (ex.on_reserved_slot() && !(res.route && res.route->ops)) {
    // The connection holds a slot kept for /healthz and /metrics: everything else waits
    // for an ordinary slot.
    Metrics()
        .Counter("wharf_" + options_.component + "_requests_refused_reserved_slot_total",
                 "Requests answered 503 because they came on a connection slot kept for "
                 "/healthz and /metrics.")
        .Inc();
    ex.CloseAfter();
    co_await RespondError(ex, Unavailable("the server is at its connection limit"));
    co_return;
  }
  for (const auto& f : filters_) {
    if (co_await f->OnRequest(ex) == Filter::Result::kStop) co_return;
  }
  if (res.route) {
    co_await res.route->handler(ex);
  } else if (!res.allow.empty() && options_.answer_405) {
    ex.AddHeader("Allow", res.allow);
    (void)co_await ex.Respond(http::status::method_not_allowed, "");
  } else {
    co_await RespondError(ex, NotFound("no such endpoint"));
  }
}

Handler Router::AsHandler() const {
  return [this](Exchange& ex) { return Dispatch(ex); };
}

void AddOpsRoutes(Router& router, std::function<Status()> healthy) {
  const std::vector<http::verb> read{http::verb::get, http::verb::head};
  router.Add({"healthz", read, PathMatch::Exact("/healthz"),
              [healthy](Exchange& ex) { return ServeHealthz(ex, healthy); }, true});
  router.Add({"metrics", read, PathMatch::Exact("/metrics"),
              [](Exchange& ex) { return ServeMetrics(ex); }, true});
}

}  // namespace wharf
