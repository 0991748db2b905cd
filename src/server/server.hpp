// server/server.hpp - sgvd's engine: portals, reactor threads, targets and
// the memory they share (one SGV pool, a global budget over per-LUN and
// per-session budgets). apps/sgvd builds a Config, constructs a Server,
// calls start(), waits for a signal and calls stop().
//
// Threading: start()/stop()/bound_portals() from one controlling thread;
// stats_dump() from any thread (admin socket).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/config.hpp"

namespace sgv::server {

class Server {
 public:
  explicit Server(const Config& cfg);
  ~Server();  // stop() if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Builds targets and LUNs, binds every portal, starts the reactors.
  // 0 or a negative errno (nothing left running on failure).
  int start();
  // Clean shutdown: stop accepting, close connections (tasks in flight
  // complete first), flush every LUN. Idempotent.
  void stop();
  // key=value lines: connections, sessions, commands, bytes, and the sgv
  // cache and budget statistics.
  std::string stats_dump() const;
  // "target=NAME" then that target's Target::reservations_dump(), per target.
  std::string reservations_dump() const;
  // (host, port) actually bound, in Config::portals order (port 0 resolved).
  std::vector<std::pair<std::string, uint16_t>> bound_portals() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sgv::server
