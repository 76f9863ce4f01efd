// Status and Result<T>: how every wharf function reports an expected failure.
// Expected failures never throw; exceptions mean bugs.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>

namespace wharf {

// Error codes. Each says what the caller can do about it.
enum class Code {
  kOk = 0,
  kNotFound,         // the named thing does not exist
  kInvalidArgument,  // the input is malformed; retrying the same input will fail again
  kDigestMismatch,   // content does not hash to the digest it was announced with
  kRangeInvalid,     // a byte range outside the object, or a malformed Range header
  kConflict,         // the operation contradicts current state (e.g. different content, same id)
  kCorruption,       // stored data failed its checksum
  kUnavailable,      // a peer or the cluster cannot serve now; retry elsewhere or later
  kNoSpace,          // storage under its reserve
  kIOError,          // the local disk failed (a failed fsync is sticky: see ChunkStore)
  kTooLarge,         // the input exceeds a configured limit
  kUnsupported,      // valid but not implemented / not allowed here
  kCancelled,        // the operation was abandoned (client went away, shutdown)
  kInternal,         // a broken invariant; a bug
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  // So that WHARF_ASSIGN_OR_RETURN works in functions returning Status too.
  Status(tl::unexpected<Status> u) : Status(std::move(u.value())) {}  // NOLINT

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;
  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

template <typename T>
using Result = tl::expected<T, Status>;

// Makes a Result<T> (or a Status) hold an error: `return Err(NotFound("chunk"));`.
inline tl::unexpected<Status> Err(Status s) { return tl::unexpected<Status>(std::move(s)); }

inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status DigestMismatch(std::string m) { return {Code::kDigestMismatch, std::move(m)}; }
inline Status RangeInvalid(std::string m) { return {Code::kRangeInvalid, std::move(m)}; }
inline Status Conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
inline Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status NoSpace(std::string m) { return {Code::kNoSpace, std::move(m)}; }
inline Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
inline Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
inline Status Unsupported(std::string m) { return {Code::kUnsupported, std::move(m)}; }
inline Status Cancelled(std::string m) { return {Code::kCancelled, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
// An IOError carrying strerror(err).
Status ErrnoError(std::string_view what, int err);

}  // namespace wharf

#define WHARF_CONCAT_INNER_(a, b) a##b
#define WHARF_CONCAT_(a, b) WHARF_CONCAT_INNER_(a, b)

// Returns the Status if it is an error (from functions returning Status or Result<T>).
// Note for coroutines: GCC 12 miscompiles braced-init-lists inside a co_await expression
// ("array used as initializer"); build such arguments in a named variable first.
#define WHARF_RETURN_IF_ERROR(expr)                                 \
  do {                                                              \
    ::wharf::Status wharf_st_ = (expr);                             \
    if (!wharf_st_.ok()) return ::wharf::Err(std::move(wharf_st_)); \
  } while (0)

#define WHARF_CO_RETURN_IF_ERROR(expr)                                 \
  do {                                                                 \
    ::wharf::Status wharf_st_ = (expr);                                \
    if (!wharf_st_.ok()) co_return ::wharf::Err(std::move(wharf_st_)); \
  } while (0)

// lhs = value of a Result, or return its error (for Result- or Status-returning functions).
#define WHARF_ASSIGN_OR_RETURN(lhs, expr) \
  WHARF_ASSIGN_OR_RETURN_IMPL_(WHARF_CONCAT_(wharf_r_, __LINE__), lhs, expr, return )
#define WHARF_CO_ASSIGN_OR_RETURN(lhs, expr) \
  WHARF_ASSIGN_OR_RETURN_IMPL_(WHARF_CONCAT_(wharf_r_, __LINE__), lhs, expr, co_return )
#define WHARF_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr, ret) \
  auto tmp = (expr);                                      \
  if (!tmp) ret ::wharf::Err(std::move(tmp).error());     \
  lhs = std::move(*tmp)

template <>
struct fmt::formatter<wharf::Status> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(const wharf::Status& s, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(s.ToString(), ctx);
  }
};
