// tests/backend/file_test.cpp - the io_uring file backend on a temporary
// file: data integrity through the caller's segments, FUA, flush, hole
// punching seen by SEEK_HOLE, short/failed reads turned into -EIO, and the
// no-copy guarantee (bytes_copied stays 0).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "backend/backend.hpp"

using namespace sgv;
using namespace sgv::backend;

namespace {

struct TmpFile {
  std::string path;
  TmpFile() {
    char tmpl[] = "/tmp/sgv_file_test_XXXXXX";
    int fd = mkstemp(tmpl);
    close(fd);
    path = tmpl;
  }
  ~TmpFile() { unlink(path.c_str()); }
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

TEST(FileBackend, PunchHoleReadsZerosAndIsAHole) {
  TmpFile f;
  int err = 0;
  auto be = make_file({f.path, 1 << 20}, &err);
  ASSERT_TRUE(be);
  std::vector<uint8_t> buf(1 << 20, 0xab);
  Seg s{buf.data(), buf.size()};
  Io w;
  w.op = Io::Op::write;
  w.len = buf.size();
  w.segs = &s;
  w.nsegs = 1;
  ASSERT_EQ(run(*be, w), 0);
  Io u;
  u.op = Io::Op::unmap;
  u.offset = 256 << 10;
  u.len = 256 << 10;
  ASSERT_EQ(run(*be, u), 0);
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
