// sgvbench/options.cpp - command-line parsing for sgvbench.
#include "options.hpp"

#include <cstdlib>
#include <cstring>

namespace sgvbench {

const char* usage() {
  return
      "usage: sgvbench --url iscsi://127.0.0.1:3260/<iqn>/<lun> [options]\n"
      "  --sessions N      iSCSI sessions, each with its own initiator name (1)\n"
      "  --threads N       poll loops the sessions are spread over (1)\n"
      "  --qd N            commands in flight per session (32)\n"
      "  --bs SIZE         bytes per I/O, e.g. 4k, 1m (4k)\n"
      "  --rw MODE         read|write|randread|randwrite|rw|randrw|mix (randread)\n"
      "  --rwmixread P     percentage of reads for rw/randrw/mix (70)\n"
      "  --time S          stop after S seconds (10; 0 = no time bound)\n"
      "  --ios N           stop after N I/Os in all (0 = no count bound)\n"
      "  --size SIZE       use only the first SIZE bytes of the LUN\n"
      "  --verify          write LBA+generation patterns, check every read\n"
      "  --header-digest   insist on CRC32C header digests (default: none)\n"
      "  --initiator IQN   initiator name prefix (session i gets IQN-i)\n"
      "  --progress/--no-progress  one stderr line per second\n"
      "  --no-cork         send each PDU as libiscsi does (no TCP_CORK per batch)\n"
      "  --json            print the result as JSON on stdout\n"
      "Connects only to 127.0.0.1 or ::1. Exit status: 0 ok, 1 I/O failures\n"
      "or verify errors, 2 usage or connection errors.\n";
}

bool parse_size(const std::string& s, uint64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (end == s.c_str()) return false;
  uint64_t mul = 1;
  std::string suf(end);
  if (suf == "" || suf == "b") mul = 1;
  else if (suf == "k" || suf == "K" || suf == "KiB") mul = 1ull << 10;
  else if (suf == "m" || suf == "M" || suf == "MiB") mul = 1ull << 20;
  else if (suf == "g" || suf == "G" || suf == "GiB") mul = 1ull << 30;
  else return false;
  *out = uint64_t(v) * mul;
  return true;
}

bool loopback_portal(const std::string& p) {
  // libiscsi keeps the portal as "host:port" or "[v6]:port", or bare host.
  auto host_is = [&](const char* h) {
    size_t n = std::strlen(h);
    return p.compare(0, n, h) == 0 && (p.size() == n || p[n] == ':');
  };
  return host_is("127.0.0.1") || host_is("[::1]") || p == "::1";
}

static bool to_uint(const char* s, uint64_t* out) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || *end) return false;
  *out = v;
  return true;
}

bool parse_args(int argc, char** argv, Options* o, std::string* err) {
  bool mix_given = false;
  unsigned mix = 70;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto need = [&]() -> const char* {
      if (i + 1 >= argc) return nullptr;
      return argv[++i];
    };
    auto bad = [&](const std::string& why) {
      *err = a + ": " + why;
      return false;
    };
    uint64_t n = 0;
    if (a == "-h" || a == "--help") {
      err->clear();
      return false;
    } else if (a == "--json") {
      o->json = true;
    } else if (a == "--verify") {
      o->verify = true;
    } else if (a == "--header-digest") {
      o->header_digest = true;
    } else if (a == "--progress") {
      o->progress = 1;
    } else if (a == "--no-progress") {
      o->progress = 0;
    } else if (a == "--no-cork") {
      o->cork = false;
    } else {
      const char* v = need();
      if (!v) return bad("needs a value");
      if (a == "--url") {
        o->url = v;
      } else if (a == "--initiator") {
        o->initiator = v;
      } else if (a == "--sessions" || a == "--threads" || a == "--qd") {
        if (!to_uint(v, &n) || n == 0 || n > 1024) return bad("want 1..1024");
        (a == "--sessions" ? o->sessions : a == "--threads" ? o->threads : o->qd) = unsigned(n);
      } else if (a == "--bs") {
        if (!parse_size(v, &n) || n == 0 || n % 512 || n > (16u << 20))
          return bad("want a multiple of 512 up to 16m");
        o->bs = uint32_t(n);
      } else if (a == "--size") {
        if (!parse_size(v, &n)) return bad("bad size");
        o->size = n;
      } else if (a == "--rwmixread") {
        if (!to_uint(v, &n) || n > 100) return bad("want 0..100");
        mix = unsigned(n);
        mix_given = true;
      } else if (a == "--time") {
        char* end = nullptr;
        double t = std::strtod(v, &end);
        if (end == v || *end || t < 0) return bad("want seconds >= 0");
        o->time_s = t;
      } else if (a == "--ios") {
        if (!to_uint(v, &n)) return bad("want a count");
        o->ios = n;
      } else if (a == "--rw") {
        std::string m = v;
        o->rw = m;
        if (m == "read") { o->pattern = Pattern::seq; o->read_pct = 100; }
        else if (m == "write") { o->pattern = Pattern::seq; o->read_pct = 0; }
        else if (m == "randread") { o->pattern = Pattern::rand; o->read_pct = 100; }
        else if (m == "randwrite") { o->pattern = Pattern::rand; o->read_pct = 0; }
        else if (m == "rw" || m == "readwrite") { o->pattern = Pattern::seq; o->read_pct = 101; }
        else if (m == "randrw" || m == "mix") { o->pattern = Pattern::rand; o->read_pct = 101; }
        else return bad("unknown mode");
      } else {
        *err = "unknown option " + a;
        return false;
      }
    }
  }
  if (o->read_pct == 101) o->read_pct = mix;  // a mix mode: --rwmixread applies
  else if (mix_given) {
    *err = "--rwmixread needs --rw rw, randrw or mix";
    return false;
  }
  if (o->url.empty()) {
    *err = "--url is required";
    return false;
  }
  if (o->time_s == 0 && o->ios == 0) {
    *err = "--time 0 needs --ios N: a run must stop by itself";
    return false;
  }
  if (o->threads > o->sessions) o->threads = o->sessions;
  return true;
}

}  // namespace sgvbench
