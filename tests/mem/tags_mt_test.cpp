// tags_mt_test.cpp - tags and slots raced across threads: no tag is ever
// owned twice, frees on another thread are seen, and no waiter is lost (a
// lost wake-up would leave a waiter queued forever and the test hanging on
// its final count). Runs under TSan in CI (label "concurrency").
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "sgv/slots.hpp"
#include "sgv/tags.hpp"

namespace sgv {
namespace {

constexpr int kThreads = 3;
#if defined(SGV_TSAN)
constexpr int kIters = 3000;
#else
constexpr int kIters = 30000;
#endif

TEST(TagsMt, NoTagOwnedTwiceUnderContention) {
  constexpr unsigned kDepth = 24;
  TagQueue q;
  ASSERT_EQ(q.init(kDepth), 0);
  std::atomic<int> owner[kDepth];
  for (auto& o : owner) o.store(-1);
  std::atomic<bool> bad{false};
  std::vector<std::thread> th;
  for (int t = 0; t < kThreads; ++t)
    th.emplace_back([&, t] {
      std::vector<int> held;
      for (int i = 0; i < kIters; ++i) {
        int tag = q.get();
        if (tag >= 0) {
          if (owner[tag].exchange(t) != -1) bad = true;
          held.push_back(tag);
        }
        if (held.size() > 6 || (tag < 0 && !held.empty())) {
          int x = held.front();
          held.erase(held.begin());
          owner[x].store(-1);
          q.put(static_cast<unsigned>(x));
        }
      }
      for (int x : held) {
        owner[x].store(-1);
        q.put(static_cast<unsigned>(x));
      }
    });
  for (auto& x : th) x.join();
  EXPECT_FALSE(bad.load());
  EXPECT_EQ(q.busy(), 0u);
  EXPECT_TRUE(q.check_invariants());
}

// Tags freed on one thread, taken on another (the cross-thread completion
// a target has when a backend thread finishes a command).
TEST(TagsMt, CrossThreadFreesAreReused) {
  constexpr unsigned kDepth = 16;
  TagQueue q;
  ASSERT_EQ(q.init(kDepth), 0);
  std::atomic<int> ring[64];
  for (auto& r : ring) r.store(-1);
  std::atomic<unsigned> head{0}, tail{0};
  std::thread consumer([&] {
    int done = 0;
    while (done < kIters) {
      unsigned t = tail.load(std::memory_order_acquire);
      if (t == head.load(std::memory_order_acquire)) {
        std::this_thread::yield();
        continue;
      }
      int tag = ring[t % 64].load(std::memory_order_relaxed);
      tail.store(t + 1, std::memory_order_release);
      q.put(static_cast<unsigned>(tag));
      ++done;
    }
  });
  int produced = 0;
  while (produced < kIters) {
    if (head.load(std::memory_order_relaxed) - tail.load(std::memory_order_acquire) >= 64) {
      std::this_thread::yield();
      continue;
    }
    int tag = q.get();
    if (tag < 0) {
      std::this_thread::yield();
      continue;
    }
    unsigned h = head.load(std::memory_order_relaxed);
    ring[h % 64].store(tag, std::memory_order_relaxed);
    head.store(h + 1, std::memory_order_release);
    ++produced;
  }
  consumer.join();
  EXPECT_EQ(q.busy(), 0u);
}

// Every thread takes slots with get_wait; a waiter's callback completes the
// "command" by putting the slot back. With a tiny depth most takes queue, so
// a lost wake-up shows as a grant count that never reaches the total.
struct Cmd {
  SlotWaiter w;
  std::atomic<int>* granted;
};

void on_grant(SlotWaiter* w, Slot* s, int status) {
  auto* c = static_cast<Cmd*>(w->ctx);
  ASSERT_EQ(status, 0);
  ASSERT_NE(s, nullptr);
  c->granted->fetch_add(1, std::memory_order_relaxed);
  s->tag_set()->put(s);
}

TEST(TagsMt, NoLostWakeups) {
  TagSetOptions o;
  o.depth = 2;
  std::unique_ptr<TagSet> ts;
  ASSERT_EQ(TagSet::create(o, &ts), 0);
  constexpr int kPer = kIters / 10;
  std::atomic<int> granted{0};
  std::vector<std::thread> th;
  for (int t = 0; t < kThreads; ++t)
    th.emplace_back([&] {
      // A waiter must stay put until its callback ran: one per command,
      // reused only after the grant (the counter says when).
      std::vector<Cmd> cmds(kPer);
      for (int i = 0; i < kPer; ++i) {
        cmds[i].w.cb = on_grant;
        cmds[i].w.ctx = &cmds[i];
        cmds[i].granted = &granted;
        Slot* s = nullptr;
        int rc = ts->get_wait(&cmds[i].w, 0, &s);
        if (rc == 0) {
          granted.fetch_add(1, std::memory_order_relaxed);
          ts->put(s);
        } else {
          ASSERT_EQ(rc, -EINPROGRESS);
        }
      }
      // Keep cmds alive until everything was granted.
      while (granted.load() < kThreads * kPer) std::this_thread::yield();
    });
  for (auto& x : th) x.join();
  EXPECT_EQ(granted.load(), kThreads * kPer);
  EXPECT_EQ(ts->busy(), 0u);
  EXPECT_EQ(ts->stats().waiting, 0u);
  EXPECT_TRUE(ts->check_invariants());
}

}  // namespace
}  // namespace sgv
