// apps/sgvd.cpp - the sgvd daemon: flags/TOML into a Config, a Server, an
// optional admin socket, then wait for SIGTERM/SIGINT and stop cleanly
// (Server::stop() flushes file LUNs). Exit: 0 clean, 1 could not start,
// 2 bad command line or configuration.
#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "server/admin.hpp"
#include "server/config_load.hpp"
#include "server/log.hpp"
#include "server/server.hpp"

using namespace sgv::server;

namespace {

std::string human(uint64_t b) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  unsigned u = 0;
  while (u + 1 < std::size(units) && b >= 1024 && b % 1024 == 0) {
    b /= 1024;
    ++u;
  }
  return std::to_string(b) + " " + units[u];
}

const char* kind(LunSpec::Kind k) {
  return k == LunSpec::Kind::ram ? "ram" : k == LunSpec::Kind::file ? "file" : "null";
}

std::string lun_text(const LunSpec& l) {
  std::string s = "LUN " + std::to_string(l.id) + " (";
  if (l.kind == LunSpec::Kind::file)
    s += "file " + l.path + (l.size_bytes ? ", " + human(l.size_bytes) : "");
  else
    s += human(l.size_bytes) + " " + kind(l.kind);
  if (l.read_only) s += ", read-only";
  return s + ")";
}

std::string url_host(const std::string& h) {
  return h.find(':') != std::string::npos ? "[" + h + "]" : h;
}

std::string luns_dump(const Config& c) {
  std::string r;
  for (const auto& t : c.targets)
    for (const auto& l : t.luns)
      r += t.name + " " + std::to_string(l.id) + " " + kind(l.kind) + " " +
           std::to_string(l.size_bytes) + " " + std::to_string(l.block_size) +
           (l.kind == LunSpec::Kind::file ? " " + l.path : "") + (l.read_only ? " ro" : "") +
           "\n";
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  // Block the stop signals before any thread exists so every thread
  // inherits the mask and only sigwait() below ever sees them.
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGTERM);
  sigaddset(&stop_set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a vanished initiator is an EPIPE, not a death

  Config cfg;
  std::string text;
  switch (parse_args(argc, argv, cfg, text)) {
    case ArgsResult::exit_ok: std::fputs(text.c_str(), stdout); return 0;
    case ArgsResult::exit_usage: std::fputs(text.c_str(), stderr); return 2;
    case ArgsResult::run: break;
  }
  apply_defaults(cfg);
  if (validate_config(cfg, text) != 0) {
    std::fprintf(stderr, "sgvd: %s\n", text.c_str());
    return 2;
  }
  LogLevel level = LogLevel::info;
  parse_log_level(cfg.log_level, level);
  set_log_level(level);

  Server server(cfg);
  if (int rc = server.start(); rc != 0) {
    std::fprintf(stderr, "sgvd: cannot start: %s\n", std::strerror(-rc));
    return 1;
  }
  auto bound = server.bound_portals();

  AdminServer admin;
  if (!cfg.admin_socket.empty()) {
    admin.add("stats", "counters: connections, sessions, commands, bytes, cache, budgets",
              [&server] { return server.stats_dump(); });
    admin.add("config", "the running configuration as TOML", [&cfg] { return config_to_toml(cfg); });
    admin.add("luns", "target lun kind size block_size [path] [ro]", [&cfg] { return luns_dump(cfg); });
    admin.add("reservations", "per LUN: persistent reservation, registrations, RESERVE(6) holder",
              [&server] { return server.reservations_dump(); });
    admin.add("version", "sgvd's version", [] { return std::string(sgv_version()) + "\n"; });
    if (int rc = admin.start(cfg.admin_socket); rc != 0) {
      std::fprintf(stderr, "sgvd: admin socket %s: %s\n", cfg.admin_socket.c_str(),
                   std::strerror(-rc));
      server.stop();
      return 1;
    }
  }

  std::string where;
  for (const auto& [h, p] : bound) where += (where.empty() ? "" : ", ") + url_host(h) + ":" + std::to_string(p);
  for (const auto& t : cfg.targets) {
    std::string luns;
    for (const auto& l : t.luns) luns += (luns.empty() ? "" : ", ") + lun_text(l);
    std::printf("sgvd: serving %s %s on %s\n", t.name.c_str(), luns.c_str(), where.c_str());
  }
  if (!bound.empty() && !cfg.targets.empty() && !cfg.targets[0].luns.empty()) {
    // A CHAP target needs credentials in the URL (libiscsi: user%secret@);
    // the hint names the user and leaves the secret to the reader, since
    // stdout often ends up in logs.
    const ChapSpec& chap = cfg.targets[0].chap;
    std::string cred = chap.enabled() ? chap.user + "%<secret>@" : "";
    std::printf("sgvd: try: iscsi-inq iscsi://%s%s:%u/%s/%llu\n", cred.c_str(), url_host(bound[0].first).c_str(),
                bound[0].second, cfg.targets[0].name.c_str(),
                static_cast<unsigned long long>(cfg.targets[0].luns[0].id));
  }
  if (!cfg.admin_socket.empty()) std::printf("sgvd: admin: sgvctl --socket %s stats\n", cfg.admin_socket.c_str());
  std::fflush(stdout);

  int sig = 0;
  while (sigwait(&stop_set, &sig) != 0) {
  }
  logf(LogLevel::info, "%s: stopping", strsignal(sig));
  admin.stop();
  server.stop();
  return 0;
}
