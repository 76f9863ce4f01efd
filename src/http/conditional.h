// Conditional requests (RFC 9110 §13): If-None-Match against a resource's entity tag, so a
// client that holds the current version gets 304 Not Modified instead of the body.
#pragma once

#include <string_view>

#include "common/asio.h"
#include "http/server.h"

namespace wharf {

// True when the If-None-Match value `header` matches `etag` (a quoted entity tag, e.g.
// "\"sha256:ab…\""): "*" matches any existing resource; otherwise a comma-separated list of
// entity tags, compared weakly (a W/ prefix is ignored on either side). A malformed list
// matches nothing (the full response is sent, which is always safe).
bool IfNoneMatchHits(std::string_view header, std::string_view etag);

// For a GET or HEAD whose If-None-Match hits `etag`: answers 304 (with the headers already
// added to `ex`, which should include the ETag) and returns true. Otherwise returns false
// and sends nothing.
awaitable<bool> RespondIfNotModified(Exchange& ex, std::string_view etag);

}  // namespace wharf
