// server/config_args.cpp - sgvd's command line: the common cases as flags,
// everything else through --config FILE. Flags apply on top of the file, so
// `--config prod.toml --portal 127.0.0.1:3261` reuses a file on another port.
#include <cstdlib>
#include <string>
#include <vector>

#include "server/config_load.hpp"

namespace sgv::server {

namespace {

constexpr const char* kUsage =
    "usage: sgvd [options]\n"
    "\n"
    "An iSCSI target. Without options: one 1 GiB RAM LUN as\n"
    "iqn.2026-11.io.sgv:default on 127.0.0.1:3260.\n"
    "\n"
    "  --portal HOST:PORT     listen here (repeatable; [::1]:3260 for IPv6, port 0 = any)\n"
    "  --target IQN           name of the target the --lun flags describe\n"
    "  --lun ram:SIZE[,OPTS]  add a LUN (repeatable; ids 0, 1, ... in order)\n"
    "  --lun null:SIZE[,OPTS]\n"
    "  --lun file:PATH[,size=SIZE][,direct][,OPTS]\n"
    "                         OPTS: block_size=512|4096, ro, mem_limit=SIZE, serial=S\n"
    "  --mem-limit SIZE       global budget for data buffers (default RAM/4)\n"
    "  --reactors N           I/O threads (default: one per CPU)\n"
    "  --config FILE          TOML configuration (see apps/sgvd.example.toml)\n"
    "  --admin-socket PATH    unix socket for sgvctl\n"
    "  --log-level LEVEL      error, warn, info (default) or debug\n"
    "  --help, --version\n"
    "\n"
    "SIZE: bytes, or with a suffix K, M, G, T (binary; \"4G\" = \"4GiB\").\n";

// "ram:1G,block_size=4096" etc. into `l`; "" or a message.
std::string parse_lun(const std::string& spec, LunSpec& l) {
  auto colon = spec.find(':');
  if (colon == std::string::npos)
    return "expected ram:SIZE, null:SIZE or file:PATH[,size=SIZE][,direct]";
  std::string kind = spec.substr(0, colon);
  std::vector<std::string> parts;
  std::string rest = spec.substr(colon + 1);
  for (size_t pos = 0;;) {
    auto comma = rest.find(',', pos);
    parts.push_back(rest.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (kind == "ram" || kind == "null") {
    l.kind = kind == "ram" ? LunSpec::Kind::ram : LunSpec::Kind::null;
    if (!parse_size(parts[0], l.size_bytes))
      return "expected a size like \"4G\", got \"" + parts[0] + "\"";
  } else if (kind == "file") {
    l.kind = LunSpec::Kind::file;
    l.path = parts[0];
    l.size_bytes = 0;
    if (l.path.empty()) return "file: needs a path";
  } else {
    return "unknown LUN kind \"" + kind + "\" (expected ram, null or file)";
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    auto eq = p.find('=');
    std::string k = p.substr(0, eq);
    std::string v = eq == std::string::npos ? "" : p.substr(eq + 1);
    uint64_t n = 0;
    if (k == "direct" && eq == std::string::npos) {
      if (l.kind != LunSpec::Kind::file) return "direct: only file LUNs can use O_DIRECT";
      l.direct = true;
    } else if ((k == "ro" || k == "read_only") && eq == std::string::npos) {
      l.read_only = true;
    } else if (k == "size" && l.kind == LunSpec::Kind::file) {
      if (!parse_size(v, l.size_bytes)) return "size: expected a size like \"4G\", got \"" + v + "\"";
    } else if (k == "block_size") {
      if (!parse_size(v, n) || (n != 512 && n != 4096))
        return "block_size: must be 512 or 4096, got \"" + v + "\"";
      l.block_size = static_cast<uint32_t>(n);
    } else if (k == "mem_limit") {
      if (!parse_size(v, l.mem_limit)) return "mem_limit: expected a size, got \"" + v + "\"";
    } else if (k == "serial" && eq != std::string::npos) {
      l.serial = v;
    } else {
      return "unknown option \"" + p + "\"";
    }
  }
  return "";
}

bool parse_uint(const std::string& s, uint64_t max, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + static_cast<uint64_t>(ch - '0');
  }
  if (v > max) return false;
  out = v;
  return true;
}

}  // namespace

ArgsResult parse_args(int argc, const char* const* argv, Config& out, std::string& text) {
  auto usage_error = [&text](const std::string& m) {
    text = "sgvd: " + m + "\nTry 'sgvd --help'.\n";
    return ArgsResult::exit_usage;
  };
  // Split "--flag=value" and "--flag value" into pairs first, so --config
  // can be applied before every other flag wherever it appears.
  struct Flag {
    std::string name, value;
  };
  std::vector<Flag> flags;
  static const char* with_value[] = {"--portal",    "--lun",          "--target",
                                     "--mem-limit", "--reactors",     "--config",
                                     "--admin-socket", "--log-level"};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      text = kUsage;
      return ArgsResult::exit_ok;
    }
    if (a == "--version" || a == "-V") {
      text = std::string(sgv_version()) + "\n";
      return ArgsResult::exit_ok;
    }
    std::string name = a, value;
    bool has_value = false;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    }
    bool known = false;
    for (const char* w : with_value) known = known || name == w;
    if (!known) {
      if (a.rfind("-", 0) == 0) return usage_error("unknown option '" + a + "'");
      return usage_error("unexpected argument '" + a + "'");
    }
    if (!has_value) {
      if (i + 1 >= argc) return usage_error(name + ": needs a value");
      value = argv[++i];
    }
    flags.push_back({name, value});
  }

  Config c = out;
  for (const auto& f : flags) {
    if (f.name != "--config") continue;
    std::string err;
    if (load_config_file(f.value, c, err) != 0) return usage_error(err);
  }

  std::vector<PortalSpec> portals;
  std::vector<LunSpec> luns;
  std::string target;
  for (const auto& f : flags) {
    const std::string& v = f.value;
    if (f.name == "--portal") {
      PortalSpec p;
      if (!parse_portal(v, p))
        return usage_error("--portal: expected HOST:PORT or [IPv6]:PORT, got '" + v + "'");
      portals.push_back(p);
    } else if (f.name == "--lun") {
      LunSpec l;
      l.id = luns.size();
      std::string e = parse_lun(v, l);
      if (!e.empty()) return usage_error("--lun " + v + ": " + e);
      luns.push_back(l);
    } else if (f.name == "--target") {
      if (!valid_iscsi_name(v))
        return usage_error("--target: '" + v +
                           "' is not an iSCSI name (e.g. iqn.2026-11.com.example:disk1)");
      target = v;
    } else if (f.name == "--mem-limit") {
      if (!parse_size(v, c.mem_limit) || c.mem_limit == 0)
        return usage_error("--mem-limit: expected a size like \"4G\", got '" + v + "'");
    } else if (f.name == "--reactors") {
      uint64_t n = 0;
      if (!parse_uint(v, 1024, n)) return usage_error("--reactors: expected 0..1024, got '" + v + "'");
      c.reactors = static_cast<unsigned>(n);
    } else if (f.name == "--admin-socket") {
      if (v.empty()) return usage_error("--admin-socket: needs a path");
      c.admin_socket = v;
    } else if (f.name == "--log-level") {
      if (v != "error" && v != "warn" && v != "info" && v != "debug")
        return usage_error("--log-level: expected error, warn, info or debug, got '" + v + "'");
      c.log_level = v;
    }
  }
  if (!portals.empty()) c.portals = std::move(portals);
  if (!target.empty() || !luns.empty()) {
    // The flags describe one target; it replaces a file's target of the
    // same name, or joins the file's targets.
    TargetSpec t;
    t.name = target.empty() ? "iqn.2026-11.io.sgv:default" : target;
    t.luns = std::move(luns);
    if (t.luns.empty()) t.luns.push_back(LunSpec{});  // a bare --target gets the 1 GiB RAM LUN
    bool replaced = false;
    for (auto& old : c.targets)
      if (old.name == t.name) {
        old.luns = t.luns;
        replaced = true;
      }
    if (!replaced) c.targets.push_back(std::move(t));
  }
  out = std::move(c);
  return ArgsResult::run;
}

}  // namespace sgv::server
