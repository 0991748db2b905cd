// cache_impl.hpp - private state of the SGV cache shared by cache*.cpp,
// stats.cpp and pressure.cpp. Not installed; nothing outside src/mem sees it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "sgv/cache.hpp"

namespace sgv {

enum VecKind : uint8_t { kKindCached = 0, kKindOneShot = 1, kKindChain = 2, kKindEmpty = 3 };

inline constexpr unsigned kAllFlags = kNoCache | kCacheHitOnly | kReturnEmptyOnFail | kGetNew;
inline constexpr unsigned kOrders = kMaxOrderLimit + 1;

// A counter with one writer (the owning thread) and any number of readers:
// relaxed load + store, so the hit path pays no locked instruction.
struct OwnedCounter {
  std::atomic<uint64_t> v{0};
  void bump() { v.store(v.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

// One thread's cache for one pool: a bounded array stack per order.
// Invariant: 0 <= n <= cap; stack[0..n) are whole (untrimmed, poisoned)
// cached vectors of that order. Only the owner thread touches the stacks;
// other threads read n and the counters (relaxed) for statistics, and ask
// for a flush through flush_req.
struct ThreadCache {
  Pool* pool = nullptr;
  // Set (release) by maintain()/shrink() on any thread; the owner exchanges
  // it (acquire) on its next operation and flushes everything to the shared
  // pool, where purge and shrink can reach it.
  std::atomic<bool> flush_req{false};
  struct Order {
    Vec** stack = nullptr;
    uint32_t cap = 0;
    std::atomic<uint32_t> n{0};
    OwnedCounter hits;  // allocations served from the cache
    OwnedCounter out;   // cacheable vectors handed to callers
    OwnedCounter in;    // cacheable vectors given back
  } ord[kOrders];
  ~ThreadCache() {
    for (auto& o : ord) delete[] o.stack;
  }
};

struct Pool::Impl {
  std::unique_ptr<PageSource> owned_src;
  uint32_t cap[kOrders] = {};
  uint32_t batch[kOrders] = {};
  long tick_ms = 0;  // maintenance period (purge_interval / 2)

  // mu guards: shared[], tcs, dead_*, chain_free.
  std::mutex mu;
  struct Shared {
    Vec* head = nullptr;  // oldest released
    Vec* tail = nullptr;  // newest released (LIFO reuse)
    size_t n = 0;
  } shared[kOrders];
  std::vector<ThreadCache*> tcs;
  // Counters of exited threads and of callers without a thread cache.
  uint64_t dead_hits[kOrders] = {}, dead_out[kOrders] = {}, dead_in[kOrders] = {};
  Vec* chain_free = nullptr;  // chain headers kept for reuse (linked by next_)

  // Slow-path counters: relaxed RMW, statistics.
  std::atomic<uint64_t> allocated_vecs[kOrders] = {};  // built minus destroyed, per order
  std::atomic<uint64_t> misses[kOrders] = {};
  std::atomic<uint64_t> built_segs[kOrders] = {};
  std::atomic<uint64_t> purged[kOrders] = {};
  std::atomic<uint64_t> shrunk[kOrders] = {};
  std::atomic<uint64_t> wm_refusals[kOrders] = {};
  std::atomic<uint64_t> order_waits[kOrders] = {};
  std::atomic<uint64_t> order_wait_ns[kOrders] = {};
  std::atomic<uint64_t> oneshot_pages{0};  // pages of live one-shot vectors
  std::atomic<uint64_t> chains{0}, one_shot{0}, empty_returns{0}, watermark_refusals{0};
  std::atomic<uint64_t> budget_refusals{0}, source_failures{0}, waits{0}, wait_ns{0}, pressure_events{0};

  // Waiters: FIFO, guarded by wmu (lock order: wmu before mu).
  std::mutex wmu;
  Waiter* whead = nullptr;
  Waiter* wtail = nullptr;

  // Maintenance thread.
  std::mutex thr_mu;  // guards thr start/stop
  std::thread thr;
  int stop_efd = -1;
  // pressure_fd: written by watch_pressure(), read by the maintenance
  // thread each round (release/acquire).
  std::atomic<int> pressure_fd{-1};
  std::atomic<int> pressure_kind{0};  // 1 PSI, 2 cgroup memory.events
};

// The engine behind Pool and Vec (friend of both).
struct CacheEngine {
  static int alloc_slow(Pool& p, size_t bytes, unsigned flags, Budget* charge, Vec** out, ThreadCache* tc, int k);
  static void recycle_slow(Pool& p, Vec* v, ThreadCache* tc);
  static ThreadCache* attach(Pool& p);
  static void detach(Pool& p, ThreadCache* tc);  // thread exit
  static void flush_tc(Pool& p, ThreadCache* tc);
  // Flush `own` (the caller's cache) now and ask every other thread's cache
  // to flush on its owner's next operation.
  static void request_flushes(Pool& p, ThreadCache* own);
  static size_t drop_idle(Pool& p, size_t bytes, uint64_t min_age, bool purge);
  // Grant queued waiters in FIFO order while the head can be served. When
  // `self` is granted, its vector goes to *self_out instead of its callback.
  static void offer_waiters(Pool& p, Waiter* self = nullptr, Vec** self_out = nullptr);
  static void start_thread(Pool& p);
  static void thread_main(Pool* p);
  static uint64_t cached_pages(Pool& p);
  static Pool::Impl& impl(Pool& p) { return *p.impl_; }
};

}  // namespace sgv
