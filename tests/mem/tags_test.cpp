// tags_test.cpp - the sbitmap-style Bitmap, its waiter queue and the
// reserved/normal tag classes, single-threaded (tags_mt_test.cpp races them).
#include "sgv/tags.hpp"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace sgv {
namespace {

TEST(Bitmap, ShiftGivesAtLeastFourWords) {
  for (unsigned depth : {4u, 5u, 31u, 32u, 64u, 100u, 128u, 256u, 1000u}) {
    Bitmap b;
    ASSERT_EQ(b.init(depth), 0);
    EXPECT_GE(b.words(), 4u) << depth;
    EXPECT_LE(b.shift(), 6u);
  }
  Bitmap big;
  ASSERT_EQ(big.init(4096), 0);
  EXPECT_EQ(big.shift(), 6u);  // 64 bits per word once there are enough words
  Bitmap bad;
  EXPECT_EQ(bad.init(8, 7), -EINVAL);
}

TEST(Bitmap, EveryBitOnceThenFullThenReusable) {
  for (unsigned depth : {1u, 3u, 7u, 64u, 65u, 129u, 1000u}) {
    Bitmap b;
    ASSERT_EQ(b.init(depth), 0);
    std::set<int> got;
    for (unsigned i = 0; i < depth; ++i) {
      int bit = b.get();
      ASSERT_GE(bit, 0);
      ASSERT_LT(bit, static_cast<int>(depth));
      ASSERT_TRUE(got.insert(bit).second) << "bit handed out twice: " << bit;
      EXPECT_TRUE(b.test(static_cast<unsigned>(bit)));
    }
    EXPECT_EQ(b.get(), -1);
    EXPECT_EQ(b.weight(), depth);
    // Free one in the middle: deferred clear must make it available again.
    unsigned mid = depth / 2;
    b.put(mid);
    EXPECT_FALSE(b.test(mid));
    EXPECT_EQ(b.weight(), depth - 1);
    EXPECT_EQ(b.get(), static_cast<int>(mid));
    EXPECT_EQ(b.get(), -1);
    EXPECT_TRUE(b.check_invariants());
    for (unsigned i = 0; i < depth; ++i) b.put(i);
    EXPECT_EQ(b.weight(), 0u);
    EXPECT_TRUE(b.check_invariants());
  }
}

TEST(Bitmap, ZeroDepthAlwaysFull) {
  Bitmap b;
  ASSERT_EQ(b.init(0), 0);
  EXPECT_EQ(b.get(), -1);
  EXPECT_EQ(b.get_sync(), -1);
}

TEST(Bitmap, ThreadReusesTheTagItJustFreed) {
  Bitmap b;
  ASSERT_EQ(b.init(128), 0);
  int a = b.get();
  int c = b.get();
  ASSERT_GE(a, 0);
  ASSERT_GE(c, 0);
  b.put(static_cast<unsigned>(a));
  EXPECT_EQ(b.get(), a);  // warm slot first, like sbitmap_update_cpu_hint
  b.put(static_cast<unsigned>(a));
  b.put(static_cast<unsigned>(c));
}

struct Rec {
  std::vector<std::pair<int, int>> calls;  // (tag, status)
};

void record(TagWaiter* w, int tag, int status) { static_cast<Rec*>(w->ctx)->calls.push_back({tag, status}); }

TEST(TagQueue, WaitersAreServedInFifoOrderByPuts) {
  TagQueue q;
  ASSERT_EQ(q.init(2, 10), 0);  // tags 10, 11
  int t0 = q.get(), t1 = q.get();
  ASSERT_EQ(std::set<int>({t0, t1}), std::set<int>({10, 11}));
  EXPECT_EQ(q.get(), -1);

  Rec r1, r2, r3;
  TagWaiter w1, w2, w3;
  w1.cb = w2.cb = w3.cb = record;
  w1.ctx = &r1;
  w2.ctx = &r2;
  w3.ctx = &r3;
  int tag = -1;
  EXPECT_EQ(q.get_wait(&w1, &tag), -EINPROGRESS);
  EXPECT_EQ(q.get_wait(&w2, &tag), -EINPROGRESS);
  EXPECT_EQ(q.get_wait(&w3, &tag), -EINPROGRESS);
  EXPECT_EQ(q.waiting(), 3u);
  EXPECT_TRUE(q.check_invariants());

  q.put(static_cast<unsigned>(t1));
  ASSERT_EQ(r1.calls.size(), 1u);
  EXPECT_EQ(r1.calls[0], std::make_pair(t1, 0));
  EXPECT_TRUE(r2.calls.empty());
  // A cancelled waiter is skipped; its callback never runs.
  EXPECT_TRUE(q.cancel(&w2));
  EXPECT_FALSE(q.cancel(&w2));
  q.put(static_cast<unsigned>(t0));
  EXPECT_TRUE(r2.calls.empty());
  ASSERT_EQ(r3.calls.size(), 1u);
  EXPECT_EQ(r3.calls[0], std::make_pair(t0, 0));
  EXPECT_FALSE(q.cancel(&w3));  // already granted
  EXPECT_EQ(q.waiting(), 0u);
  EXPECT_EQ(q.waits(), 3u);
  q.put(static_cast<unsigned>(t1));
  q.put(static_cast<unsigned>(t0));
  EXPECT_EQ(q.busy(), 0u);
}

TEST(TagQueue, GetWaitGrantsAtOnceWhenFree) {
  TagQueue q;
  ASSERT_EQ(q.init(1), 0);
  Rec r;
  TagWaiter w;
  w.cb = record;
  w.ctx = &r;
  int tag = -1;
  EXPECT_EQ(q.get_wait(&w, &tag), 0);
  EXPECT_EQ(tag, 0);
  EXPECT_TRUE(r.calls.empty());
  q.put(0);
}

TEST(TagQueue, DestructionCancelsWaiters) {
  Rec r;
  TagWaiter w;
  w.cb = record;
  w.ctx = &r;
  {
    TagQueue q;
    ASSERT_EQ(q.init(1), 0);
    ASSERT_EQ(q.get(), 0);
    int tag;
    ASSERT_EQ(q.get_wait(&w, &tag), -EINPROGRESS);
    q.put(0);  // granted, then
    ASSERT_EQ(r.calls.size(), 1u);
    ASSERT_EQ(q.get_wait(&w, &tag), -EINPROGRESS);  // queue again behind the grantee's tag
  }
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[1], std::make_pair(-1, -ECANCELED));
}

// A callback that puts its tag right back and re-queues: must not deadlock
// (callbacks run without the lock) and must keep FIFO order.
struct Bouncer {
  TagQueue* q;
  int rounds = 0;
  TagWaiter w;
};

void bounce(TagWaiter* w, int tag, int status) {
  auto* b = static_cast<Bouncer*>(w->ctx);
  ASSERT_EQ(status, 0);
  b->rounds++;
  b->q->put(static_cast<unsigned>(tag));
}

TEST(TagQueue, CallbackMayPutFromInsideTheWake) {
  TagQueue q;
  ASSERT_EQ(q.init(1), 0);
  ASSERT_EQ(q.get(), 0);
  Bouncer b1{&q}, b2{&q};
  b1.w.cb = b2.w.cb = bounce;
  b1.w.ctx = &b1;
  b2.w.ctx = &b2;
  int tag;
  ASSERT_EQ(q.get_wait(&b1.w, &tag), -EINPROGRESS);
  ASSERT_EQ(q.get_wait(&b2.w, &tag), -EINPROGRESS);
  q.put(0);
  EXPECT_EQ(b1.rounds, 1);
  EXPECT_EQ(b2.rounds, 1);
  EXPECT_EQ(q.busy(), 0u);
  EXPECT_EQ(q.get(), 0);
  q.put(0);
}

TEST(Tags, ReservedAreNumberedFirstAndKeptApart) {
  Tags t;
  ASSERT_EQ(t.init(8, 2), 0);
  EXPECT_EQ(t.total(), 10u);
  std::set<int> normal;
  for (int i = 0; i < 8; ++i) {
    int tag = t.get();
    ASSERT_GE(tag, 2);
    ASSERT_LT(tag, 10);
    normal.insert(tag);
  }
  EXPECT_EQ(normal.size(), 8u);
  EXPECT_EQ(t.get(), -1);  // normal exhausted; reserved untouched
  int r0 = t.get(kTagReserved), r1 = t.get(kTagReserved);
  EXPECT_EQ(std::set<int>({r0, r1}), std::set<int>({0, 1}));
  EXPECT_EQ(t.get(kTagReserved), -1);
  EXPECT_TRUE(t.is_reserved(0));
  EXPECT_FALSE(t.is_reserved(2));

  // A normal waiter is woken by a normal put, never by a reserved one.
  Rec rn, rr;
  TagWaiter wn, wr;
  wn.cb = wr.cb = record;
  wn.ctx = &rn;
  wr.ctx = &rr;
  int tag;
  ASSERT_EQ(t.get_wait(&wn, 0, &tag), -EINPROGRESS);
  ASSERT_EQ(t.get_wait(&wr, kTagReserved, &tag), -EINPROGRESS);
  t.put(static_cast<unsigned>(r0));
  EXPECT_TRUE(rn.calls.empty());
  ASSERT_EQ(rr.calls.size(), 1u);
  EXPECT_EQ(rr.calls[0].first, r0);
  t.put(5);
  ASSERT_EQ(rn.calls.size(), 1u);
  EXPECT_EQ(rn.calls[0].first, 5);
  for (int x : normal) t.put(static_cast<unsigned>(x));
  t.put(static_cast<unsigned>(r0));
  t.put(static_cast<unsigned>(r1));
  EXPECT_EQ(t.busy(), 0u);
  EXPECT_TRUE(t.check_invariants());
}

TEST(Tags, NoReserved) {
  Tags t;
  ASSERT_EQ(t.init(4, 0), 0);
  EXPECT_EQ(t.get(kTagReserved), -1);
  int a = t.get();
  EXPECT_GE(a, 0);
  EXPECT_LT(a, 4);
  t.put(static_cast<unsigned>(a));
}

}  // namespace
}  // namespace sgv
