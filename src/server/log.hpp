// server/log.hpp - sgvd's diagnostics to stderr, filtered by level. Control
// path only (start-up, logins, errors): the data path counts, it does not
// log. Safe from any thread; one fprintf per message so lines don't mix.
#pragma once

#include <string_view>

namespace sgv::server {

enum class LogLevel { error = 0, warn = 1, info = 2, debug = 3 };

// "error", "warn", "info", "debug"; false leaves `out` alone.
bool parse_log_level(std::string_view s, LogLevel& out);
void set_log_level(LogLevel l);
LogLevel log_level();
inline bool log_enabled(LogLevel l) { return static_cast<int>(l) <= static_cast<int>(log_level()); }

// "sgvd: warn: <message>\n" when `l` is enabled.
void logf(LogLevel l, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace sgv::server
