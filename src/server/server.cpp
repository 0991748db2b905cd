// server/server.cpp - builds sgvd from a Config: one SGV pool under a global
// budget, per-LUN budgets, scsi::Targets with their backends, the listening
// portals, an acceptor thread that deals connections to the reactors
// round-robin, and the session registry that reinstatement consults.
#include "server/server.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "backend/backend.hpp"
#include "scsi/core.hpp"  // decode_lun
#include "scsi/target.hpp"
#include "server/reactor.hpp"
#include "sgv/cache.hpp"

namespace sgv::server {

namespace {

struct TargetEntry {
  TargetSpec spec;
  std::unique_ptr<scsi::Target> target;
  std::vector<std::unique_ptr<Budget>> lun_budgets;
};

uint64_t phys_ram() {
  long pages = sysconf(_SC_PHYS_PAGES);
  return pages > 0 ? uint64_t(pages) * 4096 : (4ull << 30);
}

}  // namespace

struct Server::Impl {
  Config cfg;
  iscsi::Limits lim;
  bool running = false;
  bool any_file = false;
  std::unique_ptr<Budget> global;
  std::unique_ptr<Pool> pool;
  std::vector<TargetEntry> targets;
  std::vector<int> listen_fds;
  std::vector<std::pair<std::string, uint16_t>> bound;
  // SendTargets' view of the bound portals ("host:port" / "[v6]:port", group 1).
  std::vector<std::string> portal_addrs;
  std::vector<iscsi::Portal> portals;
  struct RHost;
  std::vector<std::unique_ptr<RHost>> hosts;
  std::vector<std::unique_ptr<Reactor>> reactors;
  std::thread acceptor;
  int acc_ep = -1, acc_ev = -1;
  std::atomic<unsigned> rr{0};  // round-robin cursor (acceptor thread only; atomic for stats readers)
  // Session registry for reinstatement: key = InitiatorName + ISID.
  std::mutex reg_mu;  // guards reg, next_tsih
  struct RegEntry {
    const void* conn;
    Reactor* reactor;
  };
  std::map<std::string, RegEntry> reg;
  uint16_t next_tsih = 1;

  static bool allowed(const TargetEntry& t, std::string_view initiator) {
    if (t.spec.allowed_initiators.empty()) return true;
    for (const auto& a : t.spec.allowed_initiators)
      if (a == initiator) return true;
    return false;
  }
  const TargetEntry* target(std::string_view name) const {
    for (const TargetEntry& t : targets)
      if (t.spec.name == name) return &t;
    return nullptr;
  }

  scsi::Target* find_target(std::string_view name, std::string_view initiator) {
    const TargetEntry* t = target(name);
    if (!t || !allowed(*t, initiator)) return nullptr;
    return t->target.get();
  }

  // The budget of the LUN `wire_lun` of target t (nullptr: none such).
  Budget* lun_budget(const scsi::Target* t, uint64_t wire_lun) {
    uint64_t id = scsi::decode_lun(wire_lun);
    for (TargetEntry& te : targets) {
      if (te.target.get() != t) continue;
      for (size_t i = 0; i < te.spec.luns.size() && i < te.lun_budgets.size(); ++i)
        if (te.spec.luns[i].id == id) return te.lun_budgets[i].get();
      return nullptr;
    }
    return nullptr;
  }

  uint16_t session_up(const void* conn, Reactor* r, std::string_view initiator, uint64_t isid,
                      std::string_view target) {
    std::lock_guard<std::mutex> g(reg_mu);
    std::string key = std::string(initiator) + "/" + std::to_string(isid) + "/" + std::string(target);
    auto it = reg.find(key);
    if (it != reg.end() && it->second.conn != conn) {
      // Session reinstatement (§6.3.5): the old connection goes, its tasks
      // are cleaned up by its own reactor.
      it->second.reactor->kill_conn(it->second.conn);
    }
    reg[key] = RegEntry{conn, r};
    uint16_t t = next_tsih++;
    if (next_tsih == 0) next_tsih = 1;
    return t;
  }

  void session_down(const void* conn) {
    std::lock_guard<std::mutex> g(reg_mu);
    for (auto it = reg.begin(); it != reg.end(); ++it)
      if (it->second.conn == conn) {
        reg.erase(it);
        break;
      }
  }

  void accept_loop();
  int bind_portal(const PortalSpec& p);
};

struct Server::Impl::RHost : iscsi::Host {
  Server::Impl* s;
  Reactor* r = nullptr;
  explicit RHost(Server::Impl* impl) : s(impl) {}
  scsi::Target* find_target(std::string_view name, std::string_view initiator) override {
    return s->find_target(name, initiator);
  }
  Budget* lun_budget(const scsi::Target* t, uint64_t lun) override { return s->lun_budget(t, lun); }
  bool target_exists(std::string_view name) override { return s->target(name) != nullptr; }
  bool target_allowed(std::string_view name, std::string_view initiator) override {
    const TargetEntry* t = s->target(name);
    return t && Impl::allowed(*t, initiator);
  }
  std::string_view target_alias(std::string_view name) override {
    const TargetEntry* t = s->target(name);
    return t ? std::string_view(t->spec.alias) : std::string_view();
  }
  size_t target_count() override { return s->targets.size(); }
  iscsi::TargetEntry target_entry(size_t i) override { return {s->targets[i].spec.name, s->portals}; }
  bool target_chap(std::string_view name, iscsi::ChapCredentials& out) override {
    const ChapSpec* c = &s->cfg.discovery_chap;
    if (!name.empty()) {
      const TargetEntry* t = s->target(name);
      if (!t) return false;
      c = &t->spec.chap;
    }
    if (!c->enabled()) return false;
    out = {c->user, c->secret, c->mutual_user, c->mutual_secret};
    return true;
  }
  Pool* pool() override { return s->pool.get(); }
  const iscsi::Limits& limits() override { return s->lim; }
  uint16_t session_up(const void* conn, std::string_view initiator, uint64_t isid, std::string_view target) override {
    return s->session_up(conn, r, initiator, isid, target);
  }
  void session_down(const void* conn) override { s->session_down(conn); }
};

Server::Server(const Config& cfg) : impl_(std::make_unique<Impl>()) {
  impl_->cfg = cfg;
  apply_defaults(impl_->cfg);
}

Server::~Server() { stop(); }

int Server::Impl::bind_portal(const PortalSpec& p) {
  struct sockaddr_storage ss = {};
  socklen_t len;
  bool v6 = p.host.find(':') != std::string::npos;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(p.port);
    if (inet_pton(AF_INET6, p.host.c_str(), &a->sin6_addr) != 1) return -EINVAL;
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(p.port);
    if (inet_pton(AF_INET, p.host.c_str(), &a->sin_addr) != 1) return -EINVAL;
    len = sizeof *a;
  }
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (v6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0 || listen(fd, 128) < 0) {
    int e = -errno;
    ::close(fd);
    return e;
  }
  struct sockaddr_storage got = {};
  socklen_t gl = sizeof got;
  getsockname(fd, reinterpret_cast<sockaddr*>(&got), &gl);
  uint16_t port = v6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&got)->sin6_port)
                     : ntohs(reinterpret_cast<sockaddr_in*>(&got)->sin_port);
  listen_fds.push_back(fd);
  bound.emplace_back(p.host, port);
  return 0;
}

void Server::Impl::accept_loop() {
  struct epoll_event evs[16];
  for (;;) {
    int n = epoll_wait(acc_ep, evs, 16, -1);
    if (n < 0 && errno != EINTR) return;
    for (int i = 0; i < n; ++i) {
      int lfd = evs[i].data.fd;
      if (lfd == acc_ev) return;
      for (;;) {
        int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        unsigned k = rr.fetch_add(1, std::memory_order_relaxed) % unsigned(reactors.size());
        reactors[k]->add_conn(fd, {});
      }
    }
  }
}

int Server::start() {
  Impl& s = *impl_;
  if (s.running) return -EALREADY;
  const Config& c = s.cfg;
  s.lim.max_recv_data_segment_length = c.iscsi.max_recv_data_segment_length;
  s.lim.max_burst_length = c.iscsi.max_burst_length;
  s.lim.first_burst_length = std::min(c.iscsi.first_burst_length, c.iscsi.max_burst_length);
  s.lim.max_outstanding_r2t = c.iscsi.max_outstanding_r2t;
  s.lim.immediate_data = c.iscsi.immediate_data;
  s.lim.initial_r2t = c.iscsi.initial_r2t;
  s.lim.allow_header_digest = c.iscsi.allow_header_digest;
  s.lim.allow_data_digest = c.iscsi.allow_data_digest;
  s.lim.queue_depth = std::max(1u, c.iscsi.queue_depth);
  s.lim.max_xfer_bytes = c.iscsi.max_xfer_bytes;
  s.lim.nop_interval_s = c.iscsi.nop_interval_s;
  s.lim.nop_timeout_s = c.iscsi.nop_timeout_s;
  s.lim.session_mem_limit = c.session_mem_limit;

  uint64_t mem = c.mem_limit ? c.mem_limit : phys_ram() / 4;
  s.global = std::make_unique<Budget>(nullptr, mem, 0, "global");
  PoolOptions po;
  po.name = "sgvd";
  s.pool = std::make_unique<Pool>(po, s.global.get());

  for (const TargetSpec& ts : c.targets) {
    TargetEntry te;
    te.spec = ts;
    scsi::TargetLimits tl;
    tl.max_xfer_bytes = c.iscsi.max_xfer_bytes;
    te.target = std::make_unique<scsi::Target>(ts.name, tl);
    for (const LunSpec& ls : ts.luns) {
      int err = 0;
      std::unique_ptr<backend::Backend> be;
      switch (ls.kind) {
        case LunSpec::Kind::ram:
          be = backend::make_ram(backend::RamOptions{ls.size_bytes}, &err);
          break;
        case LunSpec::Kind::file: {
          backend::FileOptions fo;
          fo.path = ls.path;
          fo.size_bytes = ls.size_bytes;
          fo.direct = ls.direct;
          be = backend::make_file(fo, &err);
          s.any_file = true;
          break;
        }
        case LunSpec::Kind::null:
          be = backend::make_null(ls.size_bytes);
          break;
      }
      if (!be) {
        stop();
        return err ? err : -EINVAL;
      }
      scsi::LunConfig lc;
      lc.id = ls.id;
      lc.backend = std::move(be);
      lc.block_size = ls.block_size;
      lc.serial = ls.serial;
      lc.read_only = ls.read_only;
      int rc = te.target->add_lun(std::move(lc));
      if (rc < 0) {
        stop();
        return rc;
      }
      uint64_t lim = ls.mem_limit ? ls.mem_limit : c.lun_mem_limit;
      if (lim > mem) lim = mem;
      // Appended piecewise: g++ 12 at -O3 warns (-Wrestrict, a false
      // positive) on the operator+ chain.
      std::string bname = "t";
      bname += std::to_string(s.targets.size());
      bname += ".lun";
      bname += std::to_string(ls.id);
      te.lun_budgets.push_back(std::make_unique<Budget>(s.global.get(), lim, 0, bname.c_str()));
    }
    s.targets.push_back(std::move(te));
  }

  for (const PortalSpec& p : c.portals) {
    int rc = s.bind_portal(p);
    if (rc < 0) {
      stop();
      return rc;
    }
  }
  s.portal_addrs.clear();
  s.portals.clear();
  for (const auto& b : s.bound) {
    bool v6 = b.first.find(':') != std::string::npos;
    s.portal_addrs.push_back((v6 ? "[" + b.first + "]" : b.first) + ":" + std::to_string(b.second));
  }
  for (const std::string& a : s.portal_addrs) s.portals.push_back({a, 1});  // views: the strings no longer move
  unsigned n = c.reactors ? c.reactors : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) {
    auto h = std::make_unique<Impl::RHost>(&s);
    auto r = std::make_unique<Reactor>(i, h.get(), s.any_file);
    h->r = r.get();
    int rc = r->start();
    s.hosts.push_back(std::move(h));
    s.reactors.push_back(std::move(r));
    if (rc < 0) {
      stop();
      return rc;
    }
  }
  s.acc_ep = epoll_create1(EPOLL_CLOEXEC);
  s.acc_ev = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s.acc_ep < 0 || s.acc_ev < 0) {
    stop();
    return -EMFILE;
  }
  for (int fd : s.listen_fds) {
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(s.acc_ep, EPOLL_CTL_ADD, fd, &ev);
  }
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.fd = s.acc_ev;
  epoll_ctl(s.acc_ep, EPOLL_CTL_ADD, s.acc_ev, &ev);
  s.acceptor = std::thread([&s] { s.accept_loop(); });
  s.running = true;
  return 0;
}

void Server::stop() {
  Impl& s = *impl_;
  if (s.acceptor.joinable()) {
    uint64_t one = 1;
    (void)!::write(s.acc_ev, &one, sizeof one);
    s.acceptor.join();
  }
  for (int fd : s.listen_fds) ::close(fd);
  s.listen_fds.clear();
  if (s.acc_ep >= 0) ::close(s.acc_ep);
  if (s.acc_ev >= 0) ::close(s.acc_ev);
  s.acc_ep = s.acc_ev = -1;
  for (auto& r : s.reactors) r->stop();
  s.reactors.clear();
  s.hosts.clear();
  for (auto& t : s.targets) t.target->flush_all();
  s.targets.clear();  // LUN budgets go before the global budget and pool
  s.pool.reset();
  s.global.reset();
  s.running = false;
}

std::string Server::reservations_dump() const {
  std::string out;
  for (const auto& t : impl_->targets) out += "target=" + t.target->name() + "\n" + t.target->reservations_dump();
  return out;
}

std::string Server::stats_dump() const {
  const Impl& s = *impl_;
  std::string out;
  auto kv = [&](const char* k, uint64_t v) {
    out += k;
    out += '=';
    out += std::to_string(v);
    out += '\n';
  };
  uint64_t sum[19] = {};
  size_t conns = 0;
  for (const auto& r : s.reactors) {
    iscsi::Counters& c = r->counters();
    const std::atomic<uint64_t>* f[19] = {&c.pdus_in, &c.pdus_out, &c.cmds, &c.reads, &c.writes,
                                          &c.bytes_in, &c.bytes_out, &c.r2ts, &c.rejects, &c.nops,
                                          &c.logins, &c.logouts, &c.tmfs, &c.aborted, &c.dropped_cmdsn,
                                          &c.mem_waits, &c.conns_open, &c.conns_total, &c.digest_errors};
    for (int i = 0; i < 19; ++i) sum[i] += f[i]->load(std::memory_order_relaxed);
    conns += r->connections();
  }
  static const char* names[19] = {"pdus_in", "pdus_out", "commands", "reads", "writes", "bytes_in", "bytes_out",
                                  "r2ts", "rejects", "nops", "logins", "logouts", "tmfs", "aborted",
                                  "dropped_cmdsn", "mem_waits", "connections", "connections_total",
                                  "digest_errors"};
  for (int i = 0; i < 19; ++i) kv(names[i], sum[i]);
  kv("reactors", s.reactors.size());
  kv("reactor_connections", conns);
  kv("targets", s.targets.size());
  if (s.pool) {
    std::string p = s.pool->dump_stats();
    size_t pos = 0;
    while (pos < p.size()) {
      size_t e = p.find('\n', pos);
      if (e == std::string::npos) e = p.size();
      if (e > pos) out += "sgv." + p.substr(pos, e - pos) + "\n";
      pos = e + 1;
    }
  }
  if (s.global) s.global->dump(&out);
  for (const TargetEntry& t : s.targets)
    for (const auto& b : t.lun_budgets) b->dump(&out);
  return out;
}

std::vector<std::pair<std::string, uint16_t>> Server::bound_portals() const { return impl_->bound; }

}  // namespace sgv::server
