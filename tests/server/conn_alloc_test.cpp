// tests/server/conn_alloc_test.cpp - the data path allocates nothing per
// command: after a warm-up, a loop of WRITEs (immediate data and R2T) and
// READs against a real Server must not call operator new or malloc on any
// server thread. Counting replaces the global allocation functions, so it
// is off under the sanitizers (they own malloc).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "conn_initiator.hpp"

#if !defined(SGV_ASAN) && !defined(SGV_TSAN)
#define SGV_COUNT_ALLOCS 1
extern "C" void* __libc_malloc(size_t);
extern "C" void* __libc_calloc(size_t, size_t);
extern "C" void* __libc_realloc(void*, size_t);
extern "C" void __libc_free(void*);

namespace {
// Relaxed: a plain event count read after the threads involved went quiet.
std::atomic<uint64_t> g_server_allocs{0};
thread_local bool t_client = false;  // the test thread's own allocations do not count
void note() {
  if (!t_client) g_server_allocs.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" void* malloc(size_t n) {
  note();
  return __libc_malloc(n);
}
extern "C" void* calloc(size_t a, size_t b) {
  note();
  return __libc_calloc(a, b);
}
extern "C" void* realloc(void* p, size_t n) {
  note();
  return __libc_realloc(p, n);
}
extern "C" void free(void* p) { __libc_free(p); }
#endif

namespace sgv::testing {
namespace {

TEST(ConnAlloc, SteadyStateReadWriteAllocatesNothing) {
#ifndef SGV_COUNT_ALLOCS
  GTEST_SKIP() << "allocation counting is off under sanitizers";
#else
  t_client = true;
  server::Config cfg = small_config();
  server::Server srv(cfg);
  ASSERT_EQ(srv.start(), 0);
  {
    uint64_t at_start = g_server_allocs.load(std::memory_order_relaxed);
    Initiator ini(srv.bound_portals().at(0).second);
    ASSERT_TRUE(ini.login({{"MaxBurstLength", "65536"}, {"FirstBurstLength", "16384"}}));
    // The counter sees the reactor's allocations (a new connection has some).
    EXPECT_GT(g_server_allocs.load(std::memory_order_relaxed), at_start);
    uint8_t tur[16] = {};
    ini.run(tur, 0, false, false, nullptr, nullptr, nullptr, 0);
    std::vector<uint8_t> out(131072, 0x5a), in(131072);
    auto loop = [&](int n) {
      for (int i = 0; i < n; ++i) {
        uint8_t cdb[16];
        uint32_t len = (i % 2) ? 4096 : 131072;  // immediate only / immediate + R2Ts
        cdb_rw10(cdb, 0x2a, uint32_t(i % 64) * 256, uint16_t(len / 512));
        ASSERT_EQ(ini.run(cdb, len, false, true, out.data(), nullptr, nullptr, 16384), 0);
        cdb_rw10(cdb, 0x28, uint32_t(i % 64) * 256, uint16_t(len / 512));
        ASSERT_EQ(ini.run(cdb, len, true, false, nullptr, in.data(), nullptr, 0), 0);
      }
    };
    loop(100);  // warm: cache vectors built, per-thread caches filled
    uint64_t before = g_server_allocs.load(std::memory_order_relaxed);
    loop(200);
    uint64_t after = g_server_allocs.load(std::memory_order_relaxed);
    EXPECT_EQ(after - before, 0u) << "server threads allocated during the steady-state loop";
    EXPECT_EQ(in, out);
  }
  srv.stop();
#endif
}

}  // namespace
}  // namespace sgv::testing
