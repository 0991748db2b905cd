// cache_waiter_test.cpp - waiting allocations: refused requests queue FIFO
// and are granted whole when memory frees; cancellation; pool teardown.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "cache_testing.hpp"
#include "sgv/cache.hpp"

namespace sgv {
namespace {

struct Got {
  std::vector<int> order;  // waiter ids in grant order
  std::vector<Vec*> vecs;
  int last_status = 1;
};

struct TestWaiter : Waiter {
  int id = 0;
  Got* got = nullptr;
};

void on_grant(Waiter* w, Vec* v, int status) {
  auto* tw = static_cast<TestWaiter*>(w);
  tw->got->last_status = status;
  if (status == 0) {
    tw->got->order.push_back(tw->id);
    tw->got->vecs.push_back(v);
  }
}

TestWaiter make(int id, Got* g) {
  TestWaiter w;
  w.cb = on_grant;
  w.id = id;
  w.got = g;
  return w;
}

TEST(CacheWaiter, GrantsImmediatelyWhenPossible) {
  Pool p(testing::quiet_opts());
  Got g;
  TestWaiter w = make(1, &g);
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc_wait(4096, 0, nullptr, &w, &v), 0);
  ASSERT_NE(v, nullptr);
  EXPECT_TRUE(g.order.empty());
  v->release();
}

TEST(CacheWaiter, FifoAndWholeGrants) {
  Budget sess(nullptr, 2 * 4096);
  Pool p(testing::quiet_opts());
  Vec *a = nullptr, *b = nullptr, *v = nullptr;
  ASSERT_EQ(p.alloc(4096, 0, &sess, &a), 0);
  ASSERT_EQ(p.alloc(4096, 0, &sess, &b), 0);
  Got g;
  TestWaiter w1 = make(1, &g), w2 = make(2, &g);
  ASSERT_EQ(p.alloc_wait(2 * 4096, 0, &sess, &w1, &v), -EINPROGRESS);
  ASSERT_EQ(p.alloc_wait(4096, 0, &sess, &w2, &v), -EINPROGRESS);
  EXPECT_EQ(sess.waits(), 2u);
  a->release();  // 1 page free: w1 (2 pages) cannot be served, w2 must not overtake
  EXPECT_TRUE(g.order.empty());
  b->release();  // 2 pages free: w1 granted whole
  ASSERT_EQ(g.order, std::vector<int>{1});
  EXPECT_EQ(total_len(g.vecs[0]->segs()), 2u * 4096);
  EXPECT_EQ(sess.used(), 2u * 4096);
  g.vecs[0]->release();
  ASSERT_EQ(g.order, (std::vector<int>{1, 2}));
  g.vecs[1]->release();
  EXPECT_EQ(sess.used(), 0u);
  PoolStats s = p.stats();
  EXPECT_EQ(s.waits, 2u);
  EXPECT_EQ(s.order[1].waits, 1u);
  EXPECT_EQ(s.order[0].waits, 1u);
  EXPECT_TRUE(p.check_invariants());
}

TEST(CacheWaiter, ASessionAtItsLimitDoesNotHoldBackAnother) {
  Budget lun(nullptr, 0);
  Budget slow(&lun, 4096), fast(&lun, 4096);
  Pool p(testing::quiet_opts());
  Vec *s1 = nullptr, *f1 = nullptr, *v = nullptr;
  ASSERT_EQ(p.alloc(4096, 0, &slow, &s1), 0);
  ASSERT_EQ(p.alloc(4096, 0, &fast, &f1), 0);
  Got g;
  TestWaiter ws1 = make(1, &g), ws2 = make(2, &g), wf = make(3, &g);
  ASSERT_EQ(p.alloc_wait(4096, 0, &slow, &ws1, &v), -EINPROGRESS);
  ASSERT_EQ(p.alloc_wait(4096, 0, &slow, &ws2, &v), -EINPROGRESS);
  ASSERT_EQ(p.alloc_wait(4096, 0, &fast, &wf, &v), -EINPROGRESS);
  f1->release();  // the fast session's waiter goes, past the slow one's
  ASSERT_EQ(g.order, std::vector<int>{3});
  s1->release();  // the slow session's waiters, in their order
  ASSERT_EQ(g.order, (std::vector<int>{3, 1}));
  g.vecs[1]->release();
  ASSERT_EQ(g.order, (std::vector<int>{3, 1, 2}));
  g.vecs[0]->release();
  g.vecs[2]->release();
  EXPECT_EQ(lun.used(), 0u);
}

// sgvd's shape: a session's total is a root budget that each of its
// per-LUN budgets names as "also". A session at its total, waiting under
// many LUNs at once, must still not hold back another session's grant.
TEST(CacheWaiter, ASessionAtItsTotalAcrossLunsDoesNotHoldBackAnother) {
  constexpr int kLuns = 12;  // more than the offer loop's blocked-budget slots
  Budget slow_total(nullptr, 4096, 0, "slow"), fast_total(nullptr, 4096, 0, "fast");
  std::vector<std::unique_ptr<Budget>> luns, slow_at;
  for (int i = 0; i < kLuns; ++i) {
    luns.push_back(std::make_unique<Budget>(nullptr, 0));
    slow_at.push_back(std::make_unique<Budget>(luns.back().get(), 0, 0, "", &slow_total));
  }
  Budget fast_at(luns[0].get(), 0, 0, "", &fast_total);
  Pool p(testing::quiet_opts());
  Vec *s1 = nullptr, *f1 = nullptr, *v = nullptr;
  ASSERT_EQ(p.alloc(4096, 0, slow_at[0].get(), &s1), 0);
  ASSERT_EQ(p.alloc(4096, 0, &fast_at, &f1), 0);
  Got g;
  std::vector<TestWaiter> ws;
  ws.reserve(kLuns + 1);
  for (int i = 0; i < kLuns; ++i) {
    ws.push_back(make(i, &g));
    ASSERT_EQ(p.alloc_wait(4096, 0, slow_at[i].get(), &ws.back(), &v), -EINPROGRESS);
  }
  ws.push_back(make(100, &g));
  ASSERT_EQ(p.alloc_wait(4096, 0, &fast_at, &ws.back(), &v), -EINPROGRESS);
  f1->release();  // the other session's waiter goes, past all of the slow one's
  ASSERT_EQ(g.order, std::vector<int>{100});
  g.vecs[0]->release();
  s1->release();  // then the slow session's, one at a time, in order
  for (int i = 0; i < kLuns; ++i) {
    ASSERT_EQ(g.order.size(), size_t(i) + 2);
    EXPECT_EQ(g.order.back(), i);
    g.vecs.back()->release();
  }
  EXPECT_EQ(slow_total.used(), 0u);
  EXPECT_EQ(fast_total.used(), 0u);
}

TEST(CacheWaiter, CancelRemovesAQueuedWaiter) {
  Budget sess(nullptr, 4096);
  Pool p(testing::quiet_opts());
  Vec *a = nullptr, *v = nullptr;
  ASSERT_EQ(p.alloc(4096, 0, &sess, &a), 0);
  Got g;
  TestWaiter w1 = make(1, &g), w2 = make(2, &g);
  ASSERT_EQ(p.alloc_wait(4096, 0, &sess, &w1, &v), -EINPROGRESS);
  ASSERT_EQ(p.alloc_wait(4096, 0, &sess, &w2, &v), -EINPROGRESS);
  EXPECT_TRUE(p.cancel(&w1));
  EXPECT_FALSE(p.cancel(&w1));  // already gone
  a->release();
  ASSERT_EQ(g.order, std::vector<int>{2});
  EXPECT_FALSE(p.cancel(&w2));  // the grant won
  g.vecs[0]->release();
  EXPECT_EQ(sess.used(), 0u);
}

TEST(CacheWaiter, WatermarkRefusalsWaitToo) {
  Budget global(nullptr, 4 * 4096);
  Pool p(testing::quiet_opts(), &global);
  Vec *a = nullptr, *v = nullptr;
  ASSERT_EQ(p.alloc(4 * 4096, 0, nullptr, &a), 0);
  Got g;
  TestWaiter w = make(1, &g);
  ASSERT_EQ(p.alloc_wait(4096, 0, nullptr, &w, &v), -EINPROGRESS);
  EXPECT_EQ(global.waits(), 1u);
  a->release();  // the idle order-2 vector is dropped to make room
  ASSERT_EQ(g.order, std::vector<int>{1});
  g.vecs[0]->release();
  EXPECT_TRUE(p.check_invariants());
}

TEST(CacheWaiter, EachReleaseGrantsTheNextWaiter) {
  Budget sess(nullptr, 4096);
  Pool p(testing::quiet_opts());
  Got g;
  TestWaiter ws[3] = {make(1, &g), make(2, &g), make(3, &g)};
  Vec *a = nullptr, *v = nullptr;
  ASSERT_EQ(p.alloc(4096, 0, &sess, &a), 0);
  for (auto& w : ws) ASSERT_EQ(p.alloc_wait(4096, 0, &sess, &w, &v), -EINPROGRESS);
  a->release();
  ASSERT_EQ(g.order, std::vector<int>{1});
  g.vecs[0]->release();
  ASSERT_EQ(g.order, (std::vector<int>{1, 2}));
  EXPECT_TRUE(p.cancel(&ws[2]));  // the third gives up
  g.vecs[1]->release();
  EXPECT_EQ(g.order.size(), 2u);
  EXPECT_EQ(sess.used(), 0u);
  EXPECT_GT(p.stats().wait_ns, 0u);
}

TEST(CacheWaiter, DestructorCallsPendingWaitersWithEcanceled) {
  Budget global(nullptr, 4096);
  Got g;
  TestWaiter w = make(1, &g);
  {
    Pool p(testing::quiet_opts(), &global);
    Vec* v = nullptr;
    ASSERT_EQ(global.charge(4096), 0);  // someone else holds the memory
    ASSERT_EQ(p.alloc_wait(4096, 0, nullptr, &w, &v), -EINPROGRESS);
  }
  EXPECT_EQ(g.last_status, -ECANCELED);
  EXPECT_TRUE(g.order.empty());
  global.uncharge(4096);
}

}  // namespace
}  // namespace sgv
