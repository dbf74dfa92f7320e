// Debug checks of internal invariants (not of input: bad input gets a
// Status). On in Debug builds and in the sanitizer builds
// (TANDEM_DEBUG_CHECKS, see CMakeLists.txt), compiled out of Release: they
// sit on hot paths (every KV write, every block release).
//
//   TANDEM_DCHECK(ref > 0, "releasing block {} whose ref count is 0", b);
//
// A failed check prints the message with its file and line and aborts.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#if !defined(NDEBUG) || defined(TANDEM_DEBUG_CHECKS)
#define TANDEM_DEBUG_CHECKS_ON 1
#else
#define TANDEM_DEBUG_CHECKS_ON 0
#endif

namespace tandem::detail {
[[noreturn]] inline void check_failed(const char* file, int line, const std::string& message) {
  std::fprintf(stderr, "%s:%d: internal check failed: %s\n", file, line, message.c_str());
  std::abort();
}
}  // namespace tandem::detail

#if TANDEM_DEBUG_CHECKS_ON
#define TANDEM_DCHECK(cond, ...)                                                               \
  do {                                                                                         \
    if (!(cond)) ::tandem::detail::check_failed(__FILE__, __LINE__, fmt::format(__VA_ARGS__)); \
  } while (0)
#else
#define TANDEM_DCHECK(cond, ...) \
  do {                           \
  } while (0)
#endif
