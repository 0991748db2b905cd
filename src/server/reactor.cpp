// server/reactor.cpp - the reactor loop (see reactor.hpp).
#include "server/reactor.hpp"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "backend/backend.hpp"

namespace sgv::server {

struct Reactor::Entry {
  std::unique_ptr<iscsi::Conn> conn;
  uint32_t mask = 0;
  int fd = -1;
};

namespace {
uint64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}
char g_evfd_tag, g_uring_tag;
}  // namespace

Reactor::Reactor(unsigned id, iscsi::Host* host, bool poll_backend)
    : id_(id), host_(host), poll_backend_(poll_backend) {
  inbox_.reserve(256);
  work_.reserve(256);
}

Reactor::~Reactor() {
  stop();
  if (ep_ >= 0) ::close(ep_);
  if (evfd_ >= 0) ::close(evfd_);
}

int Reactor::start() {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0) return -errno;
  evfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (evfd_ < 0) return -errno;
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.ptr = &g_evfd_tag;
  if (epoll_ctl(ep_, EPOLL_CTL_ADD, evfd_, &ev) < 0) return -errno;
  thr_ = std::thread([this] { run(); });
  return 0;
}

void Reactor::stop() {
  if (!thr_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  uint64_t one = 1;
  (void)!::write(evfd_, &one, sizeof one);
  thr_.join();
}

void Reactor::post(const Msg& m) {
  {
    std::lock_guard<std::mutex> g(mu_);
    inbox_.push_back(m);
  }
  uint64_t one = 1;
  (void)!::write(evfd_, &one, sizeof one);
}

void Reactor::add_conn(int fd, std::string /*peer*/) { post(Msg{Msg::add, fd, nullptr, nullptr, nullptr, 0, nullptr}); }

void Reactor::kill_conn(const void* conn) { post(Msg{Msg::kill, -1, nullptr, nullptr, nullptr, 0, conn}); }

void Reactor::post_grant(void* self, iscsi::Conn* c, iscsi::Cmd* cmd, Vec* v, int status) {
  static_cast<Reactor*>(self)->post(Msg{Msg::grant, -1, c, cmd, v, status, nullptr});
}

void Reactor::post_resume(void* self, iscsi::Conn* c, iscsi::Cmd* cmd) {
  static_cast<Reactor*>(self)->post(Msg{Msg::resume, -1, c, cmd, nullptr, 0, nullptr});
}

void Reactor::update(Entry* e) {
  if (e->conn->closed()) return;
  uint32_t m = (e->conn->want_read() ? EPOLLIN : 0u) | (e->conn->want_write() ? EPOLLOUT : 0u) | EPOLLRDHUP;
  if (m == e->mask) return;
  struct epoll_event ev = {};
  ev.events = m;
  ev.data.ptr = e;
  epoll_ctl(ep_, EPOLL_CTL_MOD, e->fd, &ev);
  e->mask = m;
}

// Closes the socket; the Conn lives on as a zombie until its backend I/O
// and memory waiters are done.
void Reactor::drop(Entry* e) {
  if (!e->conn->closed()) {
    epoll_ctl(ep_, EPOLL_CTL_DEL, e->fd, nullptr);
    e->conn->close();
  }
}

void Reactor::service(Entry* e, bool readable, bool writable) {
  iscsi::Conn& c = *e->conn;
  bool ok = true;
  if (readable && c.want_read()) ok = c.on_readable();
  if (ok && (writable || c.want_write())) ok = c.flush();
  if (!ok) drop(e);
}

void Reactor::drain_inbox() {
  work_.clear();
  {
    std::lock_guard<std::mutex> g(mu_);
    work_.swap(inbox_);
  }
  for (const Msg& m : work_) {
    switch (m.kind) {
      case Msg::add: {
        auto e = std::make_unique<Entry>();
        e->fd = m.fd;
        e->conn = std::make_unique<iscsi::Conn>(m.fd, host_, &ctr_);
        e->conn->post_grant = &Reactor::post_grant;
        e->conn->post_arg = this;
        e->conn->post_resume = &Reactor::post_resume;
        struct epoll_event ev = {};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.ptr = e.get();
        e->mask = ev.events;
        if (epoll_ctl(ep_, EPOLL_CTL_ADD, m.fd, &ev) < 0) {
          e->conn->close();
          break;
        }
        conns_.push_back(std::move(e));
        break;
      }
      case Msg::grant: {
        m.conn->on_mem_granted(m.cmd, m.vec, m.status);
        for (auto& e : conns_)
          if (e->conn.get() == m.conn) service(e.get(), true, false);
        break;
      }
      case Msg::resume:
        // The conn lives (in conns_ or zombies_) while the task is in flight;
        // a response it queues goes out in the loop's want_write pass.
        m.conn->on_resume(m.cmd);
        break;
      case Msg::kill:
        for (auto& e : conns_)
          if (e->conn.get() == m.key) drop(e.get());
        break;
    }
  }
}

void Reactor::run() {
  if (poll_backend_) {
    int fd = backend::thread_completion_fd();
    if (fd >= 0) {
      struct epoll_event ev = {};
      ev.events = EPOLLIN;
      ev.data.ptr = &g_uring_tag;
      epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    }
  }
  uint64_t last_tick = now_ms();
  struct epoll_event evs[64];
  bool stopping = false;
  bool pending = false;  // a connection holds read-ahead header bytes: don't sleep
  for (;;) {
    if (!stopping && stop_.load(std::memory_order_acquire)) {
      stopping = true;
      for (auto& e : conns_) drop(e.get());
    }
    if (stopping) {
      // Drain: reap completions until every connection is idle.
      bool busy = false;
      for (auto& e : conns_) busy |= !e->conn->idle();
      for (auto& e : zombies_) busy |= !e->conn->idle();
      if (!busy) break;
    }
    int n = epoll_wait(ep_, evs, 64, pending ? 0 : stopping ? 10 : 250);
    for (int i = 0; i < n; ++i) {
      void* p = evs[i].data.ptr;
      if (p == &g_evfd_tag) {
        uint64_t v;
        (void)!::read(evfd_, &v, sizeof v);
        drain_inbox();
      } else if (p == &g_uring_tag) {
        backend::reap_thread_completions();
      } else {
        Entry* e = static_cast<Entry*>(p);
        uint32_t ev = evs[i].events;
        service(e, ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP), ev & EPOLLOUT);
      }
    }
    if (poll_backend_) {
      backend::reap_thread_completions();
      backend::submit_thread_batch();
    }
    // Read-ahead the socket no longer shows (a connection stopped at its
    // per-call PDU quota with header bytes in hand), then responses that
    // completions queued on connections without events.
    pending = false;
    for (auto& e : conns_) {
      iscsi::Conn& c = *e->conn;
      if (!c.closed() && c.want_read() && c.rx_buffered()) service(e.get(), true, false);
      if (!c.closed() && c.want_write()) service(e.get(), false, true);
      pending |= !c.closed() && c.want_read() && c.rx_buffered();
      update(e.get());
    }
    uint64_t t = now_ms();
    if (t - last_tick >= 1000) {
      last_tick = t;
      for (auto& e : conns_)
        if (!e->conn->closed() && !e->conn->tick(t)) drop(e.get());
    }
    // Closed connections move to the zombie list; idle zombies are freed.
    for (size_t i = 0; i < conns_.size();) {
      if (conns_[i]->conn->closed()) {
        zombies_.push_back(std::move(conns_[i]));
        conns_[i] = std::move(conns_.back());
        conns_.pop_back();
      } else {
        ++i;
      }
    }
    zombies_.erase(std::remove_if(zombies_.begin(), zombies_.end(), [](auto& e) { return e->conn->idle(); }),
                   zombies_.end());
    nconns_.store(conns_.size(), std::memory_order_relaxed);
  }
  // Zombies must still be freed on this thread (their vectors' thread cache).
  conns_.clear();
  zombies_.clear();
  drain_inbox();  // late adds: close their sockets
  for (auto& e : conns_) e->conn->close();
  conns_.clear();
  nconns_.store(0, std::memory_order_relaxed);
}

}  // namespace sgv::server
