// cache.cpp - the SGV cache: per-thread order stacks over a shared per-order
// pool, vectors built from page-source runs with clustering, trimming and
// restore, chains above the largest order, refcounted release, waiters.
//
// Hot path (this file, top): Pool::alloc and Vec::release on a thread-cache
// hit. Everything else is named *_slow or lives in CacheEngine, out of line.
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <unordered_map>

#include "mem/cache_impl.hpp"

#if defined(SGV_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace sgv {

thread_local constinit detail::TlsSlots detail::t_slots{};

namespace {

// Idle purge (see Pool::maintain): the maintenance thread ticks
// kTicksPerInterval times per purge interval; a vector is purged once it has
// been stamped idle for kPurgeTicks ticks. Stamps come one tick late at most,
// so idle time is (kPurgeTicks - 1, kPurgeTicks + 1] ticks: (1, 1.5]
// intervals.
constexpr long kTicksPerInterval = 4;
constexpr uint64_t kPurgeTicks = 5;

// ---- pool registry and per-thread slots -----------------------------------

// Live pools by id; ids are never reused, so a thread slot naming a dead
// pool can never be mistaken for a live one.
struct Registry {
  std::mutex mu;  // guards pools; held across a thread-exit flush
  std::unordered_map<uint64_t, Pool*> pools;
  std::atomic<uint64_t> next_id{1};  // relaxed: uniqueness only
  uint64_t used_slots = 0;           // TLS slot numbers held by live pools (mu)
  static_assert(detail::kTlsSlots == 64, "used_slots is one bit per slot");
};
Registry& registry() {
  static Registry* r = new Registry;  // leaked: thread-exit flushes may run late
  return *r;
}

// Thread exit: flush this thread's caches of live pools. Armed (constructed,
// which registers the destructor) when the thread fills its first slot.
struct TlsCleanup {
  bool armed = false;
  ~TlsCleanup() {
    detail::TlsSlots& s = detail::t_slots;
    Registry& r = registry();
    std::lock_guard<std::mutex> lk(r.mu);
    for (unsigned i = 0; i < detail::kTlsSlots; ++i) {
      if (!s.id[i]) continue;
      auto it = r.pools.find(s.id[i]);
      if (it != r.pools.end()) CacheEngine::detach(*it->second, s.tc[i]);
      s.id[i] = 0;
      s.tc[i] = nullptr;
    }
  }
};
thread_local TlsCleanup t_cleanup;
thread_local Budget* t_refused = nullptr;  // which budget refused this thread's last charge
thread_local bool t_in_offer = false;      // offer_waiters is on this thread's stack

uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

inline void poison(const Vec* v, const Seg* segs, size_t n) {
#if defined(SGV_ASAN)
  (void)v;
  for (size_t i = 0; i < n; ++i) ASAN_POISON_MEMORY_REGION(segs[i].addr, segs[i].len);
#else
  (void)v, (void)segs, (void)n;
#endif
}
inline void unpoison(const Seg* segs, size_t n) {
#if defined(SGV_ASAN)
  for (size_t i = 0; i < n; ++i) ASAN_UNPOISON_MEMORY_REGION(segs[i].addr, segs[i].len);
#else
  (void)segs, (void)n;
#endif
}

}  // namespace

void Pool::trim_multi(Vec* v, size_t bytes) {
  // Cut the segment list to exactly `bytes` (<= the vector's pages). Linear
  // in the segments crossed: 1 for vectors built from one run.
  size_t rem = bytes, i = 0;
  while (v->segs_[i].len < rem) rem -= v->segs_[i++].len;
  v->trim_idx_ = i;
  v->trim_orig_ = v->segs_[i].len;
  v->segs_[i].len = rem;
  v->nsegs_ = i + 1;
  v->len_ = bytes;
}

void Pool::restore_multi(Vec* v) {
  if (v->nsegs_ == 0 && v->full_nsegs_ == 0) return;
  v->segs_[v->trim_idx_].len = v->trim_orig_;
  v->trim_idx_ = v->full_nsegs_ - 1;
  v->trim_orig_ = v->segs_[v->trim_idx_].len;
  v->nsegs_ = v->full_nsegs_;
  v->len_ = v->full_len_;
}

struct VecOps {
  static void hand_out(Vec* v, size_t bytes, Budget* charge) {
    unpoison(v->segs_, v->full_nsegs_);
    Pool::trim(v, bytes);
    v->set_charged(charge);
    v->refs_.store(1, std::memory_order_relaxed);
  }
};

// ---- out-of-line halves of the hit paths --------------------------------------

int Pool::alloc_slow(size_t bytes, unsigned flags, Budget* charge, Vec** out) {
  return CacheEngine::alloc_slow(*this, bytes, flags, charge, out, tcache(), order_for(bytes));
}

void Vec::release_shared() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // The last holder: back to 1, the count every cached vector keeps (the
  // alloc hit does not store it). Nobody else holds it now.
  refs_.store(1, std::memory_order_relaxed);
  pool_->recycle_slow(this);
}

// A charged vector, a full stack, waiters, a flush request, chains, one-shot
// and empty vectors, and every release in ASan builds (pages are poisoned).
void Pool::recycle_slow(Vec* v) {
  if (v->charged_) {
    v->charged_->uncharge(v->pages_ << kPageShift);
    v->set_charged(nullptr);
    // Pairs with the seq_cst increment of waiters_ in alloc_wait: either
    // that waiter's retry sees this uncharge or we see the waiter.
#if defined(SGV_TSAN)
    // GCC's TSan rejects fences; an RMW on waiters_ orders the same way
    // (at the price of a shared cache line, acceptable under TSan).
    waiters_.fetch_add(0, std::memory_order_seq_cst);
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
  }
  ThreadCache* tc = tcache();
  if (__builtin_expect(v->kind_ == kKindCached, 1)) {
    Pool::restore(v);
    if (__builtin_expect(tc != nullptr && waiters_.load(std::memory_order_seq_cst) == 0 &&
                             tc->gate.load(std::memory_order_relaxed) == 0,
                         1)) {
      ThreadCache::Order& o = tc->ord[v->order_];
      uint32_t n = o.n.load(std::memory_order_relaxed);
      if (n < impl_->cap[v->order_]) {
        poison(v, v->segs_, v->full_nsegs_);
        o.stack[n] = v;
        o.n.store(n + 1, std::memory_order_relaxed);
        o.in.bump();
        return;
      }
    }
  }
  CacheEngine::recycle_slow(*this, v, tc);
}

int Vec::seg_fd(size_t i, uint64_t* offset) const {
  if (i >= nsegs_ || fd_ < 0 || seg_off_ == nullptr) return -1;
  if (offset) *offset = seg_off_[i];
  return fd_;
}

void Vec::set_external(const Seg* segs, size_t n) {
  assert(kind_ == kKindEmpty && "only an empty vector takes caller pages");
  segs_ = const_cast<Seg*>(segs);
  nsegs_ = n;
  len_ = total_len(SegSpan(segs, n));
}

// ---- slow path ------------------------------------------------------------


namespace {
bool seg_adjacent(const Seg& s, uint64_t s_off, const PageRun& r, bool file) {
  return static_cast<char*>(s.addr) + s.len == r.addr && (!file || s_off + s.len == r.offset);
}
}  // namespace

struct Builder {
  // Back to the pool's free nodes (CAS push; release: whoever takes them
  // next sees this thread done with the node).
  static void free_node(Pool::Impl& im, XBatch* b) {
    XBatch* h = im.free_batches.load(std::memory_order_relaxed);
    do {
      b->next = h;
    } while (!im.free_batches.compare_exchange_weak(h, b, std::memory_order_release, std::memory_order_relaxed));
  }

  // n new nodes onto the free list (slow paths only: see get_node). Enough of
  // them that the exchanges rarely lack one: one per batch of vectors ever
  // built of each order, two per thread cache.
  static void add_nodes(Pool::Impl& im, unsigned n) {
    while (n--) free_node(im, new XBatch);
  }

  // Build a vector of `pages` pages from the page source; runs capped at
  // 2^max_order pages. Charges the global budget (dropping idle vectors
  // first when it would refuse). 0 or -ENOMEM; on failure nothing is held.
  [[gnu::noinline]] static int build(Pool& p, size_t pages, int order, uint8_t kind, Vec** out) {
    Pool::Impl& im = CacheEngine::impl(p);
    size_t bytes = pages << kPageShift;
    if (p.global_) {
      Budget* refused = nullptr;
      if (p.global_->charge(bytes, &refused) != 0) {
        CacheEngine::request_flushes(p, p.tcache());
        CacheEngine::drop_idle(p, bytes, 0, false);
        if (p.global_->charge(bytes, &refused) != 0) {
          t_refused = p.global_;
          im.watermark_refusals.fetch_add(1, std::memory_order_relaxed);
          if (order >= 0) im.wm_refusals[order].fetch_add(1, std::memory_order_relaxed);
          return -ENOMEM;
        }
      }
    }
    std::vector<PageRun> runs;
    size_t rem = pages, cap = size_t{1} << p.opts_.max_order;
    while (rem) {
      PageRun r{nullptr, 0, -1, 0};
      int rc = p.src_->get(std::min(rem, cap), &r);
      if (rc != 0) {
        for (const PageRun& x : runs) p.src_->put(x);
        if (p.global_) p.global_->uncharge(bytes);
        im.source_failures.fetch_add(1, std::memory_order_relaxed);
        t_refused = nullptr;
        return -ENOMEM;
      }
      runs.push_back(r);
      rem -= r.pages;
    }
    int fd = runs[0].fd;
    for (const PageRun& r : runs)
      if (r.fd != fd) fd = -1;
    bool file = fd >= 0;
    std::vector<Seg> segs;
    std::vector<uint64_t> offs;
    size_t hint = 0;
    for (const PageRun& r : runs) {
      Seg s{r.addr, r.pages << kPageShift};
      bool merged = false;
      if (!segs.empty() && p.opts_.clustering == Clustering::tail) {
        if (seg_adjacent(segs.back(), file ? offs.back() : 0, r, file)) segs.back().len += s.len, merged = true;
      } else if (!segs.empty() && p.opts_.clustering == Clustering::full) {
        // The hint (last merge) first, then every earlier segment backwards.
        for (size_t step = 0; step <= segs.size() && !merged; ++step) {
          size_t i = step == 0 ? hint : segs.size() - step;
          Seg& t = segs[i];
          uint64_t toff = file ? offs[i] : 0;
          if (seg_adjacent(t, toff, r, file)) {
            t.len += s.len, merged = true, hint = i;
          } else if (static_cast<char*>(r.addr) + s.len == t.addr && (!file || r.offset + s.len == toff)) {
            t.addr = r.addr, t.len += s.len, merged = true, hint = i;
            if (file) offs[i] = r.offset;
          }
        }
      }
      if (!merged) {
        segs.push_back(s);
        offs.push_back(r.offset);
      }
    }
    Vec* v = new Vec();
    v->pool_ = &p;
    v->set_kind(kind);
    v->order_ = order;
    v->set_pages(pages);
    // Up to kInlineSegs segments live in the vector's own lines (no second
    // allocation, nothing another object's writes can share a line with).
    v->segs_ = segs.size() <= Vec::kInlineSegs ? v->inline_segs_ : new Seg[segs.size()];
    std::memcpy(v->segs_, segs.data(), segs.size() * sizeof(Seg));
    v->full_nsegs_ = static_cast<uint32_t>(segs.size());
    v->nsegs_ = segs.size();
    v->runs_ = new PageRun[runs.size()];
    std::memcpy(v->runs_, runs.data(), runs.size() * sizeof(PageRun));
    v->nruns_ = static_cast<uint32_t>(runs.size());
    v->fd_ = fd;
    if (file) {
      v->seg_off_ = new uint64_t[offs.size()];
      std::memcpy(v->seg_off_, offs.data(), offs.size() * sizeof(uint64_t));
    }
    v->trim_idx_ = v->full_nsegs_ - 1;
    v->trim_orig_ = v->segs_[v->trim_idx_].len;
    v->len_ = bytes;
    if (kind == kKindCached) {
      im.misses[order].fetch_add(1, std::memory_order_relaxed);
      im.built_segs[order].fetch_add(segs.size(), std::memory_order_relaxed);
      // One batch node per batch of vectors of this order (see get_node).
      if (im.allocated_vecs[order].fetch_add(1, std::memory_order_relaxed) % im.batch[order] == 0)
        add_nodes(im, 1);
    } else {
      im.oneshot_pages.fetch_add(pages, std::memory_order_relaxed);
    }
    *out = v;
    return 0;
  }

  // global_done: the caller already uncharged the global budget.
  static void destroy(Pool& p, Vec* v, bool global_done = false) {
    Pool::Impl& im = CacheEngine::impl(p);
    Pool::restore(v);
    unpoison(v->segs_, v->full_nsegs_);
    for (uint32_t i = 0; i < v->nruns_; ++i) p.src_->put(v->runs_[i]);
    if (p.global_ && !global_done) p.global_->uncharge(v->pages_ << kPageShift);
    // A cached vector left allocated_vecs when drop_idle unlinked it.
    if (v->kind_ != kKindCached) im.oneshot_pages.fetch_sub(v->pages_, std::memory_order_relaxed);
    if (v->segs_ != v->inline_segs_) delete[] v->segs_;
    delete[] v->runs_;
    delete[] v->seg_off_;
    delete v;
  }
};


struct CacheOps {

static void list_push_back(Pool::Impl::Shared& s, Vec* v) {
  v->next_ = nullptr;
  v->prev_ = s.tail;
  if (s.tail) s.tail->next_ = v;
  else s.head = v;
  s.tail = v;
  ++s.n;
}
static void list_unlink(Pool::Impl::Shared& s, Vec* v) {
  if (v->prev_) v->prev_->next_ = v->next_;
  else s.head = v->next_;
  if (v->next_) v->next_->prev_ = v->prev_;
  else s.tail = v->prev_;
  v->next_ = v->prev_ = nullptr;
  --s.n;
}
// Into the shared pool, idle since epoch `stamp` (purge reads it there;
// see Pool::maintain). Caller holds mu.
static void to_shared(Pool::Impl& im, int k, Vec* v, uint64_t stamp) {
  v->stamp_ = stamp;
  list_push_back(im.shared[k], v);
}



static int refuse(Pool& p, unsigned flags, Vec** out) {
  if (!(flags & kReturnEmptyOnFail)) return -ENOMEM;
  Pool::Impl& im = CacheEngine::impl(p);
  Vec* e = new Vec();
  e->pool_ = &p;
  e->set_kind(kKindEmpty);
  e->refs_.store(1, std::memory_order_relaxed);
  im.empty_returns.fetch_add(1, std::memory_order_relaxed);
  *out = e;
  return 0;
}

static void count_out(Pool& p, ThreadCache* tc, int k, bool hit) {
  if (tc) {
    // A hit popped this thread's stack, which counts it (Order::hits).
    if (!hit) tc->out_miss[k].bump();
    return;
  }
  Pool::Impl& im = CacheEngine::impl(p);
  std::lock_guard<std::mutex> lk(im.mu);
  im.dead_out[k]++;
  if (hit) im.dead_hits[k]++;
}

// An empty batch node for `tc`'s next hand-off: its spare list, else all
// of the pool's free nodes (take-all: no ABA), else none -- the batch then
// goes to the shared pool under the mutex. Nodes are made only where the
// pool allocates anyway (add_nodes: a new thread cache, a new vector), so
// a warm data path never allocates, whoever holds the spare nodes.
static XBatch* get_node(Pool::Impl& im, ThreadCache* tc) {
  if (!tc->spare && im.free_batches.load(std::memory_order_relaxed))
    tc->spare = im.free_batches.exchange(nullptr, std::memory_order_acquire);
  XBatch* b = tc->spare;
  if (b) tc->spare = b->next;
  return b;
}

// A node just emptied by `tc`: kept as its one spare if it has none (a
// thread that both gives and takes needs no shared list), else freed for
// the threads that hand batches over.
static void put_node(Pool::Impl& im, ThreadCache* tc, XBatch* b) {
  if (!tc->spare) {
    b->next = nullptr;
    tc->spare = b;
    return;
  }
  Builder::free_node(im, b);
}

// Hand the batch vs[0..b) to the exchange (one CAS, no lock), idle from
// epoch `now` on (see Pool::maintain: stamps are set when vectors leave a
// thread stack, not on every release). Writes nothing in the vectors.
// Without a free node, the batch goes to the shared pool (the mutex).
static void exchange_put(Pool& p, ThreadCache* tc, int k, Vec* const* vs, uint32_t b, uint64_t now) {
  Pool::Impl& im = CacheEngine::impl(p);
  XBatch* xb = get_node(im, tc);
  if (!xb) {
    std::lock_guard<std::mutex> lk(im.mu);
    for (uint32_t i = 0; i < b; ++i) to_shared(im, k, vs[i], now);
    return;
  }
  xb->n = b;
  xb->stamp = now;
  std::memcpy(xb->v, vs, b * sizeof(Vec*));
  Exchange& x = im.xchg[k];
  x.n.fetch_add(b, std::memory_order_relaxed);
  exchange_push_chain(x, xb, xb);
}

// Push the chain b..last onto the exchange's head stack (one CAS).
static void exchange_push_chain(Exchange& x, XBatch* b, XBatch* last) {
  XBatch* h = x.head.load(std::memory_order_relaxed);
  do {
    last->next = h;
    // release: the nodes' contents are visible to the taker.
  } while (!x.head.compare_exchange_weak(h, b, std::memory_order_release, std::memory_order_relaxed));
}

// Fill an empty thread stack from the exchange: take every batch of head
// (one exchange), or, when head is empty, of rest; keep those that fit.
// What does not fit goes to rest with one CAS when rest is empty, else
// back onto head. Returns the stack's new size.
static uint32_t exchange_take(Pool::Impl& im, ThreadCache* tc, int k, ThreadCache::Order& o) {
  Exchange& x = im.xchg[k];
  XBatch* b = nullptr;
  // acquire: pairs with the release CAS of whoever pushed each batch.
  if (x.head.load(std::memory_order_relaxed)) b = x.head.exchange(nullptr, std::memory_order_acquire);
  if (!b && x.rest.load(std::memory_order_relaxed)) b = x.rest.exchange(nullptr, std::memory_order_acquire);
  if (!b) return 0;
  uint32_t n = 0;
  while (b && n + b->n <= im.cap[k]) {
    XBatch* next = b->next;
    std::memcpy(o.stack + n, b->v, b->n * sizeof(Vec*));
    n += b->n;
    put_node(im, tc, b);
    b = next;
  }
  x.n.fetch_sub(n, std::memory_order_relaxed);
  o.moved.add(n);
  if (b) {
    XBatch* none = nullptr;
    if (!x.rest.compare_exchange_strong(none, b, std::memory_order_release, std::memory_order_relaxed)) {
      XBatch* last = b;
      while (last->next) last = last->next;
      exchange_push_chain(x, b, last);
    }
  }
  o.n.store(n, std::memory_order_relaxed);
  return n;
}

// A whole cached vector of order k from the thread stack, the exchange or
// the shared pool (a batch moves to the thread stack), or nullptr.
static Vec* take_cached(Pool& p, ThreadCache* tc, int k) {
  Pool::Impl& im = CacheEngine::impl(p);
  if (tc) {
    if (CacheEngine::gate_pending(tc, k)) CacheEngine::settle_gate(p, tc);
    ThreadCache::Order& o = tc->ord[k];
    uint32_t n = o.n.load(std::memory_order_relaxed);
    if (n == 0) n = exchange_take(im, tc, k, o);
    if (n == 0) {
      std::lock_guard<std::mutex> lk(im.mu);
      auto& s = im.shared[k];
      while (s.tail && n < im.batch[k]) {
        Vec* v = s.tail;
        list_unlink(s, v);
        o.stack[n++] = v;
      }
      o.moved.add(n);
    }
    if (n == 0) return nullptr;
    Vec* v = o.stack[n - 1];
    o.n.store(n - 1, std::memory_order_relaxed);
    return v;
  }
  std::lock_guard<std::mutex> lk(im.mu);
  CacheEngine::drain_exchange(p);
  auto& s = im.shared[k];
  Vec* v = s.tail;
  if (v) list_unlink(s, v);
  return v;
}

// A cacheable order-k vector for internal use (chains): cached or built.
static int get_member(Pool& p, ThreadCache* tc, int k, unsigned flags, Vec** out) {
  Vec* v = (flags & kGetNew) ? nullptr : take_cached(p, tc, k);
  bool hit = v != nullptr;
  if (!v) {
    if (flags & kCacheHitOnly) return -ENOMEM;
    int rc = Builder::build(p, size_t{1} << k, k, kKindCached, &v);
    if (rc != 0) return rc;
  }
  count_out(p, tc, k, hit);
  unpoison(v->segs_, v->full_nsegs_);
  // Cached vectors keep refs_ == 1; only a new one needs the store. A store
  // to a cached vector's first line would move that line to this core and
  // cost the releasing thread a coherence miss (see Vec).
  if (!hit) v->refs_.store(1, std::memory_order_relaxed);
  *out = v;
  return 0;
}

static int charge_budget(Pool& p, Budget* charge, size_t bytes) {
  if (!charge) return 0;
  if (charge->charge(bytes, &t_refused) == 0) return 0;
  CacheEngine::impl(p).budget_refusals.fetch_add(1, std::memory_order_relaxed);
  return -ENOMEM;
}

static int alloc_chain(Pool& p, size_t bytes, unsigned flags, Budget* charge, Vec** out, ThreadCache* tc) {
  Pool::Impl& im = CacheEngine::impl(p);
  size_t pages = (bytes + kPageSize - 1) >> kPageShift;
  unsigned mo = p.max_order();
  size_t full = pages >> mo, rem = pages & ((size_t{1} << mo) - 1);
  int last_k = rem ? p.order_for(rem << kPageShift) : -1;
  size_t held = (full << mo) + (rem ? size_t{1} << last_k : 0);
  if (charge_budget(p, charge, held << kPageShift) != 0) return refuse(p, flags, out);
  Vec* head;
  {
    std::lock_guard<std::mutex> lk(im.mu);
    head = im.chain_free;
    if (head) im.chain_free = head->next_;
  }
  if (!head) {
    head = new Vec();
    head->pool_ = &p;
    head->set_kind(kKindChain);
    head->order_ = -1;
  }
  head->next_ = nullptr;
  head->chain_ = nullptr;
  Vec** tail = &head->chain_;
  size_t nseg = 0, count = full + (rem ? 1 : 0);
  int rc = 0;
  for (size_t i = 0; i < count; ++i) {
    Vec* m = nullptr;
    rc = get_member(p, tc, i < full ? static_cast<int>(mo) : last_k, flags, &m);
    if (rc != 0) break;
    m->next_ = nullptr;
    *tail = m;
    tail = &m->next_;
    nseg += m->full_nsegs_;
  }
  head->set_pages(0);
  head->set_charged(nullptr);
  if (rc != 0) {
    head->refs_.store(1, std::memory_order_relaxed);
    head->release();  // gives back the members obtained and the header
    if (charge) charge->uncharge(held << kPageShift);
    return refuse(p, flags, out);
  }
  if (head->seg_cap_ < nseg) {
    delete[] head->segs_;
    delete[] head->seg_off_;
    head->segs_ = new Seg[nseg];
    head->seg_off_ = new uint64_t[nseg];
    head->seg_cap_ = nseg;
  }
  size_t j = 0;
  int fd = head->chain_->fd_;
  for (Vec* m = head->chain_; m; m = m->next_) {
    if (m->fd_ != fd) fd = -1;
    for (uint32_t i = 0; i < m->full_nsegs_; ++i, ++j) {
      head->segs_[j] = m->segs_[i];
      head->seg_off_[j] = m->seg_off_ ? m->seg_off_[i] : 0;
    }
  }
  head->fd_ = fd;
  head->full_nsegs_ = static_cast<uint32_t>(nseg);
  head->set_pages(held);
  head->trim_idx_ = nseg - 1;
  head->trim_orig_ = head->segs_[nseg - 1].len;
  head->len_ = head->full_len_;
  Pool::trim_multi(head, bytes);
  head->set_charged(charge);
  head->refs_.store(1, std::memory_order_relaxed);
  im.chains.fetch_add(1, std::memory_order_relaxed);
  *out = head;
  return 0;
}

};

int CacheEngine::alloc_slow(Pool& p, size_t bytes, unsigned flags, Budget* charge, Vec** out, ThreadCache* tc, int k) {
  Pool::Impl& im = *p.impl_;
  if (bytes == 0 || (flags & ~kAllFlags) || out == nullptr) return -EINVAL;
  t_refused = nullptr;
  if (flags & kNoCache) {
    size_t pages = (bytes + kPageSize - 1) >> kPageShift;
    if (CacheOps::charge_budget(p, charge, pages << kPageShift) != 0) return CacheOps::refuse(p, flags, out);
    Vec* v = nullptr;
    if (Builder::build(p, pages, k, kKindOneShot, &v) != 0) {
      if (charge) charge->uncharge(pages << kPageShift);
      return CacheOps::refuse(p, flags, out);
    }
    im.one_shot.fetch_add(1, std::memory_order_relaxed);
    VecOps::hand_out(v, bytes, charge);
    *out = v;
    return 0;
  }
  if (k < 0) return CacheOps::alloc_chain(p, bytes, flags, charge, out, tc);
  if (CacheOps::charge_budget(p, charge, kPageSize << k) != 0) return CacheOps::refuse(p, flags, out);
  Vec* v = nullptr;
  if (CacheOps::get_member(p, tc, k, flags, &v) != 0) {
    if (charge) charge->uncharge(kPageSize << k);
    return CacheOps::refuse(p, flags, out);
  }
  Pool::trim(v, bytes);
  if (charge != v->charged_) v->set_charged(charge);  // no store when unchanged (see get_member)
  *out = v;
  return 0;
}

void CacheEngine::flush_tc(Pool& p, ThreadCache* tc) {
  Pool::Impl& im = *p.impl_;
  // acquire: pairs with the release fetch_or of whoever asked for the flush.
  tc->gate.fetch_and(static_cast<uint8_t>(~ThreadCache::kGateFlush), std::memory_order_acquire);
  // Idle from now on, for purge (see Pool::maintain).
  uint64_t now = p.epoch_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lk(im.mu);
  for (unsigned k = 0; k <= p.max_order(); ++k) {
    ThreadCache::Order& o = tc->ord[k];
    uint32_t n = o.n.load(std::memory_order_relaxed);
    for (uint32_t i = 0; i < n; ++i) CacheOps::to_shared(im, k, o.stack[i], now);
    o.moved.add(-static_cast<uint64_t>(n));
    o.n.store(0, std::memory_order_relaxed);
  }
}

void CacheEngine::settle_gate(Pool& p, ThreadCache* tc) {
  uint8_t g = tc->gate.load(std::memory_order_relaxed);
  if (g & ThreadCache::kGateFlush) flush_tc(p, tc);
  if ((g & ThreadCache::kGateWaiters) && p.waiters_.load(std::memory_order_seq_cst) == 0) {
    // Clear, then look again: alloc_wait counts its waiter before it sets
    // the bit (both seq_cst), so either this load sees the new waiter or
    // that fetch_or comes after this fetch_and and the bit stays set.
    tc->gate.fetch_and(static_cast<uint8_t>(~ThreadCache::kGateWaiters), std::memory_order_seq_cst);
    if (p.waiters_.load(std::memory_order_seq_cst) != 0)
      tc->gate.fetch_or(ThreadCache::kGateWaiters, std::memory_order_seq_cst);
  }
  // Reopen, then look again: raise_gate sets its bit before it zeroes the
  // limits (all seq_cst), so either this load sees the bit (close again;
  // the next operation settles it) or that zeroing comes after these stores.
  Pool::Impl& im = *p.impl_;
  for (unsigned k = 0; k <= p.max_order(); ++k) tc->ord[k].lim.store(im.cap[k], std::memory_order_seq_cst);
  if (tc->gate.load(std::memory_order_seq_cst) != 0)
    for (unsigned k = 0; k <= p.max_order(); ++k) tc->ord[k].lim.store(0, std::memory_order_seq_cst);
}

void CacheEngine::raise_gate(Pool& p, ThreadCache* tc, uint8_t bit) {
  // seq_cst: also the release that flush_tc's acquire pairs with.
  tc->gate.fetch_or(bit, std::memory_order_seq_cst);
  for (unsigned k = 0; k <= p.max_order(); ++k) tc->ord[k].lim.store(0, std::memory_order_seq_cst);
}

void CacheEngine::drain_exchange(Pool& p) {
  Pool::Impl& im = *p.impl_;
  for (unsigned k = 0; k <= p.max_order(); ++k) {
    Exchange& x = im.xchg[k];
    uint64_t n = 0;
    for (std::atomic<XBatch*>* stack : {&x.head, &x.rest}) {
      if (stack->load(std::memory_order_relaxed) == nullptr) continue;
      XBatch* b = stack->exchange(nullptr, std::memory_order_acquire);
      while (b) {
        XBatch* next = b->next;
        // Idle since the batch left its stack.
        for (uint32_t i = 0; i < b->n; ++i) CacheOps::to_shared(im, k, b->v[i], b->stamp);
        n += b->n;
        Builder::free_node(im, b);
        b = next;
      }
    }
    if (n) x.n.fetch_sub(n, std::memory_order_relaxed);
  }
}

void CacheEngine::recycle_slow(Pool& p, Vec* v, ThreadCache* tc) {
  Pool::Impl& im = *p.impl_;
  switch (v->kind_) {
    case kKindEmpty:
      delete v;
      break;
    case kKindOneShot:
      Builder::destroy(p, v);
      break;
    case kKindChain: {
      Vec* m = v->chain_;
      v->chain_ = nullptr;
      while (m) {
        Vec* next = m->next_;
        m->next_ = nullptr;
        m->refs_.store(1, std::memory_order_relaxed);
        m->release();
        m = next;
      }
      std::lock_guard<std::mutex> lk(im.mu);
      v->next_ = im.chain_free;
      im.chain_free = v;
      break;
    }
    default: {
      int k = v->order_;
      poison(v, v->segs_, v->full_nsegs_);
      if (!tc) {
        uint64_t now = p.epoch_.load(std::memory_order_relaxed);
        std::lock_guard<std::mutex> lk(im.mu);
        CacheOps::to_shared(im, k, v, now);
        im.dead_in[k]++;
        break;
      }
      if (gate_pending(tc, k)) settle_gate(p, tc);
      ThreadCache::Order& o = tc->ord[k];
      uint32_t n = o.n.load(std::memory_order_relaxed);
      if (n == im.cap[k]) {
        // Full: the oldest batch (bottom of the stack) moves to the exchange,
        // where an allocating thread takes it without a lock.
        uint32_t b = im.batch[k];
        CacheOps::exchange_put(p, tc, k, o.stack, b, p.epoch_.load(std::memory_order_relaxed));
        o.moved.add(-static_cast<uint64_t>(b));
        std::memmove(o.stack, o.stack + b, (n - b) * sizeof(Vec*));
        n -= b;
      }
      o.stack[n] = v;
      o.n.store(n + 1, std::memory_order_relaxed);
      o.in.bump();
      break;
    }
  }
  if (p.waiters_.load(std::memory_order_seq_cst) != 0) offer_waiters(p);
}

// ---- waiters ----------------------------------------------------------------

// FIFO per budget: a waiter refused by a budget of its own chain (session,
// LUN) blocks only the later waiters charged below that same budget; one
// refused by what everyone shares (the global watermark, the page source, a
// hit-only miss) blocks everyone behind it. So a session at its limit never
// holds back another session's grant, and no waiter is overtaken by a later
// one competing for the same memory.
void CacheEngine::offer_waiters(Pool& p, Waiter* self, Vec** self_out) {
  if (t_in_offer) return;  // a release inside a grant: the outer loop continues
  Pool::Impl& im = *p.impl_;
  t_in_offer = true;
  constexpr int kMaxBlocked = 8;
  Budget* blocked[kMaxBlocked];
  int nblocked = 0;
  std::unique_lock<std::mutex> lk(im.wmu);
  Waiter* w = im.whead;
  while (w) {
    bool skip = false;
    // A budget's "also" limit (a session's total across LUNs) blocks like
    // its chain does, or each of that session's waiters under another LUN
    // would take one of the kMaxBlocked entries and stop the scan early.
    for (Budget* b = w->charge_; b && !skip; b = b->parent())
      for (int i = 0; i < nblocked && !skip; ++i) skip = blocked[i] == b || blocked[i] == b->also();
    if (skip) {
      w = w->next_;
      continue;
    }
    Vec* v = nullptr;
    if (p.alloc(w->bytes_, w->flags_ & ~kReturnEmptyOnFail, w->charge_, &v) != 0) {
      Budget* r = t_refused;
      if (r == nullptr || r == p.global_ || r->counts_pages() || nblocked == kMaxBlocked) break;
      blocked[nblocked++] = r;
      w = w->next_;
      continue;
    }
    if (w->prev_) w->prev_->next_ = w->next_;
    else im.whead = w->next_;
    if (w->next_) w->next_->prev_ = w->prev_;
    else im.wtail = w->prev_;
    w->queued_ = false;
    w->next_ = w->prev_ = nullptr;
    p.waiters_.fetch_sub(1, std::memory_order_seq_cst);
    uint64_t waited = now_ns() - w->enq_ns_;
    im.wait_ns.fetch_add(waited, std::memory_order_relaxed);
    int k = p.order_for(w->bytes_);
    if (k >= 0) im.order_wait_ns[k].fetch_add(waited, std::memory_order_relaxed);
    lk.unlock();
    if (w == self) {
      *self_out = v;
      t_in_offer = false;
      return;
    }
    w->cb(w, v, 0);
    lk.lock();
    w = im.whead;  // the queue may have changed meanwhile (cancel, enqueue)
  }
  t_in_offer = false;
}

int Pool::alloc_wait(size_t bytes, unsigned flags, Budget* charge, Waiter* w, Vec** out) {
  if (w == nullptr || w->cb == nullptr || w->queued_) return -EINVAL;
  int rc = alloc(bytes, flags & ~kReturnEmptyOnFail, charge, out);
  if (rc != -ENOMEM) return rc;
  if (t_refused) t_refused->note_wait();
  {
    std::lock_guard<std::mutex> lk(impl_->wmu);
    w->bytes_ = bytes;
    w->flags_ = flags & ~kReturnEmptyOnFail;
    w->charge_ = charge;
    w->enq_ns_ = now_ns();
    w->queued_ = true;
    w->next_ = nullptr;
    w->prev_ = impl_->wtail;
    if (impl_->wtail) impl_->wtail->next_ = w;
    else impl_->whead = w;
    impl_->wtail = w;
    // seq_cst: pairs with the fence + seq_cst load in recycle (Dekker).
    waiters_.fetch_add(1, std::memory_order_seq_cst);
  }
  {
    // Send every thread's inline release to the slow path, which offers
    // what it frees to the waiters (settle_gate drops the bit once none is
    // left). After the count: see settle_gate and attach_tc.
    std::lock_guard<std::mutex> lk(impl_->mu);
    for (ThreadCache* tc : impl_->tcs) CacheEngine::raise_gate(*this, tc, ThreadCache::kGateWaiters);
  }
  impl_->waits.fetch_add(1, std::memory_order_relaxed);
  if (int k = order_for(bytes); k >= 0) impl_->order_waits[k].fetch_add(1, std::memory_order_relaxed);
  // Memory freed between our refusal and the enqueue was not offered to us.
  // If that grants us, return it here: cb never runs inside alloc_wait.
  Vec* mine = nullptr;
  if (!t_in_offer) CacheEngine::offer_waiters(*this, w, &mine);
  if (mine) {
    *out = mine;
    return 0;
  }
  return -EINPROGRESS;
}

bool Pool::cancel(Waiter* w) {
  std::lock_guard<std::mutex> lk(impl_->wmu);
  if (!w->queued_) return false;
  if (w->prev_) w->prev_->next_ = w->next_;
  else impl_->whead = w->next_;
  if (w->next_) w->next_->prev_ = w->prev_;
  else impl_->wtail = w->prev_;
  w->next_ = w->prev_ = nullptr;
  w->queued_ = false;
  waiters_.fetch_sub(1, std::memory_order_seq_cst);
  return true;
}

// ---- thread caches ----------------------------------------------------------

// Stacks are cache-line aligned and sized in whole lines: the owner's
// pushes never share a line with another thread's data.
static Vec** new_stack(uint32_t cap) {
  size_t bytes = (cap * sizeof(Vec*) + 63) & ~size_t{63};
  return static_cast<Vec**>(::operator new(bytes, std::align_val_t{64}));
}

ThreadCache::~ThreadCache() {
  for (auto& o : ord)
    if (o.stack) ::operator delete(o.stack, std::align_val_t{64});
  while (XBatch* b = spare) {
    spare = b->next;
    delete b;
  }
}

// First use of this pool on this thread (or a pool without a TLS slot).
ThreadCache* Pool::attach_tc() {
  if (!has_tls_) return nullptr;  // more pools than slots: shared pool only
  detail::TlsSlots& s = detail::t_slots;
  t_cleanup.armed = true;  // registers the thread-exit flush
  auto* tc = new ThreadCache();
  tc->pool = this;
  for (unsigned k = 0; k <= max_order(); ++k) {
    tc->ord[k].lim.store(impl_->cap[k], std::memory_order_relaxed);  // published by the lock below
    tc->ord[k].stack = new_stack(impl_->cap[k]);
  }
  Builder::add_nodes(*impl_, 2);  // this thread's spare and the one in its hands
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->tcs.push_back(tc);
    // A waiter counted before this lock either marked the list above before
    // we joined it (and is seen here) or marks this cache after us.
    if (waiters_.load(std::memory_order_seq_cst) != 0) CacheEngine::raise_gate(*this, tc, ThreadCache::kGateWaiters);
  }
  // The slot may name a destroyed pool that held this number (its cache is
  // gone with it): overwrite.
  s.id[tls_idx_] = id_;
  s.tc[tls_idx_] = tc;
  return tc;
}

void CacheEngine::detach(Pool& p, ThreadCache* tc) {
  Pool::Impl& im = *p.impl_;
  flush_tc(p, tc);
  std::lock_guard<std::mutex> lk(im.mu);
  for (unsigned k = 0; k <= p.max_order(); ++k) {
    im.dead_hits[k] += tc->ord[k].hits();
    im.dead_out[k] += tc->ord[k].hits() + tc->out_miss[k].get();
    im.dead_in[k] += tc->ord[k].in.get();
  }
  im.tcs.erase(std::remove(im.tcs.begin(), im.tcs.end(), tc), im.tcs.end());
  // Its spare nodes stay in the pool's supply (see get_node).
  while (XBatch* b = tc->spare) {
    tc->spare = b->next;
    Builder::free_node(im, b);
  }
  delete tc;
}

// ---- purge and shrink -------------------------------------------------------

size_t CacheEngine::drop_idle(Pool& p, size_t bytes, uint64_t min_age, bool purge) {
  Pool::Impl& im = *p.impl_;
  Vec* victims = nullptr;
  size_t got = 0;
  uint64_t now = p.epoch_.load(std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lk(im.mu);
    drain_exchange(p);
    // Oldest first: the heads of the per-order lists, largest orders first
    // so few vectors free much memory.
    for (int k = static_cast<int>(p.max_order()); k >= 0 && got < bytes; --k) {
      auto& s = im.shared[k];
      for (Vec* v = s.head; v && got < bytes;) {
        Vec* next = v->next_;
        if (now - v->stamp_ >= min_age) {
          CacheOps::list_unlink(s, v);
          // Under mu, with the unlink: check_invariants never sees a vector
          // neither cached nor allocated.
          im.allocated_vecs[k].fetch_sub(1, std::memory_order_relaxed);
          v->next_ = victims;
          victims = v;
          got += v->pages_ << kPageShift;
          (purge ? im.purged : im.shrunk)[k].fetch_add(1, std::memory_order_relaxed);
        }
        v = next;
      }
    }
    // With the unlink too: the global budget never counts pages that the
    // pool's statistics no longer do (the pages go back just below).
    if (p.global_ && got) p.global_->uncharge(got);
  }
  while (victims) {
    Vec* next = victims->next_;
    victims->next_ = nullptr;
    Builder::destroy(p, victims, true);
    victims = next;
  }
  return got;
}

uint64_t CacheEngine::cached_pages(Pool& p) {
  Pool::Impl& im = *p.impl_;
  std::lock_guard<std::mutex> lk(im.mu);
  uint64_t pages = 0;
  for (unsigned k = 0; k <= p.max_order(); ++k) {
    uint64_t n = im.shared[k].n + im.xchg[k].n.load(std::memory_order_relaxed);
    for (ThreadCache* tc : im.tcs) n += tc->ord[k].n.load(std::memory_order_relaxed);
    pages += n << k;
  }
  return pages;
}


void CacheEngine::request_flushes(Pool& p, ThreadCache* own) {
  Pool::Impl& im = CacheEngine::impl(p);
  if (own) CacheEngine::flush_tc(p, own);
  std::lock_guard<std::mutex> lk(im.mu);
  // raise_gate's seq_cst RMW: pairs with the acquire exchange in flush_tc.
  for (ThreadCache* tc : im.tcs)
    if (tc != own) CacheEngine::raise_gate(p, tc, ThreadCache::kGateFlush);
}

size_t Pool::shrink(size_t bytes) {
  CacheEngine::request_flushes(*this, tcache());
  return CacheEngine::drop_idle(*this, bytes, 0, false);
}

size_t Pool::on_pressure() {
  impl_->pressure_events.fetch_add(1, std::memory_order_relaxed);
  CacheEngine::request_flushes(*this, tcache());
  size_t cached = CacheEngine::cached_pages(*this) << kPageShift;
  if (cached <= opts_.low_watermark_bytes) return 0;
  return CacheEngine::drop_idle(*this, cached - opts_.low_watermark_bytes, 0, false);
}

void Pool::maintain() {
  // Idle time is stamped (with the epoch) when a vector leaves a thread
  // stack -- a flush, a full stack's batch to the exchange, a release on a
  // thread without a cache -- not on every release, which kept two
  // instructions and a load of the pool's epoch on the inline hit path.
  // Every tick asks every stack to flush, so a vector released in epoch e
  // by a thread that keeps using the pool is stamped e or e + 1. Purged
  // once epoch >= stamp + kPurgeTicks, with a tick of interval / 4: idle
  // for (interval, 1.5 x interval]. (A thread idle across ticks keeps its
  // stack unflushed, and out of purge's reach, until its next operation,
  // with or without release stamps.)
  epoch_.fetch_add(1, std::memory_order_relaxed);
  CacheEngine::request_flushes(*this, tcache());
  if (opts_.purge_interval_ms > 0) CacheEngine::drop_idle(*this, SIZE_MAX, kPurgeTicks, true);
  if (waiters_.load(std::memory_order_seq_cst) != 0) CacheEngine::offer_waiters(*this);
}

// ---- construction -----------------------------------------------------------

Pool::Pool(const PoolOptions& opts, Budget* global)
    : opts_(opts), name_(opts.name ? opts.name : "sgv"), global_(global), src_(opts.pages), impl_(new Impl) {
  opts_.name = name_.c_str();
  if (opts_.max_order > kMaxOrderLimit) opts_.max_order = kMaxOrderLimit;
  if (!src_) {
    impl_->owned_src = make_anon_source();
    src_ = impl_->owned_src.get();
  }
  if (global_) global_->set_counts_pages(true);
  // Batches between a thread stack and the exchange are sized by bytes
  // (thread_batch_bytes, 512 KiB by default; at most 32 vectors, at least
  // one): one CAS moves 32 vectors of 4 KiB or one of 512 KiB and up. A
  // stack holds two batches, or one vector where a single vector is a batch
  // of 2 MiB or more (so at the default an idle thread hides at most
  // ~15 MiB per pool from purge until its next operation flushes it).
  if (opts_.thread_batch_bytes == 0) opts_.thread_batch_bytes = PoolOptions::kDefaultThreadBatchBytes;
  opts_.thread_batch_bytes = std::max(opts_.thread_batch_bytes & ~(kPageSize - 1), kPageSize);
  for (unsigned k = 0; k < kOrders; ++k) {
    size_t per = opts_.thread_batch_bytes >> (k + kPageShift);
    uint32_t b = static_cast<uint32_t>(std::clamp<size_t>(per, 1, kBatchMax));  // a node holds kBatchMax
    impl_->batch[k] = b;
    impl_->cap[k] = b == 1 && k >= 9 ? 1 : 2 * b;
  }
  impl_->tick_ms = opts_.purge_interval_ms > 0 ? std::max<long>(1, opts_.purge_interval_ms / kTicksPerInterval) : 1000;
  Registry& r = registry();
  id_ = r.next_id.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lk(r.mu);
    r.pools[id_] = this;
    if (~r.used_slots != 0) {
      tls_idx_ = static_cast<unsigned>(__builtin_ctzll(~r.used_slots));
      r.used_slots |= uint64_t{1} << tls_idx_;
      has_tls_ = true;
    }
  }
  if (opts_.purge_interval_ms > 0) CacheEngine::start_thread(*this);
  if (opts_.watch_pressure) watch_pressure();
}

Pool::~Pool() {
#if defined(SGV_CHECK_INVARIANTS)
  // Every vector is back by now: the pool is quiescent.
  if (!check_invariants()) {
    std::fprintf(stderr, "sgv: pool %s: invariants broken at destruction\n", name_.c_str());
    std::abort();
  }
#endif
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lk(r.mu);
    r.pools.erase(id_);
    if (has_tls_) r.used_slots &= ~(uint64_t{1} << tls_idx_);
  }
  {
    std::lock_guard<std::mutex> lk(impl_->thr_mu);
    if (impl_->thr.joinable()) {
      uint64_t one = 1;
      [[maybe_unused]] ssize_t n = write(impl_->stop_efd, &one, sizeof one);
      impl_->thr.join();
    }
    if (impl_->stop_efd >= 0) close(impl_->stop_efd);
    int pfd = impl_->pressure_fd.exchange(-1);
    if (pfd >= 0) close(pfd);
  }
  // Pending waiters learn the pool is gone.
  for (;;) {
    Waiter* w;
    {
      std::lock_guard<std::mutex> lk(impl_->wmu);
      w = impl_->whead;
      if (!w) break;
      impl_->whead = w->next_;
      if (!impl_->whead) impl_->wtail = nullptr;
      w->queued_ = false;
      w->next_ = w->prev_ = nullptr;
      waiters_.fetch_sub(1);
    }
    w->cb(w, nullptr, -ECANCELED);
  }
  // Other threads' caches are unreachable now (no longer registered).
  std::vector<ThreadCache*> tcs;
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    tcs.swap(impl_->tcs);
  }
  for (ThreadCache* tc : tcs) {
    std::lock_guard<std::mutex> lk(impl_->mu);
    for (unsigned k = 0; k <= opts_.max_order; ++k) {
      ThreadCache::Order& o = tc->ord[k];
      uint64_t hits = o.hits();  // before the stack empties (hits = in + moved - n)
      for (uint32_t i = 0; i < o.n.load(std::memory_order_relaxed); ++i) CacheOps::list_push_back(impl_->shared[k], o.stack[i]);
      o.n.store(0);
      impl_->dead_hits[k] += hits;
      impl_->dead_out[k] += hits + tc->out_miss[k].get();
      impl_->dead_in[k] += o.in.get();
    }
    delete tc;
  }
  CacheEngine::drop_idle(*this, SIZE_MAX, 0, false);
  assert(CacheEngine::cached_pages(*this) == 0);
  for (unsigned k = 0; k <= opts_.max_order; ++k)
    assert(impl_->allocated_vecs[k].load() == 0 && "pool destroyed with vectors in use");
  while (Vec* h = impl_->chain_free) {
    impl_->chain_free = h->next_;
    delete[] h->segs_;
    delete[] h->seg_off_;
    delete h;
  }
  // Every batch node is on the free list now: the exchanges were drained
  // (drop_idle) and the thread caches, with their spares, deleted.
  XBatch* b = impl_->free_batches.exchange(nullptr, std::memory_order_acquire);
  while (b) {
    XBatch* next = b->next;
    delete b;
    b = next;
  }
  if (global_) global_->set_counts_pages(false);
}

bool Pool::check_invariants() const {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lk(im.mu);
  for (unsigned k = 0; k <= opts_.max_order; ++k) {
    uint64_t cached = 0, walked = 0;
    for (Vec* v = im.shared[k].head; v; v = v->next_) {
      if (v->order_ != static_cast<int>(k) || v->pages_ != (size_t{1} << k) || v->nsegs_ != v->full_nsegs_) return false;
      // Cached means uncharged, and the inline release's one byte agrees.
      if (v->kind_ != kKindCached || v->charged_ != nullptr || v->plain_ != 1) return false;
      ++walked;
    }
    if (walked != im.shared[k].n) return false;
    cached = walked + im.xchg[k].n.load(std::memory_order_relaxed);
    uint64_t out = im.dead_out[k], in = im.dead_in[k];
    for (ThreadCache* tc : im.tcs) {
      const ThreadCache::Order& o = tc->ord[k];
      uint32_t n = o.n.load(std::memory_order_relaxed);
      if (n > im.cap[k]) return false;
      cached += n;
      out += o.hits() + tc->out_miss[k].get();
      in += o.in.get();
    }
    if (in > out) return false;
    // cached + in_use == allocated
    if (cached + (out - in) != im.allocated_vecs[k].load(std::memory_order_relaxed)) return false;
  }
  if (global_) {
    uint64_t pages = im.oneshot_pages.load(std::memory_order_relaxed);
    for (unsigned k = 0; k <= opts_.max_order; ++k) pages += im.allocated_vecs[k].load(std::memory_order_relaxed) << k;
    // The global budget counts every page this pool holds (and other pools').
    if (global_->used() < (pages << kPageShift)) return false;
    if (!global_->check_invariants()) return false;
  }
  return true;
}

}  // namespace sgv
