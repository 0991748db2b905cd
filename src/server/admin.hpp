// server/admin.hpp - sgvd's admin endpoint: a unix socket that answers
// one-line commands (`stats`, `config`, `luns`, `reservations`, `version`,
// `help`) for sgvctl. Commands are callbacks returning text, so the
// endpoint knows nothing of Server internals and tests can drive it alone.
//
// Wire format: the client sends a command line ending in '\n'; the reply is
// text lines ended by a line holding only ".", and a body line that starts
// with '.' gets one more '.' in front (SMTP's dot-stuffing), so any text can
// pass. Unknown commands reply "error: ...". One client at a time, on the
// endpoint's own thread; a client that stalls is dropped after a timeout.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <thread>

namespace sgv::server {

class AdminServer {
 public:
  using Handler = std::function<std::string()>;

  AdminServer() = default;
  ~AdminServer();  // stop()
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Registers a command; before start() only (the thread reads the map
  // without a lock). Handlers run on the admin thread.
  void add(std::string command, std::string help, Handler h);

  // Binds `path` (a stale socket left by a dead sgvd is replaced; a live
  // one is not: -EADDRINUSE), then serves on a new thread. 0 or -errno.
  int start(const std::string& path);
  // Stops the thread, closes and unlinks the socket. Idempotent.
  void stop();

  // The reply body for one command line (no framing). The thread's core,
  // public so tests can check it without a socket.
  std::string handle(std::string_view line) const;

 private:
  void serve();
  void serve_client(int fd);

  struct Command {
    std::string help;
    Handler fn;
  };
  std::map<std::string, Command, std::less<>> commands_;  // frozen once start() returns
  std::string path_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop() wakes the thread's poll
  std::thread thread_;
};

// Client side (sgvctl, tests): sends `command`, returns the un-stuffed reply
// in `reply`. 0, or -errno when the socket can't be reached or the reply is
// cut short.
int admin_request(const std::string& path, std::string_view command, std::string& reply);

}  // namespace sgv::server
