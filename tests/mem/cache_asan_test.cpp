// cache_asan_test.cpp - in ASan builds cached pages are poisoned, so touching
// a vector after releasing it is caught at once (death test). Elsewhere the
// test only checks that a released-then-reused vector is usable.
#include <gtest/gtest.h>

#include <cstring>

#include "cache_testing.hpp"
#include "sgv/cache.hpp"

namespace sgv {
namespace {

TEST(CacheAsan, ReusedVectorIsWritable) {
  Pool p(testing::quiet_opts());
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(3 * 4096, 0, nullptr, &v), 0);
  v->release();
  ASSERT_EQ(p.alloc(4 * 4096, 0, nullptr, &v), 0);  // unpoisoned whole again
  for (const Seg& s : v->segs()) std::memset(s.addr, 1, s.len);
  v->release();
}

#if defined(SGV_ASAN)
TEST(CacheAsanDeathTest, UseAfterReleaseIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Pool p(testing::quiet_opts());
        Vec* v = nullptr;
        if (p.alloc(8192, 0, nullptr, &v) != 0) return;
        char* page = static_cast<char*>(v->segs()[0].addr);
        v->release();
        page[100] = 1;  // the vector is back in the cache
      },
      "use-after-poison");
}
#endif

}  // namespace
}  // namespace sgv
