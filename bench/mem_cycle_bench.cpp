// mem_cycle_bench.cpp - the command-buffer cycle, the libsgv acceptance
// benchmark: take a buffer of S bytes, write one byte per 4 KiB page (what a
// command's data does to fresh memory), give it back. Built once per
// subject (see bench/CMakeLists.txt), because a process has one malloc:
//   SGV_BENCH_SGV     the SGV cache and the ideal floor (a per-size free list
//                     of pre-faulted buffers, nothing else)
//   SGV_BENCH_MALLOC  whatever malloc this executable is linked with (glibc,
//                     glibc with a raised mmap threshold, jemalloc, tcmalloc,
//                     mimalloc); SGV_BENCH_MALLOPT raises the thresholds.
//
// Streams: one size S per run (4K, 64K, 256K, 1M) or a mixed stream (70% 4K,
// 20% 64K, 10% 1M, 64 outstanding); on 1 thread, or 2 threads where a
// second thread frees (through a 64-deep ring) what the first allocated.
// Plus the bare alloc+free pair, nothing touched. Counters: minflt/op (minor
// page faults per operation, process-wide getrusage delta) next to time.
//
// Time is CPU time, not wall time: the machine this runs on is shared and
// often overloaded, and wall time then measures the neighbours. 1-thread
// runs use the thread's CPU time; 2-thread runs the whole process's (both
// threads, including the time either spends spinning for the other: a
// pipeline of two busy threads, so about twice the slower side's time per
// operation). The hand-off is a lock-free ring with spin-then-yield waits,
// the same code for every subject, so no futex wake or sleep is measured;
// 2-thread runs also report work_ns/op, that CPU time minus the time both
// threads spent waiting for each other (clocked per wait), which is what
// run_mem.sh tabulates for them.
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include <atomic>
#include <bit>
#include <algorithm>
#include <span>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#ifdef SGV_BENCH_SGV
#include "sgv/cache.hpp"
#endif

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kSizes[] = {4096, 65536, 262144, 1048576};
constexpr unsigned kOutstanding = 64;

long minflt() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

// The mixed stream: a fixed pseudo-random sequence, the same for every
// subject (70% 4 KiB, 20% 64 KiB, 10% 1 MiB).
const std::vector<uint32_t>& mixed_sizes() {
  static const std::vector<uint32_t> v = [] {
    std::vector<uint32_t> s(4096);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (auto& e : s) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      unsigned r = static_cast<unsigned>((x >> 33) % 10);
      e = r < 7 ? 4096 : (r < 9 ? 65536 : 1048576);
    }
    return s;
  }();
  return v;
}

// Waiting in the 2-thread runs: spin briefly, then yield the CPU, so a
// thread waiting for its peer never sleeps in the kernel (a futex wake costs
// more than any allocator being measured) and never starves the peer on a
// loaded box. Every subject waits through this same code.
inline void backoff(unsigned* spins) {
  if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  } else {
    *spins = 0;
    std::this_thread::yield();
  }
}

int64_t cpu_ns(clockid_t c) {
  timespec ts;
  clock_gettime(c, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Lock-free single-producer single-consumer ring carrying handles to the
// freeing thread. head is written by the producer only, tail by the
// consumer only; each release store pairs with the other side's acquire
// load. Neither side ever blocks in the kernel. The CPU time each side
// spends waiting for the other (spinning and yielding, which on a loaded
// box depends on the scheduler, not on the allocator) is clocked per wait
// and reported apart, so the 2-thread figure can be the allocator's work.
struct Ring {
  static constexpr unsigned kCap = kOutstanding;
  uintptr_t slot[kCap];
  alignas(64) std::atomic<unsigned> head{0};
  alignas(64) std::atomic<unsigned> tail{0};
  alignas(64) std::atomic<int64_t> wait_ns{0};  // both sides' waiting, thread CPU ns
  void waited(int64_t t0) { wait_ns.fetch_add(cpu_ns(CLOCK_THREAD_CPUTIME_ID) - t0, std::memory_order_relaxed); }
  void push(uintptr_t h) {
    unsigned hd = head.load(std::memory_order_relaxed);
    if (hd - tail.load(std::memory_order_acquire) == kCap) {
      int64_t t0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
      for (unsigned spins = 0; hd - tail.load(std::memory_order_acquire) == kCap;) backoff(&spins);
      waited(t0);
    }
    slot[hd % kCap] = h;
    head.store(hd + 1, std::memory_order_release);
  }
  uintptr_t pop() {
    unsigned t = tail.load(std::memory_order_relaxed);
    if (t == head.load(std::memory_order_acquire)) {
      int64_t t0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
      for (unsigned spins = 0; t == head.load(std::memory_order_acquire);) backoff(&spins);
      waited(t0);
    }
    uintptr_t h = slot[t % kCap];
    tail.store(t + 1, std::memory_order_release);
    return h;
  }
  void close() { push(0); }  // 0: no more handles
};

inline void touch_flat(void* p, size_t n) {
  auto* b = static_cast<volatile uint8_t*>(p);
  for (size_t off = 0; off < n; off += kPage) b[off] = 1;
}

#ifdef SGV_BENCH_MALLOC
// ---- malloc (whichever this executable links) -------------------------------
struct MallocSubject {
  uintptr_t get(size_t n) {
    void* p = std::malloc(n);
    if (!p) std::abort();
    return reinterpret_cast<uintptr_t>(p);
  }
  static void touch(uintptr_t h, size_t n) { touch_flat(reinterpret_cast<void*>(h), n); }
  static uintptr_t addr(uintptr_t h) { return h; }
  void put(uintptr_t h) { std::free(reinterpret_cast<void*>(h)); }
  void set_cross_thread(bool) {}
};
#endif

#ifdef SGV_BENCH_SGV
// ---- the SGV cache ------------------------------------------------------------
struct SgvSubject {
  sgv::Pool* pool;
  uintptr_t get(size_t n) {
    sgv::Vec* v = nullptr;
    if (pool->alloc(n, 0, nullptr, &v) != 0) std::abort();
    return reinterpret_cast<uintptr_t>(v);
  }
  static void touch(uintptr_t h, size_t) {
    for (const sgv::Seg& s : reinterpret_cast<sgv::Vec*>(h)->segs()) touch_flat(s.addr, s.len);
  }
  static uintptr_t addr(uintptr_t h) {
    return reinterpret_cast<uintptr_t>(reinterpret_cast<sgv::Vec*>(h)->segs()[0].addr);
  }
  void put(uintptr_t h) { reinterpret_cast<sgv::Vec*>(h)->release(); }
  void set_cross_thread(bool) {}
};

sgv::Pool& bench_pool() {
  static sgv::Pool* p = [] {
    sgv::PoolOptions o;
    o.name = "bench";
    o.purge_interval_ms = -1;  // steady state: nothing purged under us
    return new sgv::Pool(o);
  }();
  return *p;
}

// ---- the ideal floor: a per-size free list of pre-faulted buffers ------------
// Handles are buffer | size class (buffers are page aligned). Across threads
// freed buffers come back through one SPSC return ring per class, which the
// allocating thread drains when its list is empty: the cheapest correct
// hand-back there is.
struct IdealSubject {
  static constexpr unsigned kPerClass = 256;
  struct Class {
    std::vector<uintptr_t> free;
    struct Back {
      uintptr_t slot[kPerClass];
      alignas(64) std::atomic<unsigned> head{0};  // consumer thread writes
      alignas(64) std::atomic<unsigned> tail{0};  // allocating thread writes
    } back;
  };
  Class cls[4];
  bool cross = false;

  IdealSubject() {
    for (unsigned c = 0; c < 4; ++c) {
      // Enough for 64 outstanding plus the return ring's slack; the big
      // classes get fewer to keep the footprint near 200 MiB.
      unsigned count = c < 2 ? kPerClass : kPerClass / 2;
      cls[c].free.reserve(kPerClass);
      for (unsigned i = 0; i < count; ++i) cls[c].free.push_back(prefaulted(kSizes[c]) | c);
    }
  }
  static uintptr_t prefaulted(size_t n) {
    void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) std::abort();
    std::memset(p, 0, n);
    return reinterpret_cast<uintptr_t>(p);
  }
  // The allocating side of a return ring: move what came back onto f.
  static void drain(Class::Back& b, std::vector<uintptr_t>& f) {
    unsigned t = b.tail.load(std::memory_order_relaxed);
    unsigned hd = b.head.load(std::memory_order_acquire);  // pairs with give_back's release
    for (; t != hd; ++t) f.push_back(b.slot[t % kPerClass]);
    b.tail.store(t, std::memory_order_release);
  }
  // The freeing side: never full, kPerClass buffers exist per class.
  static void give_back(Class::Back& b, uintptr_t h) {
    unsigned hd = b.head.load(std::memory_order_relaxed);
    b.slot[hd % kPerClass] = h;
    b.head.store(hd + 1, std::memory_order_release);
  }
  static unsigned class_of(size_t n) { return n <= 4096 ? 0 : n <= 65536 ? 1 : n <= 262144 ? 2 : 3; }
  uintptr_t get(size_t n) {
    Class& c = cls[class_of(n)];
    if (c.free.empty()) refill(c);
    uintptr_t h = c.free.back();
    c.free.pop_back();
    return h;
  }
  [[gnu::noinline]] static void refill(Class& c) {
    for (unsigned spins = 0;;) {
      drain(c.back, c.free);
      if (!c.free.empty()) return;
      backoff(&spins);
    }
  }
  static void touch(uintptr_t h, size_t n) { touch_flat(reinterpret_cast<void*>(h & ~uintptr_t{kPage - 1}), n); }
  static uintptr_t addr(uintptr_t h) { return h & ~uintptr_t{kPage - 1}; }
  void put(uintptr_t h) {
    Class& c = cls[h & 3];
    if (!cross) {
      c.free.push_back(h);
      return;
    }
    give_back(c.back, h);
  }
  void set_cross_thread(bool x) { cross = x; }
};

IdealSubject& ideal() {
  static IdealSubject* s = new IdealSubject;
  return *s;
}

// ---- ideal_tls / ideal_vec: the ideal free lists, reached as a cache must ----
// ideal_tls is what every per-thread, per-pool, order-based cache pays on top
// of the ideal floor, and nothing else: the order from the size by one bsr,
// the thread's cache of this pool through a thread_local slot array indexed
// by the pool's slot number and checked against the pool's id, and a free
// list per order in that cache. The free lists are the ideal's (std::vector
// push/pop); no statistics, no purge stamp, no limit, no trim. Handles are
// buffer | order, and put finds the pool in the subject.
// ideal_vec adds what an API that hands out vector objects (Vec*, freed by
// v->release() with no pool argument) must also do: the handle is a small
// header {buffer, pool, order}; touch reads the buffer from it, and put finds
// the pool and the order through it (a dependent load, as SGV's release
// does), instead of from the subject and the handle's low bits.
// A thread without a cache (the freeing thread of the 2-thread runs)
// returns buffers through the ideal's per-order return rings.
constexpr unsigned kIdealOrders = 9;  // 4 KiB .. 1 MiB
struct IdealTlsSlots {
  uint64_t id[64];
  std::vector<uintptr_t>* ord[64];  // the cache: a free list per order
};
thread_local constinit IdealTlsSlots t_ideal_slots{};

template <bool kHeader>
struct IdealTlsSubject {
  struct Hdr {  // ideal_vec's handle
    uintptr_t buf;
    IdealTlsSubject* pool;
    unsigned order;
  };
  uint64_t id;    // as a pool's: never 0, so an empty slot never matches
  unsigned slot;  // as a pool's slot number
  std::vector<uintptr_t> cache[kIdealOrders];  // the one thread cache (the allocating thread's)
  IdealSubject::Class::Back back[kIdealOrders];

  IdealTlsSubject(uint64_t pool_id, unsigned slot_no) : id(pool_id), slot(slot_no) {
    for (unsigned c = 0; c < 4; ++c) {
      unsigned k = order_of(kSizes[c]);
      unsigned count = c < 2 ? IdealSubject::kPerClass : IdealSubject::kPerClass / 2;
      cache[k].reserve(IdealSubject::kPerClass);
      for (unsigned i = 0; i < count; ++i) {
        uintptr_t buf = IdealSubject::prefaulted(kSizes[c]);
        cache[k].push_back(kHeader ? reinterpret_cast<uintptr_t>(new Hdr{buf, this, k}) : buf | k);
      }
    }
  }
  static unsigned order_of(size_t n) {
    return static_cast<unsigned>(std::bit_width(((n - 1) >> 11) | 1) - 1);
  }
  static uintptr_t addr(uintptr_t h) {
    if constexpr (kHeader) return reinterpret_cast<const Hdr*>(h)->buf;
    return h & ~uintptr_t{kPage - 1};
  }
  // Inline like the other subjects' hit paths; misses go out of line.
  [[gnu::always_inline]] uintptr_t get(size_t n) {
    unsigned k = order_of(n);
    IdealTlsSlots& s = t_ideal_slots;
    if (__builtin_expect(k < kIdealOrders && s.id[slot] == id, 1)) {
      std::vector<uintptr_t>& f = s.ord[slot][k];
      if (__builtin_expect(!f.empty(), 1)) {
        uintptr_t h = f.back();
        f.pop_back();
        return h;
      }
    }
    return get_slow(k);
  }
  [[gnu::noinline]] uintptr_t get_slow(unsigned k) {
    if (k >= kIdealOrders) std::abort();
    IdealTlsSlots& s = t_ideal_slots;
    if (s.id[slot] != id) {  // attach: this thread's cache
      s.id[slot] = id;
      s.ord[slot] = cache;
    }
    std::vector<uintptr_t>& f = s.ord[slot][k];
    for (unsigned spins = 0; f.empty();) {
      IdealSubject::drain(back[k], f);
      if (f.empty()) backoff(&spins);
    }
    uintptr_t h = f.back();
    f.pop_back();
    return h;
  }
  static void touch(uintptr_t h, size_t n) { touch_flat(reinterpret_cast<void*>(addr(h)), n); }
  [[gnu::always_inline]] void put(uintptr_t h) {
    IdealTlsSubject* p = this;
    unsigned k;
    if constexpr (kHeader) {
      p = reinterpret_cast<const Hdr*>(h)->pool;
      k = reinterpret_cast<const Hdr*>(h)->order;
    } else {
      k = h & (kPage - 1);
    }
    IdealTlsSlots& s = t_ideal_slots;
    if (__builtin_expect(s.id[p->slot] == p->id, 1)) {
      s.ord[p->slot][k].push_back(h);
      return;
    }
    p->put_slow(h, k);
  }
  [[gnu::noinline]] void put_slow(uintptr_t h, unsigned k) { IdealSubject::give_back(back[k], h); }
  void set_cross_thread(bool) {}
};

IdealTlsSubject<false>& ideal_tls() {
  static auto* s = new IdealTlsSubject<false>(7, 5);
  return *s;
}
IdealTlsSubject<true>& ideal_vec() {
  static auto* s = new IdealTlsSubject<true>(8, 6);
  return *s;
}
#endif

// ---- the benchmark bodies, generic over the subject ---------------------------

template <class S>
void finish(benchmark::State& st, long flt0) {
  st.counters["minflt/op"] = benchmark::Counter(static_cast<double>(minflt() - flt0), benchmark::Counter::kAvgIterations);
}

// One size, one thread: take, touch, give back.
template <class S>
void cycle_1t(benchmark::State& st, S* s, size_t n) {
  for (int i = 0; i < 256; ++i) {  // warm: steady state is what we measure
    uintptr_t h = s->get(n);
    S::touch(h, n);
    s->put(h);
  }
  long f0 = minflt();
  for (auto _ : st) {
    uintptr_t h = s->get(n);
    S::touch(h, n);
    s->put(h);
  }
  finish<S>(st, f0);
  // Untimed: how many distinct buffers 64 more cycles go through (1 = the
  // subject hands back the buffer just freed every time, so the touch hits
  // the same cache lines and TLB entries; more = it cycles through several).
  uintptr_t seen[64];
  for (uintptr_t& a : seen) {
    uintptr_t h = s->get(n);
    a = S::addr(h);
    S::touch(h, n);
    s->put(h);
  }
  // Where in its first page the buffer starts: the touches (byte 0 of every
  // 4 KiB from there) all fall in the cache sets of that page offset.
  st.counters["page_off"] = static_cast<double>(seen[0] & (kPage - 1));
  std::sort(std::begin(seen), std::end(seen));
  st.counters["bufs"] = static_cast<double>(std::unique(std::begin(seen), std::end(seen)) - std::begin(seen));
}

// Mixed stream, one thread, 64 outstanding.
template <class S>
void mixed_1t(benchmark::State& st, S* s) {
  const auto& sizes = mixed_sizes();
  uintptr_t held[kOutstanding] = {};
  size_t i = 0;
  auto step = [&] {
    uintptr_t& slot = held[i % kOutstanding];
    if (slot) s->put(slot);
    size_t n = sizes[i % sizes.size()];
    slot = s->get(n);
    S::touch(slot, n);
    ++i;
  };
  for (int w = 0; w < 4096; ++w) step();
  long f0 = minflt();
  for (auto _ : st) step();
  finish<S>(st, f0);
  for (uintptr_t h : held)
    if (h) s->put(h);
}

// Two threads: this one takes and touches, the other gives back. n == 0
// means the mixed stream.
// Peak warm-up for the 2-thread runs: hold kPeak buffers of each size the
// stream uses at once, touched, then give them all back (on this thread).
// A 64-deep ring plus what per-thread caches keep can have about that many
// in flight when the freeing thread falls behind; without this, a cache
// that grows on demand (any allocator that keeps memory) builds its last
// buffers inside the timed loop the first time the freer falls 64 behind,
// and those first-touch faults were counted as steady state (SGV cache,
// 1 MiB: 2-3 builds per 20,000 operations, 256 faults each). The ideal
// floor was pre-faulted with at least this many from the start.
constexpr unsigned kPeak = 2 * kOutstanding;
template <class S>
void peak_warmup(S* s, size_t n) {
  const size_t mixed[] = {4096, 65536, 1048576};
  const size_t one[] = {n};
  for (size_t sz : n ? std::span<const size_t>(one) : std::span<const size_t>(mixed)) {
    uintptr_t held[kPeak];
    for (uintptr_t& h : held) {
      h = s->get(sz);
      S::touch(h, sz);
    }
    for (uintptr_t h : held) s->put(h);
  }
}

template <class S>
void cross_2t(benchmark::State& st, S* s, size_t n) {
  const auto& sizes = mixed_sizes();
  Ring ring;
  peak_warmup(s, n);
  s->set_cross_thread(true);
  std::thread freer([&] {
    for (uintptr_t h; (h = ring.pop()) != 0;) s->put(h);
  });
  size_t i = 0;
  auto step = [&] {
    size_t sz = n ? n : sizes[i % sizes.size()];
    uintptr_t h = s->get(sz);
    S::touch(h, sz);
    ring.push(h);
    ++i;
  };
  for (int w = 0; w < 4096; ++w) step();
  long f0 = minflt();
  int64_t w0 = ring.wait_ns.load(std::memory_order_relaxed);
  int64_t c0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
  for (auto _ : st) step();
  int64_t cpu = cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
  int64_t waits = ring.wait_ns.load(std::memory_order_relaxed) - w0;
  finish<S>(st, f0);
  // Both threads' CPU time minus their waiting for each other: what the
  // allocator (and the touch, and the ring's own stores) cost per op.
  auto iters = static_cast<double>(st.iterations());
  st.counters["work_ns/op"] = static_cast<double>(cpu - waits) / iters;
  st.counters["wait_ns/op"] = static_cast<double>(waits) / iters;
  ring.close();
  freer.join();
  s->set_cross_thread(false);
}

// alloc + free, nothing touched.
template <class S>
void pair_1t(benchmark::State& st, S* s, size_t n) {
  for (int i = 0; i < 256; ++i) s->put(s->get(n));
  long f0 = minflt();
  for (auto _ : st) {
    uintptr_t h = s->get(n);
    benchmark::DoNotOptimize(h);
    s->put(h);
  }
  finish<S>(st, f0);
}

std::string size_name(size_t n) { return n >= 1048576 ? std::to_string(n >> 20) + "M" : std::to_string(n >> 10) + "K"; }

template <class S>
void register_subject(const std::string& name, S* s) {
  for (size_t n : kSizes) {
    benchmark::RegisterBenchmark((name + "/cycle/" + size_name(n) + "/1t").c_str(),
                                 [s, n](benchmark::State& st) { cycle_1t(st, s, n); });
    benchmark::RegisterBenchmark((name + "/cycle/" + size_name(n) + "/2t").c_str(),
                                 [s, n](benchmark::State& st) { cross_2t(st, s, n); })
        ->MeasureProcessCPUTime();
  }
  benchmark::RegisterBenchmark((name + "/mixed/1t").c_str(), [s](benchmark::State& st) { mixed_1t(st, s); });
  benchmark::RegisterBenchmark((name + "/mixed/2t").c_str(), [s](benchmark::State& st) { cross_2t(st, s, 0); })
      ->MeasureProcessCPUTime();
  for (size_t n : kSizes)
    benchmark::RegisterBenchmark((name + "/pair/" + size_name(n) + "/1t").c_str(),
                                 [s, n](benchmark::State& st) { pair_1t(st, s, n); });
}

// Which library malloc really resolves to, so a mislinked executable shows.
std::string malloc_origin() {
  Dl_info info{};
  void* (*m)(size_t) = &std::malloc;
  if (dladdr(reinterpret_cast<void*>(m), &info) && info.dli_fname) return info.dli_fname;
  return "?";
}

}  // namespace

int main(int argc, char** argv) {
#ifdef SGV_BENCH_MALLOPT
  // Keep big blocks in the heap and the heap untrimmed: glibc's knobs for
  // "stop returning memory to the kernel".
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
#endif
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("subject", SGV_BENCH_LABEL);
  benchmark::AddCustomContext("malloc_from", malloc_origin());
#ifdef SGV_BENCH_SGV
  static SgvSubject sgv{&bench_pool()};
  register_subject("sgv", &sgv);
  register_subject("ideal", &ideal());
  register_subject("ideal_tls", &ideal_tls());
  register_subject("ideal_vec", &ideal_vec());
#endif
#ifdef SGV_BENCH_MALLOC
  static MallocSubject m;
  register_subject(SGV_BENCH_LABEL, &m);
#endif
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
