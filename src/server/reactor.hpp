// server/reactor.hpp - one reactor thread: an epoll loop over its
// connections, the backend's per-thread completion eventfd and an inbox
// other threads post to (new connections from the acceptor, memory grants
// from the pool's waiters, kills from session reinstatement).
//
// Why epoll and not io_uring for sockets: the PDU reader lands each data
// segment straight into the command's SG vector, and where that is depends
// on the header just read. Readiness + readv lets the reader choose the
// destination at the moment of reading; a completion model would need a
// read posted in advance into a buffer chosen before the header is known
// (a copy) or a two-step read per PDU with a ring round-trip each. File
// LUN I/O still goes through io_uring (backend::thread_completion_fd()).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "iscsi/conn.hpp"
#include "iscsi/session.hpp"

namespace sgv::server {

class Reactor {
 public:
  // host answers the connections' questions (targets, discovery, sessions).
  Reactor(unsigned id, iscsi::Host* host, bool poll_backend);
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  int start();  // 0 or -errno
  // Closes every connection, waits for their backend I/O, joins the thread.
  void stop();

  // Any thread: hand over an accepted socket (already non-blocking).
  void add_conn(int fd, std::string peer);
  // Any thread: close this connection if it still lives here.
  void kill_conn(const void* conn);
  // Any thread (pool waiter callback): deliver a memory grant.
  static void post_grant(void* self, iscsi::Conn* c, iscsi::Cmd* cmd, Vec* v, int status);

  unsigned id() const { return id_; }
  iscsi::Counters& counters() { return ctr_; }
  size_t connections() const { return nconns_.load(std::memory_order_relaxed); }

 private:
  struct Entry;
  struct Msg {
    enum Kind : uint8_t { add, grant, kill } kind;
    int fd;
    iscsi::Conn* conn;
    iscsi::Cmd* cmd;
    Vec* vec;
    int status;
    const void* key;
  };
  void run();
  void post(const Msg& m);
  void drain_inbox();
  void update(Entry* e);
  void drop(Entry* e);
  void service(Entry* e, bool readable, bool writable);

  const unsigned id_;
  iscsi::Host* host_;
  const bool poll_backend_;
  int ep_ = -1;
  int evfd_ = -1;
  std::thread thr_;
  std::atomic<bool> stop_{false};  // set by stop(); read by the loop (release/acquire)
  std::mutex mu_;                  // guards inbox_
  std::vector<Msg> inbox_;
  std::vector<Msg> work_;          // loop thread only: swapped with inbox_
  std::vector<std::unique_ptr<Entry>> conns_;    // loop thread only
  std::vector<std::unique_ptr<Entry>> zombies_;  // closed, backend I/O in flight
  std::atomic<size_t> nconns_{0};  // written by the loop, read by stats (relaxed)
  iscsi::Counters ctr_;
};

}  // namespace sgv::server
