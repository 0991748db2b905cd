// tests/scsi/alloc_test.cpp - the data path allocates nothing: warm READ and
// WRITE commands through Target on RAM and file LUNs are counted with
// malloc and operator new replaced for this executable.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "scsi/target.hpp"

extern "C" void* __libc_malloc(size_t);
extern "C" void __libc_free(void*);
extern "C" void* __libc_calloc(size_t, size_t);
extern "C" void* __libc_realloc(void*, size_t);

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocs{0};
inline void note() {
  if (g_counting.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

#if !defined(SGV_ASAN) && !defined(SGV_TSAN)
extern "C" void* malloc(size_t n) {
  note();
  return __libc_malloc(n);
}
extern "C" void free(void* p) { __libc_free(p); }
extern "C" void* calloc(size_t a, size_t b) {
  note();
  return __libc_calloc(a, b);
}
extern "C" void* realloc(void* p, size_t n) {
  note();
  return __libc_realloc(p, n);
}
#endif
void* operator new(size_t n) {
  note();
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace {

using namespace sgv;

struct Cmd {
  scsi::Task t;
  uint8_t sense[scsi::kSenseMax];
  bool done = false;
};

void issue(scsi::Target& tg, Cmd& c, uint8_t op, uint64_t lba, uint32_t blocks, uint8_t* buf, uint32_t bs) {
  c.t = scsi::Task{};
  c.t.cdb[0] = op;
  for (int i = 0; i < 4; ++i) c.t.cdb[2 + i] = uint8_t(lba >> (24 - 8 * i));
  c.t.cdb[7] = uint8_t(blocks >> 8);
  c.t.cdb[8] = uint8_t(blocks);
  c.t.cdb_len = 10;
  c.t.edtl = blocks * bs;
  c.t.sense = c.sense;
  c.t.ctx = &c;
  c.t.done = [](scsi::Task* t) { static_cast<Cmd*>(t->ctx)->done = true; };
  c.done = false;
  ASSERT_FALSE(tg.prepare(c.t));
  if (!c.t.backend_buffer) {
    c.t.inline_segs[0] = {buf, c.t.data_len};
    c.t.segs = c.t.inline_segs;
    c.t.nsegs = 1;
  }
  tg.execute(c.t);
  while (!c.done) ASSERT_GT(backend::wait_thread_completions(), 0u);
  ASSERT_EQ(c.t.status, 0);
}

void exercise(std::unique_ptr<backend::Backend> be) {
  scsi::Target tg("iqn.2026-11.io.sgv:alloc");
  scsi::LunConfig cfg;
  cfg.backend = std::move(be);
  ASSERT_EQ(tg.add_lun(std::move(cfg)), 0);
  std::vector<uint8_t> buf(64 * 1024, 0x5a);
  Cmd c;
  // Warm up: lazy per-thread state (the io_uring ring) is created here.
  for (int i = 0; i < 4; ++i) {
    issue(tg, c, 0x2a, uint64_t(i) * 128, 128, buf.data(), 512);
    issue(tg, c, 0x28, uint64_t(i) * 128, 128, buf.data(), 512);
  }
  g_allocs = 0;
  g_counting = true;
  for (int i = 0; i < 200; ++i) {
    issue(tg, c, 0x2a, uint64_t(i % 16) * 128, 128, buf.data(), 512);
    issue(tg, c, 0x28, uint64_t(i % 16) * 128, 128, buf.data(), 512);
  }
  g_counting = false;
  EXPECT_EQ(g_allocs.load(), 0);
}

TEST(Alloc, RamReadWriteAllocateNothing) {
  int err = 0;
  exercise(backend::make_ram({16u << 20}, &err));
}

TEST(Alloc, FileReadWriteAllocateNothing) {
  char tmpl[] = "/tmp/sgv_alloc_test_XXXXXX";
  int fd = mkstemp(tmpl);
  close(fd);
  int err = 0;
  auto be = backend::make_file({tmpl, 16u << 20}, &err);
  ASSERT_TRUE(be);
  backend::Backend* raw = be.get();
  (void)raw;
  exercise(std::move(be));
  unlink(tmpl);
}

TEST(Alloc, CounterSeesAllocations) {
  // Guards the test itself: an allocation inside the window is counted.
  g_allocs = 0;
  g_counting = true;
  auto* p = new std::string(100, 'x');
  g_counting = false;
  delete p;
  EXPECT_GT(g_allocs.load(), 0);
}

}  // namespace
