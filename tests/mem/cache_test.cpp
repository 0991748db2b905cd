// cache_test.cpp - unit tests of the SGV cache: order selection, trimming and
// restore, chains above max order, clustering, flags, refcounted release,
// purge, shrink, failure injection and the stats dump.
#include "sgv/cache.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "cache_testing.hpp"

namespace sgv {
namespace {

using testing::quiet_opts;
using testing::ScriptedSource;

void fill(Vec* v, unsigned char c) {
  for (const Seg& s : v->segs()) std::memset(s.addr, c, s.len);
}

TEST(CacheOrder, RequestMapsToCeilLog2Pages) {
  Pool p(quiet_opts());
  EXPECT_EQ(p.order_for(0), -1);
  EXPECT_EQ(p.order_for(1), 0);
  EXPECT_EQ(p.order_for(4096), 0);
  EXPECT_EQ(p.order_for(4097), 1);
  EXPECT_EQ(p.order_for(3 * 4096), 2);
  EXPECT_EQ(p.order_for(11 * 1024), 2);
  EXPECT_EQ(p.order_for(4u << 20), 10);
  EXPECT_EQ(p.order_for((4u << 20) + 1), -1);
  PoolOptions o = quiet_opts();
  o.max_order = 4;
  Pool q(o);
  EXPECT_EQ(q.order_for(16 * 4096), 4);
  EXPECT_EQ(q.order_for(17 * 4096), -1);
}

TEST(CacheTrim, ServesExactBytesAndRestoresOnFree) {
  Pool p(quiet_opts());
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(11 * 1024, 0, nullptr, &v), 0);
  EXPECT_EQ(v->len(), 11u * 1024);
  EXPECT_EQ(total_len(v->segs()), 11u * 1024);
  EXPECT_EQ(v->order(), 2);
  EXPECT_EQ(v->pages(), 4u);
  fill(v, 0xab);
  void* addr = v->segs()[0].addr;
  v->release();
  // The same vector serves a different size of the same order.
  Vec* w = nullptr;
  ASSERT_EQ(p.alloc(16 * 1024, 0, nullptr, &w), 0);
  EXPECT_EQ(w, v);
  EXPECT_EQ(w->segs()[0].addr, addr);
  EXPECT_EQ(total_len(w->segs()), 16u * 1024);
  w->release();
  Vec* x = nullptr;
  ASSERT_EQ(p.alloc(13000, 0, nullptr, &x), 0);
  EXPECT_EQ(total_len(x->segs()), 13000u);
  x->release();
  PoolStats s = p.stats();
  EXPECT_EQ(s.order[2].misses, 1u);
  EXPECT_EQ(s.order[2].hits, 2u);
  EXPECT_EQ(s.order[2].frees, 3u);
  EXPECT_TRUE(p.check_invariants());
}

TEST(CacheTrim, TrimsAcrossScatteredSegments) {
  // 8 scattered single pages, no clustering: a 5.5-page request ends inside
  // the sixth segment and gives back all eight on free.
  ScriptedSource src(64, {0, 2, 4, 6, 8, 10, 12, 14});
  Pool p(quiet_opts(&src));
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(5 * 4096 + 2048, 0, nullptr, &v), 0);
  ASSERT_EQ(v->nsegs(), 6u);
  EXPECT_EQ(v->segs()[5].len, 2048u);
  EXPECT_EQ(v->len(), 5u * 4096 + 2048);
  v->release();
  ASSERT_EQ(p.alloc(8 * 4096, 0, nullptr, &v), 0);
  EXPECT_EQ(v->nsegs(), 8u);
  for (const Seg& s : v->segs()) EXPECT_EQ(s.len, 4096u);
  v->release();
}

TEST(CacheChain, AboveMaxOrderChainsMaxOrderVectors) {
  Pool p(quiet_opts());
  Vec* v = nullptr;
  size_t bytes = (9u << 20) + 100;  // 2 x 4 MiB + a remainder of order 9... rounded
  ASSERT_EQ(p.alloc(bytes, 0, nullptr, &v), 0);
  EXPECT_EQ(v->len(), bytes);
  EXPECT_EQ(total_len(v->segs()), bytes);
  EXPECT_EQ(v->order(), -1);
  EXPECT_GE(v->nsegs(), 3u);
  fill(v, 0x5a);
  PoolStats s = p.stats();
  EXPECT_EQ(s.chains, 1u);
  EXPECT_EQ(s.order[10].in_use_pages, 2048u);
  EXPECT_EQ(s.order[9].in_use_pages, 512u);  // 1 MiB + 100 bytes -> 257 pages -> order 9
  v->release();
  s = p.stats();
  EXPECT_EQ(s.order[10].cached_vecs, 2u);
  EXPECT_EQ(s.total.in_use_pages, 0u);
  // The members are reused by the next chain.
  ASSERT_EQ(p.alloc(8u << 20, 0, nullptr, &v), 0);
  EXPECT_EQ(total_len(v->segs()), 8u << 20);
  v->release();
  EXPECT_EQ(p.stats().order[10].misses, 2u);
  EXPECT_TRUE(p.check_invariants());
}

TEST(CacheCluster, ModesMergeAdjacentRunsAsSpecified) {
  // Pages handed out as 0,1,2,5,4,3,9,8 (order 3 = 8 pages).
  std::vector<size_t> script = {0, 1, 2, 5, 4, 3, 9, 8};
  size_t expect[3] = {8, 5, 3};  // none; tail: [0-2][5][4][3][9][8]? see below
  // tail merges only with the previous segment: [0-2] [5] [4] [3] [9] [8] = 6
  expect[1] = 6;
  // full merges anywhere: [0-2] [3-5] [8-9] = 3
  for (int mode = 0; mode < 3; ++mode) {
    ScriptedSource src(64, script);
    PoolOptions o = quiet_opts(&src);
    o.clustering = static_cast<Clustering>(mode);
    Pool p(o);
    Vec* v = nullptr;
    ASSERT_EQ(p.alloc(8 * 4096, 0, nullptr, &v), 0);
    EXPECT_EQ(v->nsegs(), expect[mode]) << "mode " << mode;
    EXPECT_EQ(total_len(v->segs()), 8u * 4096);
    // Every page appears exactly once.
    std::set<char*> pages;
    for (const Seg& s : v->segs())
      for (size_t off = 0; off < s.len; off += 4096) pages.insert(static_cast<char*>(s.addr) + off);
    EXPECT_EQ(pages.size(), 8u);
    PoolStats st = p.stats();
    EXPECT_DOUBLE_EQ(st.segs_per_vec, static_cast<double>(expect[mode]));
    v->release();
    EXPECT_EQ(p.shrink(SIZE_MAX), 8u * 4096);
    EXPECT_EQ(src.out(), 0u);
  }
}

TEST(CacheCluster, AnonymousSourceGivesOneSegment) {
  Pool p(quiet_opts());
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(1u << 20, 0, nullptr, &v), 0);
  EXPECT_EQ(v->nsegs(), 1u);
  v->release();
}

TEST(CacheFlags, NoCacheIsOneShot) {
  ScriptedSource src(64, {});
  Pool p(quiet_opts(&src));
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(3 * 4096, kNoCache, nullptr, &v), 0);
  EXPECT_EQ(v->pages(), 3u);  // exact, not rounded to the order
  EXPECT_EQ(src.out(), 3u);
  v->release();
  EXPECT_EQ(src.out(), 0u);
  EXPECT_EQ(p.stats().one_shot, 1u);
  EXPECT_EQ(p.stats().total.cached_vecs, 0u);
}

TEST(CacheFlags, HitOnlyNeverBuilds) {
  Pool p(quiet_opts());
  Vec* v = nullptr;
  EXPECT_EQ(p.alloc(4096, kCacheHitOnly, nullptr, &v), -ENOMEM);
  ASSERT_EQ(p.alloc(4096, 0, nullptr, &v), 0);
  v->release();
  Vec* w = nullptr;
  ASSERT_EQ(p.alloc(4096, kCacheHitOnly, nullptr, &w), 0);
  EXPECT_EQ(w, v);
  w->release();
}

TEST(CacheFlags, GetNewAlwaysBuildsCacheableVectors) {
  Pool p(quiet_opts());
  Vec* a = nullptr;
  ASSERT_EQ(p.alloc(4096, 0, nullptr, &a), 0);
  a->release();
  Vec* b = nullptr;
  ASSERT_EQ(p.alloc(4096, kGetNew, nullptr, &b), 0);
  EXPECT_NE(a, b);
  b->release();
  PoolStats s = p.stats();
  EXPECT_EQ(s.order[0].misses, 2u);
  EXPECT_EQ(s.order[0].cached_vecs, 2u);  // preallocation warms the cache
}

TEST(CacheFlags, ReturnEmptyOnFailAndCallerPages) {
  Budget b(nullptr, 4096);
  Pool p(quiet_opts());
  Vec* v = nullptr;
  EXPECT_EQ(p.alloc(8192, 0, &b, &v), -ENOMEM);
  ASSERT_EQ(p.alloc(8192, kReturnEmptyOnFail, &b, &v), 0);
  ASSERT_NE(v, nullptr);
  EXPECT_TRUE(v->empty());
  EXPECT_EQ(v->nsegs(), 0u);
  EXPECT_EQ(b.used(), 0u);
  static char buf[8192];
  Seg mine[1] = {{buf, sizeof buf}};
  v->set_external(mine, 1);
  EXPECT_EQ(v->len(), 8192u);
  v->release();
  EXPECT_EQ(p.stats().empty_returns, 1u);
}

TEST(CacheFlags, RejectsBadArguments) {
  Pool p(quiet_opts());
  Vec* v = nullptr;
  EXPECT_EQ(p.alloc(0, 0, nullptr, &v), -EINVAL);
  EXPECT_EQ(p.alloc(4096, 0x100, nullptr, &v), -EINVAL);
  EXPECT_EQ(p.alloc(4096, 0, nullptr, nullptr), -EINVAL);
}

TEST(CacheRef, LastHolderReturnsTheVector) {
  Pool p(quiet_opts());
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(4096, 0, nullptr, &v), 0);
  v->ref();  // e.g. the kernel during a zero-copy send
  v->release();
  EXPECT_EQ(p.stats().order[0].in_use_pages, 1u);
  // Another thread (completion) drops the last hold.
  std::thread([v] { v->release(); }).join();
  EXPECT_EQ(p.stats().order[0].in_use_pages, 0u);
  EXPECT_EQ(p.stats().order[0].cached_vecs, 1u);
  EXPECT_TRUE(p.check_invariants());
}


// Two holders releasing at once: both may see two holders and take the
// refcounted path, where the second decrement reaches zero and recycles the
// vector. It must go back as a cached vector like any other: the alloc hit
// hands it out without touching the count, so that path has to leave it at
// one holder. Were it left at zero, the next plain release would not reach
// the cache (the vector stays in use for good) and invariants would break.
// The race is not forced, so each round is a chance; thousands of rounds on
// two threads hit it many times over.
void spin_until(const std::atomic<int>& a, int want) {
  for (unsigned i = 1; a.load(std::memory_order_acquire) != want; ++i)
    if (i % 1024 == 0) std::this_thread::yield();  // a loaded box: let the peer run
}

TEST(CacheRef, RacingLastReleasesLeaveReusableVectors) {
  Pool p(quiet_opts());
  constexpr int kRounds = 20000;
  std::atomic<int> go{0}, done{0};
  Vec* v = nullptr;
  std::thread other([&] {
    for (int r = 1; r <= kRounds; ++r) {
      spin_until(go, r);
      v->release();
      done.store(r, std::memory_order_release);
    }
  });
  for (int r = 1; r <= kRounds; ++r) {
    ASSERT_EQ(p.alloc(65536, 0, nullptr, &v), 0);
    v->ref();
    Vec* mine = v;
    go.store(r, std::memory_order_release);
    mine->release();
    spin_until(done, r);
    // Whichever release was last, the vector is cached again, and a plain
    // alloc + release on this thread keeps it so.
    Vec* w = nullptr;
    ASSERT_EQ(p.alloc(65536, 0, nullptr, &w), 0);
    w->release();
    ASSERT_EQ(p.stats().order[4].in_use_pages, 0u) << "round " << r;
  }
  other.join();
  EXPECT_TRUE(p.check_invariants());
}

TEST(CachePurge, IdleVectorsReturnToTheSource) {
  ScriptedSource src(64, {});
  PoolOptions o = quiet_opts(&src);
  o.purge_interval_ms = 20;
  Pool p(o);
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(2 * 4096, 0, nullptr, &v), 0);
  v->release();
  EXPECT_EQ(src.out(), 2u);
  // The maintenance thread asks this thread's cache to flush; our next call
  // (maintain) does it, then idle vectors age out within 1.5 intervals.
  for (int i = 0; i < 400 && src.out() != 0; ++i) {
    p.maintain();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(src.out(), 0u);
  EXPECT_GE(p.stats().order[1].purged, 1u);
  EXPECT_TRUE(p.check_invariants());
}

// Idle time is stamped when vectors leave a thread stack, not on release;
// purge must still free a vector only after a whole interval idle, and
// within 1.5 intervals. Ticks are driven by hand (maintain(), one tick each,
// 4 per interval); the interval is an hour so the maintenance thread never
// ticks during the test. Three ways a released vector leaves its stack:
// this thread's flush (a tick asks for it), a freeing thread's exit, and a
// full stack's batch going to the exchange.
TEST(CachePurge, IdleBetweenOneAndOneAndAHalfIntervals) {
  ScriptedSource src(1024, {});
  PoolOptions o = quiet_opts(&src);
  o.purge_interval_ms = 3600 * 1000;
  Pool p(o);
  Vec* own = nullptr;
  ASSERT_EQ(p.alloc(4096, 0, nullptr, &own), 0);
  Vec* exiting = nullptr;
  ASSERT_EQ(p.alloc(2 * 4096, 0, nullptr, &exiting), 0);
  // Order 2 (16 KiB): batches of 32, a stack holds 64; 65 frees on one
  // thread send the oldest 32 to the exchange.
  std::vector<Vec*> many(65);
  for (Vec*& v : many) ASSERT_EQ(p.alloc(4 * 4096, 0, nullptr, &v), 0);
  const size_t pages = 1 + 2 + 65 * 4;
  ASSERT_EQ(src.out(), pages);
  // Two intervals in use first: a vector whose idle time were counted from
  // anything older than its release would go at the first tick below.
  for (int tick = 0; tick < 8; ++tick) p.maintain();
  own->release();  // into this thread's stack
  std::thread([exiting] { exiting->release(); }).join();  // stack flushed at thread exit
  std::thread([&many] {
    for (Vec* v : many) v->release();
  }).join();
  ASSERT_EQ(src.out(), pages);
  for (int tick = 1; tick <= 4; ++tick) {  // up to one interval: nothing goes
    p.maintain();
    EXPECT_EQ(src.out(), pages) << "purged after " << tick << " ticks";
  }
  p.maintain();
  p.maintain();  // 1.5 intervals: everything has gone
  EXPECT_EQ(src.out(), 0u);
  EXPECT_EQ(p.stats().total.purged, 67u);
  EXPECT_TRUE(p.check_invariants());
}

TEST(CachePurge, NegativeIntervalKeepsVectors) {
  ScriptedSource src(64, {});
  Pool p(quiet_opts(&src));
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(4096, 0, nullptr, &v), 0);
  v->release();
  for (int i = 0; i < 5; ++i) p.maintain();
  EXPECT_EQ(src.out(), 1u);
  EXPECT_EQ(p.stats().total.purged, 0u);
}

TEST(CacheShrink, ReleasesIdleVectorsOnly) {
  ScriptedSource src(256, {});
  Pool p(quiet_opts(&src));
  Vec* held = nullptr;
  ASSERT_EQ(p.alloc(4 * 4096, 0, nullptr, &held), 0);
  Vec* idle[4];
  for (auto& v : idle) ASSERT_EQ(p.alloc(8 * 4096, 0, nullptr, &v), 0);
  for (auto& v : idle) v->release();
  EXPECT_EQ(src.out(), 36u);
  size_t got = p.shrink(10 * 4096);
  EXPECT_GE(got, 10u * 4096);
  EXPECT_LT(got, 36u * 4096);
  EXPECT_EQ(p.shrink(SIZE_MAX), 32u * 4096 - got);
  EXPECT_EQ(src.out(), 4u);  // the held vector stays
  EXPECT_GE(p.stats().total.shrunk, 4u);
  held->release();
  EXPECT_TRUE(p.check_invariants());
}

class CacheFailure : public ::testing::TestWithParam<int> {};

TEST_P(CacheFailure, EveryNthPageFailsCleanly) {
  // Single-page runs: an order-3 vector needs 8 gets, every 5th fails. With
  // max order 1 most requests are chains, which fail part-way through.
  ScriptedSource src(1024, {});
  src.fail_every(5);
  Budget global(nullptr, 0);
  Budget session(nullptr, 0);
  {
    PoolOptions o = quiet_opts(&src);
    o.max_order = GetParam() == 0 ? 10 : 1;
    o.clustering = GetParam() == 0 ? Clustering::none : Clustering::full;
    Pool p(o, &global);
    int ok = 0, fail = 0;
    std::vector<Vec*> held;
    for (int i = 0; i < 50; ++i) {
      Vec* v = nullptr;
      int rc = p.alloc((i % 8 + 1) * 4096, i % 3 == 0 ? kGetNew : 0, &session, &v);
      if (rc == 0) {
        ++ok;
        EXPECT_EQ(total_len(v->segs()), static_cast<size_t>(i % 8 + 1) * 4096);
        held.push_back(v);
        if (i % 2) {
          held.back()->release();
          held.pop_back();
        }
      } else {
        EXPECT_EQ(rc, -ENOMEM);
        ++fail;
      }
      ASSERT_TRUE(p.check_invariants());
    }
    EXPECT_GT(ok, 0);
    EXPECT_GT(fail, 0);
    EXPECT_GT(p.stats().source_failures, 0u);
    for (Vec* v : held) v->release();
    EXPECT_EQ(session.used(), 0u);
    p.shrink(SIZE_MAX);
    EXPECT_EQ(src.out(), 0u);
    EXPECT_EQ(global.used(), 0u);
    if (GetParam() == 1) {
      EXPECT_GT(p.stats().chains, 0u);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(MaxOrder, CacheFailure, ::testing::Values(0, 1));

TEST(CacheStats, DumpHasTotalsAndOrders) {
  Pool p(quiet_opts());
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(4096, 0, nullptr, &v), 0);
  v->release();
  ASSERT_EQ(p.alloc(4096, 0, nullptr, &v), 0);
  v->release();
  std::string d = p.dump_stats();
  EXPECT_NE(d.find("name=sgv\n"), std::string::npos);
  EXPECT_NE(d.find("\nhits=1\n"), std::string::npos) << d;
  EXPECT_NE(d.find("\nmisses=1\n"), std::string::npos);
  EXPECT_NE(d.find("order0.frees=2\n"), std::string::npos);
  EXPECT_NE(d.find("segs_per_vec=1.00\n"), std::string::npos);
  EXPECT_NE(d.find("order10.hits=0\n"), std::string::npos);
  EXPECT_NE(d.find("order0.segs_per_vec=1.00\n"), std::string::npos);
  EXPECT_NE(d.find("order0.waits=0\n"), std::string::npos);
  EXPECT_NE(d.find("\nwatermark_refusals=0\n"), std::string::npos);
}

TEST(CacheThreads, FreeOnAnotherThreadReachesTheCache) {
  Pool p(quiet_opts());
  std::vector<Vec*> vs(40);
  for (auto& v : vs) ASSERT_EQ(p.alloc(4096, 0, nullptr, &v), 0);
  std::thread([&] {
    for (Vec* v : vs) v->release();
  }).join();  // the exiting thread flushes its cache to the shared pool
  PoolStats s = p.stats();
  EXPECT_EQ(s.order[0].cached_vecs, 40u);
  EXPECT_EQ(s.order[0].frees, 40u);
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(4096, kCacheHitOnly, nullptr, &v), 0);
  v->release();
  EXPECT_TRUE(p.check_invariants());
}

// A live thread freeing more than its stack holds hands batches to the
// allocating thread through the lock-free exchange: the allocator gets
// every vector back as a hit, none is built again, and shrink reaches what
// sits in the exchange.
TEST(CacheThreads, CrossThreadFreesComeBackThroughTheExchange) {
  Pool p(quiet_opts());
  constexpr int kN = 200;  // several 4 KiB batches beyond a stack's 64
  std::vector<Vec*> vs(kN);
  for (int round = 0; round < 3; ++round) {
    for (auto& v : vs) ASSERT_EQ(p.alloc(4096, 0, nullptr, &v), 0);
    std::atomic<bool> freed{false}, done{false};
    std::thread t([&] {
      for (Vec* v : vs) v->release();
      freed = true;
      while (!done) std::this_thread::yield();  // stays alive: no exit flush
    });
    while (!freed) std::this_thread::yield();
    PoolStats s = p.stats();
    EXPECT_EQ(s.order[0].cached_vecs, static_cast<uint64_t>(kN));
    EXPECT_EQ(s.order[0].in_use_pages, 0u);
    EXPECT_TRUE(p.check_invariants());
    if (round == 2) {
      // The freeing thread keeps at most its stack; the rest is reachable.
      size_t got = p.shrink(SIZE_MAX);
      EXPECT_GE(got, static_cast<size_t>(kN - 64) * 4096);
      EXPECT_TRUE(p.check_invariants());
    }
    done = true;
    t.join();
  }
  PoolStats s = p.stats();
  EXPECT_EQ(s.order[0].misses, static_cast<uint64_t>(kN));  // rounds 2 and 3 were hits
  EXPECT_EQ(s.order[0].hits, static_cast<uint64_t>(2 * kN));
  EXPECT_TRUE(p.check_invariants());
}

// thread_batch_bytes sets how many vectors a thread keeps before handing a
// batch to the exchange: a freeing thread that stays alive keeps its stack
// (two batches at most), and only what it handed over is reachable by
// another thread's shrink. 40 vectors of 256 KiB freed on such a thread:
// at the default 512 KiB (batches of 2, a stack of 4) at least 36 reach
// the exchange; at 4 MiB (batches of 16, a stack of 32) the stack fills at
// 32, hands 16 over and ends with 24, so exactly 16 do.
TEST(CacheThreads, ThreadBatchBytesSetsWhatAFreeingThreadKeeps) {
  for (size_t batch : {size_t{0}, size_t{4} << 20}) {
    PoolOptions o = quiet_opts();
    o.thread_batch_bytes = batch;
    Pool p(o);
    EXPECT_EQ(p.options().thread_batch_bytes, batch ? batch : PoolOptions::kDefaultThreadBatchBytes);
    constexpr int kN = 40;
    constexpr size_t kSz = 256 << 10;
    std::vector<Vec*> vs(kN);
    for (auto& v : vs) ASSERT_EQ(p.alloc(kSz, 0, nullptr, &v), 0);
    std::atomic<bool> freed{false}, done{false};
    std::thread t([&] {
      for (Vec* v : vs) v->release();
      freed = true;
      while (!done) std::this_thread::yield();  // alive: its stack stays put
    });
    while (!freed) std::this_thread::yield();
    // This thread's shrink flushes its own stack (empty) and reaches the
    // exchange; the freeing thread is only asked to flush later.
    size_t got = p.shrink(SIZE_MAX);
    if (batch == 0) {
      EXPECT_GE(got, 36 * kSz);
      EXPECT_LE(got, 38 * kSz);
    } else {
      EXPECT_EQ(got, 16 * kSz);
    }
    done = true;
    t.join();  // thread exit flushes the rest to the shared pool
    EXPECT_EQ(p.stats().order[6].cached_vecs, static_cast<uint64_t>(kN) - got / kSz);
    EXPECT_TRUE(p.check_invariants());
  }
}

// A thread's cache slot left by a destroyed pool is never taken for its
// successor's, and pools beyond the per-thread slots work from the shared
// pool alone.
TEST(CacheThreads, SlotsOfDeadPoolsAndPoolsBeyondTheSlots) {
  for (int i = 0; i < 3; ++i) {
    Pool p(quiet_opts());
    Vec* v = nullptr;
    ASSERT_EQ(p.alloc(8192, 0, nullptr, &v), 0);
    v->release();
    ASSERT_EQ(p.alloc(8192, 0, nullptr, &v), 0);
    v->release();
    PoolStats s = p.stats();
    EXPECT_EQ(s.order[1].misses, 1u);
    EXPECT_EQ(s.order[1].hits, 1u);
    EXPECT_TRUE(p.check_invariants());
  }
  std::vector<std::unique_ptr<Pool>> pools;
  for (int i = 0; i < 70; ++i) pools.push_back(std::make_unique<Pool>(quiet_opts()));
  for (auto& p : pools) {
    for (int j = 0; j < 2; ++j) {
      Vec* v = nullptr;
      ASSERT_EQ(p->alloc(4096, 0, nullptr, &v), 0);
      EXPECT_EQ(v->len(), 4096u);
      v->release();
    }
    PoolStats s = p->stats();
    EXPECT_EQ(s.order[0].misses, 1u);
    EXPECT_EQ(s.order[0].hits, 1u);
    EXPECT_EQ(s.order[0].cached_vecs, 1u);
    EXPECT_TRUE(p->check_invariants());
  }
}

// One cached vector alternates between uncharged and charged holders: every
// charged release must uncharge (the inline release must not take it), and
// every uncharged release must keep it cached for the next hit.
TEST(CacheBudget, SameVectorAlternatesChargedAndUncharged) {
  Budget b(nullptr, 1 << 20);
  Pool p(quiet_opts());
  Vec* first = nullptr;
  ASSERT_EQ(p.alloc(4096, 0, nullptr, &first), 0);
  first->release();
  for (int i = 0; i < 6; ++i) {
    Vec* v = nullptr;
    ASSERT_EQ(p.alloc(4096, 0, i % 2 ? &b : nullptr, &v), 0);
    EXPECT_EQ(v, first);  // always the one cached vector: a hit
    EXPECT_EQ(b.used(), i % 2 ? 4096u : 0u);
    v->release();
    EXPECT_EQ(b.used(), 0u);
    ASSERT_TRUE(p.check_invariants());
  }
  PoolStats s = p.stats();
  EXPECT_EQ(s.order[0].misses, 1u);
  EXPECT_EQ(s.order[0].hits, 6u);
  EXPECT_EQ(s.order[0].cached_vecs, 1u);
}

}  // namespace
}  // namespace sgv
