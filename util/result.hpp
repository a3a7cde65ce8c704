// Result<T>: an expected failure as a value, with a typed reason and a
// message that gains context on its way up ("loading 'app.py': ...").
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace pyhot {

enum class ErrorKind {
  not_found,
  permission_denied,
  timeout,
  syntax_error,
  not_python,
  refused,   // the agent or a rule said no; nothing changed
  protocol,  // the other side spoke something we do not understand
  usage,     // the user asked for something that cannot be asked
  io,
  internal,
};

struct Error {
  ErrorKind kind = ErrorKind::internal;
  std::string message;

  // "reading 'x.py': No such file" — context goes in front.
  Error with_context(const std::string& context) const { return Error{kind, context + ": " + message}; }
};

inline Error make_error(ErrorKind kind, std::string message) { return Error{kind, std::move(message)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : m_state(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : m_state(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(m_state); }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<T>(m_state); }
  const T& value() const& { return std::get<T>(m_state); }
  T&& value() && { return std::get<T>(std::move(m_state)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<Error>(m_state); }

 private:
  std::variant<T, Error> m_state;
};

// Result<void> spelled as Result<Done>.
struct Done {};
inline constexpr Done k_done{};

}  // namespace pyhot
