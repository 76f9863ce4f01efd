// The one place wharf includes Boost.Asio and Boost.Beast.
//
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>;
// GCC 12 no longer pulls it in transitively, so it is included here first, once.
#pragma once

#include <utility>
// (keep <utility> above every Asio header)
#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace wharf {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
template <typename T = void>
using awaitable = boost::asio::awaitable<T>;
}  // namespace wharf
