// slots_test.cpp - tag sets of command slots: layout, private area, reserved
// slots, waiters, and the shared slot pools keyed by rounded stride.
#include "sgv/slots.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

namespace sgv {
namespace {

std::unique_ptr<TagSet> make(const TagSetOptions& o) {
  std::unique_ptr<TagSet> ts;
  EXPECT_EQ(TagSet::create(o, &ts), 0);
  return ts;
}

TEST(TagSet, LayoutIsCacheAlignedAndRegionsDoNotOverlap) {
  TagSetOptions o;
  o.depth = 32;
  o.reserved = 2;
  o.priv_size = 200;
  auto ts = make(o);
  ASSERT_TRUE(ts);
  EXPECT_EQ(ts->total(), 34u);
  EXPECT_EQ(ts->stride() % kCacheLine, 0u);
  EXPECT_EQ(ts->stride() & (ts->stride() - 1), 0u);  // shared pool: power of two
  EXPECT_GE(ts->stride(), TagSet::slot_bytes(200, kDefaultInlineSegs));
  for (unsigned t = 0; t < ts->total(); ++t) {
    Slot* s = ts->slot(t);
    auto a = reinterpret_cast<uintptr_t>(s);
    EXPECT_EQ(a % kCacheLine, 0u);
    EXPECT_EQ(s->tag(), t);
    EXPECT_EQ(s->tag_set(), ts.get());
    EXPECT_EQ(s->reserved(), t < 2);
    EXPECT_EQ(s->inline_sg_cap(), kDefaultInlineSegs);
    auto sense = reinterpret_cast<uintptr_t>(s->sense());
    auto sg = reinterpret_cast<uintptr_t>(s->inline_sg());
    auto priv = reinterpret_cast<uintptr_t>(s->priv_raw());
    EXPECT_EQ(sense, a + sizeof(Slot));
    EXPECT_GE(sg, sense + kSenseSize);
    EXPECT_EQ(sg % alignof(Seg), 0u);
    EXPECT_GE(priv, sg + kDefaultInlineSegs * sizeof(Seg));
    EXPECT_EQ(priv % kCacheLine, 0u);
    EXPECT_LE(priv + 200, a + ts->stride());
    EXPECT_EQ(ts->slot_of(s->priv_raw()), s);
    EXPECT_EQ(ts->slot_of(reinterpret_cast<uint8_t*>(s->priv_raw()) + 199), s);
  }
  // 64 KiB of 4 KiB pages fits the inline table without chaining.
  EXPECT_GE(kDefaultInlineSegs * 4096u, 65536u);
}

TEST(TagSet, WritesToOneSlotNeverTouchAnother) {
  TagSetOptions o;
  o.depth = 8;
  o.priv_size = 100;
  auto ts = make(o);
  ASSERT_TRUE(ts);
  std::vector<Slot*> all;
  for (unsigned i = 0; i < 8; ++i) all.push_back(ts->get());
  for (Slot* s : all) {
    std::memset(s->sense(), 0xA0 + static_cast<int>(s->tag()), kSenseSize);
    for (unsigned i = 0; i < s->inline_sg_cap(); ++i) s->inline_sg()[i] = Seg{s, s->tag()};
    std::memset(s->priv_raw(), 0x10 + static_cast<int>(s->tag()), 100);
  }
  for (Slot* s : all) {
    for (size_t i = 0; i < kSenseSize; ++i) ASSERT_EQ(s->sense()[i], 0xA0 + s->tag());
    for (unsigned i = 0; i < s->inline_sg_cap(); ++i) ASSERT_EQ(s->inline_sg()[i].len, s->tag());
    auto* p = static_cast<uint8_t*>(s->priv_raw());
    for (size_t i = 0; i < 100; ++i) ASSERT_EQ(p[i], 0x10 + s->tag());
    EXPECT_EQ(s->tag_set(), ts.get());  // header intact
  }
  for (Slot* s : all) ts->put(s);
}

struct Priv {
  int magic;
  int constructed;
  char state[40];
};

void init_priv(Slot* s, void* ctx) {
  auto* p = new (s->priv_raw()) Priv{};
  p->magic = 0x5109;
  p->constructed = 1;
  ++*static_cast<int*>(ctx);
}
void exit_priv(Slot* s, void* ctx) {
  s->priv<Priv>()->~Priv();
  --*static_cast<int*>(ctx);
}

TEST(TagSet, PrivateAreaIsTypedAndInitialisedOncePerSlot) {
  int live = 0;
  {
    TagSetOptions o;
    o.depth = 16;
    o.reserved = 1;
    o.priv_size = sizeof(Priv);
    o.init_slot = init_priv;
    o.exit_slot = exit_priv;
    o.ctx = &live;
    auto ts = make(o);
    ASSERT_TRUE(ts);
    EXPECT_EQ(live, 17);
    for (int round = 0; round < 3; ++round) {
      Slot* s = ts->get();
      ASSERT_NE(s, nullptr);
      EXPECT_EQ(s->priv<Priv>()->magic, 0x5109);
      s->priv<Priv>()->constructed++;
      ts->put(s);
    }
    EXPECT_EQ(live, 17);  // not per command
  }
  EXPECT_EQ(live, 0);
}

TEST(TagSet, GetResetsCommandHeaderFields) {
  TagSetOptions o;
  o.depth = 1;
  auto ts = make(o);
  ASSERT_TRUE(ts);
  Slot* s = ts->get();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->sg, s->inline_sg());
  EXPECT_EQ(s->nsg, 0u);
  EXPECT_EQ(s->sense_len, 0);
  Seg other[2];
  s->sg = other;
  s->nsg = 2;
  s->sense_len = 18;
  s->user = 77;
  ts->put(s);
  s = ts->get();
  EXPECT_EQ(s->sg, s->inline_sg());
  EXPECT_EQ(s->nsg, 0u);
  EXPECT_EQ(s->sense_len, 0);
  EXPECT_EQ(s->user, 77u);  // the owner's, kept
  EXPECT_EQ(ts->get(), nullptr);
  put(s);
}

TEST(TagSet, ReservedSlotsSurviveExhaustionOfNormalOnes) {
  TagSetOptions o;
  o.depth = 4;
  o.reserved = 1;
  auto ts = make(o);
  ASSERT_TRUE(ts);
  std::vector<Slot*> v;
  while (Slot* s = ts->get()) v.push_back(s);
  EXPECT_EQ(v.size(), 4u);
  Slot* tmf = ts->get(kTagReserved);
  ASSERT_NE(tmf, nullptr);
  EXPECT_TRUE(tmf->reserved());
  EXPECT_EQ(ts->get(kTagReserved), nullptr);
  EXPECT_EQ(ts->busy(), 5u);
  EXPECT_TRUE(ts->check_invariants());
  ts->put(tmf);
  for (Slot* s : v) ts->put(s);
  EXPECT_EQ(ts->busy(), 0u);
  EXPECT_TRUE(ts->check_invariants());
}

struct WaitRec {
  std::vector<Slot*> got;
  std::vector<int> status;
};
void on_slot(SlotWaiter* w, Slot* s, int status) {
  auto* r = static_cast<WaitRec*>(w->ctx);
  r->got.push_back(s);
  r->status.push_back(status);
}

TEST(TagSet, WaitersGetSlotsInFifoOrderReset) {
  WaitRec r1, r2, r3;
  SlotWaiter w1, w2, w3;
  w1.cb = w2.cb = w3.cb = on_slot;
  w1.ctx = &r1;
  w2.ctx = &r2;
  w3.ctx = &r3;
  TagSetOptions o;
  o.depth = 1;
  auto ts = make(o);
  ASSERT_TRUE(ts);
  Slot* s = nullptr;
  ASSERT_EQ(ts->get_wait(&w1, 0, &s), 0);  // free: granted at once, no callback
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(r1.got.empty());
  Slot* none = nullptr;
  EXPECT_EQ(ts->get_wait(&w2, 0, &none), -EINPROGRESS);
  EXPECT_EQ(ts->get_wait(&w3, 0, &none), -EINPROGRESS);
  EXPECT_EQ(none, nullptr);
  EXPECT_EQ(ts->stats().waiting, 2u);
  s->sense_len = 5;
  s->nsg = 3;
  ts->put(s);
  ASSERT_EQ(r2.got.size(), 1u);  // the oldest waiter first
  EXPECT_EQ(r2.got[0], s);
  EXPECT_EQ(r2.status[0], 0);
  EXPECT_EQ(s->sense_len, 0);  // handed over reset, like get()
  EXPECT_EQ(s->nsg, 0u);
  EXPECT_TRUE(r3.got.empty());
  EXPECT_EQ(ts->busy(), 1u);
  ts->put(r2.got[0]);
  ASSERT_EQ(r3.got.size(), 1u);
  ts->put(r3.got[0]);
  EXPECT_EQ(ts->busy(), 0u);
  EXPECT_EQ(ts->stats().waits, 2u);
  EXPECT_TRUE(ts->check_invariants());
}

TEST(TagSet, CancelledWaiterIsSkipped) {
  WaitRec r2, r3;
  SlotWaiter w2, w3;
  w2.cb = w3.cb = on_slot;
  w2.ctx = &r2;
  w3.ctx = &r3;
  TagSetOptions o;
  o.depth = 1;
  auto ts = make(o);
  ASSERT_TRUE(ts);
  Slot* s = ts->get();
  Slot* none = nullptr;
  EXPECT_EQ(ts->get_wait(&w2, 0, &none), -EINPROGRESS);
  EXPECT_EQ(ts->get_wait(&w3, 0, &none), -EINPROGRESS);
  EXPECT_TRUE(ts->check_invariants());  // two queued
  EXPECT_TRUE(ts->cancel(&w2));
  EXPECT_FALSE(ts->cancel(&w2));
  EXPECT_TRUE(ts->check_invariants());
  ts->put(s);
  EXPECT_TRUE(r2.got.empty());
  ASSERT_EQ(r3.got.size(), 1u);
  EXPECT_FALSE(ts->cancel(&w3));  // granted already
  ts->put(r3.got[0]);
}

TEST(TagSet, DestructionCancelsQueuedWaiter) {
  // A tag set must be idle to die, so the queued waiter is one on an empty
  // reserved class (no reserved slots), which nothing can ever grant.
  WaitRec r;
  SlotWaiter w;
  w.cb = on_slot;
  w.ctx = &r;
  {
    TagSetOptions o;
    o.depth = 2;
    o.reserved = 0;
    auto ts = make(o);
    ASSERT_TRUE(ts);
    Slot* none = nullptr;
    EXPECT_EQ(ts->get_wait(&w, kTagReserved, &none), -EINPROGRESS);
    EXPECT_TRUE(r.got.empty());
  }
  ASSERT_EQ(r.status.size(), 1u);
  EXPECT_EQ(r.status[0], -ECANCELED);
  EXPECT_EQ(r.got[0], nullptr);
}

TEST(SlotPool, SameRoundedStrideSharesOnePoolAndReusesRegions) {
  TagSetOptions a;
  a.depth = 64;
  a.priv_size = 300;  // 576 + 300 -> 1024
  TagSetOptions b = a;
  b.priv_size = 400;  // 976 -> 1024 as well
  TagSetOptions c = a;
  c.priv_size = 600;  // 1176 -> 2048
  size_t before = SlotPool::registry_size();
  auto ta = make(a);
  auto tb = make(b);
  auto tc = make(c);
  ASSERT_TRUE(ta && tb && tc);
  EXPECT_EQ(ta->stride(), 1024u);
  EXPECT_EQ(ta->pool(), tb->pool());
  EXPECT_NE(ta->pool(), tc->pool());
  EXPECT_EQ(SlotPool::registry_size(), before + 2);
  SlotPool* p = ta->pool();
  EXPECT_EQ(p->stats().users, 2u);
  EXPECT_EQ(p->stats().regions_mapped, 2u);

  // A slot written in the dying tag set is zero when the region is reused.
  Slot* s = ta->get();
  std::memset(s->priv_raw(), 0xEE, 300);
  std::memset(s->sense(), 0xEE, kSenseSize);
  ta->put(s);
  uint8_t* old_base = reinterpret_cast<uint8_t*>(ta->slot(0));
  ta.reset();
  EXPECT_EQ(p->stats().users, 1u);
  EXPECT_GT(p->stats().free_bytes, 0u);
  auto td = make(a);
  ASSERT_TRUE(td);
  EXPECT_EQ(td->pool(), p);
  EXPECT_EQ(p->stats().regions_reused, 1u);
  EXPECT_EQ(p->stats().regions_mapped, 2u);
  EXPECT_EQ(reinterpret_cast<uint8_t*>(td->slot(0)), old_base);
  for (unsigned t = 0; t < td->total(); ++t) {
    auto* pr = static_cast<uint8_t*>(td->slot(t)->priv_raw());
    for (size_t i = 0; i < 300; ++i) ASSERT_EQ(pr[i], 0) << t;
    for (size_t i = 0; i < kSenseSize; ++i) ASSERT_EQ(td->slot(t)->sense()[i], 0) << t;
    EXPECT_EQ(td->slot(t)->tag_set(), td.get());
  }
  td.reset();
  tb.reset();
  tc.reset();
  EXPECT_EQ(SlotPool::registry_size(), before);  // last user unmaps
}

TEST(SlotPool, UnsharedUsesExactStride) {
  TagSetOptions o;
  o.depth = 3;
  o.priv_size = 300;
  o.share_pool = false;
  auto ts = make(o);
  ASSERT_TRUE(ts);
  EXPECT_EQ(ts->pool(), nullptr);
  EXPECT_EQ(ts->stride(), (TagSet::slot_bytes(300, kDefaultInlineSegs) + 63) / 64 * 64);
}

TEST(TagSet, RejectsBadOptions) {
  std::unique_ptr<TagSet> ts;
  TagSetOptions o;
  o.depth = 0;
  EXPECT_EQ(TagSet::create(o, &ts), -EINVAL);
  o.depth = 4;
  o.priv_size = size_t{1} << 40;
  EXPECT_EQ(TagSet::create(o, &ts), -EINVAL);
  EXPECT_FALSE(ts);
}

}  // namespace
}  // namespace sgv
