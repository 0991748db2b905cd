// pressure_test.cpp - reaction to memory pressure: the watcher starts or
// fails with a status (PSI is often absent or read-only in containers), and
// a pressure event shrinks cached vectors down to the low watermark, leaving
// vectors in use alone.
#include <gtest/gtest.h>

#include "cache_testing.hpp"
#include "sgv/cache.hpp"

namespace sgv {
namespace {

TEST(Pressure, WatcherStartsOrReportsAStatus) {
  PoolOptions o = testing::quiet_opts();
  Pool p(o);
  int rc = p.watch_pressure();
  // 0 where PSI or cgroup memory.events is usable; a negative errno where
  // not. Either way the pool keeps working.
  EXPECT_LE(rc, 0);
  EXPECT_EQ(p.watch_pressure() <= 0, true);  // idempotent / same status
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(4096, 0, nullptr, &v), 0);
  v->release();
}

TEST(Pressure, WatchOptionDoesNotBreakThePool) {
  PoolOptions o = testing::quiet_opts();
  o.watch_pressure = true;
  Pool p(o);
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(8192, 0, nullptr, &v), 0);
  v->release();
}

TEST(Pressure, EventShrinksToTheLowWatermark) {
  testing::ScriptedSource src(256, {});
  PoolOptions o = testing::quiet_opts(&src);
  o.low_watermark_bytes = 8 * 4096;
  Pool p(o);
  Vec* held = nullptr;
  ASSERT_EQ(p.alloc(16 * 4096, 0, nullptr, &held), 0);
  std::vector<Vec*> vs(8);
  for (auto& v : vs) ASSERT_EQ(p.alloc(4 * 4096, 0, nullptr, &v), 0);
  for (auto& v : vs) v->release();  // 32 pages cached
  size_t got = p.on_pressure();
  EXPECT_GE(got, 24u * 4096);
  PoolStats s = p.stats();
  EXPECT_LE(s.cached_bytes, 8u * 4096);
  EXPECT_EQ(s.pressure_events, 1u);
  EXPECT_EQ(s.order[4].in_use_pages, 16u);  // the held vector is untouched
  EXPECT_EQ(p.on_pressure(), 0u);           // already at the watermark
  held->release();
  EXPECT_TRUE(p.check_invariants());
}

}  // namespace
}  // namespace sgv
