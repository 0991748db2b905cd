// tests/scsi/errors_test.cpp - backend errors become the sense SBC names:
// a backend that fails every Io with a chosen errno, asynchronously like the
// file backend would, behind a LUN.
#include <gtest/gtest.h>

#include <cerrno>

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

TEST_F(Errors, FlushAllReportsFirstError) { EXPECT_EQ(h.target().flush_all(), -EIO); }

}  // namespace
