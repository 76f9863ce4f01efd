// Built only while no registry_*.cc exists: /v2 answers UNSUPPORTED.
#include "gateway/registry_handlers.h"

namespace wharf {

awaitable<void> HandleRegistry(GatewayContext&, Exchange& ex) {
  (void)co_await ex.Respond(
      http::status::not_found,
      R"({"errors":[{"code":"UNSUPPORTED","message":"the registry API is not built in"}]})");
}

}  // namespace wharf
