// sgv/cache.hpp - the SGV cache: order-based caches of scatter-gather vectors
// that keep their pages mapped and faulted-in between commands.
//
// A request of N OS pages is served by a vector of order ceil(log2 N),
// trimmed so its segments total exactly the requested bytes (restored on
// release; a request of exactly 2^k pages needs neither). Requests above the
// largest order are chains of max-order vectors presented as one segment
// list. Each thread keeps a small per-order stack of vectors over a shared
// per-order pool, found through a direct per-thread slot indexed by the
// pool's slot number (no search). The hit paths (alloc without flags or
// budget, release of the last holder) are inline below: an array pop or push
// and a few plain stores -- no lock, no atomic RMW. Everything else is out of
// line.
//
// Cross-thread frees: a vector freed on another thread lands in that thread's
// stack; a full stack hands its oldest batch (sized by bytes: 32 vectors of
// 4 KiB, one of 1 MiB) to a per-order lock-free exchange (one CAS per batch),
// and an empty stack takes batches back from it (one exchange). The pool
// mutex is taken only for misses, flushes, purge and shrink.
//
// Idle purge: a maintenance thread ticks every purge_interval / 4; a vector
// idle for (interval, 1.5 x interval] goes back to the page source. Idle
// time is stamped when a vector leaves a thread stack (flush, batch to the
// exchange), not on release, so the hit path does not touch it. Thread
// stacks are bounded (two batches of thread_batch_bytes per order: ~15 MiB
// per thread per pool at the default), and every tick,
// shrink and pressure event asks each of them to flush to the shared pool on
// its owner's next operation (a flag, no lock on the fast path), so only a
// thread that never touches the pool again keeps its few vectors until it
// exits (thread exit flushes them). Purge and shrink drain the exchange
// first.
//
// Invariant (check_invariants, at quiescence):
//   cached_pages + in_use_pages == allocated_pages   (per pool and per order)
//   every budget's used == sum of the charges of the vectors it granted
//
// Errors: 0 or a negative errno; on failure nothing is held.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "sgv/budget.hpp"
#include "sgv/page_source.hpp"
#include "sgv/seg.hpp"
#include "sgv/sgv.h"

namespace sgv {

class Pool;
struct ThreadCache;
struct XBatch;  // a batch in transit between thread caches (cache_impl.hpp)

enum class Clustering : int { none = 0, tail = 1, full = 2 };

// Allocation flags (same values as the C API's SGV_*).
inline constexpr unsigned kNoCache = SGV_NO_CACHE;                      // one-shot vector
inline constexpr unsigned kCacheHitOnly = SGV_CACHE_HIT_ONLY;           // never build on a miss
inline constexpr unsigned kReturnEmptyOnFail = SGV_RETURN_EMPTY_ON_FAIL;  // empty Vec instead of -ENOMEM
inline constexpr unsigned kGetNew = SGV_GET_NEW;                        // always build (warm-up)

inline constexpr unsigned kMaxOrderLimit = 15;

namespace detail {
inline constexpr unsigned kOrders = kMaxOrderLimit + 1;
// Pools that can have per-thread caches at once; later pools work from the
// shared pool only.
inline constexpr unsigned kTlsSlots = 64;
enum VecKind : uint8_t { kKindCached = 0, kKindOneShot = 1, kKindChain = 2, kKindEmpty = 3 };

// A counter with one writer (the owning thread) and any number of readers:
// relaxed load + store, so the hit path pays no locked instruction.
struct OwnedCounter {
  std::atomic<uint64_t> v{0};
  void bump() {
#if defined(__x86_64__) && !defined(SGV_TSAN)
    // One plain `add` to memory (the load + store below is three
    // instructions plus an address computation on the hit path). An aligned
    // 8-byte store is single-copy atomic on x86, so relaxed readers see the
    // old or the new value, as with the store; only the owner writes, so no
    // lock prefix. TSan builds keep the atomic form so it sees the accesses.
    static_assert(sizeof(v) == sizeof(uint64_t) && alignof(decltype(v)) == alignof(uint64_t));
    asm volatile("addq $1, %0" : "+m"(*reinterpret_cast<uint64_t*>(&v)));
#else
    v.store(v.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
#endif
  }
  void add(uint64_t d) { v.store(v.load(std::memory_order_relaxed) + d, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

// Returns p, but hides where it came from, so the compiler addresses every
// field of *p from this one register instead of re-deriving base + index *
// size + offset per field (GCC recomputed the index shift for the second and
// third field of a stack order on the hit paths).
template <class T>
[[gnu::always_inline]] inline T* one_base(T* p) {
  asm("" : "+r"(p));
  return p;
}

// This thread's cache of each pool, at the pool's slot number. id[] names
// the pool the slot was filled for (ids are never reused), so a slot left by
// a destroyed pool never matches its successor. Constant-initialized: the
// inline hit path reads it without a TLS init call. Thread exit flushes the
// caches (an object in cache.cpp, armed when a slot is first filled).
struct TlsSlots {
  uint64_t id[kTlsSlots];
  ThreadCache* tc[kTlsSlots];
};
extern thread_local constinit TlsSlots t_slots;
}  // namespace detail

struct PoolOptions {
  const char* name = "sgv";
  Clustering clustering = Clustering::none;
  long purge_interval_ms = 60000;  // idle vectors older than this are purged; < 0 disables
  unsigned max_order = 10;         // 2^max_order pages per cached vector (<= kMaxOrderLimit)
  PageSource* pages = nullptr;     // nullptr: the pool owns an anonymous mmap source
  size_t low_watermark_bytes = 0;  // memory pressure shrinks cached pages down to this
  bool watch_pressure = false;     // start a PSI / cgroup memory.events watcher
  // Bytes per batch moved between a thread's cache and the shared exchange
  // (at most 32 vectors, at least one). A thread's stack holds two batches
  // per order, so this bounds what one thread keeps per pool (~15 MiB at
  // the default 512 KiB, ~60 MiB at 4 MiB), hidden from purge and shrink
  // until its owner's next operation. Larger batches make cross-thread frees of
  // large vectors cheaper: each hand-off costs a few cache-line transfers,
  // which a batch of two 256 KiB vectors pays per two commands (bench/
  // README.md: cycle/256K/2t 1.25x the floor at 512 KiB, ~1.03x at 4 MiB).
  // 0: the default. Rounded down to whole pages.
  size_t thread_batch_bytes = kDefaultThreadBatchBytes;
  static constexpr size_t kDefaultThreadBatchBytes = size_t{512} << 10;
};

// A scatter-gather vector. Obtained from Pool::alloc, given back by release()
// (or Pool::free). ref() adds a holder (zero-copy send, in-flight io_uring op);
// the last release returns it to the cache.
class alignas(64) Vec {  // see the first line's fields below
 public:
  SegSpan segs() const { return SegSpan(segs_, nsegs_); }
  size_t len() const { return len_; }
  size_t nsegs() const { return nsegs_; }
  // File backing of segment i (memfd source): returns the fd and sets
  // *offset, or -1 when the pages are not backed by a shareable file.
  int seg_fd(size_t i, uint64_t* offset) const;
  // Order of the vector (-1 for chains above max order and one-shot vectors
  // larger than max order; 0 for empty vectors).
  int order() const { return order_; }
  bool empty() const { return pages_ == 0; }
  // Pages this vector holds (what budgets are charged for).
  size_t pages() const { return pages_; }
  Pool* pool() const { return pool_; }

  // For a vector returned empty (kReturnEmptyOnFail): the caller supplies the
  // pages as a segment list it owns and keeps alive until the last release.
  void set_external(const Seg* segs, size_t n);

  void ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  // Budget: a few ns when this is the last holder and the vector goes back to
  // the thread's stack (no atomic RMW when refs == 1 and no budget).
  inline void release();

 private:
  friend class Pool;
  friend struct ThreadCache;
  friend struct CacheEngine;
  friend struct CacheOps;
  friend struct VecOps;
  friend struct Builder;
  Vec() = default;
  [[gnu::noinline]] void release_shared();  // refs > 1: the RMW, then maybe recycle
  void set_kind(uint8_t k) {
    kind_ = k;
    plain_ = k == detail::kKindCached && charged_ == nullptr;
  }
  void set_pages(size_t n) {
    pages_ = n;
    full_len_ = n << kPageShift;
  }
  void set_charged(Budget* b) {
    charged_ = b;
    plain_ = kind_ == detail::kKindCached && b == nullptr;
  }

  // First cache line: every field the hit paths and a segment walk read,
  // and nothing they write. A vector allocated on one thread and released
  // on another (network thread, completion thread) is then only read by
  // the releasing side and the next allocating one, so its lines stay
  // shared between the cores instead of moving on every command: the
  // alloc hit writes nothing here (refs_ is already 1, see below), a
  // release restores only trimmed vectors, and batches move between
  // threads in separate nodes (cache_impl.hpp), not through links here.
  Seg* segs_ = nullptr;     // view: nsegs_ entries, last one trimmed
  size_t nsegs_ = 0;
  size_t len_ = 0;
  size_t full_len_ = 0;     // pages_ << kPageShift: restore's one compare
  Pool* pool_ = nullptr;
  // refs_: holders. 1 while the vector is cached, too (the last release
  // leaves it at 1), so the alloc hit does not store it. The acquire load /
  // acq_rel fetch_sub in release() pair with each other so the last holder
  // sees every holder's writes.
  std::atomic<uint32_t> refs_{0};
  int order_ = 0;
  uint32_t full_nsegs_ = 0;    // segments when untrimmed
  uint8_t kind_ = 0;           // cached / one-shot / chain / empty
  // 1 iff kind_ == cached and charged_ == nullptr: the one byte the inline
  // release tests. Every write of kind_ or charged_ goes through
  // set_kind / set_charged, which keep it so.
  uint8_t plain_ = 0;
  // Private to the pool (construction, trim and restore, links).
  static constexpr uint32_t kInlineSegs = 2;
  Seg inline_segs_[kInlineSegs] = {};  // segs_ of a vector of at most 2 segments
  size_t pages_ = 0;            // written only through set_pages
  Budget* charged_ = nullptr;  // budget charged for pages_ pages
  uint32_t nruns_ = 0;
  size_t trim_idx_ = 0;        // segment whose length was cut
  size_t trim_orig_ = 0;       // its untrimmed length
  PageRun* runs_ = nullptr;    // what to give back to the page source
  uint64_t* seg_off_ = nullptr;  // file offset per segment (memfd), or null
  int fd_ = -1;
  uint64_t stamp_ = 0;         // pool epoch when it left a thread stack (idle purge)
  Vec* next_ = nullptr;        // shared-list / chain links
  Vec* prev_ = nullptr;        // shared list
  Vec* chain_ = nullptr;       // chains: first member vector
  size_t seg_cap_ = 0;         // chains: capacity of segs_
};

// One thread's cache for one pool: a bounded array stack per order.
// Invariant: 0 <= n <= the pool's cap for the order; stack[0..n) are whole
// (untrimmed, poisoned) cached vectors of that order. Only the owner thread
// touches the stacks; other threads read n and the counters (relaxed) for
// statistics, and raise bits of gate (raise_gate, which also zeroes lim).
// Cache-line aligned (as are its stacks), so that the owner's stores to n
// and the counters never share a line with another thread's data.
struct alignas(64) ThreadCache {
  // gate bits. Any bit sends the owner's next operation out of line
  // (settle_gate in cache.cpp). The hit paths do not read gate: whoever
  // raises a bit then zeroes every order's lim, which both hit paths
  // compare with anyway, and the owner restores the limits only when it
  // then sees gate clear (raise_gate / settle_gate, all seq_cst).
  static constexpr uint8_t kGateFlush = 1;    // flush the stacks to the shared pool
  static constexpr uint8_t kGateWaiters = 2;  // the pool has (or had) waiters: offer on release
  Pool* pool = nullptr;
  // kGateFlush: set (raise_gate) by maintain()/shrink()/pressure on any thread;
  // the owner clears it (acquire) and flushes everything to the shared pool,
  // where purge and shrink can reach it. kGateWaiters: set by alloc_wait
  // after counting its waiter, cleared by the owner only when it then sees
  // no waiter (seq_cst on both sides, so a new waiter is never missed).
  std::atomic<uint8_t> gate{0};
  struct Order {  // 32 bytes: the hit path indexes it with a shift
    Vec** stack = nullptr;
    // The pool's capacity for this order, or 0 while gate is (or may be)
    // raised. Alloc hits when n - 1 < lim, release when n < lim: one
    // compare each covers empty/full stack and gate.
    std::atomic<uint32_t> lim{0};
    std::atomic<uint32_t> n{0};
    // Vectors moved into the stack by refills minus those moved out by
    // drains (modulo 2^64), counted on the slow paths only. Every other
    // push is a release (in) and every pop a hit, so hits need no counter
    // of their own on the hit path: hits = in + moved - n.
    detail::OwnedCounter moved;
    detail::OwnedCounter in;  // cacheable vectors given back
    // Allocations served from this stack. Exact at quiescence; a reader
    // racing the owner may see it off by one (never below 0).
    uint64_t hits() const {
      int64_t h = static_cast<int64_t>(in.get() + moved.get() - n.load(std::memory_order_relaxed));
      return h > 0 ? static_cast<uint64_t>(h) : 0;
    }
  } ord[detail::kOrders];
  // Vectors built and handed out (slow path): out = hits() + out_miss.
  detail::OwnedCounter out_miss[detail::kOrders];
  // Empty batch nodes this thread keeps for its next hand-off to the
  // exchange (owner only; see cache_impl.hpp).
  XBatch* spare = nullptr;
  ThreadCache() = default;
  ThreadCache(const ThreadCache&) = delete;
  ThreadCache& operator=(const ThreadCache&) = delete;
  ~ThreadCache();  // frees the stacks and the spare nodes
};

// A waiting allocation, embedded in the caller's memory (no allocation).
// Fill cb/ctx, then Pool::alloc_wait. Waiters are FIFO per budget: one
// refused by its session or LUN budget holds back only later waiters under
// that budget; one refused by the global watermark holds back all. To wake a
// reactor instead of running work in the freeing thread, the callback posts
// to an eventfd or ring and returns. cb is called exactly once unless
// cancel() returns true: from whichever thread freed the memory, with the
// granted vector (status 0) -- or from Pool destruction with -ECANCELED and
// vec == nullptr.
struct Waiter {
  using Callback = void (*)(Waiter* w, Vec* vec, int status);
  Callback cb = nullptr;
  void* ctx = nullptr;

  // Private to the pool (guarded by the pool's waiter lock).
  Waiter* next_ = nullptr;
  Waiter* prev_ = nullptr;
  size_t bytes_ = 0;
  unsigned flags_ = 0;
  Budget* charge_ = nullptr;
  uint64_t enq_ns_ = 0;
  bool queued_ = false;
};

struct OrderStats {
  uint64_t hits = 0;
  uint64_t misses = 0;         // vectors built from the page source
  uint64_t frees = 0;
  uint64_t cached_vecs = 0;
  uint64_t cached_pages = 0;
  uint64_t in_use_pages = 0;
  uint64_t allocated_pages = 0;
  uint64_t built_segs = 0;     // segments over all vectors built (avg = built_segs / misses)
  uint64_t purged = 0;         // vectors purged idle
  uint64_t shrunk = 0;         // vectors dropped by shrink / pressure / watermark
  uint64_t watermark_refusals = 0;  // misses the global budget refused
  uint64_t waits = 0;               // waiters queued for this order
  uint64_t wait_ns = 0;             // their total time from queue to grant
};

struct PoolStats {
  std::string name;
  unsigned max_order = 0;
  OrderStats order[kMaxOrderLimit + 1];
  OrderStats total;               // sum over orders
  uint64_t chains = 0;            // requests above max order
  uint64_t one_shot = 0;          // kNoCache allocations
  uint64_t empty_returns = 0;     // kReturnEmptyOnFail returns
  uint64_t watermark_refusals = 0;  // global budget refused a miss
  uint64_t budget_refusals = 0;     // charge budget refused
  uint64_t source_failures = 0;     // page source returned an error
  uint64_t waits = 0;               // waiters queued
  uint64_t wait_ns = 0;             // total time from queue to grant
  uint64_t pressure_events = 0;
  size_t cached_bytes = 0;
  size_t in_use_bytes = 0;
  size_t allocated_bytes = 0;
  double segs_per_vec = 0;        // average over vectors built
};

class Pool {
 public:
  // global may be null (no high watermark). Starts the maintenance thread
  // (purge and pressure) when purge_interval_ms > 0 or watch_pressure.
  explicit Pool(const PoolOptions& opts, Budget* global = nullptr);
  // Every vector must have been released. Pending waiters get -ECANCELED.
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Allocate a vector of exactly `bytes` bytes (segments total `bytes`),
  // charging its pages to `charge` (and its ancestors). Returns 0, -EINVAL
  // (bytes == 0, unknown flags) or -ENOMEM (budget, watermark, page source,
  // or a miss under kCacheHitOnly); on failure nothing is held, except that
  // kReturnEmptyOnFail turns a failure into 0 with an empty vector.
  // Budget: a few ns for a same-thread hit without flags or budget (inline:
  // slot load, array pop, plain stores); a charged hit goes out of line and
  // adds one CAS per budget level.
  inline int alloc(size_t bytes, unsigned flags, Budget* charge, Vec** out);
  // Like alloc, but when refused by a budget or the watermark, queues *w
  // (FIFO) and returns -EINPROGRESS; w->cb later receives the vector, always
  // from another call (a release, maintain), never from inside alloc_wait.
  // Returns 0 with *out set when granted at once.
  int alloc_wait(size_t bytes, unsigned flags, Budget* charge, Waiter* w, Vec** out);
  // True if w was still queued and is now removed (its callback will not
  // run). False: the grant won the race and the callback runs or has run.
  bool cancel(Waiter* w);

  // Same as v->release().
  void free(Vec* v) { v->release(); }

  // Give up to `bytes` of idle cached vectors back to the page source (oldest
  // first). Returns bytes released.
  size_t shrink(size_t bytes);
  // What the pressure watcher does: shrink cached pages down to the low
  // watermark. Returns bytes released.
  size_t on_pressure();
  // Start the pressure watcher: PSI trigger on /proc/pressure/memory, else
  // cgroup v2 memory.events. 0, or a negative errno when neither is usable
  // (logged once); the pool works without it.
  int watch_pressure();
  // Run one maintenance pass now (purge idle vectors, re-offer memory to
  // waiters); the maintenance thread calls this every purge_interval/4.
  void maintain();

  PoolStats stats() const;
  // key=value lines: "hits=", "misses=", ... then "order<k>.<field>=".
  std::string dump_stats() const;
  // True when the invariants above hold; call at quiescence.
  bool check_invariants() const;

  const PoolOptions& options() const { return opts_; }
  PageSource* page_source() const { return src_; }
  Budget* global_budget() const { return global_; }
  unsigned max_order() const { return opts_.max_order; }

  // Order that serves `bytes` (ceil(log2 pages)), or -1 for 0 and above
  // max order.
  int order_for(size_t bytes) const {
    unsigned k = order_bits(bytes);
    return k <= opts_.max_order ? static_cast<int>(k) : -1;
  }
  // ceil(log2(pages)) for bytes > 0; >= 52 (above any max order) for 0.
  // Computed as the highest set bit of 2 * ((bytes - 1) >> kPageShift) + 1
  // (with the bit below folded in, which cannot change the highest one):
  // equal to bit_width((bytes - 1) >> kPageShift), but the operand is never
  // 0, so it is one `bsr` without the zero test bit_width needs.
  static unsigned order_bits(size_t bytes) {
    return static_cast<unsigned>(std::bit_width(((bytes - 1) >> (kPageShift - 1)) | 1) - 1);
  }

 private:
  friend class Vec;
  friend struct ThreadCache;
  friend struct CacheEngine;
  friend struct CacheOps;
  friend struct VecOps;
  friend struct Builder;
  struct Impl;
  [[gnu::noinline]] void recycle_slow(Vec* v);
  [[gnu::noinline]] int alloc_slow(size_t bytes, unsigned flags, Budget* charge, Vec** out);
  [[gnu::noinline]] ThreadCache* attach_tc();
  ThreadCache* tcache() {
    detail::TlsSlots& s = detail::t_slots;
    if (__builtin_expect(s.id[tls_idx_] == id_, 1)) return s.tc[tls_idx_];
    return attach_tc();
  }
  // Cut a vector to `bytes` / give it back its full length, each only when
  // the length differs. A one-segment vector inline (its trim_idx_ and
  // trim_orig_ keep their restored values, 0 and the full length); longer
  // lists out of line. The hit paths and the slow paths both use these.
  static void trim(Vec* v, size_t bytes) {
    if (bytes == v->len_) return;
    if (__builtin_expect(v->full_nsegs_ == 1, 1)) {
      v->segs_[0].len = bytes;
      v->len_ = bytes;
    } else {
      trim_multi(v, bytes);
    }
  }
  static void restore(Vec* v) {
    if (v->len_ == v->full_len_) return;
    if (__builtin_expect(v->full_nsegs_ == 1, 1)) v->segs_[0].len = v->len_ = v->full_len_;
    else restore_multi(v);
  }
  static void trim_multi(Vec* v, size_t bytes);
  static void restore_multi(Vec* v);

  PoolOptions opts_;
  std::string name_;
  Budget* global_;
  PageSource* src_;
  uint64_t id_;
  unsigned tls_idx_ = 0;     // slot in detail::t_slots
  bool has_tls_ = false;     // false: more than kTlsSlots pools, no thread caches
  // waiters_: queued waiter count; its seq_cst inc in alloc_wait pairs with
  // the fence + seq_cst load of a charged release (Dekker: one of them sees
  // the other). The inline release sees waiters through the zeroed limits
  // of ThreadCache::Order (alloc_wait raises every cache's gate).
  std::atomic<uint32_t> waiters_{0};
  // epoch_: bumped by maintain(); read relaxed to stamp vectors leaving a
  // thread stack (flush, exchange) or going straight to the shared pool.
  std::atomic<uint64_t> epoch_{0};
  std::unique_ptr<Impl> impl_;
};

// ---- inline hit paths ----------------------------------------------------------
// Each failed check falls to one out-of-line call (a tail call), so the
// inlined code saves no registers. Sanitizer builds with ASan poison cached
// pages, which the slow paths do: there, everything goes out of line.

[[gnu::always_inline]] inline int Pool::alloc(size_t bytes, unsigned flags, Budget* charge, Vec** out) {
#if !defined(SGV_ASAN)
  if (__builtin_expect(flags == 0 && charge == nullptr && out != nullptr, 1)) {
    unsigned k = order_bits(bytes);
    detail::TlsSlots& s = detail::t_slots;
    // A matching slot always holds this thread's (non-null) cache.
    if (__builtin_expect(k <= opts_.max_order && s.id[tls_idx_] == id_, 1)) {
      if (k >= detail::kOrders) __builtin_unreachable();  // max_order <= kMaxOrderLimit
      ThreadCache* tc = s.tc[tls_idx_];
      ThreadCache::Order& o = *detail::one_base(&tc->ord[k]);
      uint32_t n = o.n.load(std::memory_order_relaxed);
      // n == 0 wraps to the largest value: fails like a raised gate (lim 0).
      if (__builtin_expect(n - 1 < o.lim.load(std::memory_order_relaxed), 1)) {
        Vec* v = o.stack[n - 1];
        o.n.store(n - 1, std::memory_order_relaxed);  // counts the hit (see Order::hits)
        trim(v, bytes);  // refs_ is 1 already: cached vectors keep it
        *out = v;
        return 0;
      }
    }
  }
#endif
  return alloc_slow(bytes, flags, charge, out);
}

[[gnu::always_inline]] inline void Vec::release() {
  // Sole holder: nobody can ref() concurrently, so skip the RMW. The acquire
  // load pairs with the acq_rel fetch_sub of a holder that released earlier.
  if (__builtin_expect(refs_.load(std::memory_order_acquire) != 1, 0)) return release_shared();
  Pool* p = pool_;
#if !defined(SGV_ASAN)
  detail::TlsSlots& s = detail::t_slots;
  if (__builtin_expect(plain_ != 0 && s.id[p->tls_idx_] == p->id_, 1)) {
    ThreadCache* tc = s.tc[p->tls_idx_];
    ThreadCache::Order& o = *detail::one_base(&tc->ord[order_]);
    uint32_t n = o.n.load(std::memory_order_relaxed);
    // Waiters and flush requests both zero lim (see ThreadCache).
    if (__builtin_expect(n < o.lim.load(std::memory_order_relaxed), 1)) {
      Pool::restore(this);
      o.stack[n] = this;
      o.n.store(n + 1, std::memory_order_relaxed);
      o.in.bump();
      return;
    }
  }
#endif
  return p->recycle_slow(this);
}

// Free functions (namespace sgv).
inline int alloc(Pool& p, size_t bytes, unsigned flags, Budget* charge, Vec** out) {
  return p.alloc(bytes, flags, charge, out);
}
inline void release(Vec* v) { v->release(); }

}  // namespace sgv
