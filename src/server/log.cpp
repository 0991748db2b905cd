// server/log.cpp - the level filter and the one-line writer behind logf().
#include "server/log.hpp"

#include <atomic>
#include <cstdarg>
#include <cstdio>

namespace sgv::server {

namespace {
// Relaxed: a level change need not order anything else; readers see it soon.
std::atomic<int> g_level{static_cast<int>(LogLevel::info)};
const char* const kNames[] = {"error", "warn", "info", "debug"};
}  // namespace

bool parse_log_level(std::string_view s, LogLevel& out) {
  for (int i = 0; i < 4; ++i)
    if (s == kNames[i]) {
      out = static_cast<LogLevel>(i);
      return true;
    }
  return false;
}

void set_log_level(LogLevel l) { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }

LogLevel log_level() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }

void logf(LogLevel l, const char* fmt, ...) {
  if (!log_enabled(l)) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  // One call per line: stdio locks the stream, so threads' lines stay whole.
  std::fprintf(stderr, "sgvd: %s: %s\n", kNames[static_cast<int>(l)], buf);
}

}  // namespace sgv::server
