// tests/scsi/basic_test.cpp - the first commands every initiator sends:
// INQUIRY, TEST UNIT READY, REPORT LUNS, READ CAPACITY, READ/WRITE, REQUEST
// SENSE, unsupported opcodes, unknown LUNs and the POWER ON RESET attention.
#include <gtest/gtest.h>

#include "scsi_helper.hpp"

using sgv::test::Harness;
using sgv::test::Result;

namespace {

Result run_vec(Harness& h, const std::vector<uint8_t>& cdb, const std::vector<uint8_t>& out = {}, int64_t edtl = -1) {
  return h.run_cdb(cdb.data(), unsigned(cdb.size()), out, edtl, 0, nullptr);
}

TEST(Basic, PowerOnResetReportedOnceAndNotByInquiry) {
  Harness h;
  Result r = h.run({0x12, 0, 0, 0, 36, 0});
  EXPECT_TRUE(r.good());
  r = h.run({0x00, 0, 0, 0, 0, 0});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.key, 6);
  EXPECT_EQ(r.asc, 0x29);
  EXPECT_EQ(r.ascq, 0x00);
  r = h.run({0x00, 0, 0, 0, 0, 0});
  EXPECT_TRUE(r.good());
}

TEST(Basic, StandardInquiry) {
  Harness h;
  Result r = h.run({0x12, 0, 0, 0, 96, 0});
  ASSERT_TRUE(r.good());
  ASSERT_EQ(r.data.size(), 96u);
  EXPECT_EQ(r.data[0], 0x00);
  EXPECT_EQ(r.data[2], 0x06);
  EXPECT_EQ(r.data[3] & 0x0f, 2);
  EXPECT_EQ(r.data[4], 91);
  EXPECT_EQ(std::string(r.data.begin() + 8, r.data.begin() + 16), "SGV     ");
  // Allocation length truncates.
  r = h.run({0x12, 0, 0, 0, 5, 0});
  EXPECT_EQ(r.data.size(), 5u);
  // Page code without EVPD is an invalid field at byte 2.
  r = h.run({0x12, 0, 0x80, 0, 96, 0});
  EXPECT_EQ(r.key, 5);
  EXPECT_EQ(r.asc, 0x24);
  EXPECT_EQ(r.sense[15], 0xc0);  // SKSV, C/D
  EXPECT_EQ(r.sense[17], 2);
}

TEST(Basic, MissingLun) {
  Harness h;
  Result r = h.run({0x12, 0, 0, 0, 36, 0}, {}, -1, 5);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data[0], 0x7f);
  r = h.run({0x00, 0, 0, 0, 0, 0}, {}, -1, 5);
  EXPECT_EQ(r.key, 5);
  EXPECT_EQ(r.asc, 0x25);
  r = h.run({0x03, 0, 0, 0, 18, 0}, {}, -1, 5);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data[2], 5);
  EXPECT_EQ(r.data[12], 0x25);
}

TEST(Basic, UnsupportedOpcode) {
  Harness h;
  h.clear_ua();
  Result r = h.run({0xc7, 0, 0, 0, 0, 0});
  EXPECT_EQ(r.key, 5);
  EXPECT_EQ(r.asc, 0x20);
  EXPECT_EQ(r.ascq, 0);
}

TEST(Basic, ReportLuns) {
  Harness h;
  Result r = h.run({0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0});
  ASSERT_TRUE(r.good());
  ASSERT_EQ(r.data.size(), 16u);
  EXPECT_EQ(r.data[3], 8);
  r = h.run({0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0});
  EXPECT_EQ(r.asc, 0x24);
  r = h.run({0xa0, 0, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0});
  EXPECT_EQ(r.asc, 0x24);
}

TEST(Basic, ReadCapacity) {
  Harness h(8u << 20, 512);
  h.clear_ua();
  Result r = h.run({0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  ASSERT_TRUE(r.good());
  ASSERT_EQ(r.data.size(), 8u);
  EXPECT_EQ(r.data[2], 0x3f);
  EXPECT_EQ(r.data[3], 0xff);  // 16383
  EXPECT_EQ(r.data[6], 0x02);  // 512
  r = h.run({0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0});
  ASSERT_TRUE(r.good());
  ASSERT_EQ(r.data.size(), 32u);
  EXPECT_EQ(r.data[14] & 0xc0, 0xc0);  // LBPME, LBPRZ on a thin RAM LUN
}

TEST(Basic, WriteThenRead) {
  Harness h(8u << 20, 512);
  h.clear_ua();
  std::vector<uint8_t> pat(1024);
  for (size_t i = 0; i < pat.size(); ++i) pat[i] = uint8_t(i * 7 + 1);
  Result r = run_vec(h, sgv::test::cdb10(0x2a, 100, 2), pat);
  ASSERT_TRUE(r.good()) << int(r.key) << " " << int(r.asc);
  r = run_vec(h, sgv::test::cdb10(0x28, 100, 2));
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data, pat);
  r = run_vec(h, sgv::test::cdb16(0x88, 100, 2));
  EXPECT_EQ(r.data, pat);
  // Unwritten blocks read as zeros.
  r = run_vec(h, sgv::test::cdb10(0x28, 0, 1));
  EXPECT_EQ(r.data, std::vector<uint8_t>(512, 0));
}

TEST(Basic, ReadBeyondEnd) {
  Harness h(8u << 20, 512);
  h.clear_ua();
  Result r = run_vec(h, sgv::test::cdb10(0x28, 16383, 2));
  EXPECT_EQ(r.key, 5);
  EXPECT_EQ(r.asc, 0x21);
  r = run_vec(h, sgv::test::cdb16(0x88, ~0ull, 1));
  EXPECT_EQ(r.asc, 0x21);
  r = run_vec(h, sgv::test::cdb10(0x28, 16384, 0));
  EXPECT_TRUE(r.good());
  r = run_vec(h, sgv::test::cdb10(0x28, 16385, 0));
  EXPECT_EQ(r.asc, 0x21);
  r = run_vec(h, sgv::test::cdb10(0x28, 0, 1, 0x20));  // RDPROTECT
  EXPECT_EQ(r.asc, 0x24);
  r = run_vec(h, sgv::test::cdb10(0x28, 0, 1, 0x18));  // DPO FUA
  EXPECT_TRUE(r.good());
}

TEST(Basic, RequestSenseReportsAndClearsUa) {
  Harness h;
  Result r = h.run({0x03, 0, 0, 0, 252, 0});
  ASSERT_TRUE(r.good());
  ASSERT_GE(r.data.size(), 14u);
  EXPECT_EQ(r.data[2], 6);
  EXPECT_EQ(r.data[12], 0x29);
  r = h.run({0x03, 0, 0, 0, 252, 0});
  EXPECT_EQ(r.data[2], 0);
  r = h.run({0x00, 0, 0, 0, 0, 0});
  EXPECT_TRUE(r.good());
}

}  // namespace
