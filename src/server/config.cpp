// server/config.cpp - sgvd's defaults, its TOML loader, the checks every
// Config passes before a Server sees it, and the TOML rendering of a Config.
// All slow path: runs once at start-up (and on sgvctl `config`).
//
// The loader walks the parsed document itself instead of using toml11's
// typed getters so that every message names file, line and key in one
// format ("config.toml:12: lun.size: ...") and unknown keys are refused:
// a misspelt "mem_limt" silently ignored is worse than a failed start.
#include "server/config_load.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>

#include <toml.hpp>

namespace sgv::server {

namespace {

constexpr const char* kDefaultTarget = "iqn.2026-11.io.sgv:default";
constexpr uint32_t kMinLen = 512;           // RFC 7143 §13: smallest legal length keys
constexpr uint32_t kMaxLen = 16777215;      // 2^24 - 1, the largest
constexpr unsigned kMaxReactors = 1024;

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& ch : r) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return r;
}

bool all_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)) != 0; });
}

const char* kind_name(LunSpec::Kind k) {
  switch (k) {
    case LunSpec::Kind::ram: return "ram";
    case LunSpec::Kind::file: return "file";
    case LunSpec::Kind::null: return "null";
  }
  return "?";
}

bool parse_kind(std::string_view s, LunSpec::Kind& k) {
  if (s == "ram") { k = LunSpec::Kind::ram; return true; }
  if (s == "file") { k = LunSpec::Kind::file; return true; }
  if (s == "null") { k = LunSpec::Kind::null; return true; }
  return false;
}

bool valid_log_level(std::string_view s) {
  return s == "error" || s == "warn" || s == "info" || s == "debug";
}

// Human form of a size for messages and the banner: "1 GiB", "512 MiB", "4096 B".
std::string size_text(uint64_t b) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  unsigned u = 0;
  while (u + 1 < std::size(units) && b >= 1024 && b % 1024 == 0) {
    b /= 1024;
    ++u;
  }
  return std::to_string(b) + " " + units[u];
}

// The per-item checks, shared by the TOML loader (which adds file:line) and
// validate_config (which adds the target/LUN it is looking at). Each returns
// "key: problem", or "" when the item is fine.
std::string check_lun(const LunSpec& l) {
  if (l.block_size != 512 && l.block_size != 4096)
    return "block_size: must be 512 or 4096, got " + std::to_string(l.block_size);
  if (l.id > 16383)  // flat/peripheral addressing of SAM-5 single-level LUNs
    return "id: LUN ids go up to 16383, got " + std::to_string(l.id);
  if (l.kind == LunSpec::Kind::file) {
    if (l.path.empty()) return "path: a file LUN needs a path";
  } else {
    if (!l.path.empty()) return "path: only file LUNs take a path";
    if (l.direct) return "direct: only file LUNs can use O_DIRECT";
    if (l.size_bytes == 0) return "size: a " + std::string(kind_name(l.kind)) + " LUN needs a size";
  }
  if (l.size_bytes % l.block_size != 0)
    return "size: " + std::to_string(l.size_bytes) + " is not a multiple of block_size " +
           std::to_string(l.block_size);
  if (l.serial.size() > 64) return "serial: at most 64 characters";
  return "";
}

std::string check_limits(const IscsiLimits& i) {
  auto len_ok = [](uint32_t v) { return v >= kMinLen && v <= kMaxLen; };
  auto range = [](const char* key, uint32_t v) {
    return std::string(key) + ": must be between 512 and 16777215, got " + std::to_string(v);
  };
  if (!len_ok(i.max_recv_data_segment_length))
    return range("max_recv_data_segment_length", i.max_recv_data_segment_length);
  if (!len_ok(i.max_burst_length)) return range("max_burst_length", i.max_burst_length);
  if (!len_ok(i.first_burst_length)) return range("first_burst_length", i.first_burst_length);
  if (i.first_burst_length > i.max_burst_length)
    return "first_burst_length: " + std::to_string(i.first_burst_length) +
           " is larger than max_burst_length " + std::to_string(i.max_burst_length);
  if (i.max_outstanding_r2t < 1 || i.max_outstanding_r2t > 65535)
    return "max_outstanding_r2t: must be between 1 and 65535, got " +
           std::to_string(i.max_outstanding_r2t);
  if (i.queue_depth < 1 || i.queue_depth > 65536)
    return "queue_depth: must be between 1 and 65536, got " + std::to_string(i.queue_depth);
  if (i.max_xfer_bytes < 512 || i.max_xfer_bytes % 512 != 0)
    return "max_xfer_bytes: must be a multiple of 512, at least 512, got " +
           std::to_string(i.max_xfer_bytes);
  return "";
}

// RFC 7143 §9.2.1: a CHAP secret of fewer than 96 random bits needs IPsec
// underneath, which sgvd does not provide.
constexpr size_t kMinChapSecret = 12;
constexpr size_t kMaxChapText = 255;  // user names and secrets

std::string check_chap(const ChapSpec& c) {
  auto pair = [](const std::string& user, const std::string& secret, const char* ukey,
                 const char* skey) -> std::string {
    if (user.empty() && secret.empty()) return "";
    if (user.empty()) return std::string(ukey) + ": " + skey + " needs a " + ukey;
    if (secret.empty()) return std::string(skey) + ": " + ukey + " needs a " + skey;
    if (user.size() > kMaxChapText) return std::string(ukey) + ": at most 255 bytes";
    if (secret.size() > kMaxChapText) return std::string(skey) + ": at most 255 bytes";
    // The secret itself never goes into a message.
    if (secret.size() < kMinChapSecret)
      return std::string(skey) + ": at least 12 bytes (RFC 7143 §9.2.1: shorter CHAP secrets need IPsec), got " +
             std::to_string(secret.size());
    return "";
  };
  std::string e = pair(c.user, c.secret, "chap_user", "chap_secret");
  if (e.empty()) e = pair(c.mutual_user, c.mutual_secret, "mutual_user", "mutual_secret");
  if (!e.empty()) return e;
  if (!c.mutual_user.empty() && c.user.empty())
    return "mutual_user: mutual CHAP needs chap_user and chap_secret too";
  // §9.2.1: a secret authenticates one direction only.
  if (!c.mutual_secret.empty() && c.mutual_secret == c.secret)
    return "mutual_secret: must differ from chap_secret (RFC 7143 §9.2.1)";
  return "";
}

std::string check_target_name(const std::string& name) {
  if (name.empty()) return "name: a target needs a name";
  if (!valid_iscsi_name(name))
    return "name: \"" + name +
           "\" is not an iSCSI name (iqn.YYYY-MM.reverse.domain[:suffix] in lowercase, "
           "eui.<16 hex>, naa.<16 or 32 hex>)";
  return "";
}

// ---- TOML walking ---------------------------------------------------------

class Loader {
 public:
  Loader(std::string name, std::string& err) : name_(std::move(name)), err_(err) {}

  bool load(const toml::value& root, Config& c);

 private:
  using Keys = std::initializer_list<const char*>;

  bool fail(const toml::value& at, const std::string& key, const std::string& what) {
    err_ = name_ + ":" + std::to_string(at.location().line()) + ": " + key + ": " + what;
    return false;
  }
  bool fail_item(const toml::value& at, const std::string& prefix, const std::string& msg) {
    err_ = name_ + ":" + std::to_string(at.location().line()) + ": " + prefix + msg;
    return false;
  }

  // Refuses keys of `t` outside `allowed`, naming the first one's line.
  bool only_keys(const toml::value& t, const std::string& where, Keys allowed) {
    for (const auto& [k, v] : t.as_table()) {
      bool ok = false;
      for (const char* a : allowed) ok = ok || k == a;
      if (!ok) {
        std::string expected;
        for (const char* a : allowed) expected += std::string(expected.empty() ? "" : ", ") + a;
        return fail(v, where.empty() ? k : where + "." + k,
                    "unknown key (expected one of: " + expected + ")");
      }
    }
    return true;
  }

  bool get_uint(const toml::value& v, const std::string& key, uint64_t max, uint64_t& out) {
    if (!v.is_integer()) return fail(v, key, "expected an integer");
    auto i = v.as_integer();
    if (i < 0 || static_cast<uint64_t>(i) > max)
      return fail(v, key, "must be between 0 and " + std::to_string(max) + ", got " +
                              std::to_string(i));
    out = static_cast<uint64_t>(i);
    return true;
  }
  template <typename T>
  bool get_num(const toml::value& v, const std::string& key, T& out) {
    uint64_t u = 0;
    if (!get_uint(v, key, std::numeric_limits<T>::max(), u)) return false;
    out = static_cast<T>(u);
    return true;
  }
  bool get_size(const toml::value& v, const std::string& key, uint64_t& out) {
    if (v.is_integer()) return get_uint(v, key, UINT64_MAX >> 1, out);
    if (v.is_string() && parse_size(v.as_string().str, out)) return true;
    std::string got = v.is_string() ? "\"" + v.as_string().str + "\"" : toml::format(v);
    return fail(v, key, "expected a size like \"4G\", got " + got);
  }
  bool get_bool(const toml::value& v, const std::string& key, bool& out) {
    if (!v.is_boolean()) return fail(v, key, "expected true or false");
    out = v.as_boolean();
    return true;
  }
  bool get_string(const toml::value& v, const std::string& key, std::string& out) {
    if (!v.is_string()) return fail(v, key, "expected a string");
    out = v.as_string().str;
    return true;
  }

  bool load_portals(const toml::value& v, Config& c);
  bool load_iscsi(const toml::value& v, IscsiLimits& i);
  bool load_target(const toml::value& v, TargetSpec& t);
  bool load_lun(const toml::value& v, LunSpec& l);
  // chap_user/chap_secret/mutual_user/mutual_secret of a table; false:
  // `k` is not one of them (ok says whether its value was good).
  bool chap_key(const std::string& k, const toml::value& f, const std::string& prefix, ChapSpec& c,
                bool& ok);
  bool check_chap_table(const toml::value& v, const std::string& prefix, const ChapSpec& c);

  std::string name_;
  std::string& err_;
};

bool Loader::load(const toml::value& root, Config& c) {
  if (!only_keys(root, "",
                 {"reactors", "mem_limit", "lun_mem_limit", "session_mem_limit", "admin_socket",
                  "log_level", "portal", "iscsi", "discovery", "target"}))
    return false;
  for (const auto& [k, v] : root.as_table()) {
    if (k == "reactors") {
      if (!get_num(v, k, c.reactors)) return false;
      if (c.reactors > kMaxReactors)
        return fail(v, k, "at most " + std::to_string(kMaxReactors) + " reactors");
    } else if (k == "mem_limit") {
      if (!get_size(v, k, c.mem_limit)) return false;
    } else if (k == "lun_mem_limit") {
      if (!get_size(v, k, c.lun_mem_limit)) return false;
    } else if (k == "session_mem_limit") {
      if (!get_size(v, k, c.session_mem_limit)) return false;
    } else if (k == "admin_socket") {
      if (!get_string(v, k, c.admin_socket)) return false;
    } else if (k == "log_level") {
      if (!get_string(v, k, c.log_level)) return false;
      if (!valid_log_level(c.log_level))
        return fail(v, k, "expected error, warn, info or debug, got \"" + c.log_level + "\"");
    } else if (k == "portal") {
      if (!load_portals(v, c)) return false;
    } else if (k == "iscsi") {
      if (!v.is_table()) return fail(v, k, "expected a table [iscsi]");
      if (!load_iscsi(v, c.iscsi)) return false;
    } else if (k == "discovery") {
      if (!v.is_table()) return fail(v, k, "expected a table [discovery]");
      if (!only_keys(v, k, {"chap_user", "chap_secret", "mutual_user", "mutual_secret"})) return false;
      ChapSpec d;
      for (const auto& [dk, dv] : v.as_table()) {
        bool ok = true;
        chap_key(dk, dv, "discovery.", d, ok);
        if (!ok) return false;
      }
      if (!check_chap_table(v, "discovery.", d)) return false;
      c.discovery_chap = std::move(d);
    } else if (k == "target") {
      if (!v.is_array()) return fail(v, k, "expected [[target]] tables");
      c.targets.clear();
      std::set<std::string> names;
      for (const auto& tv : v.as_array()) {
        if (!tv.is_table()) return fail(tv, k, "expected [[target]] tables");
        TargetSpec t;
        if (!load_target(tv, t)) return false;
        if (!names.insert(lower(t.name)).second)
          return fail(tv.at("name"), "target.name", "duplicate target \"" + t.name + "\"");
        c.targets.push_back(std::move(t));
      }
    }
  }
  return true;
}

// `portal = ["127.0.0.1:3260", "[::1]:3260"]` or [[portal]] host/port tables.
bool Loader::load_portals(const toml::value& v, Config& c) {
  if (!v.is_array()) return fail(v, "portal", "expected a list of \"HOST:PORT\" or [[portal]] tables");
  c.portals.clear();
  for (const auto& p : v.as_array()) {
    PortalSpec ps;
    if (p.is_string()) {
      if (!parse_portal(p.as_string().str, ps))
        return fail(p, "portal", "expected \"HOST:PORT\" or \"[IPv6]:PORT\", got \"" +
                                     p.as_string().str + "\"");
    } else if (p.is_table()) {
      if (!only_keys(p, "portal", {"host", "port"})) return false;
      for (const auto& [k, f] : p.as_table()) {
        if (k == "host") {
          if (!get_string(f, "portal.host", ps.host)) return false;
          if (ps.host.empty()) return fail(f, "portal.host", "must not be empty");
        } else if (!get_num(f, "portal.port", ps.port)) {
          return false;
        }
      }
    } else {
      return fail(p, "portal", "expected \"HOST:PORT\" or a table with host and port");
    }
    c.portals.push_back(std::move(ps));
  }
  return true;
}

bool Loader::load_iscsi(const toml::value& v, IscsiLimits& i) {
  if (!only_keys(v, "iscsi",
                 {"max_recv_data_segment_length", "max_burst_length", "first_burst_length",
                  "max_outstanding_r2t", "immediate_data", "initial_r2t", "header_digest",
                  "data_digest", "queue_depth", "max_xfer_bytes", "nop_interval", "nop_timeout"}))
    return false;
  for (const auto& kv : v.as_table()) {
    const std::string& k = kv.first;
    const toml::value& f = kv.second;
    std::string key = "iscsi." + k;
    uint64_t sz = 0;
    bool ok = true;
    auto len = [&](uint32_t& out) {
      if (!get_size(f, key, sz)) return false;
      if (sz < kMinLen || sz > kMaxLen)
        return fail(f, key, "must be between 512 and 16777215, got " + std::to_string(sz));
      out = static_cast<uint32_t>(sz);
      return true;
    };
    if (k == "max_recv_data_segment_length") ok = len(i.max_recv_data_segment_length);
    else if (k == "max_burst_length") ok = len(i.max_burst_length);
    else if (k == "first_burst_length") ok = len(i.first_burst_length);
    else if (k == "max_outstanding_r2t") ok = get_num(f, key, i.max_outstanding_r2t);
    else if (k == "immediate_data") ok = get_bool(f, key, i.immediate_data);
    else if (k == "initial_r2t") ok = get_bool(f, key, i.initial_r2t);
    else if (k == "header_digest") ok = get_bool(f, key, i.allow_header_digest);
    else if (k == "data_digest") ok = get_bool(f, key, i.allow_data_digest);
    else if (k == "queue_depth") ok = get_num(f, key, i.queue_depth);
    else if (k == "max_xfer_bytes") {
      ok = get_size(f, key, sz);
      if (ok && sz > UINT32_MAX) return fail(f, key, "at most 4 GiB - 1");
      i.max_xfer_bytes = static_cast<uint32_t>(sz);
    } else if (k == "nop_interval") ok = get_num(f, key, i.nop_interval_s);
    else if (k == "nop_timeout") ok = get_num(f, key, i.nop_timeout_s);
    if (!ok) return false;
  }
  std::string e = check_limits(i);
  if (!e.empty()) {
    // Name the line of the key the message is about when it is in this table.
    std::string key = e.substr(0, e.find(':'));
    const auto& t = v.as_table();
    auto it = t.find(key);
    return fail_item(it != t.end() ? it->second : v, "iscsi.", e);
  }
  return true;
}

bool Loader::chap_key(const std::string& k, const toml::value& f, const std::string& prefix, ChapSpec& c,
                      bool& ok) {
  std::string* dst = k == "chap_user"       ? &c.user
                     : k == "chap_secret"   ? &c.secret
                     : k == "mutual_user"   ? &c.mutual_user
                     : k == "mutual_secret" ? &c.mutual_secret
                                            : nullptr;
  if (!dst) return false;
  ok = get_string(f, prefix + k, *dst);
  return true;
}

bool Loader::check_chap_table(const toml::value& v, const std::string& prefix, const ChapSpec& c) {
  std::string e = check_chap(c);
  if (e.empty()) return true;
  // The line of the key the message names or, when that one is missing
  // ("chap_secret: chap_user needs a chap_secret"), of its partner.
  std::string key = e.substr(0, e.find(':'));
  const auto& t = v.as_table();
  auto it = t.find(key);
  if (it == t.end()) {
    std::string partner = key.ends_with("_user") ? key.substr(0, key.size() - 5) + "_secret"
                                                 : key.substr(0, key.size() - 7) + "_user";
    it = t.find(partner);
  }
  return fail_item(it != t.end() ? it->second : v, prefix, e);
}

bool Loader::load_target(const toml::value& v, TargetSpec& t) {
  if (!only_keys(v, "target",
                 {"name", "alias", "allowed_initiators", "chap_user", "chap_secret", "mutual_user",
                  "mutual_secret", "lun"}))
    return false;
  const auto& tab = v.as_table();
  if (tab.find("name") == tab.end()) return fail(v, "target", "a [[target]] needs a name");
  for (const auto& [k, f] : tab) {
    if (k == "name") {
      if (!get_string(f, "target.name", t.name)) return false;
      std::string e = check_target_name(t.name);
      if (!e.empty()) return fail_item(f, "target.", e);
    } else if (k == "alias") {
      if (!get_string(f, "target.alias", t.alias)) return false;
    } else if (k == "allowed_initiators") {
      if (!f.is_array()) return fail(f, "target.allowed_initiators", "expected a list of names");
      for (const auto& n : f.as_array()) {
        if (!n.is_string() || !valid_iscsi_name(n.as_string().str))
          return fail(n, "target.allowed_initiators", "expected an iSCSI name, got " +
                                                          toml::format(n));
        t.allowed_initiators.push_back(n.as_string().str);
      }
    } else {
      bool ok = true;
      if (chap_key(k, f, "target.", t.chap, ok) && !ok) return false;
    }
  }
  if (!check_chap_table(v, "target.", t.chap)) return false;
  auto it = tab.find("lun");
  if (it == tab.end() || !it->second.is_array() || it->second.as_array().empty())
    return fail(it == tab.end() ? v : it->second, "target",
                "target \"" + t.name + "\" has no [[target.lun]]");
  std::set<uint64_t> ids;
  uint64_t next_id = 0;
  for (const auto& lv : it->second.as_array()) {
    if (!lv.is_table()) return fail(lv, "lun", "expected [[target.lun]] tables");
    LunSpec l;
    l.id = next_id;  // ids default to "the next one", like --lun
    if (!load_lun(lv, l)) return false;
    if (!ids.insert(l.id).second) {
      const auto& lt = lv.as_table();
      auto idv = lt.find("id");
      return fail(idv != lt.end() ? idv->second : lv, "lun.id",
                  "duplicate LUN " + std::to_string(l.id) + " in target \"" + t.name + "\"");
    }
    next_id = l.id + 1;
    t.luns.push_back(std::move(l));
  }
  return true;
}

bool Loader::load_lun(const toml::value& v, LunSpec& l) {
  if (!only_keys(v, "lun",
                 {"id", "kind", "path", "size", "block_size", "direct", "read_only", "mem_limit",
                  "serial"}))
    return false;
  const auto& tab = v.as_table();
  // kind first: the other keys' checks depend on it.
  bool size_given = false;
  if (auto it = tab.find("kind"); it != tab.end()) {
    std::string k;
    if (!get_string(it->second, "lun.kind", k)) return false;
    if (!parse_kind(k, l.kind))
      return fail(it->second, "lun.kind", "expected \"ram\", \"file\" or \"null\", got \"" + k + "\"");
  }
  for (const auto& [k, f] : tab) {
    std::string key = "lun." + k;
    bool ok = true;
    if (k == "id") ok = get_uint(f, key, UINT64_MAX, l.id);
    else if (k == "path") ok = get_string(f, key, l.path);
    else if (k == "size") { ok = get_size(f, key, l.size_bytes); size_given = true; }
    else if (k == "block_size") ok = get_num(f, key, l.block_size);
    else if (k == "direct") ok = get_bool(f, key, l.direct);
    else if (k == "read_only") ok = get_bool(f, key, l.read_only);
    else if (k == "mem_limit") ok = get_size(f, key, l.mem_limit);
    else if (k == "serial") ok = get_string(f, key, l.serial);
    if (!ok) return false;
  }
  if (l.kind == LunSpec::Kind::file && !size_given) l.size_bytes = 0;  // the file's size
  std::string e = check_lun(l);
  if (!e.empty()) {
    std::string key = e.substr(0, e.find(':'));
    auto it = tab.find(key);
    return fail_item(it != tab.end() ? it->second : v, "lun.", e);
  }
  return true;
}

// toml11's syntax errors are several lines ("[error] toml::parse_...: what\n
//  --> file\n ..."); keep the "what".
std::string syntax_message(const std::string& what) {
  std::string first = what.substr(0, what.find('\n'));
  if (first.rfind("[error] ", 0) == 0) first.erase(0, 8);
  if (first.rfind("toml::", 0) == 0) {
    auto colon = first.find(": ");
    if (colon != std::string::npos) first.erase(0, colon + 2);
  }
  return first;
}

uint64_t physical_ram() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 4ull << 30;  // unknown: assume a small machine
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

}  // namespace

bool parse_size(std::string_view s, uint64_t& out) {
  size_t i = 0;
  uint64_t v = 0;
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
    uint64_t d = static_cast<uint64_t>(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  std::string suf = lower(s.substr(i));
  unsigned shift = 0;
  if (!suf.empty()) {
    switch (suf[0]) {
      case 'k': shift = 10; break;
      case 'm': shift = 20; break;
      case 'g': shift = 30; break;
      case 't': shift = 40; break;
      case 'p': shift = 50; break;
      case 'b': shift = 0; break;
      default: return false;
    }
    std::string rest = suf[0] == 'b' ? suf.substr(1) : suf.substr(1);
    if (suf[0] == 'b') {
      if (!rest.empty()) return false;
    } else if (!(rest.empty() || rest == "b" || rest == "ib")) {
      return false;
    }
  }
  if (shift && v > (UINT64_MAX >> shift)) return false;
  out = v << shift;
  return true;
}

bool parse_portal(std::string_view s, PortalSpec& out) {
  std::string_view host = s, port;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    host = s.substr(1, close - 1);
    std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
  } else {
    auto colon = s.rfind(':');
    if (colon != std::string_view::npos) {
      if (s.find(':') != colon) return false;  // bare IPv6 needs brackets
      host = s.substr(0, colon);
      port = s.substr(colon + 1);
      if (port.empty()) return false;
    }
  }
  if (host.empty()) return false;
  uint32_t p = 3260;
  if (!port.empty()) {
    if (port.size() > 5) return false;
    p = 0;
    for (char ch : port) {
      if (!std::isdigit(static_cast<unsigned char>(ch))) return false;
      p = p * 10 + static_cast<uint32_t>(ch - '0');
    }
    if (p > 65535) return false;
  }
  out.host = std::string(host);
  out.port = static_cast<uint16_t>(p);
  return true;
}

bool valid_iscsi_name(std::string_view n) {
  if (n.size() > 223) return false;
  if (n.substr(0, 4) == "eui.") return n.size() == 20 && all_hex(n.substr(4));
  if (n.substr(0, 4) == "naa.") {
    auto h = n.substr(4);
    return (h.size() == 16 || h.size() == 32) && all_hex(h);
  }
  if (n.substr(0, 4) != "iqn.") return false;
  // iqn.YYYY-MM.
  if (n.size() < 13) return false;
  for (int i : {4, 5, 6, 7, 9, 10})
    if (!std::isdigit(static_cast<unsigned char>(n[static_cast<size_t>(i)]))) return false;
  if (n[8] != '-' || n[11] != '.') return false;
  int month = (n[9] - '0') * 10 + (n[10] - '0');
  if (month < 1 || month > 12) return false;
  // reverse domain: labels of [a-z0-9-], at least one, then optional ":suffix".
  std::string_view rest = n.substr(12);
  auto colon = rest.find(':');
  std::string_view domain = rest.substr(0, colon);
  if (domain.empty() || domain.front() == '.' || domain.back() == '.' ||
      domain.find("..") != std::string_view::npos)
    return false;
  for (char ch : domain)
    if (!(std::islower(static_cast<unsigned char>(ch)) || std::isdigit(static_cast<unsigned char>(ch)) ||
          ch == '-' || ch == '.'))
      return false;
  if (colon != std::string_view::npos) {
    std::string_view suffix = rest.substr(colon + 1);
    if (suffix.empty()) return false;
    for (char ch : suffix)
      if (!(std::islower(static_cast<unsigned char>(ch)) ||
            std::isdigit(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.' || ch == ':'))
        return false;
  }
  return true;
}

void apply_defaults(Config& c) {
  if (c.portals.empty()) c.portals.push_back(PortalSpec{});
  if (c.targets.empty()) {
    TargetSpec t;
    t.name = kDefaultTarget;
    t.luns.push_back(LunSpec{});  // LUN 0, 1 GiB RAM
    c.targets.push_back(std::move(t));
  }
  if (c.mem_limit == 0) c.mem_limit = physical_ram() / 4;
  if (c.lun_mem_limit == 0) c.lun_mem_limit = c.mem_limit / 5 * 2;
  if (c.session_mem_limit == 0)
    c.session_mem_limit = uint64_t{c.iscsi.max_xfer_bytes} * c.iscsi.queue_depth / 4;
  for (auto& t : c.targets)
    for (auto& l : t.luns)
      if (l.mem_limit == 0) l.mem_limit = c.lun_mem_limit;
}

int validate_config(const Config& c, std::string& err) {
  auto bad = [&err](std::string m) {
    err = std::move(m);
    return -1;
  };
  if (c.portals.empty()) return bad("no portal to listen on");
  for (const auto& p : c.portals)
    if (p.host.empty()) return bad("portal: empty host");
  if (c.targets.empty()) return bad("no target");
  if (c.reactors > kMaxReactors) return bad("reactors: at most " + std::to_string(kMaxReactors));
  if (!valid_log_level(c.log_level))
    return bad("log_level: expected error, warn, info or debug, got \"" + c.log_level + "\"");
  if (c.lun_mem_limit > c.mem_limit && c.mem_limit != 0)
    return bad("lun_mem_limit: larger than mem_limit");
  std::string e = check_limits(c.iscsi);
  if (!e.empty()) return bad("iscsi." + e);
  e = check_chap(c.discovery_chap);
  if (!e.empty()) return bad("discovery." + e);
  std::set<std::string> names;
  for (const auto& t : c.targets) {
    e = check_target_name(t.name);
    if (!e.empty()) return bad("target." + e);
    if (!names.insert(lower(t.name)).second) return bad("target.name: duplicate target \"" + t.name + "\"");
    if (t.luns.empty()) return bad("target \"" + t.name + "\" has no LUN");
    e = check_chap(t.chap);
    if (!e.empty()) return bad("target \"" + t.name + "\": " + e);
    std::set<uint64_t> ids;
    for (const auto& l : t.luns) {
      std::string where = "target \"" + t.name + "\" LUN " + std::to_string(l.id) + ": ";
      e = check_lun(l);
      if (!e.empty()) return bad(where + e);
      if (!ids.insert(l.id).second) return bad(where + "id: duplicate LUN id");
    }
  }
  return 0;
}

int load_config_text(std::string_view text, const std::string& name, Config& out,
                     std::string& err) {
  std::istringstream in{std::string(text)};
  toml::value root;
  try {
    root = toml::parse(in, name);
  } catch (const toml::syntax_error& e) {
    err = name + ":" + std::to_string(e.location().line()) + ": " + syntax_message(e.what());
    return -1;
  } catch (const toml::exception& e) {
    err = name + ":" + std::to_string(e.location().line()) + ": " + syntax_message(e.what());
    return -1;
  } catch (const std::exception& e) {
    err = name + ": " + syntax_message(e.what());
    return -1;
  }
  Config c = out;  // untouched on failure
  Loader loader(name, err);
  try {
    if (!loader.load(root, c)) return -1;
  } catch (const std::exception& e) {  // toml11 accessors on an unexpected shape
    err = name + ": " + syntax_message(e.what());
    return -1;
  }
  out = std::move(c);
  return 0;
}

int load_config_file(const std::string& path, Config& out, std::string& err) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    err = path + ": " + std::strerror(errno);
    return -1;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return load_config_text(ss.str(), path, out, err);
}

std::string config_to_toml(const Config& c) {
  auto q = [](const std::string& s) {
    std::string r = "\"";
    for (char ch : s) {
      if (ch == '"' || ch == '\\') r += '\\';
      r += ch;
    }
    return r + "\"";
  };
  std::ostringstream o;
  o << "# sgvd configuration (sgvctl config)\n";
  o << "reactors = " << c.reactors << "\n";
  o << "mem_limit = " << c.mem_limit << "\n";
  o << "lun_mem_limit = " << c.lun_mem_limit << "\n";
  o << "session_mem_limit = " << c.session_mem_limit << "\n";
  o << "admin_socket = " << q(c.admin_socket) << "\n";
  o << "log_level = " << q(c.log_level) << "\n";
  o << "portal = [";
  for (size_t i = 0; i < c.portals.size(); ++i) {
    const auto& p = c.portals[i];
    bool v6 = p.host.find(':') != std::string::npos;
    o << (i ? ", " : "")
      << q((v6 ? "[" + p.host + "]" : p.host) + ":" + std::to_string(p.port));
  }
  o << "]\n\n[iscsi]\n";
  const auto& i = c.iscsi;
  o << "max_recv_data_segment_length = " << i.max_recv_data_segment_length << "\n"
    << "max_burst_length = " << i.max_burst_length << "\n"
    << "first_burst_length = " << i.first_burst_length << "\n"
    << "max_outstanding_r2t = " << i.max_outstanding_r2t << "\n"
    << "immediate_data = " << (i.immediate_data ? "true" : "false") << "\n"
    << "initial_r2t = " << (i.initial_r2t ? "true" : "false") << "\n"
    << "header_digest = " << (i.allow_header_digest ? "true" : "false") << "\n"
    << "data_digest = " << (i.allow_data_digest ? "true" : "false") << "\n"
    << "queue_depth = " << i.queue_depth << "\n"
    << "max_xfer_bytes = " << i.max_xfer_bytes << "\n"
    << "nop_interval = " << i.nop_interval_s << "\n"
    << "nop_timeout = " << i.nop_timeout_s << "\n";
  // CHAP secrets are never rendered (sgvctl shows this text): the user
  // names are, with a note that the secret was left out, so the text reads
  // back only after the secrets are filled in again.
  auto chap = [&o, &q](const ChapSpec& ch) {
    if (!ch.enabled()) return;
    o << "chap_user = " << q(ch.user) << "\n# chap_secret = (hidden)\n";
    if (!ch.mutual_user.empty()) o << "mutual_user = " << q(ch.mutual_user) << "\n# mutual_secret = (hidden)\n";
  };
  if (c.discovery_chap.enabled()) {
    o << "\n[discovery]\n";
    chap(c.discovery_chap);
  }
  for (const auto& t : c.targets) {
    o << "\n[[target]]\nname = " << q(t.name) << "\n";
    if (!t.alias.empty()) o << "alias = " << q(t.alias) << "\n";
    if (!t.allowed_initiators.empty()) {
      o << "allowed_initiators = [";
      for (size_t k = 0; k < t.allowed_initiators.size(); ++k)
        o << (k ? ", " : "") << q(t.allowed_initiators[k]);
      o << "]\n";
    }
    chap(t.chap);
    for (const auto& l : t.luns) {
      o << "\n[[target.lun]]\nid = " << l.id << "\nkind = " << q(kind_name(l.kind)) << "\n";
      if (l.kind == LunSpec::Kind::file) o << "path = " << q(l.path) << "\n";
      o << "size = " << l.size_bytes << "  # " << size_text(l.size_bytes) << "\n"
        << "block_size = " << l.block_size << "\n";
      if (l.kind == LunSpec::Kind::file) o << "direct = " << (l.direct ? "true" : "false") << "\n";
      o << "read_only = " << (l.read_only ? "true" : "false") << "\n"
        << "mem_limit = " << l.mem_limit << "\n";
      if (!l.serial.empty()) o << "serial = " << q(l.serial) << "\n";
    }
  }
  return o.str();
}

const char* sgv_version() { return "sgv 0.1.0"; }

}  // namespace sgv::server
