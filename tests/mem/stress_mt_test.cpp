// stress_mt_test.cpp - seeded multi-threaded stress of the SGV cache: threads
// allocate every size class (chains included) with every flag, charge
// session budgets under LUN budgets under a global watermark, hand vectors to
// each other to free (and to hold an extra reference, like a zero-copy send),
// and verify no page is ever handed to two holders. At each phase boundary
// all threads stop and the pool and budget invariants are checked.
// Bounded by a fixed number of operations (a few seconds under TSan).
#include <gtest/gtest.h>

#include <barrier>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "cache_testing.hpp"
#include "sgv/cache.hpp"

namespace sgv {
namespace {

constexpr int kThreads = 4;
constexpr int kPhases = 12;
#if defined(SGV_TSAN) || defined(SGV_ASAN)
constexpr int kOpsPerPhase = 150;
#else
constexpr int kOpsPerPhase = 600;
#endif

struct Held {
  Vec* v;
  Budget* b;
  uint32_t tag;
};

// Every segment starts and ends with the holder's tag; a page handed to two
// holders at once breaks this.
void stamp(Vec* v, uint32_t tag) {
  for (const Seg& s : v->segs()) {
    std::memcpy(s.addr, &tag, std::min(sizeof tag, s.len));
    if (s.len >= 2 * sizeof tag) std::memcpy(static_cast<char*>(s.addr) + s.len - sizeof tag, &tag, sizeof tag);
  }
}
bool intact(Vec* v, uint32_t tag) {
  for (const Seg& s : v->segs()) {
    uint32_t a = 0, b = tag;
    std::memcpy(&a, s.addr, std::min(sizeof a, s.len));
    if (s.len >= 2 * sizeof tag) std::memcpy(&b, static_cast<char*>(s.addr) + s.len - sizeof tag, sizeof b);
    if (s.len >= sizeof tag && (a != tag || b != tag)) return false;
  }
  return true;
}

class StressTest : public ::testing::TestWithParam<int> {};

TEST_P(StressTest, InvariantsHoldThroughout) {
  const unsigned seed = 0x5eed0000u + static_cast<unsigned>(GetParam());
  Budget global(nullptr, 96u << 20, 0, "global");
  Budget lun0(&global, 48u << 20, 8u << 20, "lun0");
  Budget lun1(&global, 48u << 20, 0, "lun1");
  std::vector<std::unique_ptr<Budget>> sessions;
  for (int i = 0; i < kThreads; ++i)
    sessions.push_back(std::make_unique<Budget>(i % 2 ? &lun1 : &lun0, 24u << 20, i == 0 ? (2u << 20) : 0));
  PoolOptions o;
  o.name = "stress";
  o.clustering = static_cast<Clustering>(GetParam() % 3);
  o.purge_interval_ms = 10;  // the maintenance thread runs concurrently
  auto src = GetParam() % 2 ? make_memfd_source("stress") : make_anon_source();
  o.pages = src.get();
  Pool pool(o, &global);

  std::mutex xmu;                 // guards exchange
  std::vector<Held> exchange;     // vectors handed to another thread to free
  std::vector<std::vector<Held>> held(kThreads);
  std::atomic<bool> broken{false};
  std::atomic<uint64_t> ok_allocs{0}, refusals{0};

  auto check = [&]() noexcept {
    if (!pool.check_invariants() || !global.check_invariants()) broken = true;
    // Budgets equal what their holders were charged.
    std::vector<size_t> want(kThreads, 0);
    auto add = [&](const Held& h) {
      for (int i = 0; i < kThreads; ++i)
        if (h.b == sessions[i].get()) want[i] += h.v->pages() * kPageSize;
    };
    for (auto& hs : held)
      for (const Held& h : hs) add(h);
    for (const Held& h : exchange) add(h);
    for (int i = 0; i < kThreads; ++i)
      if (sessions[i]->used() != want[i]) broken = true;
  };
  std::barrier sync(kThreads, check);

  auto worker = [&](int t) {
    std::mt19937 rng(seed * 31 + static_cast<unsigned>(t));
    auto& mine = held[t];
    uint32_t next_tag = static_cast<uint32_t>(t) << 24;
    auto drop = [&](const Held& h) {
      if (!intact(h.v, h.tag)) broken = true;
      h.v->release();
    };
    for (int phase = 0; phase < kPhases; ++phase) {
      for (int op = 0; op < kOpsPerPhase; ++op) {
        unsigned r = rng() % 100;
        if (r < 50 || mine.empty()) {
          size_t bytes;
          unsigned pick = rng() % 100;
          if (pick < 60) bytes = 1 + rng() % (64 * 1024);
          else if (pick < 95) bytes = 1 + rng() % (2u << 20);
          else bytes = (4u << 20) + rng() % (6u << 20);  // a chain
          unsigned fl = 0, f = rng() % 20;
          if (f == 0) fl = kNoCache;
          else if (f == 1) fl = kCacheHitOnly;
          else if (f == 2) fl = kGetNew;
          Budget* b = rng() % 4 ? sessions[t].get() : nullptr;
          Vec* v = nullptr;
          int rc = pool.alloc(bytes, fl, b, &v);
          if (rc != 0) {
            if (rc != -ENOMEM) broken = true;
            refusals.fetch_add(1, std::memory_order_relaxed);
            continue;
          }
          ok_allocs.fetch_add(1, std::memory_order_relaxed);
          if (v->len() != bytes || total_len(v->segs()) != bytes) broken = true;
          Held h{v, b, ++next_tag};
          stamp(v, h.tag);
          mine.push_back(h);
        } else if (r < 75) {
          size_t i = rng() % mine.size();
          drop(mine[i]);
          mine[i] = mine.back();
          mine.pop_back();
        } else if (r < 90) {
          // Hand to another thread; sometimes with an extra hold it drops too.
          size_t i = rng() % mine.size();
          Held h = mine[i];
          mine[i] = mine.back();
          mine.pop_back();
          if (rng() % 2) {
            h.v->ref();
            h.v->release();
          }
          std::lock_guard<std::mutex> lk(xmu);
          exchange.push_back(h);
        } else {
          Held h{};
          {
            std::lock_guard<std::mutex> lk(xmu);
            if (exchange.empty()) continue;
            h = exchange.back();
            exchange.pop_back();
          }
          drop(h);
        }
        while (mine.size() > 12) {
          drop(mine.front());
          mine.erase(mine.begin());
        }
      }
      sync.arrive_and_wait();
    }
    for (const Held& h : mine) drop(h);
    mine.clear();
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) ts.emplace_back(worker, t);
  for (auto& t : ts) t.join();
  for (const Held& h : exchange) {
    if (!intact(h.v, h.tag)) broken = true;
    h.v->release();
  }
  exchange.clear();
  EXPECT_FALSE(broken.load());
  EXPECT_GT(ok_allocs.load(), 0u);
  EXPECT_TRUE(pool.check_invariants());
  for (auto& s : sessions) EXPECT_EQ(s->used(), 0u);
  PoolStats st = pool.stats();
  EXPECT_EQ(st.in_use_bytes, 0u);
  EXPECT_GT(st.total.hits, 0u);
  pool.shrink(SIZE_MAX);
  EXPECT_EQ(pool.stats().allocated_bytes, global.used());
  sessions.clear();
}

INSTANTIATE_TEST_SUITE_P(Seeds, StressTest, ::testing::Values(0, 1, 2, 3));

// Per-thread hits are not counted on the hit path but derived from the
// stack's pushes, refills and drains (ThreadCache::Order::hits): every
// allocation is still exactly one hit or one miss and every release one
// free, through frees on another thread (batches to the exchange), refills
// from the exchange and the shared pool, a flush asked by another thread,
// and a thread's exit.
TEST(CacheCountsMt, HitsPlusMissesEqualAllocationsAcrossThreads) {
  Pool p(testing::quiet_opts());
  constexpr int kN = 300;
  std::vector<Vec*> held;
  uint64_t allocs = 0, frees = 0;
  auto take = [&](int n, size_t bytes) {
    for (int i = 0; i < n; ++i) {
      Vec* v = nullptr;
      ASSERT_EQ(p.alloc(bytes, 0, nullptr, &v), 0);
      held.push_back(v);
      ++allocs;
    }
  };
  for (int round = 0; round < 3; ++round) {
    take(kN, 4096);
    take(kN / 10, 65536);
    // Another thread frees them all (its stack overflows to the exchange)
    // and exits (its cache flushes to the shared pool).
    std::thread([&] {
      for (Vec* v : held) v->release();
    }).join();
    frees += held.size();
    held.clear();
    // A flush of this thread's cache asked from elsewhere, then a pass
    // of hits: refills from the exchange and the shared pool.
    std::thread([&] { p.maintain(); }).join();
    take(kN, 4096);
    for (Vec* v : held) v->release();
    frees += held.size();
    held.clear();
  }
  PoolStats st = p.stats();
  EXPECT_EQ(st.total.hits + st.total.misses, allocs);
  EXPECT_GT(st.total.hits, allocs / 2);  // later rounds reuse what earlier ones built
  EXPECT_EQ(st.total.frees, frees);
  EXPECT_EQ(st.total.in_use_pages, 0u);
  EXPECT_TRUE(p.check_invariants());
}

}  // namespace
}  // namespace sgv
