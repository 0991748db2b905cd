// tests/scsi/errors_test.cpp - backend errors become the sense SBC names:
// a backend that fails every Io with a chosen errno, asynchronously like the
// file backend would, behind a LUN.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

#include "backend/backend.hpp"
#include "scsi_helper.hpp"

using sgv::test::Harness;
using sgv::test::Result;

namespace {

class FailingBackend final : public sgv::backend::Backend {
 public:
  explicit FailingBackend(int* err) : err_(err) {}
  const char* kind() const override { return "failing"; }
  uint64_t size_bytes() const override { return 1 << 20; }
  bool supports_unmap() const override { return true; }
  bool volatile_cache() const override { return true; }
  void submit(sgv::backend::Io& io) override {
    io.result = *err_;
    io.done(&io);
  }
  int flush_sync() override { return *err_; }
  int read_sync(uint64_t, const sgv::Seg*, unsigned) override { return *err_; }
  int write_sync(uint64_t, const sgv::Seg*, unsigned, bool) override { return *err_; }

 private:
  int* err_;
};

struct Errors : ::testing::Test {
  int err = -EIO;
  Harness h{std::make_unique<FailingBackend>(&err), 512};
  void SetUp() override { h.clear_ua(); }
  Result read() { return h.run({0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}); }
  Result write() { return h.run({0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0}, std::vector<uint8_t>(512, 1)); }
};

void expect(const Result& r, uint8_t key, uint8_t asc, uint8_t ascq) {
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.key, key);
  EXPECT_EQ(r.asc, asc);
  EXPECT_EQ(r.ascq, ascq);
}

TEST_F(Errors, EioIsMediumError) {
  expect(read(), 3, 0x11, 0x00);
  expect(write(), 3, 0x0c, 0x00);
}

TEST_F(Errors, EnospcIsSpaceAllocationFailed) {
  err = -ENOSPC;
  expect(write(), 7, 0x27, 0x07);
}

TEST_F(Errors, ErofsIsWriteProtected) {
  err = -EROFS;
  expect(write(), 7, 0x27, 0x00);
}

TEST_F(Errors, OtherIsInternalTargetFailure) {
  err = -EPERM;
  expect(read(), 4, 0x44, 0x00);
  expect(h.run({0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0}), 4, 0x44, 0x00);  // SYNCHRONIZE CACHE
  // WRITE SAME's chain stops at the first failure.
  expect(h.run({0x41, 0, 0, 0, 0, 0, 0, 0, 64, 0}, std::vector<uint8_t>(512, 3)), 4, 0x44, 0x00);
  expect(h.run({0x41, 0x08, 0, 0, 0, 0, 0, 0, 64, 0}, std::vector<uint8_t>(512, 0)), 4, 0x44, 0x00);
}

TEST_F(Errors, CompareAndWriteReadErrorIsMediumError) {
  std::vector<uint8_t> cdb(16, 0);
  cdb[0] = 0x89;
  cdb[13] = 1;
  expect(h.run_cdb(cdb.data(), 16, std::vector<uint8_t>(1024, 1), -1, 0, nullptr), 3, 0x11, 0x00);
}

// Acknowledges every write and keeps nothing: reads give zeros. WRITE AND
// VERIFY must notice, since it reads the range back.
class Forgetful final : public sgv::backend::Backend {
 public:
  const char* kind() const override { return "forgetful"; }
  uint64_t size_bytes() const override { return 1 << 20; }
  bool supports_unmap() const override { return false; }
  bool volatile_cache() const override { return false; }
  void submit(sgv::backend::Io& io) override {
    if (io.op == sgv::backend::Io::Op::read)
      for (unsigned i = 0; i < io.nsegs; ++i) std::memset(io.segs[i].addr, 0, io.segs[i].len);
    io.result = 0;
    io.done(&io);
  }
  int flush_sync() override { return 0; }
  int read_sync(uint64_t, const sgv::Seg* segs, unsigned n) override {
    for (unsigned i = 0; i < n; ++i) std::memset(segs[i].addr, 0, segs[i].len);
    return 0;
  }
  int write_sync(uint64_t, const sgv::Seg*, unsigned, bool) override { return 0; }
};

TEST(WriteAndVerify, ReadsTheRangeBack) {
  Harness h(std::make_unique<Forgetful>(), 512);
  h.clear_ua();
  std::vector<uint8_t> blk(1024, 0x5a);
  // Plain WRITE does not look back.
  EXPECT_TRUE(h.run({0x2a, 0, 0, 0, 0, 9, 0, 0, 2, 0}, blk).good());
  // BYTCHK=1: the data read back differs from the data-out at byte 0.
  Result r = h.run({0x2e, 0x02, 0, 0, 0, 9, 0, 0, 2, 0}, blk);
  expect(r, 0x0e, 0x1d, 0x00);
  EXPECT_EQ(r.sense[0], 0xf0);
  // BYTCHK=0 asks for a medium verification: a medium that loses data fails it.
  expect(h.run({0x2e, 0x00, 0, 0, 0, 9, 0, 0, 2, 0}, blk), 3, 0x11, 0x00);
  // Data the medium does hold (zeros) verifies.
  EXPECT_TRUE(h.run({0x2e, 0x02, 0, 0, 0, 9, 0, 0, 2, 0}, std::vector<uint8_t>(1024, 0)).good());
}

TEST_F(Errors, FlushAllReportsFirstError) { EXPECT_EQ(h.target().flush_all(), -EIO); }

}  // namespace

namespace {

// Records the FUA flag of every write it sees.
class FuaProbe final : public sgv::backend::Backend {
 public:
  const char* kind() const override { return "probe"; }
  uint64_t size_bytes() const override { return 1 << 20; }
  bool supports_unmap() const override { return false; }
  bool volatile_cache() const override { return true; }
  void submit(sgv::backend::Io& io) override {
    if (io.op == sgv::backend::Io::Op::write) last_fua = io.fua;
    if (io.op == sgv::backend::Io::Op::flush) ++flushes;
    io.result = 0;
    io.done(&io);
  }
  int flush_sync() override { return 0; }
  int read_sync(uint64_t, const sgv::Seg*, unsigned) override { return 0; }
  int write_sync(uint64_t, const sgv::Seg*, unsigned, bool fua) override {
    last_fua = fua;
    return 0;
  }
  bool last_fua = false;
  int flushes = 0;
};

TEST(Fua, CdbFuaAndDisabledWriteCacheReachTheBackend) {
  auto probe = std::make_unique<FuaProbe>();
  FuaProbe* p = probe.get();
  Harness h(std::move(probe), 512);
  h.clear_ua();
  std::vector<uint8_t> blk(512, 9);
  ASSERT_TRUE(h.run({0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0}, blk).good());
  EXPECT_FALSE(p->last_fua);
  ASSERT_TRUE(h.run({0x2a, 0x08, 0, 0, 0, 0, 0, 0, 1, 0}, blk).good());
  EXPECT_TRUE(p->last_fua);
  ASSERT_TRUE(h.run({0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0}).good());
  EXPECT_EQ(p->flushes, 1);
  // WCE reported on, then switched off through MODE SELECT: writes become FUA.
  Result ms = h.run({0x1a, 0x08, 0x08, 0, 255, 0});
  ASSERT_TRUE(ms.good());
  EXPECT_EQ(ms.data[4 + 2] & 0x04, 0x04);
  std::vector<uint8_t> params(4 + 20, 0);
  std::copy(ms.data.begin() + 4, ms.data.begin() + 24, params.begin() + 4);
  params[4 + 2] &= uint8_t(~0x04);
  ASSERT_TRUE(h.run({0x15, 0x10, 0, 0, uint8_t(params.size()), 0}, params).good());
  ASSERT_TRUE(h.run({0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0}, blk).good());
  EXPECT_TRUE(p->last_fua);
  // UNMAP on a LUN without thin provisioning is not supported.
  Result u = h.run({0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0}, std::vector<uint8_t>(24, 0));
  EXPECT_EQ(u.key, 5);
  EXPECT_EQ(u.asc, 0x20);
}

}  // namespace
