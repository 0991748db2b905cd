// server/config_load.hpp - turning sgvd's inputs into a Config: the
// command-line flags, the TOML file, the checks a Config must pass before a
// Server is built from it, and the TOML rendering sgvctl's `config` shows.
//
// Errors are text for a human, always naming where the bad input was
// ("config.toml:12: lun.size: expected a size like \"4G\", got \"4Q\"" or
// "--lun: ..."), returned rather than thrown: the caller decides whether
// that means exit 2 (sgvd) or a failed assertion (tests).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "server/config.hpp"

namespace sgv::server {

// "4096", "512K", "512M", "4G", "4GiB", "1T" (binary multiples; B/iB
// suffixes optional). False on anything else, or on overflow.
bool parse_size(std::string_view s, uint64_t& out);
// "HOST:PORT", "[v6]:PORT", or a bare host (port 3260). Port 0 means "any
// free port" (tests; Server::bound_portals() reports the real one).
bool parse_portal(std::string_view s, PortalSpec& out);
// RFC 7143 §4.2.7: iqn.YYYY-MM.reverse.domain[:suffix] (lowercase),
// eui. + 16 hex digits, naa. + 16 or 32 hex digits; at most 223 bytes.
bool valid_iscsi_name(std::string_view name);

// Loads a TOML file on top of `out` (fields it does not mention keep their
// value). 0, or -1 with `err` set ("PATH:LINE: key: what is wrong").
int load_config_file(const std::string& path, Config& out, std::string& err);
// Same, from text; `name` stands in for the file name in messages.
int load_config_text(std::string_view text, const std::string& name, Config& out,
                     std::string& err);

// Everything a Server may assume: unique target names and LUN ids, names
// well formed, block sizes 512/4096, paths for file LUNs, iSCSI limits
// within RFC 7143 and consistent. 0, or -1 with `err` set. Call after
// apply_defaults().
int validate_config(const Config& c, std::string& err);

// Renders `c` as TOML that load_config_text() reads back to the same Config,
// except CHAP secrets, which are never rendered (left as comments).
std::string config_to_toml(const Config& c);

// sgvd's command line. `text` receives what to print: usage for --help, the
// version for --version, the message for a bad flag.
enum class ArgsResult { run, exit_ok, exit_usage };
ArgsResult parse_args(int argc, const char* const* argv, Config& out, std::string& text);

// Version string sgvd, sgvctl and the admin socket report.
const char* sgv_version();

}  // namespace sgv::server
