// apps/sgvctl.cpp - asks a running sgvd (through its --admin-socket) for
// stats, LUNs, configuration, reservations or version and prints the answer.
// Exit: 0 answered, 1 no answer or an error reply, 2 bad command line.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "server/admin.hpp"

namespace {

constexpr const char* kUsage =
    "usage: sgvctl [--socket PATH] stats|luns|config|reservations|version|help\n"
    "  --socket PATH   sgvd's --admin-socket (default $SGVD_ADMIN_SOCKET, else /tmp/sgvd.sock)\n";

}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("SGVD_ADMIN_SOCKET");
  std::string socket = env && *env ? env : "/tmp/sgvd.sock";
  std::string command;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--socket" && i + 1 < argc) {
      socket = argv[++i];
    } else if (a.rfind("--socket=", 0) == 0) {
      socket = a.substr(9);
    } else if (!a.empty() && a[0] != '-' && command.empty()) {
      command = a;
    } else {
      std::fprintf(stderr, "sgvctl: unexpected argument '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (command.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string reply;
  if (int rc = sgv::server::admin_request(socket, command, reply); rc != 0) {
    std::fprintf(stderr, "sgvctl: %s: %s (is sgvd running with --admin-socket %s?)\n",
                 socket.c_str(), std::strerror(-rc), socket.c_str());
    return 1;
  }
  std::fputs(reply.c_str(), stdout);
  return reply.rfind("error:", 0) == 0 ? 1 : 0;
}
