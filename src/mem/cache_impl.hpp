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

using detail::kKindCached;
using detail::kKindChain;
using detail::kKindEmpty;
using detail::kKindOneShot;
using detail::kOrders;

inline constexpr unsigned kAllFlags = kNoCache | kCacheHitOnly | kReturnEmptyOnFail | kGetNew;

// A batch of whole cached vectors of one order in transit between thread
// caches. The vectors travel as pointers in the node, not linked through
// their own headers, so handing a batch over writes nothing in the vectors
// (see Vec: their first line stays shared between the cores).
inline constexpr uint32_t kBatchMax = 32;
struct alignas(64) XBatch {
  XBatch* next = nullptr;  // exchange stack / free-node list link
  uint32_t n = 0;          // vectors in v[0..n)
  uint64_t stamp = 0;      // pool epoch when the batch left a thread stack
  Vec* v[kBatchMax];
};

// The per-order lock-free exchange between thread caches: two stacks of
// batch nodes. head takes the batches full thread stacks hand over; rest
// holds what a taker took but had no room for. Push (CAS) and take-all
// (exchange) only, so there is no ABA. A taker drains head first (the
// newest batches), then rest, and parks its surplus chain in rest with one
// CAS when rest is empty -- so a surplus is not walked and pushed back on
// every take (it was, when surplus and head shared one stack: with ~60
// surplus batches of 256 KiB vectors, a walk of 60 nodes per 4 allocations).
// n counts the vectors in both: raised before a push is published and
// lowered after a take, so it never undercounts; exact at quiescence.
struct alignas(64) Exchange {
  std::atomic<XBatch*> head{nullptr};
  std::atomic<XBatch*> rest{nullptr};
  std::atomic<uint64_t> n{0};
};

struct Pool::Impl {
  std::unique_ptr<PageSource> owned_src;
  uint32_t cap[kOrders] = {};
  uint32_t batch[kOrders] = {};
  Exchange xchg[kOrders];
  // Empty batch nodes: push (CAS) and take-all, like the exchange. A node
  // is always in exactly one place: an exchange, this list, a thread
  // cache's spare list, or the hands of the thread moving it.
  alignas(64) std::atomic<XBatch*> free_batches{nullptr};
  long tick_ms = 0;  // maintenance period (purge_interval / 4)

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
  static void detach(Pool& p, ThreadCache* tc);  // thread exit
  static void flush_tc(Pool& p, ThreadCache* tc);
  // The owner's answer to a non-zero gate: flush if asked, drop the waiter
  // bit if no waiter is left.
  // Then, if gate is clear, reopen the hit paths (restore every lim).
  static void settle_gate(Pool& p, ThreadCache* tc);
  // Raise a gate bit of tc and close its hit paths (zero every lim).
  static void raise_gate(Pool& p, ThreadCache* tc, uint8_t bit);
  // The slow paths' test: is anything asking the owner to settle?
  static bool gate_pending(ThreadCache* tc, int k) {
    return tc->gate.load(std::memory_order_relaxed) != 0 || tc->ord[k].lim.load(std::memory_order_relaxed) == 0;
  }
  // Move everything in the exchange to the shared lists (caller holds mu).
  static void drain_exchange(Pool& p);
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
