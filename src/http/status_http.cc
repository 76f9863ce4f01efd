#include "http/status_http.h"

#include <nlohmann/json.hpp>

#include "common/log.h"

namespace wharf {

http::status HttpStatusOf(const Status& st) {
  switch (st.code()) {
    case Code::kInvalidArgument:
    case Code::kDigestMismatch:
    case Code::kCancelled:
      return http::status::bad_request;
    case Code::kNotFound:
      return http::status::not_found;
    case Code::kUnsupported:
      return http::status::method_not_allowed;
    case Code::kConflict:
      return http::status::conflict;
    case Code::kTooLarge:
      return http::status::payload_too_large;
    case Code::kRangeInvalid:
      return http::status::range_not_satisfiable;
    case Code::kUnavailable:
      return http::status::service_unavailable;
    case Code::kNoSpace:
      return http::status::insufficient_storage;
    default:
      return http::status::internal_server_error;
  }
}

std::string ErrorJsonBody(const Status& st) {
  nlohmann::json body;
  body["error"]["code"] = std::string(CodeName(st.code()));
  body["error"]["message"] = st.message();
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

awaitable<void> RespondError(Exchange& ex, Status st) {
  const http::status code = HttpStatusOf(st);
  if (code == http::status::internal_server_error) {
    // The detail (a store's or the OS's text) is for the log, not for the client.
    static const Logger log = GetLogger("http");
    log->error("internal error path={} request_id={} err={}", ex.path(), ex.request_id(), st);
    st = Status(st.code(), "internal error (request id " + ex.request_id() + ")");
  }
  (void)co_await ex.Respond(code, ErrorJsonBody(st));
}

}  // namespace wharf
