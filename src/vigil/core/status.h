// Status and Result: errors as values, with retry meaning.
//
// Every fallible call that crosses a module boundary returns Status or Result<T>. The code
// tells the caller what to do next:
//   unavailable          retry later with backoff (stream dropped, server not up yet)
//   deadline_exceeded    a timeout; usually retried like unavailable
//   invalid_argument     bad config, bad file, wrong model: do not retry
//   failed_precondition  fix state first (call order, missing resource)
//   not_found            a named thing does not exist (file, camera)
//   already_exists       what was to be made is there already (a camera id that is taken)
//   data_loss            input is damaged (corrupt or truncated media)
//   resource_exhausted   a queue or pool is full
//   cancelled            interrupted on purpose (shutdown)
//   unimplemented        this build or set-up does not offer the operation
//   internal             a bug or an unexpected library failure
// End of stream and shutdown are normal outcomes, never errors.
#pragma once

#include <cassert>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace vigil {

enum class ErrorCode {
  invalid_argument,
  not_found,
  already_exists,
  unavailable,
  deadline_exceeded,
  failed_precondition,
  data_loss,
  resource_exhausted,
  cancelled,
  unimplemented,
  internal,
};

std::string_view to_string(ErrorCode code);

// Error: a code and a human-readable, one-line message.
struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string message;

  // Returns "code: message".
  std::string describe() const;
};

// Status: success, or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit on purpose
  Status(ErrorCode code, std::string message) : Status(Error{code, std::move(message)}) {}

  static Status ok_status() { return {}; }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

// Result<T>: a T, or an Error.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                     // NOLINT: implicit on purpose
  Result(Error error) : v_(std::move(error)) {}                 // NOLINT
  Result(ErrorCode code, std::string message) : v_(Error{code, std::move(message)}) {}
  Result(const Status& status) : v_(status.error()) { assert(!status.ok()); }  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }
  Status status() const { return ok() ? Status{} : Status{error()}; }

 private:
  std::variant<T, Error> v_;
};

// Prefixes an error's message with context, keeping its code.
inline Error with_context(const Error& error, std::string_view context) {
  return Error{error.code, std::string(context) + ": " + error.message};
}

// Runs call() (which returns a Status or a Result) and turns whatever it throws into an
// internal error: the catch boundary around calls into libraries that throw (a model's
// runtime, OpenCV), so a failure stays with its caller and never reaches std::terminate.
template <class Call>
auto guarded_call(Call&& call) -> decltype(call()) {
  try {
    return call();
  } catch (const std::exception& e) {
    return Error{ErrorCode::internal, std::string("exception: ") + e.what()};
  } catch (...) {
    return Error{ErrorCode::internal, "unknown exception"};
  }
}

}  // namespace vigil

// Returns the error of a Status or Result expression from the enclosing function.
#define VIGIL_RETURN_IF_ERROR(expr)                     \
  do {                                                  \
    if (auto vigil_status_ = (expr); !vigil_status_.ok()) \
      return vigil_status_.error();                     \
  } while (false)
