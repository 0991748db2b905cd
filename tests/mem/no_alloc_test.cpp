// no_alloc_test.cpp - the data-path promise "no heap allocation per command
// in steady state", checked by counting: this executable interposes malloc,
// calloc, realloc, the aligned allocators and every global operator new, and
// a warm loop of SGV vector alloc/free, slot get/put, tag waits and cursor
// windows must make zero calls.
//
// The interposers forward to glibc's __libc_* entry points. Sanitizer builds
// bring their own malloc interposition, so there the test skips (and the
// hooks are not compiled).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>
#include <vector>

#include "sgv/cache.hpp"
#include "sgv/cursor.hpp"
#include "sgv/slots.hpp"

#if !defined(SGV_ASAN) && !defined(SGV_TSAN)
#define SGV_COUNT_ALLOCS 1
#endif

namespace {
// counting: set by the test around the measured loop; allocs: calls seen.
// Relaxed: read by the same thread after the loop, or after join().
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocs{0};

inline void note() {
  if (g_counting.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

#ifdef SGV_COUNT_ALLOCS
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);

void* malloc(size_t n) {
  note();
  return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
  note();
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  note();
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
void* memalign(size_t a, size_t n) {
  note();
  return __libc_memalign(a, n);
}
void* aligned_alloc(size_t a, size_t n) {
  note();
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, size_t a, size_t n) {
  note();
  void* p = __libc_memalign(a, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
}

void* operator new(size_t n) {
  note();
  void* p = __libc_malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
void* operator new[](size_t n) { return operator new(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  note();
  return __libc_malloc(n ? n : 1);
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return operator new(n, std::nothrow); }
void* operator new(size_t n, std::align_val_t a) {
  note();
  void* p = __libc_memalign(static_cast<size_t>(a), n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
void* operator new[](size_t n, std::align_val_t a) { return operator new(n, a); }
void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  note();
  return __libc_memalign(static_cast<size_t>(a), n ? n : 1);
}
void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return operator new(n, a, std::nothrow);
}
void operator delete(void* p) noexcept { __libc_free(p); }
void operator delete[](void* p) noexcept { __libc_free(p); }
void operator delete(void* p, size_t) noexcept { __libc_free(p); }
void operator delete[](void* p, size_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { __libc_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { __libc_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { __libc_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { __libc_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { __libc_free(p); }
#endif

namespace sgv {
namespace {

#ifndef SGV_COUNT_ALLOCS
#define SKIP_UNDER_SANITIZERS() GTEST_SKIP() << "sanitizers interpose malloc themselves"
#else
#define SKIP_UNDER_SANITIZERS() (void)0
#endif

struct Counting {
  Counting() {
    g_allocs.store(0);
    g_counting.store(true);
  }
  long stop() {
    g_counting.store(false);
    return g_allocs.load();
  }
};

TEST(NoAlloc, HookSeesAllocations) {
  SKIP_UNDER_SANITIZERS();
  // The counter must work, or a zero below would prove nothing.
  Counting c;
  void* volatile p = std::malloc(10);
  std::free(p);
  auto* q = new int(3);
  asm volatile("" : : "r"(q) : "memory");  // escape: clang may elide new/delete pairs
  delete q;
  EXPECT_EQ(c.stop(), 2);
}

const size_t kSizes[] = {512, 4096, 8192, 65536, 20 * 4096, 256 * 1024, 1024 * 1024};

TEST(NoAlloc, WarmSgvVectorsAllocateNothing) {
  SKIP_UNDER_SANITIZERS();
  PoolOptions o;
  o.purge_interval_ms = -1;  // no maintenance thread racing the count
  Pool pool(o);
  Budget lun(nullptr, 64u << 20, 0, "lun");
  Budget sess(&lun, 32u << 20, 0, "sess");
  auto cycle = [&] {
    Vec* held[8];
    for (size_t s : kSizes) {
      for (int i = 0; i < 8; ++i) ASSERT_EQ(pool.alloc(s, 0, i % 2 ? &sess : nullptr, &held[i]), 0);
      for (int i = 0; i < 8; ++i) {
        ASSERT_EQ(held[i]->len(), s);
        held[i]->ref();  // a second holder, e.g. an in-flight zero-copy send
        held[i]->release();
        pool.free(held[i]);
      }
    }
  };
  for (int i = 0; i < 3; ++i) cycle();  // warm: thread cache, every order built
  Counting c;
  for (int i = 0; i < 200; ++i) cycle();
  EXPECT_EQ(c.stop(), 0);
}

TEST(NoAlloc, CrossThreadFreesAllocateNothing) {
  SKIP_UNDER_SANITIZERS();
  PoolOptions o;
  o.purge_interval_ms = -1;
  Pool pool(o);
  // A single-producer ring to the freeing thread (a completion thread).
  constexpr unsigned kRing = 64;
  std::atomic<Vec*> ring[kRing];
  for (auto& r : ring) r.store(nullptr);
  std::atomic<bool> stop{false};
  std::thread freer([&] {
    unsigned t = 0;
    for (;;) {
      // acquire pairs with the producer's release store of the vector.
      Vec* v = ring[t % kRing].exchange(nullptr, std::memory_order_acquire);
      if (v) {
        pool.free(v);
        ++t;
      } else if (stop.load(std::memory_order_acquire)) {
        break;
      } else {
        std::this_thread::yield();
      }
    }
  });
  unsigned h = 0;
  auto run = [&](int n) {
    for (int i = 0; i < n; ++i) {
      Vec* v = nullptr;
      ASSERT_EQ(pool.alloc(kSizes[i % 7], 0, nullptr, &v), 0);
      while (ring[h % kRing].load(std::memory_order_acquire) != nullptr) std::this_thread::yield();
      ring[h++ % kRing].store(v, std::memory_order_release);
    }
  };
  // Warm: enough vectors of every size that no thread's stack (<= 32 per
  // order), the ring (64) and the shared pool together can run dry; then a
  // little cross-thread traffic to create the freeing thread's cache.
  {
    std::vector<Vec*> stock;
    for (size_t s : kSizes)
      for (int i = 0; i < 160; ++i) {
        Vec* v = nullptr;
        ASSERT_EQ(pool.alloc(s, 0, nullptr, &v), 0);
        stock.push_back(v);
      }
    for (Vec* v : stock) pool.free(v);
  }
  run(2000);
  Counting c;
  run(5000);
  for (auto& r : ring)
    while (r.load(std::memory_order_acquire) != nullptr) std::this_thread::yield();
  long n = c.stop();
  stop.store(true, std::memory_order_release);
  freer.join();
  EXPECT_EQ(n, 0);
}

struct Waited {
  SlotWaiter w;
  Slot* got = nullptr;
};
void on_slot(SlotWaiter* w, Slot* s, int) { static_cast<Waited*>(w->ctx)->got = s; }

TEST(NoAlloc, SlotsTagsAndCursorsAllocateNothing) {
  SKIP_UNDER_SANITIZERS();
  TagSetOptions o;
  o.depth = 8;
  o.reserved = 1;
  o.priv_size = 512;
  std::unique_ptr<TagSet> ts;
  ASSERT_EQ(TagSet::create(o, &ts), 0);
  std::vector<uint8_t> a(64 * 1024), b(64 * 1024);
  Seg segs[16];
  for (int i = 0; i < 16; ++i) segs[i] = Seg{a.data() + i * 4096, 4096};
  Waited wt;
  wt.w.cb = on_slot;
  wt.w.ctx = &wt;
  auto cycle = [&] {
    Slot* held[8];
    for (int i = 0; i < 8; ++i) held[i] = ts->get();
    Slot* tmf = ts->get(kTagReserved);
    ASSERT_NE(tmf, nullptr);
    Slot* none = nullptr;
    ASSERT_EQ(ts->get_wait(&wt.w, 0, &none), -EINPROGRESS);  // full: queue
    ts->put(held[3]);                                       // hands it over
    ASSERT_EQ(wt.got, held[3]);
    wt.got = nullptr;
    for (int i = 0; i < 8; ++i) {
      Slot* s = held[i];
      for (int k = 0; k < 16; ++k) s->inline_sg()[k] = segs[k];
      s->nsg = 16;
      SegWindow win(s->segs(), 1000, 60000, 8192);
      Seg iov[8];
      size_t bytes, n;
      while ((n = win.next(iov, 8, &bytes)) != 0) copy_from_buf(SegSpan(iov, n), 0, b.data(), bytes);
      copy_to_buf(s->segs(), 7, b.data(), 5000);
      ts->put(s);
    }
    ts->put(tmf);
  };
  cycle();
  Counting c;
  for (int i = 0; i < 500; ++i) cycle();
  EXPECT_EQ(c.stop(), 0);
}

}  // namespace
}  // namespace sgv
