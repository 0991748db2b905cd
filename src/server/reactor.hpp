// server/reactor.hpp - one reactor thread: an epoll loop over its
// connections, the backend's per-thread completion eventfd and an inbox
// other threads post to (new connections from the acceptor, memory grants
// from the pool's waiters, kills from session reinstatement, resumes of
// commands the SCSI core parked).
//
// Why epoll and not io_uring for sockets: the PDU reader lands each data
// segment straight into the command's SG vector, and where that is depends
// on the header just read. Readiness + readv lets the reader choose the
// destination at the moment of reading; a completion model would need a
// read posted in advance into a buffer chosen before the header is known
// (a copy) or a recv per PDU with a ring round trip each. Measured with
// bench/compare/socket_rx.cpp (48-byte PDUs in bursts over loopback, server
// thread CPU per PDU, this 2-core VM at load ~10, 2026-11-30):
//   burst 32: epoll+readv per PDU 2.14 us, epoll+peek+one read 0.40 us,
//             io_uring recv per PDU 1.95 us, io_uring one recv per burst
//             0.26 us (copy-free only when no PDU carries data)
//   burst 8:  2.38 / 1.49 / 3.08 / 1.25 us;  burst 1: 12.2 / 15.5 / 11.4 / 12.6 us
// So the ring buys nothing per PDU over readv; what pays is fewer syscalls
// per PDU, which epoll gets without copies by peeking the run of
// header-only PDUs (iscsi::Conn::on_readable). File LUN I/O runs inline
// where it cannot block (tmpfs, page-cache hits with RWF_NOWAIT) and through
// io_uring otherwise (backend::thread_completion_fd(); backend/file.cpp has
// the figures: on tmpfs the ring cost an io-wq worker per command).
//
// No busy polling before epoll_wait: spinning 50 or 200 us with
// epoll_wait(0) raised sgvd's CPU per 4 KiB read from ~8 to ~11.5 us and
// moved p99 only within this box's run-to-run noise (2-5 ms at one session,
// 11-28 ms at four, both ways), since on 2 cores the spinner takes the CPU
// the initiator needs.
//
// No SO_RCVLOWAT while a large data segment trickles in: raising it to the
// bytes the reader still wanted (64-256 KiB) left the wakeups of 1 MiB WRITEs
// at QD8 where they were (epoll returns per I/O on the file LUN 0.76-1.13
// without, 0.88-0.95 with; RAM LUN 1.37-1.45 / 1.53-1.54; 2026-11-30, load
// ~5). The reader seldom waits mid-segment (the setsockopt ran for 0.01-0.17
// of the I/Os): it sleeps at PDU boundaries, where a header must wake it.
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
  // Any thread (SCSI core): resume a parked task of a connection here.
  static void post_resume(void* self, iscsi::Conn* c, iscsi::Cmd* cmd);

  unsigned id() const { return id_; }
  iscsi::Counters& counters() { return ctr_; }
  size_t connections() const { return nconns_.load(std::memory_order_relaxed); }

 private:
  struct Entry;
  struct Msg {
    enum Kind : uint8_t { add, grant, kill, resume } kind;
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
