// sgvbench - an iSCSI load generator on libiscsi's asynchronous API: several
// sessions (each its own initiator name) at a fixed queue depth, driven by one
// or more poll loops, reporting IOPS, throughput, a latency histogram, errors
// by SCSI status and sense, and its own CPU cost per I/O so a reader can tell
// whether the generator or the target was the bottleneck.
//
// Steady state allocates nothing of its own per I/O: slots and their data
// buffers are made at start-up, the histogram is fixed storage. (libiscsi
// itself allocates a scsi_task and a PDU per command; that is the library's.)
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
}

#include "histogram.hpp"
#include "options.hpp"
#include "pattern.hpp"

namespace sgvbench {
namespace {

// Set by SIGINT/SIGTERM; workers read it between polls (relaxed: it only asks
// them to stop issuing, nothing is published through it).
std::atomic<bool> g_stop{false};

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

struct ErrKind {
  int status = 0;
  int sk = -1, asc = -1, ascq = -1;
  uint64_t count = 0;
};

struct Stats {
  Histogram lat_all, lat_read, lat_write;
  uint64_t reads = 0, writes = 0;
  uint64_t bytes_read = 0, bytes_written = 0;
  uint64_t busy = 0, task_set_full = 0;  // retried, not failures
  uint64_t failures = 0;
  uint64_t verify_errors = 0, verified_reads = 0, unverified_reads = 0;
  static constexpr unsigned kMaxKinds = 32;
  ErrKind kinds[kMaxKinds];
  unsigned nkinds = 0;
  uint64_t kinds_dropped = 0;

  void note(int status, const scsi_task* t) {
    int sk = -1, asc = -1, ascq = -1;
    if (status == SCSI_STATUS_CHECK_CONDITION && t) {
      sk = int(t->sense.key);
      asc = (t->sense.ascq >> 8) & 0xff;  // libiscsi packs ASC<<8 | ASCQ
      ascq = t->sense.ascq & 0xff;
    }
    for (unsigned i = 0; i < nkinds; ++i) {
      ErrKind& k = kinds[i];
      if (k.status == status && k.sk == sk && k.asc == asc && k.ascq == ascq) {
        ++k.count;
        return;
      }
    }
    if (nkinds == kMaxKinds) {
      ++kinds_dropped;
      return;
    }
    kinds[nkinds++] = ErrKind{status, sk, asc, ascq, 1};
  }

  void merge(const Stats& o) {
    lat_all.merge(o.lat_all);
    lat_read.merge(o.lat_read);
    lat_write.merge(o.lat_write);
    reads += o.reads;
    writes += o.writes;
    bytes_read += o.bytes_read;
    bytes_written += o.bytes_written;
    busy += o.busy;
    task_set_full += o.task_set_full;
    failures += o.failures;
    verify_errors += o.verify_errors;
    verified_reads += o.verified_reads;
    unverified_reads += o.unverified_reads;
    kinds_dropped += o.kinds_dropped;
    for (unsigned i = 0; i < o.nkinds; ++i) {
      const ErrKind& k = o.kinds[i];
      bool found = false;
      for (unsigned j = 0; j < nkinds && !found; ++j) {
        ErrKind& m = kinds[j];
        if (m.status == k.status && m.sk == k.sk && m.asc == k.asc && m.ascq == k.ascq) {
          m.count += k.count;
          found = true;
        }
      }
      if (!found) {
        if (nkinds < kMaxKinds) kinds[nkinds++] = k;
        else kinds_dropped += k.count;
      }
    }
  }
};

// Geometry shared read-only by every worker once the run starts.
struct Geometry {
  uint32_t lblock = 512;     // LUN logical block size
  uint32_t bs = 4096;        // bytes per I/O
  uint32_t blocks_per_io = 8;
  uint64_t nchunks = 0;      // bs-sized chunks in the used part of the LUN
};

struct Worker;
struct Session;

struct Slot {
  Session* s = nullptr;
  unsigned char* buf = nullptr;
  scsi_iovec iov{};
  uint64_t k = 0;        // index among the session's chunks
  uint64_t t0 = 0;
  uint32_t gen = 0;      // verify: generation written / expected
  bool write = false;
};

constexpr uint32_t kInflight = 0x8000'0000u;  // verify: chunk has an I/O out

struct Session {
  Worker* w = nullptr;
  iscsi_context* ctx = nullptr;
  int lun = 0;
  unsigned idx = 0;
  // Chunks this session touches: base + k*stride, k in [0, owned).
  uint64_t base = 0, stride = 1, owned = 0;
  uint64_t cursor = 0;
  uint64_t rng = 0;
  uint32_t next_gen = 0;
  std::vector<uint32_t> gen;  // verify only: per owned chunk
  std::vector<Slot> slots;
  unsigned inflight = 0;
  uint64_t budget = UINT64_MAX;  // I/Os left to issue
  bool dead = false;
  bool closing = false;
};

struct Worker {
  const Options* o = nullptr;
  const Geometry* g = nullptr;
  uint64_t deadline = UINT64_MAX;
  uint64_t drain_deadline = UINT64_MAX;
  std::vector<Session*> sessions;
  Stats st;
  uint64_t t_end = 0;
  // Progress counters: stored by this worker, loaded by the main thread's
  // once-a-second report (relaxed both sides: approximate by design).
  std::atomic<uint64_t> prog_ios{0}, prog_bytes{0};
  // Release pairs with the main thread's acquire before it reads st/t_end.
  std::atomic<bool> finished{false};
};

uint64_t xorshift(uint64_t& x) {
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

void on_done(iscsi_context* ctx, int status, void* data, void* priv);

bool submit(Slot* sl) {
  Session* s = sl->s;
  const Geometry& g = *s->w->g;
  uint64_t chunk = s->base + sl->k * s->stride;
  uint64_t lba = chunk * g.blocks_per_io;
  sl->t0 = now_ns();
  scsi_task* t;
  if (sl->write)
    t = iscsi_write16_iov_task(s->ctx, s->lun, lba, nullptr, g.bs, int(g.lblock), 0, 0, 0, 0, 0,
                               on_done, sl, &sl->iov, 1);
  else
    t = iscsi_read16_iov_task(s->ctx, s->lun, lba, g.bs, int(g.lblock), 0, 0, 0, 0, 0, on_done,
                              sl, &sl->iov, 1);
  if (!t) return false;
  ++s->inflight;
  return true;
}

// Picks the next chunk and direction for sl and sends it. Returns false when
// the session should issue no more (bound reached, stopping, or dead).
// Budget: a clock read and two xorshifts besides libiscsi's own task setup;
// --verify adds the pattern fill (one pass over the buffer).
bool issue(Slot* sl) {
  Session* s = sl->s;
  Worker* w = s->w;
  const Options& o = *w->o;
  if (s->dead || s->closing || s->budget == 0) return false;
  if (g_stop.load(std::memory_order_relaxed) || now_ns() >= w->deadline) return false;
  uint64_t k = o.pattern == Pattern::seq ? s->cursor++ % s->owned : xorshift(s->rng) % s->owned;
  if (o.verify) {
    // A chunk with an I/O out is skipped: a read racing a write has no one
    // right answer. owned > qd, so a free chunk exists.
    while (s->gen[k] & kInflight) k = (k + 1) % s->owned;
  }
  sl->k = k;
  sl->write = o.read_pct == 0 ? true
            : o.read_pct == 100 ? false
            : xorshift(s->rng) % 100 >= o.read_pct;
  if (o.verify) {
    if (sl->write) {
      if (++s->next_gen & kInflight || s->next_gen == 0) s->next_gen = 1;
      sl->gen = s->next_gen;
      const Geometry& g = *w->g;
      pattern_fill(sl->buf, g.bs, (s->base + k * s->stride) * uint64_t(g.bs), sl->gen);
    } else {
      sl->gen = s->gen[k];
    }
    s->gen[k] |= kInflight;
  }
  if (!submit(sl)) {
    if (o.verify) s->gen[k] &= ~kInflight;
    ++w->st.failures;
    w->st.note(SCSI_STATUS_ERROR, nullptr);
    return false;
  }
  --s->budget;
  return true;
}

[[gnu::noinline]] void verify_read(Slot* sl) {
  Session* s = sl->s;
  Stats& st = s->w->st;
  if (sl->gen == 0) {  // never written in this run: nothing to compare with
    ++st.unverified_reads;
    return;
  }
  const Geometry& g = *s->w->g;
  uint64_t addr = (s->base + sl->k * s->stride) * uint64_t(g.bs);
  long bad = pattern_check(sl->buf, g.bs, addr, sl->gen);
  if (bad < 0) {
    ++st.verified_reads;
    return;
  }
  if (st.verify_errors++ < 5) {
    uint64_t got[2];
    std::memcpy(got, sl->buf + (bad / long(kPatternUnit)) * kPatternUnit, sizeof got);
    std::fprintf(stderr,
                 "sgvbench: verify error: session %u byte %" PRIu64 " (+%ld): want addr %" PRIu64
                 " gen %u, unit holds addr %" PRIu64 " gen %" PRIu64 "\n",
                 s->idx, addr, bad, addr + uint64_t(bad) / kPatternUnit * kPatternUnit, sl->gen,
                 got[0], got[1] & 0xffffffffu);
  }
}

// Completion: budget ~100 ns besides the verify check — two clock reads, one
// histogram bucket, and the next command for the same slot.
void on_done(iscsi_context*, int status, void* data, void* priv) {
  auto* sl = static_cast<Slot*>(priv);
  auto* t = static_cast<scsi_task*>(data);
  Session* s = sl->s;
  Worker* w = s->w;
  Stats& st = w->st;
  const Options& o = *w->o;
  --s->inflight;
  bool retry = false;
  if (status == SCSI_STATUS_GOOD) {
    uint64_t lat = now_ns() - sl->t0;
    st.lat_all.record(lat);
    if (sl->write) {
      st.lat_write.record(lat);
      ++st.writes;
      st.bytes_written += w->g->bs;
      if (o.verify) s->gen[sl->k] = sl->gen;
    } else {
      st.lat_read.record(lat);
      ++st.reads;
      st.bytes_read += w->g->bs;
      if (o.verify) {
        s->gen[sl->k] &= ~kInflight;
        verify_read(sl);
      }
    }
    w->prog_ios.store(st.reads + st.writes, std::memory_order_relaxed);
    w->prog_bytes.store(st.bytes_read + st.bytes_written, std::memory_order_relaxed);
  } else if (status == SCSI_STATUS_BUSY || status == SCSI_STATUS_TASK_SET_FULL) {
    // Backpressure, not failure: send the same command again.
    ++(status == SCSI_STATUS_BUSY ? st.busy : st.task_set_full);
    st.note(status, t);
    retry = !s->dead && !s->closing && !g_stop.load(std::memory_order_relaxed);
    if (!retry && o.verify) s->gen[sl->k] &= ~kInflight;  // not executed: old data stands
  } else {
    ++st.failures;
    st.note(status, t);
    // A failed write leaves the chunk's content unknown: stop checking it.
    if (o.verify) s->gen[sl->k] = sl->write ? 0 : (s->gen[sl->k] & ~kInflight);
  }
  if (t) scsi_free_scsi_task(t);
  if (retry) {
    if (submit(sl)) return;
    ++st.failures;
    st.note(SCSI_STATUS_ERROR, nullptr);
    if (o.verify) s->gen[sl->k] &= ~kInflight;
  }
  issue(sl);
}

void run_worker(Worker* w) {
  for (Session* s : w->sessions)
    for (Slot& sl : s->slots)
      if (!issue(&sl)) break;
  std::vector<pollfd> pfd(w->sessions.size());
  std::vector<Session*> live;
  for (;;) {
    live.clear();
    uint64_t now = now_ns();
    bool draining = g_stop.load(std::memory_order_relaxed) || now >= w->deadline;
    if (draining && w->drain_deadline == UINT64_MAX) w->drain_deadline = now + 10'000'000'000ull;
    for (Session* s : w->sessions) {
      if (s->dead || s->inflight == 0) continue;
      if (now >= w->drain_deadline) {  // target stopped answering: give up
        s->dead = true;
        continue;
      }
      live.push_back(s);
    }
    if (live.empty()) break;
    for (size_t i = 0; i < live.size(); ++i)
      pfd[i] = pollfd{iscsi_get_fd(live[i]->ctx), short(iscsi_which_events(live[i]->ctx)), 0};
    int n = poll(pfd.data(), nfds_t(live.size()), 100);
    if (n < 0 && errno != EINTR) break;
    for (size_t i = 0; i < live.size(); ++i) {
      // libiscsi send()s each queued PDU on its own, and on loopback every
      // send pushes a segment through the whole TCP/IP stack, the
      // receiver's softirq included (half of sgvbench's CPU at 4 KiB QD32).
      // Corking the socket around a service call that writes turns the
      // commands issued from this batch of completions into one segment
      // train: two setsockopt calls per batch instead of a transmit per PDU.
      bool cork = w->o->cork && (pfd[i].revents & POLLOUT);
      int one = 1, zero = 0;
      if (cork) setsockopt(pfd[i].fd, IPPROTO_TCP, TCP_CORK, &one, sizeof one);
      // Service on timeout too: libiscsi runs its timers from iscsi_service.
      int rc = iscsi_service(live[i]->ctx, pfd[i].revents);
      if (cork && iscsi_get_fd(live[i]->ctx) == pfd[i].fd)
        setsockopt(pfd[i].fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof zero);
      if (rc < 0) {
        std::fprintf(stderr, "sgvbench: session %u: %s\n", live[i]->idx,
                     iscsi_get_error(live[i]->ctx));
        live[i]->dead = true;
      }
    }
  }
  w->t_end = now_ns();
  w->finished.store(true, std::memory_order_release);
}

void on_signal(int) { g_stop.store(true, std::memory_order_relaxed); }

struct Url {
  std::string portal, target;
  int lun = 0;
};

bool parse_url(const std::string& s, Url* u) {
  iscsi_context* c = iscsi_create_context("iqn.2026-11.io.sgv:sgvbench-parse");
  if (!c) return false;
  iscsi_url* p = iscsi_parse_full_url(c, s.c_str());
  if (!p) {
    std::fprintf(stderr, "sgvbench: bad url %s: %s\n", s.c_str(), iscsi_get_error(c));
    iscsi_destroy_context(c);
    return false;
  }
  u->portal = p->portal;
  u->target = p->target;
  u->lun = p->lun;
  iscsi_destroy_url(p);
  iscsi_destroy_context(c);
  return true;
}

iscsi_context* connect_session(const Url& u, const std::string& initiator, bool digest) {
  iscsi_context* c = iscsi_create_context(initiator.c_str());
  if (!c) return nullptr;
  iscsi_set_targetname(c, u.target.c_str());
  iscsi_set_session_type(c, ISCSI_SESSION_NORMAL);
  iscsi_set_header_digest(c, digest ? ISCSI_HEADER_DIGEST_CRC32C : ISCSI_HEADER_DIGEST_NONE);
  iscsi_set_noautoreconnect(c, 1);  // a dropped session is a failure to report
  if (iscsi_full_connect_sync(c, u.portal.c_str(), u.lun) != 0) {
    std::fprintf(stderr, "sgvbench: login to %s %s as %s failed: %s\n", u.portal.c_str(),
                 u.target.c_str(), initiator.c_str(), iscsi_get_error(c));
    iscsi_destroy_context(c);
    return nullptr;
  }
  return c;
}

bool read_capacity(iscsi_context* c, int lun, uint64_t* blocks, uint32_t* lblock) {
  scsi_task* t = iscsi_readcapacity16_sync(c, lun);
  if (t && t->status == SCSI_STATUS_GOOD) {
    auto* rc = static_cast<scsi_readcapacity16*>(scsi_datain_unmarshall(t));
    if (rc) {
      *blocks = rc->returned_lba + 1;
      *lblock = rc->block_length;
      scsi_free_scsi_task(t);
      return true;
    }
  }
  if (t) scsi_free_scsi_task(t);
  t = iscsi_readcapacity10_sync(c, lun, 0, 0);
  if (t && t->status == SCSI_STATUS_GOOD) {
    auto* rc = static_cast<scsi_readcapacity10*>(scsi_datain_unmarshall(t));
    if (rc) {
      *blocks = uint64_t(rc->lba) + 1;
      *lblock = rc->block_size;
      scsi_free_scsi_task(t);
      return true;
    }
  }
  if (t) scsi_free_scsi_task(t);
  return false;
}

const char* status_name(int s) {
  switch (s) {
    case SCSI_STATUS_CHECK_CONDITION: return "CHECK_CONDITION";
    case SCSI_STATUS_BUSY: return "BUSY";
    case SCSI_STATUS_RESERVATION_CONFLICT: return "RESERVATION_CONFLICT";
    case SCSI_STATUS_TASK_SET_FULL: return "TASK_SET_FULL";
    case SCSI_STATUS_ACA_ACTIVE: return "ACA_ACTIVE";
    case SCSI_STATUS_TASK_ABORTED: return "TASK_ABORTED";
    case SCSI_STATUS_CANCELLED: return "CANCELLED";
    case SCSI_STATUS_ERROR: return "TRANSPORT_ERROR";
    case SCSI_STATUS_TIMEOUT: return "TIMEOUT";
    default: return "OTHER";
  }
}

struct Report {
  double secs = 0;
  double cpu_user = 0, cpu_sys = 0;
};

void print_lat_json(const char* name, const Histogram& h, bool comma) {
  std::printf(
      "    \"%s\": {\"count\": %" PRIu64 ", \"mean\": %.1f, \"p50\": %.1f, \"p99\": %.1f, "
      "\"p99_9\": %.1f, \"max\": %.1f}%s\n",
      name, h.count(), h.mean() / 1e3, double(h.percentile(0.5)) / 1e3,
      double(h.percentile(0.99)) / 1e3, double(h.percentile(0.999)) / 1e3, double(h.max()) / 1e3,
      comma ? "," : "");
}

void print_json(const Options& o, const Geometry& g, const Stats& st, const Report& r) {
  uint64_t ios = st.reads + st.writes;
  uint64_t bytes = st.bytes_read + st.bytes_written;
  double cpu = r.cpu_user + r.cpu_sys;
  std::printf("{\n");
  std::printf("  \"url\": \"%s\", \"rw\": \"%s\", \"read_pct\": %u, \"bs\": %u, \"qd\": %u,\n",
              o.url.c_str(), o.rw.c_str(), o.read_pct, g.bs, o.qd);
  std::printf("  \"sessions\": %u, \"threads\": %u, \"verify\": %s, \"header_digest\": %s, "
              "\"seconds\": %.3f,\n",
              o.sessions, o.threads, o.verify ? "true" : "false", o.header_digest ? "true" : "false",
              r.secs);
  std::printf("  \"ios\": %" PRIu64 ", \"reads\": %" PRIu64 ", \"writes\": %" PRIu64
              ", \"bytes\": %" PRIu64 ",\n",
              ios, st.reads, st.writes, bytes);
  std::printf("  \"iops\": %.1f, \"mb_s\": %.2f, \"mib_s\": %.2f,\n", r.secs > 0 ? ios / r.secs : 0.0,
              r.secs > 0 ? bytes / r.secs / 1e6 : 0.0, r.secs > 0 ? bytes / r.secs / 1048576.0 : 0.0);
  std::printf("  \"latency_us\": {\n");
  print_lat_json("all", st.lat_all, true);
  print_lat_json("read", st.lat_read, true);
  print_lat_json("write", st.lat_write, false);
  std::printf("  },\n");
  std::printf("  \"cpu\": {\"user_s\": %.3f, \"sys_s\": %.3f, \"us_per_io\": %.3f},\n", r.cpu_user,
              r.cpu_sys, ios ? cpu * 1e6 / double(ios) : 0.0);
  std::printf("  \"errors\": {\"failures\": %" PRIu64 ", \"busy\": %" PRIu64
              ", \"task_set_full\": %" PRIu64 ", \"verify_errors\": %" PRIu64
              ", \"verified_reads\": %" PRIu64 ", \"unverified_reads\": %" PRIu64
              ", \"kinds_dropped\": %" PRIu64 ",\n",
              st.failures, st.busy, st.task_set_full, st.verify_errors, st.verified_reads,
              st.unverified_reads, st.kinds_dropped);
  std::printf("    \"by_status\": [");
  for (unsigned i = 0; i < st.nkinds; ++i) {
    const ErrKind& k = st.kinds[i];
    std::printf("%s\n      {\"status\": \"%s\", \"status_code\": %d, \"sense_key\": %d, \"asc\": %d, "
                "\"ascq\": %d, \"count\": %" PRIu64 "}",
                i ? "," : "", status_name(k.status), k.status, k.sk, k.asc, k.ascq, k.count);
  }
  std::printf("%s]\n  }\n}\n", st.nkinds ? "\n    " : "");
}

void print_text(const Options& o, const Geometry& g, const Stats& st, const Report& r) {
  uint64_t ios = st.reads + st.writes;
  uint64_t bytes = st.bytes_read + st.bytes_written;
  double cpu = r.cpu_user + r.cpu_sys;
  std::printf("%s bs=%u qd=%u sessions=%u threads=%u%s: %.2f s\n", o.rw.c_str(), g.bs, o.qd,
              o.sessions, o.threads, o.verify ? " verify" : "", r.secs);
  std::printf("  %" PRIu64 " I/Os (%" PRIu64 " reads, %" PRIu64 " writes): %.0f IOPS, %.1f MB/s\n",
              ios, st.reads, st.writes, r.secs > 0 ? ios / r.secs : 0.0,
              r.secs > 0 ? bytes / r.secs / 1e6 : 0.0);
  auto lat = [](const char* n, const Histogram& h) {
    if (!h.count()) return;
    std::printf("  %-5s latency us: mean %.1f p50 %.1f p99 %.1f p99.9 %.1f max %.1f\n", n,
                h.mean() / 1e3, h.percentile(0.5) / 1e3, h.percentile(0.99) / 1e3,
                h.percentile(0.999) / 1e3, h.max() / 1e3);
  };
  lat("all", st.lat_all);
  lat("read", st.lat_read);
  lat("write", st.lat_write);
  std::printf("  sgvbench CPU: %.2f s user + %.2f s sys = %.2f us per I/O\n", r.cpu_user, r.cpu_sys,
              ios ? cpu * 1e6 / double(ios) : 0.0);
  std::printf("  failures %" PRIu64 ", BUSY %" PRIu64 ", TASK SET FULL %" PRIu64, st.failures,
              st.busy, st.task_set_full);
  if (o.verify)
    std::printf(", verify errors %" PRIu64 " (%" PRIu64 " reads checked, %" PRIu64
                " of never-written chunks)",
                st.verify_errors, st.verified_reads, st.unverified_reads);
  std::printf("\n");
  for (unsigned i = 0; i < st.nkinds; ++i) {
    const ErrKind& k = st.kinds[i];
    if (k.sk >= 0)
      std::printf("    %s sense %s (0x%x) ASC/ASCQ 0x%02x/0x%02x: %" PRIu64 "\n",
                  status_name(k.status), scsi_sense_key_str(k.sk), k.sk, k.asc, k.ascq, k.count);
    else
      std::printf("    %s: %" PRIu64 "\n", status_name(k.status), k.count);
  }
}

double tv_s(const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; }

int run(const Options& o) {
  Url u;
  if (!parse_url(o.url, &u)) return 2;
  if (!loopback_portal(u.portal)) {
    std::fprintf(stderr, "sgvbench: refusing portal %s: only 127.0.0.1 and [::1]\n",
                 u.portal.c_str());
    return 2;
  }

  std::vector<std::unique_ptr<Session>> sessions;
  for (unsigned i = 0; i < o.sessions; ++i) {
    auto s = std::make_unique<Session>();
    s->idx = i;
    s->lun = u.lun;
    s->ctx = connect_session(u, o.initiator + "-" + std::to_string(getpid()) + "-" + std::to_string(i),
                            o.header_digest);
    if (!s->ctx) {
      for (auto& p : sessions) iscsi_destroy_context(p->ctx);
      return 2;
    }
    sessions.push_back(std::move(s));
  }

  Geometry g;
  uint64_t blocks = 0;
  if (!read_capacity(sessions[0]->ctx, u.lun, &blocks, &g.lblock) || g.lblock == 0) {
    std::fprintf(stderr, "sgvbench: READ CAPACITY failed: %s\n", iscsi_get_error(sessions[0]->ctx));
    for (auto& p : sessions) iscsi_destroy_context(p->ctx);
    return 2;
  }
  g.bs = o.bs;
  if (g.bs % g.lblock) {
    std::fprintf(stderr, "sgvbench: --bs %u is not a multiple of the LUN block size %u\n", g.bs,
                 g.lblock);
    for (auto& p : sessions) iscsi_destroy_context(p->ctx);
    return 2;
  }
  g.blocks_per_io = g.bs / g.lblock;
  uint64_t bytes = blocks * g.lblock;
  if (o.size && o.size < bytes) bytes = o.size;
  g.nchunks = bytes / g.bs;

  unsigned ns = o.sessions;
  uint64_t ios_each = o.ios ? o.ios / ns : UINT64_MAX;
  for (auto& s : sessions) {
    if (o.verify) {  // interleaved chunk sets: no two sessions share a chunk
      s->base = s->idx;
      s->stride = ns;
      s->owned = g.nchunks > s->idx ? (g.nchunks - s->idx + ns - 1) / ns : 0;
    } else if (o.pattern == Pattern::seq) {  // one contiguous stripe each
      s->owned = g.nchunks / ns;
      s->base = s->idx * s->owned;
    } else {
      s->owned = g.nchunks;
    }
    bool enough = o.verify ? s->owned > o.qd : s->owned > 0;
    if (!enough) {
      std::fprintf(stderr, "sgvbench: LUN too small: %" PRIu64 " chunks of %u bytes for %u sessions%s\n",
                   g.nchunks, g.bs, ns, o.verify ? " (verify needs more chunks than --qd each)" : "");
      for (auto& p : sessions) iscsi_destroy_context(p->ctx);
      return 2;
    }
    if (o.verify) s->gen.assign(s->owned, 0);
    s->rng = 0x9E3779B97F4A7C15ull ^ (uint64_t(s->idx + 1) * 0xD1B54A32D192ED03ull) ^ uint64_t(getpid());
    s->budget = o.ios ? ios_each + (s->idx < o.ios % ns ? 1 : 0) : UINT64_MAX;
    s->slots.resize(o.qd);
    for (Slot& sl : s->slots) {
      void* p = nullptr;
      if (posix_memalign(&p, 4096, g.bs) != 0) {
        std::fprintf(stderr, "sgvbench: out of memory for buffers\n");
        return 2;
      }
      sl.s = s.get();
      sl.buf = static_cast<unsigned char*>(p);
      std::memset(sl.buf, 0xA5, g.bs);  // touched now, not during the run
      sl.iov.iov_base = sl.buf;
      sl.iov.iov_len = g.bs;
    }
  }

  unsigned nt = std::min(o.threads, ns);
  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned i = 0; i < nt; ++i) {
    auto w = std::make_unique<Worker>();
    w->o = &o;
    w->g = &g;
    workers.push_back(std::move(w));
  }
  for (auto& s : sessions) {
    Worker* w = workers[s->idx % nt].get();
    s->w = w;
    w->sessions.push_back(s.get());
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  uint64_t t0 = now_ns();
  uint64_t deadline = o.time_s > 0 ? t0 + uint64_t(o.time_s * 1e9) : UINT64_MAX;
  for (auto& w : workers) w->deadline = deadline;
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back(run_worker, w.get());

  bool progress = o.progress == 1 || (o.progress < 0 && o.time_s > 3);
  uint64_t last_ios = 0, last_bytes = 0, last_t = t0;
  for (;;) {
    bool all = false;
    for (int i = 0; i < 10 && !all; ++i) {  // wake every 100 ms, report every 1 s
      all = true;
      for (auto& w : workers) all = all && w->finished.load(std::memory_order_acquire);
      if (!all) usleep(100'000);
    }
    if (all) break;
    if (progress) {
      uint64_t ios = 0, b = 0, t = now_ns();
      for (auto& w : workers) {
        ios += w->prog_ios.load(std::memory_order_relaxed);
        b += w->prog_bytes.load(std::memory_order_relaxed);
      }
      double dt = double(t - last_t) / 1e9;
      std::fprintf(stderr, "sgvbench: %5.1f s  %9.0f IOPS  %8.1f MB/s  %" PRIu64 " I/Os\n",
                   double(t - t0) / 1e9, double(ios - last_ios) / dt,
                   double(b - last_bytes) / dt / 1e6, ios);
      last_ios = ios;
      last_bytes = b;
      last_t = t;
    }
  }
  for (auto& t : threads) t.join();
  getrusage(RUSAGE_SELF, &ru1);

  // Tear down before merging: destroying a dead session cancels what it
  // still had out, and those callbacks count as failures of the run.
  for (auto& s : sessions) {
    s->closing = true;
    if (!s->dead && s->inflight == 0) iscsi_logout_sync(s->ctx);
    iscsi_destroy_context(s->ctx);
    s->ctx = nullptr;
  }
  Stats st;
  uint64_t t_end = t0;
  for (auto& w : workers) {
    st.merge(w->st);
    t_end = std::max(t_end, w->t_end);
  }
  Report r;
  r.secs = double(t_end - t0) / 1e9;
  r.cpu_user = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime);
  r.cpu_sys = tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime);
  for (auto& s : sessions)
    for (Slot& sl : s->slots) free(sl.buf);

  if (o.json) print_json(o, g, st, r);
  else print_text(o, g, st, r);
  return st.failures || st.verify_errors ? 1 : 0;
}

}  // namespace
}  // namespace sgvbench

int main(int argc, char** argv) {
  sgvbench::Options o;
  std::string err;
  if (!sgvbench::parse_args(argc, argv, &o, &err)) {
    if (err.empty()) {
      std::fputs(sgvbench::usage(), stdout);
      return 0;
    }
    std::fprintf(stderr, "sgvbench: %s\n%s", err.c_str(), sgvbench::usage());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  return sgvbench::run(o);
}
