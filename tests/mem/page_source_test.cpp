// page_source_test.cpp - the page sources: anonymous mmap, hugetlb with its
// fallback (this machine reserves no huge pages), memfd pages seen through a
// second mapping, and caller hooks with private data, alone and under a pool.
#include "sgv/page_source.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <string>

#include "cache_testing.hpp"
#include "sgv/cache.hpp"

namespace sgv {
namespace {

TEST(PageSource, AnonGivesOneWritableRun) {
  auto src = make_anon_source();
  PageRun r{};
  ASSERT_EQ(src->get(16, &r), 0);
  EXPECT_EQ(r.pages, 16u);
  EXPECT_EQ(r.fd, -1);
  std::memset(r.addr, 1, r.pages * kPageSize);
  src->put(r);
  EXPECT_EQ(src->get(0, &r), -EINVAL);
}

size_t reserved_huge_pages() {
  std::ifstream f("/proc/sys/vm/nr_hugepages");
  size_t n = 0;
  f >> n;
  return n;
}

TEST(PageSource, HugetlbFallsBackWithoutReservedPages) {
  auto src = make_hugetlb_source();
  PageRun r{};
  ASSERT_EQ(src->get(1024, &r), 0);
  EXPECT_GE(r.pages, 512u);
  std::memset(r.addr, 2, r.pages * kPageSize);
  src->put(r);
  HugetlbCounters c;
  ASSERT_TRUE(hugetlb_counters(src.get(), &c));
  if (reserved_huge_pages() == 0) {
    EXPECT_EQ(c.fallback_runs, 1u);
    EXPECT_EQ(c.huge_runs, 0u);
    EXPECT_EQ(r.pages, 1024u);
  } else {
    EXPECT_EQ(c.huge_runs + c.fallback_runs, 1u);
  }
  // Small runs never try huge pages.
  ASSERT_EQ(src->get(8, &r), 0);
  src->put(r);
  ASSERT_TRUE(hugetlb_counters(src.get(), &c));
  EXPECT_EQ(c.huge_runs + c.fallback_runs, 1u);
  auto anon = make_anon_source();
  EXPECT_FALSE(hugetlb_counters(anon.get(), &c));
}

TEST(PageSource, HugetlbPoolServesVectors) {
  auto src = make_hugetlb_source();
  PoolOptions o = testing::quiet_opts(src.get());
  Pool p(o);
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(4u << 20, 0, nullptr, &v), 0);
  EXPECT_EQ(total_len(v->segs()), 4u << 20);
  std::memset(v->segs()[0].addr, 3, v->segs()[0].len);
  v->release();
}

TEST(PageSource, MemfdPagesAreVisibleThroughASecondMapping) {
  auto src = make_memfd_source("sgv-test");
  ASSERT_NE(src, nullptr);
  Pool p(testing::quiet_opts(src.get()));
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(3 * 4096 + 100, 0, nullptr, &v), 0);
  ASSERT_GE(v->nsegs(), 1u);
  for (size_t i = 0; i < v->nsegs(); ++i) {
    uint64_t off = ~0ull;
    int fd = v->seg_fd(i, &off);
    ASSERT_GE(fd, 0);
    const Seg& s = v->segs()[i];
    // A peer maps the same file window (as another process would via the fd).
    void* peer = mmap(nullptr, s.len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(off));
    ASSERT_NE(peer, MAP_FAILED);
    std::memset(s.addr, 0x42 + static_cast<int>(i), s.len);
    EXPECT_EQ(static_cast<unsigned char*>(peer)[0], 0x42 + i);
    EXPECT_EQ(static_cast<unsigned char*>(peer)[s.len - 1], 0x42 + i);
    static_cast<unsigned char*>(peer)[1] = 0x99;  // and back the other way
    EXPECT_EQ(static_cast<unsigned char*>(s.addr)[1], 0x99);
    munmap(peer, s.len);
  }
  EXPECT_EQ(v->seg_fd(v->nsegs(), nullptr), -1);
  v->release();
}

TEST(PageSource, MemfdReusesFreedWindows) {
  auto src = make_memfd_source("sgv-reuse");
  ASSERT_NE(src, nullptr);
  PageRun a{}, b{};
  ASSERT_EQ(src->get(4, &a), 0);
  ASSERT_EQ(src->get(4, &b), 0);
  EXPECT_EQ(b.offset, a.offset + 4 * kPageSize);
  std::memset(a.addr, 0x11, 4 * kPageSize);
  uint64_t off = a.offset;
  src->put(a);
  PageRun c{};
  ASSERT_EQ(src->get(4, &c), 0);
  EXPECT_EQ(c.offset, off);  // same window again, not a new one at the end
  EXPECT_EQ(static_cast<unsigned char*>(c.addr)[0], 0);  // hole-punched: fresh zero pages
  PageRun d{};
  ASSERT_EQ(src->get(2, &d), 0);
  EXPECT_EQ(d.offset, b.offset + 4 * kPageSize);  // no 2-page window free
  src->put(b);
  src->put(c);
  src->put(d);
}

TEST(PageSource, MemfdAdjacentRunsClusterOnlyWhenFileOffsetsAgree) {
  // Two windows adjacent in the file need not be adjacent in memory; the
  // merged segment must be contiguous in both, which full clustering checks.
  auto src = make_memfd_source("sgv-test2");
  PoolOptions o = testing::quiet_opts(src.get());
  o.clustering = Clustering::full;
  Pool p(o);
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(64 * 4096, 0, nullptr, &v), 0);
  for (size_t i = 0; i < v->nsegs(); ++i) {
    const Seg& s = v->segs()[i];
    uint64_t off = 0;
    int fd = v->seg_fd(i, &off);
    ASSERT_GE(fd, 0);
    for (size_t b = 0; b < s.len; b += 4096) static_cast<unsigned char*>(s.addr)[b] = static_cast<unsigned char>(b / 4096 + i);
    void* peer = mmap(nullptr, s.len, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(off));
    ASSERT_NE(peer, MAP_FAILED);
    EXPECT_EQ(std::memcmp(peer, s.addr, s.len), 0) << "segment " << i;
    munmap(peer, s.len);
  }
  v->release();
}

TEST(PageSource, AnonVectorsHaveNoFile) {
  Pool p(testing::quiet_opts());
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(4096, 0, nullptr, &v), 0);
  uint64_t off = 0;
  EXPECT_EQ(v->seg_fd(0, &off), -1);
  v->release();
}

struct HookState {
  char* arena;
  size_t next = 0;
  size_t gets = 0, puts = 0;
};

int hook_get(void* priv, size_t max_pages, sgv_page_run* out) {
  auto* st = static_cast<HookState*>(priv);
  if (st->next + 2 > 32) return -ENOMEM;
  size_t n = max_pages < 2 ? max_pages : 2;  // at most two pages at a time
  out->addr = st->arena + st->next * kPageSize;
  out->pages = n;
  out->fd = -1;
  out->offset = 0;
  st->next += n;
  ++st->gets;
  return 0;
}
void hook_put(void* priv, const sgv_page_run*) { ++static_cast<HookState*>(priv)->puts; }

TEST(PageSource, HooksCarryPrivateDataAndClusterToOneSegment) {
  static char arena[32 * 4096] __attribute__((aligned(4096)));
  HookState st{arena};
  sgv_page_hooks h{hook_get, hook_put, &st};
  auto src = make_hook_source(h);
  ASSERT_NE(src, nullptr);
  PoolOptions o = testing::quiet_opts(src.get());
  o.clustering = Clustering::tail;
  Pool p(o);
  Vec* v = nullptr;
  ASSERT_EQ(p.alloc(8 * 4096, 0, nullptr, &v), 0);
  EXPECT_EQ(st.gets, 4u);  // 2 pages per call
  EXPECT_EQ(v->nsegs(), 1u);  // consecutive runs merged
  EXPECT_EQ(v->segs()[0].addr, arena);
  v->release();
  p.shrink(SIZE_MAX);
  EXPECT_EQ(st.puts, 4u);  // every run back, one put per get
  sgv_page_hooks bad{nullptr, hook_put, &st};
  EXPECT_EQ(make_hook_source(bad), nullptr);
}

}  // namespace
}  // namespace sgv
