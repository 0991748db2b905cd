// budget_test.cpp - budgets: whole-or-nothing charges up the tree, limits,
// reserves, peaks and refusals, and the pool's use of a global budget
// (cached + in-use pages, idle vectors dropped before a refusal).
#include "sgv/budget.hpp"

#include <gtest/gtest.h>

#include "cache_testing.hpp"
#include "sgv/cache.hpp"

namespace sgv {
namespace {

TEST(Budget, GrantsWholeOrRefusesWhole) {
  Budget lun(nullptr, 100);
  Budget s1(&lun, 60);
  EXPECT_EQ(s1.charge(50), 0);
  EXPECT_EQ(s1.charge(20), -ENOMEM);  // own limit
  EXPECT_EQ(s1.used(), 50u);
  EXPECT_EQ(lun.used(), 50u);
  Budget s2(&lun, 80);
  Budget* who = nullptr;
  EXPECT_EQ(s2.charge(60, &who), -ENOMEM);  // parent limit: 50 + 60 > 100
  EXPECT_EQ(who, &lun);
  EXPECT_EQ(s2.used(), 0u);  // nothing half-held
  EXPECT_EQ(lun.used(), 50u);
  EXPECT_EQ(lun.refusals(), 1u);
  EXPECT_EQ(s1.refusals(), 1u);
  EXPECT_EQ(s2.charge(50), 0);
  EXPECT_EQ(lun.used(), 100u);
  EXPECT_TRUE(lun.check_invariants());
  s1.uncharge(50);
  s2.uncharge(50);
  EXPECT_EQ(lun.used(), 0u);
  EXPECT_EQ(lun.peak(), 100u);
  EXPECT_EQ(s1.peak(), 50u);
  EXPECT_TRUE(lun.check_invariants());
}

// A session's per-LUN budgets sit under their LUNs and all name the
// session's total as "also": a charge must fit the LUN chain and the session.
TEST(Budget, AlsoBudgetIsASecondLimitChargedWholeOrNotAtAll) {
  Budget global(nullptr, 1000);
  Budget lun0(&global, 100), lun1(&global, 100);
  Budget session(nullptr, 150);
  Budget s_l0(&lun0, 0, 0, "s-lun0", &session), s_l1(&lun1, 0, 0, "s-lun1", &session);
  EXPECT_EQ(s_l0.also(), &session);
  Budget* who = nullptr;
  EXPECT_EQ(s_l0.charge(100), 0);
  EXPECT_EQ(s_l0.charge(1, &who), -ENOMEM);  // LUN 0 full
  EXPECT_EQ(who, &lun0);
  EXPECT_EQ(session.used(), 100u);
  EXPECT_EQ(s_l1.charge(60, &who), -ENOMEM);  // LUN 1 has room, the session not
  EXPECT_EQ(who, &session);
  EXPECT_EQ(s_l1.used(), 0u);  // rolled back in the LUN chain too
  EXPECT_EQ(lun1.used(), 0u);
  EXPECT_EQ(global.used(), 100u);
  EXPECT_EQ(s_l1.charge(50), 0);
  EXPECT_EQ(session.used(), 150u);
  EXPECT_EQ(global.used(), 150u);
  EXPECT_TRUE(global.check_invariants());
  EXPECT_TRUE(session.check_invariants());
  s_l0.uncharge(100);
  EXPECT_EQ(session.used(), 50u);
  EXPECT_EQ(lun0.used(), 0u);
  s_l1.uncharge(50);
  EXPECT_EQ(session.used(), 0u);
  EXPECT_EQ(global.used(), 0u);
  EXPECT_EQ(session.peak(), 150u);
}

TEST(Budget, UnlimitedWhenLimitIsZero) {
  Budget b(nullptr, 0);
  EXPECT_EQ(b.charge(size_t{1} << 40), 0);
  b.uncharge(size_t{1} << 40);
}

TEST(Budget, ReserveIsGuaranteedAgainstSiblings) {
  Budget lun(nullptr, 100);
  Budget guarded(&lun, 0, 40);  // 40 set aside
  Budget greedy(&lun, 0);
  EXPECT_EQ(greedy.charge(61), -ENOMEM);  // only 60 left for others
  EXPECT_EQ(greedy.charge(60), 0);
  EXPECT_EQ(guarded.charge(40), 0);  // the reserve is still there
  EXPECT_EQ(guarded.charge(1), -ENOMEM);  // beyond it, the parent is full
  greedy.uncharge(30);
  EXPECT_EQ(guarded.charge(30), 0);  // above the reserve it competes normally
  EXPECT_TRUE(lun.check_invariants());
  guarded.uncharge(70);
  greedy.uncharge(30);
  EXPECT_EQ(lun.used(), 0u);
  EXPECT_TRUE(lun.check_invariants());
}

TEST(Budget, ThreeLevelsAndDump) {
  Budget global(nullptr, 1000, 0, "global");
  Budget lun(&global, 500, 100, "lun0");
  Budget sess(&lun, 200, 0, "sess");
  EXPECT_EQ(sess.charge(150), 0);
  EXPECT_EQ(global.used(), 150u);
  EXPECT_EQ(sess.charge(100), -ENOMEM);
  std::string d;
  sess.dump(&d);
  EXPECT_NE(d.find("budget.sess.used=150\n"), std::string::npos) << d;
  EXPECT_NE(d.find("budget.sess.refusals=1\n"), std::string::npos) << d;
  EXPECT_TRUE(global.check_invariants());
  sess.uncharge(150);
  BudgetStats s = lun.stats();
  EXPECT_EQ(s.used, 0u);
  EXPECT_EQ(s.peak, 150u);
  EXPECT_EQ(s.reserve, 100u);
}

TEST(BudgetPool, SessionChargesPagesOfTheVector) {
  Budget global(nullptr, 0);
  Budget lun(&global, 64 * 4096);
  Budget sess(&lun, 16 * 4096);
  Pool p(testing::quiet_opts(), &global);
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(5 * 4096, 0, &sess, &v), 0);
  EXPECT_EQ(sess.used(), 8u * 4096);  // order 3: 8 pages held
  EXPECT_EQ(lun.used(), 8u * 4096);
  EXPECT_EQ(global.used(), 8u * 4096);  // pages, counted once
  Vec* w = nullptr;
  EXPECT_EQ(p.alloc(9 * 4096, 0, &sess, &w), -ENOMEM);  // 8 + 16 > 16
  EXPECT_EQ(sess.used(), 8u * 4096);
  v->release();
  EXPECT_EQ(sess.used(), 0u);
  EXPECT_EQ(global.used(), 8u * 4096);  // still cached
  EXPECT_TRUE(p.check_invariants());
  p.shrink(SIZE_MAX);
  EXPECT_EQ(global.used(), 0u);
}

TEST(BudgetPool, GlobalDropsIdleVectorsBeforeRefusing) {
  Budget global(nullptr, 16 * 4096);
  Pool p(testing::quiet_opts(), &global);
  Vec* a = nullptr;
  ASSERT_EQ(p.alloc(8 * 4096, 0, nullptr, &a), 0);
  a->release();  // 8 pages cached, idle
  Vec* b = nullptr;
  ASSERT_EQ(p.alloc(16 * 4096, 0, nullptr, &b), 0);  // needs the idle 8 dropped
  EXPECT_EQ(global.used(), 16u * 4096);
  EXPECT_GE(p.stats().total.shrunk, 1u);
  Vec* c = nullptr;
  EXPECT_EQ(p.alloc(4096, 0, nullptr, &c), -ENOMEM);  // nothing idle left
  EXPECT_EQ(p.stats().watermark_refusals, 1u);
  EXPECT_EQ(p.stats().order[0].watermark_refusals, 1u);
  b->release();
  EXPECT_TRUE(p.check_invariants());
}

TEST(BudgetPool, ChainsAreChargedWhole) {
  Budget sess(nullptr, 8u << 20);
  Pool p(testing::quiet_opts());
  Vec* v = nullptr;
  EXPECT_EQ(p.alloc((8u << 20) + 1, 0, &sess, &v), -ENOMEM);  // 8 MiB + 1 page
  EXPECT_EQ(sess.used(), 0u);
  ASSERT_EQ(p.alloc(8u << 20, 0, &sess, &v), 0);
  EXPECT_EQ(sess.used(), 8u << 20);
  v->release();
  EXPECT_EQ(sess.used(), 0u);
}

}  // namespace
}  // namespace sgv
