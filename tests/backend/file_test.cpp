// tests/backend/file_test.cpp - the io_uring file backend on a temporary
// file: data integrity through the caller's segments, FUA, flush, hole
// punching seen by SEEK_HOLE, short/failed reads turned into -EIO, and the
// no-copy guarantee (bytes_copied stays 0); the inline path (tmpfs served by
// blocking calls, RWF_NOWAIT elsewhere) with short transfers, -EAGAIN handed
// to the ring mid-command, errors, FUA and flush; zero-copy reads of tmpfs
// files through their mapping (map_read), never over a hole; which extents
// are mapped or deallocated (extent_state, for GET LBA STATUS).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "backend/file_testing.hpp"

using namespace sgv;
using namespace sgv::backend;
namespace ft = sgv::backend::testing;

namespace {

struct TmpFile {
  std::string path;
  explicit TmpFile(const char* dir = "/tmp") {
    std::string tmpl = std::string(dir) + "/sgv_file_test_XXXXXX";
    int fd = mkstemp(tmpl.data());
    if (fd >= 0) {
      close(fd);
      path = tmpl;
    }
  }
  ~TmpFile() {
    if (!path.empty()) unlink(path.c_str());
  }
};

// /dev/shm when it is a tmpfs (the "memory" path), else empty.
bool shm_is_tmpfs() {
  struct statfs sf;
  return statfs("/dev/shm", &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

// Resets the injected faults whatever the test did.
struct FaultGuard {
  ~FaultGuard() {
    ft::file_inline_short(0, 0);
    ft::file_inline_fail(0, 0);
  }
};

struct Waiter {
  bool done = false;
  int result = 1;
  static void cb(Io* io) {
    auto* w = static_cast<Waiter*>(io->ctx);
    w->done = true;
    w->result = io->result;
  }
};

int run(Backend& be, Io& io) {
  Waiter w;
  io.done = Waiter::cb;
  io.ctx = &w;
  be.submit(io);
  while (!w.done) {
    if (wait_thread_completions() == 0 && !w.done) return -999;  // lost op
  }
  return w.result;
}

TEST(FileBackend, WriteReadThroughSplitSegments) {
  TmpFile f;
  int err = 0;
  auto be = make_file({f.path, 1 << 20}, &err);
  ASSERT_TRUE(be) << err;
  EXPECT_STREQ(be->kind(), "file");
  EXPECT_EQ(be->size_bytes(), 1u << 20);
  std::vector<uint8_t> a(3000), b(5192);
  for (size_t i = 0; i < a.size(); ++i) a[i] = uint8_t(i);
  for (size_t i = 0; i < b.size(); ++i) b[i] = uint8_t(i * 3 + 1);
  Seg segs[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
  Io w;
  w.op = Io::Op::write;
  w.offset = 4096;
  w.len = 8192;
  w.segs = segs;
  w.nsegs = 2;
  w.fua = true;
  ASSERT_EQ(run(*be, w), 0);
  std::vector<uint8_t> ra(100), rb(8092);
  Seg rs[2] = {{ra.data(), ra.size()}, {rb.data(), rb.size()}};
  Io r;
  r.op = Io::Op::read;
  r.offset = 4096;
  r.len = 8192;
  r.segs = rs;
  r.nsegs = 2;
  ASSERT_EQ(run(*be, r), 0);
  std::vector<uint8_t> want(a);
  want.insert(want.end(), b.begin(), b.end());
  std::vector<uint8_t> got(ra);
  got.insert(got.end(), rb.begin(), rb.end());
  EXPECT_EQ(got, want);
  Io fl;
  fl.op = Io::Op::flush;
  EXPECT_EQ(run(*be, fl), 0);
  EXPECT_EQ(be->bytes_copied(), 0u);
  // The bytes are in the file itself.
  int fd = open(f.path.c_str(), O_RDONLY);
  std::vector<uint8_t> disk(8192);
  ASSERT_EQ(pread(fd, disk.data(), disk.size(), 4096), 8192);
  close(fd);
  EXPECT_EQ(disk, want);
}

// Writes the first MiB with 0xab, then unmaps [256 KiB, 512 KiB).
int fill_then_punch(Backend& be) {
  std::vector<uint8_t> buf(1 << 20, 0xab);
  Seg s{buf.data(), buf.size()};
  Io w;
  w.op = Io::Op::write;
  w.len = buf.size();
  w.segs = &s;
  w.nsegs = 1;
  if (int r = run(be, w)) return r;
  Io u;
  u.op = Io::Op::unmap;
  u.offset = 256 << 10;
  u.len = 256 << 10;
  return run(be, u);
}

TEST(FileBackend, PunchHoleReadsZerosAndIsAHole) {
  TmpFile f;
  int err = 0;
  auto be = make_file({f.path, 1 << 20}, &err);
  ASSERT_TRUE(be);
  ASSERT_EQ(fill_then_punch(*be), 0);
  int fd = open(f.path.c_str(), O_RDONLY);
  off_t hole = lseek(fd, 0, SEEK_HOLE);
  close(fd);
  EXPECT_EQ(hole, 256 << 10);
  std::vector<uint8_t> rd(4096, 0x55);
  Seg rs{rd.data(), rd.size()};
  Io r;
  r.op = Io::Op::read;
  r.offset = 300 << 10;
  r.len = rd.size();
  r.segs = &rs;
  r.nsegs = 1;
  ASSERT_EQ(run(*be, r), 0);
  EXPECT_EQ(rd, std::vector<uint8_t>(4096, 0));
  Io z;
  z.op = Io::Op::write_zeroes;
  z.offset = 0;
  z.len = 4096;
  ASSERT_EQ(run(*be, z), 0);
  r.offset = 0;
  rd.assign(4096, 0x55);
  ASSERT_EQ(run(*be, r), 0);
  EXPECT_EQ(rd, std::vector<uint8_t>(4096, 0));
}

TEST(FileBackend, ReadPastTruncatedFileIsEio) {
  TmpFile f;
  int err = 0;
  auto be = make_file({f.path, 1 << 20}, &err);
  ASSERT_TRUE(be);
  ASSERT_EQ(truncate(f.path.c_str(), 4096), 0);  // the medium shrank under the LUN
  std::vector<uint8_t> rd(8192);
  Seg rs{rd.data(), rd.size()};
  Io r;
  r.op = Io::Op::read;
  r.offset = 0;
  r.len = rd.size();
  r.segs = &rs;
  r.nsegs = 1;
  EXPECT_EQ(run(*be, r), -EIO);  // the first 4 KiB arrive, the rest cannot
  EXPECT_EQ(be->read_sync(0, &rs, 1), -EIO);
}

// write_sync/read_sync, the blocking pair COMPARE AND WRITE uses: a write
// from several segments (one of them starting mid-buffer) reads back the
// same on every backend that stores, and a range past the end is refused
// before anything moves.
TEST(SyncIo, WriteSyncReadsBackAndChecksTheRange) {
  TmpFile f;
  int err = 0;
  std::unique_ptr<sgv::backend::Backend> bes[] = {make_file({f.path, 1 << 20}, &err),
                                                  sgv::backend::make_ram({1 << 20}, &err)};
  for (auto& be : bes) {
    ASSERT_TRUE(be);
    std::vector<uint8_t> src(3000);
    for (size_t i = 0; i < src.size(); ++i) src[i] = uint8_t(i * 7 + 1);
    Seg ws[3] = {{src.data(), 1000}, {src.data() + 1000, 24}, {src.data() + 1024, 1976}};
    ASSERT_EQ(be->write_sync(4096, ws, 3, true), 0) << be->kind();
    std::vector<uint8_t> rd(3000);
    Seg rs{rd.data(), rd.size()};
    ASSERT_EQ(be->read_sync(4096, &rs, 1), 0);
    EXPECT_EQ(rd, src) << be->kind();
    std::vector<uint8_t> big(4096);
    Seg tail{big.data(), big.size()};
    EXPECT_EQ(be->write_sync((1 << 20) - 2048, &tail, 1, false), -EINVAL) << be->kind();
    EXPECT_EQ(be->read_sync((1 << 20) - 2048, &tail, 1), -EINVAL) << be->kind();
  }
}

TEST(FileBackend, OutOfRangeAndBadPath) {
  TmpFile f;
  int err = 0;
  auto be = make_file({f.path, 1 << 20}, &err);
  ASSERT_TRUE(be);
  std::vector<uint8_t> rd(512);
  Seg rs{rd.data(), rd.size()};
  Io r;
  r.op = Io::Op::read;
  r.offset = (1 << 20) - 256;
  r.len = 512;
  r.segs = &rs;
  r.nsegs = 1;
  EXPECT_EQ(run(*be, r), -EINVAL);
  auto none = make_file({"/nonexistent-dir/x", 4096, false, false}, &err);
  EXPECT_FALSE(none);
  EXPECT_EQ(err, -ENOENT);
}

TEST(FileBackend, ManyInFlightAndEventfd) {
  TmpFile f;
  int err = 0;
  auto be = make_file({f.path, 4 << 20}, &err);
  ASSERT_TRUE(be);
  ASSERT_GE(thread_completion_fd(), 0);
  constexpr int kOps = 600;  // more than the ring holds: exercises the full-ring path
  FaultGuard fg;
  ft::file_inline_fail(kOps, -EAGAIN);  // every op goes to the ring
  std::vector<std::vector<uint8_t>> bufs(kOps, std::vector<uint8_t>(512));
  std::vector<Seg> segs(kOps);
  std::vector<Io> ios(kOps);
  int done = 0;
  for (int i = 0; i < kOps; ++i) {
    std::memset(bufs[i].data(), i & 0xff, 512);
    segs[i] = {bufs[i].data(), 512};
    ios[i].op = Io::Op::write;
    ios[i].offset = uint64_t(i) * 512;
    ios[i].len = 512;
    ios[i].segs = &segs[i];
    ios[i].nsegs = 1;
    ios[i].ctx = &done;
    ios[i].done = [](Io* io) {
      EXPECT_EQ(io->result, 0);
      ++*static_cast<int*>(io->ctx);
    };
    be->submit(ios[i]);
  }
  EXPECT_EQ(thread_ops_in_flight(), unsigned(kOps));
  submit_thread_batch();
  while (done < kOps) ASSERT_GT(wait_thread_completions(), 0u);
  EXPECT_EQ(thread_ops_in_flight(), 0u);
  std::vector<uint8_t> rd(512);
  Seg rs{rd.data(), 512};
  ASSERT_EQ(be->read_sync(uint64_t(599) * 512, &rs, 1), 0);
  EXPECT_EQ(rd[0], 599 & 0xff);
}

TEST(RamBackend, SparseZeroCopyAndUnmap) {
  int err = 0;
  auto be = make_ram({1ull << 30}, &err);  // 1 GiB costs nothing until written
  ASSERT_TRUE(be);
  Seg m[1];
  ASSERT_EQ(be->map_read(4096, 8192, m, 1), 1u);
  EXPECT_EQ(m[0].len, 8192u);
  EXPECT_EQ(static_cast<uint8_t*>(m[0].addr)[0], 0);
  std::vector<uint8_t> buf(10000, 0x77);
  Seg s{buf.data(), buf.size()};
  Io w;
  w.op = Io::Op::write;
  w.offset = 1000;
  w.len = buf.size();
  w.segs = &s;
  w.nsegs = 1;
  ASSERT_EQ(run(*be, w), 0);
  EXPECT_EQ(be->bytes_copied(), buf.size());
  const uint8_t* p = static_cast<uint8_t*>(m[0].addr) - 4096;  // store base
  EXPECT_EQ(p[1000], 0x77);
  EXPECT_EQ(p[10999], 0x77);
  Io u;
  u.op = Io::Op::unmap;
  u.offset = 2000;
  u.len = 8000;  // ragged both ends, one whole page inside
  ASSERT_EQ(run(*be, u), 0);
  EXPECT_EQ(p[1999], 0x77);
  for (int i = 2000; i < 10000; ++i) ASSERT_EQ(p[i], 0) << i;
  EXPECT_EQ(p[10000], 0x77);
}

// extent_state(offset) as {state, run}.
std::pair<int, uint64_t> extent(Backend& be, uint64_t off, uint64_t max) {
  uint64_t run = 0;
  int st = be.extent_state(off, max, &run);
  return {st, run};
}
constexpr int kM = Backend::kMapped, kD = Backend::kDeallocated;

TEST(RamBackend, ExtentStateSeesWrittenAndUnmappedPages) {
  int err = 0;
  auto be = make_ram({64 << 20}, &err);
  ASSERT_TRUE(be);
  EXPECT_EQ(extent(*be, 0, 64 << 20), std::make_pair(kD, uint64_t{64 << 20}));
  std::vector<uint8_t> buf(3 * 4096, 0x11);
  Seg s{buf.data(), buf.size()};
  Io w;
  w.op = Io::Op::write;
  w.offset = 4096;
  w.len = buf.size();
  w.segs = &s;
  w.nsegs = 1;
  ASSERT_EQ(run(*be, w), 0);  // pages 1-3
  Io u;
  u.op = Io::Op::unmap;
  u.offset = 2 * 4096;
  u.len = 4096;
  ASSERT_EQ(run(*be, u), 0);  // page 2 again
  EXPECT_EQ(extent(*be, 0, 1 << 20), std::make_pair(kD, uint64_t{4096}));
  EXPECT_EQ(extent(*be, 4096 + 512, 1 << 20), std::make_pair(kM, uint64_t{4096 - 512}));  // mid-page
  EXPECT_EQ(extent(*be, 2 * 4096, 1 << 20), std::make_pair(kD, uint64_t{4096}));
  EXPECT_EQ(extent(*be, 3 * 4096, 1 << 20), std::make_pair(kM, uint64_t{4096}));
  EXPECT_EQ(extent(*be, 4 * 4096, 8192), std::make_pair(kD, uint64_t{8192}));  // capped by max
}

TEST(FileBackend, ExtentStateFollowsHolesOnDiskAndTmpfs) {
  for (const char* dir : {"/tmp", "/dev/shm"}) {
    if (std::string(dir) == "/dev/shm" && !shm_is_tmpfs()) continue;
    SCOPED_TRACE(dir);
    TmpFile f(dir);
    int err = 0;
    auto be = make_file({f.path, 1 << 20}, &err);
    ASSERT_TRUE(be);
    EXPECT_EQ(extent(*be, 0, 1 << 20), std::make_pair(kD, uint64_t{1 << 20}));  // sparse, never written
    ASSERT_EQ(fill_then_punch(*be), 0);
    EXPECT_EQ(extent(*be, 0, 1 << 20), std::make_pair(kM, uint64_t{256 << 10}));
    EXPECT_EQ(extent(*be, 300 << 10, 1 << 20), std::make_pair(kD, uint64_t{212 << 10}));
    EXPECT_EQ(extent(*be, 512 << 10, 512 << 10), std::make_pair(kM, uint64_t{512 << 10}));
  }
}

TEST(NullBackend, ZerosAndNoCopy) {
  auto be = make_null(1 << 20);
  std::vector<uint8_t> rd(512, 0xee);
  Seg rs{rd.data(), 512};
  Io r;
  r.op = Io::Op::read;
  r.len = 512;
  r.segs = &rs;
  r.nsegs = 1;
  ASSERT_EQ(run(*be, r), 0);
  EXPECT_EQ(rd, std::vector<uint8_t>(512, 0));
  Seg m;
  ASSERT_EQ(be->map_read(0, 4096, &m, 1), 1u);
  EXPECT_EQ(static_cast<uint8_t*>(m.addr)[4095], 0);
  EXPECT_EQ(be->bytes_copied(), 0u);
}

}  // namespace

namespace {

TEST(FileBackend, DirectIoWithAlignedSegments) {
  std::string path = std::string(SGV_BINARY_DIR) + "/sgv_direct_test.img";
  int err = 0;
  auto be = make_file({path, 1 << 20, true, true}, &err);
  if (!be) {
    unlink(path.c_str());
    GTEST_SKIP() << "O_DIRECT not available here: " << err;
  }
  auto* a = static_cast<uint8_t*>(aligned_alloc(4096, 8192));
  auto* b = static_cast<uint8_t*>(aligned_alloc(4096, 8192));
  for (int i = 0; i < 8192; ++i) a[i] = uint8_t(i * 5);
  Seg s{a, 8192};
  Io w;
  w.op = Io::Op::write;
  w.offset = 4096;
  w.len = 8192;
  w.segs = &s;
  w.nsegs = 1;
  w.fua = true;
  int r = run(*be, w);
  if (r == -EINVAL) {
    std::free(a);
    std::free(b);
    unlink(path.c_str());
    GTEST_SKIP() << "filesystem refuses O_DIRECT I/O";
  }
  ASSERT_EQ(r, 0);
  Seg rs{b, 8192};
  Io rd;
  rd.op = Io::Op::read;
  rd.offset = 4096;
  rd.len = 8192;
  rd.segs = &rs;
  rd.nsegs = 1;
  ASSERT_EQ(run(*be, rd), 0);
  EXPECT_EQ(std::memcmp(a, b, 8192), 0);
  std::free(a);
  std::free(b);
  unlink(path.c_str());
}

}  // namespace

namespace {

// A transport buffer may hold more than the command moves: io.len bounds it.
void check_len_bounds(Backend& be) {
  std::vector<uint8_t> a(3000, 'x'), b(3000, 'y');
  Seg segs[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
  Io w;
  w.op = Io::Op::write;
  w.offset = 0;
  w.len = 4096;  // ends inside the second segment
  w.segs = segs;
  w.nsegs = 2;
  ASSERT_EQ(run(be, w), 0);
  std::vector<uint8_t> rd(8192, 1);
  Seg rs{rd.data(), rd.size()};
  ASSERT_EQ(be.read_sync(0, &rs, 1), 0);
  EXPECT_EQ(std::count(rd.begin(), rd.begin() + 3000, 'x'), 3000);
  EXPECT_EQ(std::count(rd.begin() + 3000, rd.begin() + 4096, 'y'), 1096);
  EXPECT_EQ(std::count(rd.begin() + 4096, rd.end(), 0), 4096);
}

TEST(IoLen, FileWritesOnlyIoLen) {
  TmpFile f;
  int err = 0;
  auto be = make_file({f.path, 1 << 20}, &err);
  ASSERT_TRUE(be);
  check_len_bounds(*be);
}

TEST(IoLen, RamWritesOnlyIoLen) {
  int err = 0;
  auto be = make_ram({1 << 20}, &err);
  ASSERT_TRUE(be);
  check_len_bounds(*be);
}

}  // namespace

namespace {

struct Pattern {
  std::vector<uint8_t> a, b;
  Seg segs[2];
  explicit Pattern(uint8_t seed) : a(3000), b(5192) {
    for (size_t i = 0; i < a.size(); ++i) a[i] = uint8_t(i * 13 + seed);
    for (size_t i = 0; i < b.size(); ++i) b[i] = uint8_t(i * 7 + seed + 1);
    segs[0] = {a.data(), a.size()};
    segs[1] = {b.data(), b.size()};
  }
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> v(a);
    v.insert(v.end(), b.begin(), b.end());
    return v;
  }
};

Io rw_io(Io::Op op, uint64_t off, const Seg* segs, unsigned n, uint64_t len) {
  Io io;
  io.op = op;
  io.offset = off;
  io.len = len;
  io.segs = segs;
  io.nsegs = n;
  return io;
}

std::vector<uint8_t> file_bytes(const std::string& path, off_t off, size_t len) {
  std::vector<uint8_t> v(len);
  int fd = open(path.c_str(), O_RDONLY);
  EXPECT_EQ(pread(fd, v.data(), len, off), ssize_t(len));
  close(fd);
  return v;
}

// Submits io and reports whether io.done ran before submit returned.
bool submit_inline(Backend& be, Io& io, Waiter& w) {
  io.done = Waiter::cb;
  io.ctx = &w;
  be.submit(io);
  return w.done;
}

// A file on tmpfs is served inline: every write (FUA too), flush and read
// below 256 KiB has completed when submit returns, nothing reaches the ring,
// and short transfers are resumed where they stopped (mid-segment included).
TEST(FileInline, TmpfsCompletesInlineWithShortTransfersAndFua) {
  if (!shm_is_tmpfs()) GTEST_SKIP() << "/dev/shm is not a tmpfs here";
  FaultGuard fg;
  TmpFile f("/dev/shm");
  ASSERT_FALSE(f.path.empty());
  int err = 0;
  auto be = make_file({f.path, 1 << 20}, &err);
  ASSERT_TRUE(be) << err;
  EXPECT_STREQ(ft::file_io_path(*be), "memory");
  Pattern p(1);
  Io w = rw_io(Io::Op::write, 8192, p.segs, 2, 8192);
  w.fua = true;
  ft::file_inline_short(3, 700);  // 700, then 700 (cut in segment 0), 700 ...
  Waiter ww;
  EXPECT_TRUE(submit_inline(*be, w, ww));
  EXPECT_EQ(ww.result, 0);
  EXPECT_EQ(thread_ops_in_flight(), 0u);
  EXPECT_EQ(file_bytes(f.path, 8192, 8192), p.bytes());

  std::vector<uint8_t> ra(2500), rb(5692, 0xee);
  Seg rs[2] = {{ra.data(), ra.size()}, {rb.data(), rb.size()}};
  Io r = rw_io(Io::Op::read, 8192, rs, 2, 8192);
  ft::file_inline_short(2, 2600);  // the second one ends inside segment 1
  Waiter rw;
  EXPECT_TRUE(submit_inline(*be, r, rw));
  EXPECT_EQ(rw.result, 0);
  std::vector<uint8_t> got(ra);
  got.insert(got.end(), rb.begin(), rb.end());
  EXPECT_EQ(got, p.bytes());

  // A read this large goes to the ring (overlaps the reactor's send).
  std::vector<uint8_t> big(256 << 10, 0xee);
  Seg bs{big.data(), big.size()};
  Io br = rw_io(Io::Op::read, 0, &bs, 1, big.size());
  Waiter bw;
  EXPECT_FALSE(submit_inline(*be, br, bw));
  EXPECT_EQ(thread_ops_in_flight(), 1u);
  while (!bw.done) ASSERT_GT(wait_thread_completions(), 0u);
  EXPECT_EQ(bw.result, 0);
  EXPECT_EQ(std::vector<uint8_t>(big.begin() + 8192, big.begin() + 16384), p.bytes());
  EXPECT_EQ(big[0], 0);  // a hole reads as zeros

  Io fl;
  fl.op = Io::Op::flush;
  Waiter fw;
  EXPECT_TRUE(submit_inline(*be, fl, fw));
  EXPECT_EQ(fw.result, 0);
  // Unmap still goes through the ring.
  Io u;
  u.op = Io::Op::unmap;
  u.offset = 0;
  u.len = 4096;
  EXPECT_EQ(run(*be, u), 0);
  EXPECT_EQ(be->bytes_copied(), 0u);
}

// -EAGAIN after part of the command moved inline: the ring carries on from
// that byte (here mid-segment), and the file holds every byte exactly once.
void check_eagain_fallback(const char* dir) {
  FaultGuard fg;
  TmpFile f(dir);
  ASSERT_FALSE(f.path.empty());
  int err = 0;
  auto be = make_file({f.path, 1 << 20}, &err);
  ASSERT_TRUE(be) << err;
  if (std::string(ft::file_io_path(*be)) == "ring") GTEST_SKIP() << dir << ": no inline path";
  Pattern p(9);
  Io w = rw_io(Io::Op::write, 4096, p.segs, 2, 8192);
  ft::file_inline_short(1, 1000);  // ext4: -EOPNOTSUPP instead, also the ring
  ft::file_inline_fail(1, -EAGAIN);
  Waiter ww;
  EXPECT_FALSE(submit_inline(*be, w, ww));
  EXPECT_EQ(thread_ops_in_flight(), 1u);
  while (!ww.done) ASSERT_GT(wait_thread_completions(), 0u);
  EXPECT_EQ(ww.result, 0);
  EXPECT_EQ(w.be_done, 8192u);
  EXPECT_EQ(file_bytes(f.path, 4096, 8192), p.bytes());

  // Reads too (ext4 gives RWF_NOWAIT to reads only): 1000 bytes inline,
  // then -EAGAIN, the ring reads the rest into the same buffer.
  std::vector<uint8_t> rd(8192);
  Seg rs{rd.data(), rd.size()};
  Io r = rw_io(Io::Op::read, 4096, &rs, 1, 8192);
  ft::file_inline_short(1, 1000);
  ft::file_inline_fail(1, -EAGAIN);
  Waiter rw;
  EXPECT_FALSE(submit_inline(*be, r, rw));
  EXPECT_EQ(r.be_done, 1000u);
  EXPECT_EQ(thread_ops_in_flight(), 1u);
  while (!rw.done) ASSERT_GT(wait_thread_completions(), 0u);
  EXPECT_EQ(rw.result, 0);
  EXPECT_EQ(rd, p.bytes());
}

TEST(FileInline, EagainHandsTheRestToTheRingOnTmpfs) {
  if (!shm_is_tmpfs()) GTEST_SKIP() << "/dev/shm is not a tmpfs here";
  check_eagain_fallback("/dev/shm");
}

TEST(FileInline, EagainHandsTheRestToTheRingOnADiskFilesystem) { check_eagain_fallback("/tmp"); }

// An error other than -EAGAIN ends the command inline with that error; the
// next command is unaffected.
TEST(FileInline, InlineErrorIsTheResult) {
  FaultGuard fg;
  TmpFile f(shm_is_tmpfs() ? "/dev/shm" : "/tmp");
  int err = 0;
  auto be = make_file({f.path, 1 << 20}, &err);
  ASSERT_TRUE(be) << err;
  if (std::string(ft::file_io_path(*be)) == "ring") GTEST_SKIP() << "no inline path";
  Pattern p(3);
  Io w = rw_io(Io::Op::write, 0, p.segs, 2, 8192);
  ft::file_inline_fail(1, -ENOSPC);
  Waiter ww;
  EXPECT_TRUE(submit_inline(*be, w, ww));
  EXPECT_EQ(ww.result, -ENOSPC);
  EXPECT_EQ(run(*be, w), 0);
  EXPECT_EQ(file_bytes(f.path, 0, 8192), p.bytes());
}

// On a filesystem with RWF_NOWAIT a FUA write never goes inline (a durable
// write may wait for the device): it completes from the ring.
TEST(FileInline, FuaGoesToTheRingOnNowaitFiles) {
  TmpFile f;
  int err = 0;
  auto be = make_file({f.path, 1 << 20}, &err);
  ASSERT_TRUE(be) << err;
  if (std::string(ft::file_io_path(*be)) != "nowait") GTEST_SKIP() << "/tmp has no RWF_NOWAIT here";
  Pattern p(5);
  Io w = rw_io(Io::Op::write, 0, p.segs, 2, 8192);
  w.fua = true;
  Waiter ww;
  EXPECT_FALSE(submit_inline(*be, w, ww));
  while (!ww.done) ASSERT_GT(wait_thread_completions(), 0u);
  EXPECT_EQ(ww.result, 0);
  EXPECT_EQ(file_bytes(f.path, 0, 8192), p.bytes());
}

TEST(FileInline, DirectIoAndNonFilesUseTheRing) {
  int err = 0;
  auto ram = make_ram({1 << 20}, &err);
  EXPECT_EQ(ft::file_io_path(*ram), nullptr);
  std::string path = std::string(SGV_BINARY_DIR) + "/sgv_direct_path_test.img";
  auto be = make_file({path, 1 << 20, true, true}, &err);
  unlink(path.c_str());
  if (!be) GTEST_SKIP() << "O_DIRECT not available here: " << err;
  EXPECT_STREQ(ft::file_io_path(*be), "ring");
}

// ---- map_read on tmpfs: the file's own pages, data only

long file_blocks(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? long(st.st_blocks) : -1;
}

long thread_minor_faults() {
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_minflt;
}

// What the transport does with a mapped segment: the kernel copies it into a
// socket (here a pipe). Returns the bytes that came out, or {} when the
// kernel's copy failed (errno kept for the caller); *faults: the minor page
// faults the copy took.
std::vector<uint8_t> kernel_read(const Seg& s, long* faults = nullptr) {
  int p[2];
  if (pipe(p) != 0) return {};
  std::vector<uint8_t> out;
  long f0 = thread_minor_faults();
  // The raw syscall: a sanitizer's write() interceptor would touch shadow
  // memory of the buffer and fault there. s.len fits the pipe in these tests.
  ssize_t w = syscall(SYS_write, p[1], s.addr, s.len);
  int e = errno;
  if (faults) *faults = thread_minor_faults() - f0;
  if (w > 0) {
    out.resize(size_t(w));
    EXPECT_EQ(read(p[0], out.data(), out.size()), w);
  }
  close(p[0]);
  close(p[1]);
  errno = e;
  return out;
}

// A fresh 1 MiB file LUN on /dev/shm (skipped where that is no tmpfs).
class ShmLun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!shm_is_tmpfs()) GTEST_SKIP() << "/dev/shm is not a tmpfs here";
    ASSERT_FALSE(f.path.empty());
    int err = 0;
    be = make_file({f.path, 1 << 20}, &err);
    ASSERT_TRUE(be) << err;
  }
  TmpFile f{"/dev/shm"};
  std::unique_ptr<Backend> be;
};

// A never-written tmpfs LUN is mapped but maps nothing (its reads copy and
// allocate nothing); written pages are mapped and read back what was written,
// ranges with any unwritten page are refused, UNMAP takes its whole pages
// back, and nothing maps past the end.
TEST_F(ShmLun, TmpfsMapsWrittenPagesOnly) {
  EXPECT_TRUE(be->can_map_read());
  Seg m[4];
  EXPECT_EQ(be->map_read(0, 4096, m, 4), 0u);  // a hole: mapping it would allocate
  std::vector<uint8_t> rd(64 << 10, 0xee);
  Seg rs{rd.data(), rd.size()};
  Io r = rw_io(Io::Op::read, 0, &rs, 1, rd.size());
  ASSERT_EQ(run(*be, r), 0);
  EXPECT_EQ(rd, std::vector<uint8_t>(rd.size(), 0));
  EXPECT_EQ(file_blocks(f.path), 0);

  Pattern p(3);  // 8 KiB at 8 KiB: pages 2 and 3
  Io w = rw_io(Io::Op::write, 8192, p.segs, 2, 8192);
  ASSERT_EQ(run(*be, w), 0);
  ASSERT_EQ(be->map_read(8192, 8192, m, 4), 1u);
  EXPECT_EQ(m[0].len, 8192u);
  EXPECT_EQ(kernel_read(m[0]), p.bytes());
  EXPECT_EQ(be->map_read(4096, 8192, m, 4), 0u);   // page 1 never written
  EXPECT_EQ(be->map_read(12288, 8192, m, 4), 0u);  // page 4 never written
  EXPECT_EQ(be->map_read(8192 + 512, 512, m, 4), 1u);
  std::vector<uint8_t> pb = p.bytes();
  EXPECT_EQ(kernel_read(m[0]), std::vector<uint8_t>(pb.begin() + 512, pb.begin() + 1024));
  EXPECT_EQ(be->map_read(8192, 8192, m, 0), 0u);
  EXPECT_EQ(file_blocks(f.path), 16);  // the two written pages, nothing read in

  // A write of one byte makes its page data; the rest of the page reads 0.
  uint8_t one = 0x5a;
  Seg os{&one, 1};
  ASSERT_EQ(be->write_sync((1 << 20) - 1, &os, 1, false), 0);
  ASSERT_EQ(be->map_read((1 << 20) - 4096, 4096, m, 4), 1u);
  std::vector<uint8_t> last(4096, 0);
  last.back() = 0x5a;
  EXPECT_EQ(kernel_read(m[0]), last);
  EXPECT_EQ(be->map_read((1 << 20) - 4096, 8192, m, 4), 0u);  // past the end
  EXPECT_EQ(be->map_read(1 << 20, 0, m, 4), 1u);              // empty, at the end

  // UNMAP of page 2 and half of page 3: page 2 is a hole again, page 3 keeps
  // its (partly zeroed) page.
  Io u;
  u.op = Io::Op::unmap;
  u.offset = 8192;
  u.len = 4096 + 2048;
  ASSERT_EQ(run(*be, u), 0);
  EXPECT_EQ(be->map_read(8192, 4096, m, 4), 0u);
  ASSERT_EQ(be->map_read(12288, 4096, m, 4), 1u);
  std::vector<uint8_t> p3(pb.begin() + 4096, pb.end());
  std::fill(p3.begin(), p3.begin() + 2048, 0);
  EXPECT_EQ(kernel_read(m[0]), p3);
  EXPECT_EQ(file_blocks(f.path), 16);  // pages 3 and 255
  EXPECT_EQ(be->bytes_copied(), 0u);
}

// tmpfs has no FALLOC_FL_ZERO_RANGE: WRITE ZEROES punches there, reads zeros,
// and the zeroed pages are no longer mapped (nor allocated).
TEST_F(ShmLun, WriteZeroesOnTmpfsPunches) {
  Pattern p(6);
  ASSERT_EQ(be->write_sync(0, p.segs, 2, false), 0);
  Io z;
  z.op = Io::Op::write_zeroes;
  z.offset = 4096;
  z.len = 4096;
  ASSERT_EQ(run(*be, z), 0);
  Seg m[4];
  EXPECT_EQ(be->map_read(0, 8192, m, 4), 0u);
  EXPECT_EQ(be->map_read(0, 4096, m, 4), 1u);
  std::vector<uint8_t> rd(8192, 0xee);
  Seg rs{rd.data(), rd.size()};
  ASSERT_EQ(be->read_sync(0, &rs, 1), 0);
  std::vector<uint8_t> want = p.bytes();
  std::fill(want.begin() + 4096, want.end(), 0);
  EXPECT_EQ(rd, want);
  EXPECT_EQ(file_blocks(f.path), 8);
}

// Data already in the file when the LUN opens is found (SEEK_DATA) and
// populated: reading it through the mapping takes no page fault, the holes
// between stay holes.
TEST(FileMap, ExistingDataIsMappedAndPopulatedAtOpen) {
  if (!shm_is_tmpfs()) GTEST_SKIP() << "/dev/shm is not a tmpfs here";
  TmpFile f("/dev/shm");
  ASSERT_FALSE(f.path.empty());
  std::vector<uint8_t> a(256 << 10), b(16 << 10);
  for (size_t i = 0; i < a.size(); ++i) a[i] = uint8_t(i * 31 + 1);
  for (size_t i = 0; i < b.size(); ++i) b[i] = uint8_t(i * 17 + 2);
  {
    int fd = open(f.path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, 4 << 20), 0);
    ASSERT_EQ(pwrite(fd, a.data(), a.size(), 0), ssize_t(a.size()));
    ASSERT_EQ(pwrite(fd, b.data(), b.size(), 3 << 20), ssize_t(b.size()));
    close(fd);
  }
  int err = 0;
  auto be = make_file({f.path, 0}, &err);
  ASSERT_TRUE(be) << err;
  long blocks = file_blocks(f.path);
  Seg m[4];
  EXPECT_EQ(be->map_read(0, a.size() + 4096, m, 4), 0u);
  EXPECT_EQ(be->map_read(1 << 20, 4096, m, 4), 0u);
  ASSERT_EQ(be->map_read(3 << 20, b.size(), m, 4), 1u);
  long faults = -1;
  EXPECT_EQ(kernel_read(m[0], &faults), b);
  EXPECT_EQ(faults, 0);
  ASSERT_EQ(be->map_read(0, 64 << 10, m, 4), 1u);  // a pipe holds 64 KiB
  EXPECT_EQ(kernel_read(m[0], &faults), std::vector<uint8_t>(a.begin(), a.begin() + (64 << 10)));
  EXPECT_EQ(faults, 0);
  EXPECT_EQ(file_blocks(f.path), blocks);
}

// Only tmpfs/ramfs files are mapped: elsewhere a page-cache miss would block
// the reactor inside sendmsg. O_DIRECT files are not mapped either.
TEST(FileMap, NotMappedOffTmpfsOrWithODirect) {
  struct statfs sf;
  ASSERT_EQ(statfs("/tmp", &sf), 0);
  if (sf.f_type == TMPFS_MAGIC) GTEST_SKIP() << "/tmp is a tmpfs here";
  TmpFile f;
  int err = 0;
  auto be = make_file({f.path, 1 << 20}, &err);
  ASSERT_TRUE(be) << err;
  EXPECT_FALSE(be->can_map_read());
  Pattern p(4);
  ASSERT_EQ(be->write_sync(0, p.segs, 2, false), 0);
  Seg m[4];
  EXPECT_EQ(be->map_read(0, 8192, m, 4), 0u);
  if (!shm_is_tmpfs()) return;
  TmpFile d("/dev/shm");
  auto direct = make_file({d.path, 1 << 20, true, true}, &err);
  if (!direct) return;  // no O_DIRECT on this tmpfs
  EXPECT_FALSE(direct->can_map_read());
  EXPECT_EQ(direct->map_read(0, 4096, m, 4), 0u);
}

// Truncating the file under the LUN is the operator's error, but the
// kernel's copy from the mapping then fails with EFAULT (the transport drops
// the connection) rather than killing the target.
TEST_F(ShmLun, KernelCopyAfterExternalTruncateIsEfault) {
  Pattern p(5);
  ASSERT_EQ(be->write_sync(65536, p.segs, 2, false), 0);
  Seg m[4];
  ASSERT_EQ(be->map_read(65536, 8192, m, 4), 1u);
  ASSERT_EQ(truncate(f.path.c_str(), 4096), 0);
  errno = 0;
  EXPECT_TRUE(kernel_read(m[0]).empty());
  EXPECT_EQ(errno, EFAULT);
}

}  // namespace
