// tests/scsi/sbc_test.cpp - block commands against a RAM LUN (and a file LUN
// for error mapping): READ/WRITE shapes and flags, WRITE SAME, UNMAP,
// VERIFY, WRITE AND VERIFY, ORWRITE, SYNCHRONIZE CACHE, PRE-FETCH, GET LBA
// STATUS, READ DEFECT DATA, read-only LUNs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include "backend/backend.hpp"
#include "scsi/endian.hpp"
#include "scsi_helper.hpp"

using sgv::test::cdb10;
using sgv::test::cdb16;
using sgv::test::Harness;
using sgv::test::Result;

namespace {

constexpr uint64_t kBlocks = 16384;  // 8 MiB of 512-byte blocks

Result run(Harness& h, const std::vector<uint8_t>& cdb, const std::vector<uint8_t>& out = {}, int64_t edtl = -1) {
  return h.run_cdb(cdb.data(), unsigned(cdb.size()), out, edtl, 0, nullptr);
}

void expect_sense(const Result& r, uint8_t key, uint8_t asc, uint8_t ascq = 0) {
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.key, key);
  EXPECT_EQ(r.asc, asc);
  EXPECT_EQ(r.ascq, ascq);
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(seed + i * 13);
  return v;
}

struct Sbc : ::testing::Test {
  Harness h;
  void SetUp() override { h.clear_ua(); }
};

TEST_F(Sbc, ReadWrite6And12) {
  auto p = pattern(512, 3);
  std::vector<uint8_t> w6 = {0x0a, 0x00, 0x01, 0x00, 1, 0};  // LBA 256, 1 block
  ASSERT_TRUE(run(h, w6, p).good());
  std::vector<uint8_t> r12 = {0xa8, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0};
  Result r = run(h, r12);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data, p);
  // READ(6) with transfer length 0 reads 256 blocks.
  r = run(h, {0x08, 0, 0, 0, 0, 0});
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data_len, 256u * 512);
  // READ(6) beyond the end.
  r = run(h, {0x08, 0x00, 0x3f, 0xff, 2, 0});
  expect_sense(r, 5, 0x21);
}

TEST_F(Sbc, WriteFlagsAndProtect) {
  auto p = pattern(512, 9);
  EXPECT_TRUE(run(h, cdb10(0x2a, 1, 1, 0x18), p).good());  // DPO FUA
  EXPECT_TRUE(run(h, cdb16(0x8a, 1, 1, 0x08), p).good());
  Result r = run(h, cdb10(0x2a, 1, 1, 0x40), p);  // WRPROTECT
  expect_sense(r, 5, 0x24);
  EXPECT_EQ(r.sense[15], 0xcf);  // SKSV C/D BPV bit 7
  EXPECT_EQ(r.sense[17], 1);
  r = run(h, cdb16(0x8a, kBlocks - 1, 2), pattern(1024, 1));
  expect_sense(r, 5, 0x21);
  EXPECT_TRUE(r.completed_in_prepare);
  EXPECT_TRUE(run(h, cdb10(0x2a, 0, 0)).good());  // zero blocks: nothing to do
}

TEST_F(Sbc, WriteWithShortEdtlWritesWholeBlocksItGot) {
  auto a = std::vector<uint8_t>(1024, 'a');
  ASSERT_TRUE(run(h, cdb10(0x2a, 0, 2), a).good());
  // EDTL one block, CDB two: only the first block changes.
  Result r = run(h, cdb10(0x2a, 0, 2), std::vector<uint8_t>(1024, 'b'), 512);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data_len, 1024u);
  r = run(h, cdb10(0x28, 0, 2));
  EXPECT_EQ(std::count(r.data.begin(), r.data.begin() + 512, 'b'), 512);
  EXPECT_EQ(std::count(r.data.begin() + 512, r.data.end(), 'a'), 512);
  // EDTL 0 writes nothing and succeeds in prepare (the transport reports overflow).
  r = run(h, cdb10(0x2a, 1, 1), {}, 0);
  ASSERT_TRUE(r.good());
  EXPECT_TRUE(r.completed_in_prepare);
  EXPECT_EQ(r.data_len, 512u);
  EXPECT_EQ(run(h, cdb10(0x28, 1, 1)).data, std::vector<uint8_t>(512, 'a'));
  // A partial block cannot be written.
  r = run(h, cdb10(0x2a, 0, 1), std::vector<uint8_t>(200, 'c'), 200);
  expect_sense(r, 5, 0x0e, 0x03);
  EXPECT_EQ(r.data_len, 512u);  // the transport reports 312 bytes of overflow
  // EDTL above the CDB's length: only the CDB's length is written.
  r = run(h, cdb10(0x2a, 0, 1), std::vector<uint8_t>(1024, 'd'), 1024);
  ASSERT_TRUE(r.good());
  r = run(h, cdb10(0x28, 0, 2));
  EXPECT_EQ(std::count(r.data.begin(), r.data.begin() + 512, 'd'), 512);
  EXPECT_EQ(std::count(r.data.begin() + 512, r.data.end(), 'a'), 512);
}

TEST_F(Sbc, ReadWithShortEdtlTransfersEdtl) {
  Result r = run(h, cdb10(0x28, 0, 2), {}, 512);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data.size(), 512u);
  EXPECT_EQ(r.data_len, 1024u);
  EXPECT_EQ(r.xfer_len, 1024u);  // the command's length: the transport reports overflow
  r = run(h, cdb10(0x28, 0, 2), {}, 0);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.xfer_len, 1024u);
}

TEST_F(Sbc, ShortAnswerIsUnderflowTruncatedAnswerIsNot) {
  Result r = h.run({0x12, 0, 0, 0, 255, 0}, {}, 36);  // INQUIRY: 96 bytes, EDTL 36
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data.size(), 36u);
  EXPECT_EQ(r.xfer_len, 96u);
  r = h.run({0x12, 0, 0, 0, 255, 0});
  EXPECT_EQ(r.data.size(), 96u);
  EXPECT_EQ(r.xfer_len, 96u);
  EXPECT_EQ(r.data_len, 255u);
}

TEST_F(Sbc, TransferLengthAboveLimitIsInvalidField) {
  // Default TargetLimits: 4 MiB = 8192 blocks.
  Result r = run(h, cdb16(0x88, 0, 8193));
  expect_sense(r, 5, 0x24);
}

TEST_F(Sbc, WriteSamePatternZeroAndUnmap) {
  auto blk = pattern(512, 0x41);
  ASSERT_TRUE(run(h, cdb10(0x41, 10, 40), blk).good());
  Result r = run(h, cdb10(0x28, 10, 40));
  ASSERT_TRUE(r.good());
  for (int i = 0; i < 40; ++i)
    ASSERT_TRUE(std::equal(blk.begin(), blk.end(), r.data.begin() + i * 512)) << i;
  r = run(h, cdb10(0x28, 50, 1));
  EXPECT_EQ(r.data, std::vector<uint8_t>(512, 0));
  // UNMAP bit on a thin LUN: reads back as zeros (LBPRZ).
  ASSERT_TRUE(run(h, cdb16(0x93, 10, 20, 0x08), std::vector<uint8_t>(512, 0)).good());
  r = run(h, cdb10(0x28, 10, 20));
  EXPECT_EQ(r.data, std::vector<uint8_t>(20 * 512, 0));
  r = run(h, cdb10(0x28, 30, 1));
  EXPECT_EQ(r.data, blk);
  // NDOB: no data-out, zeros.
  Result nd = run(h, cdb16(0x93, 30, 20, 0x01));
  ASSERT_TRUE(nd.good());
  EXPECT_EQ(nd.dir, sgv::scsi::Dir::none);
  r = run(h, cdb10(0x28, 30, 1));
  EXPECT_EQ(r.data, std::vector<uint8_t>(512, 0));
}

TEST_F(Sbc, WriteSameLargeRangeInChunks) {
  auto blk = pattern(512, 0x77);
  ASSERT_TRUE(run(h, cdb16(0x93, 0, uint32_t(kBlocks)), blk).good());
  Result r = run(h, cdb10(0x28, kBlocks - 1, 1));
  EXPECT_EQ(r.data, blk);
}

TEST_F(Sbc, WriteSameErrors) {
  auto blk = pattern(512, 1);
  expect_sense(run(h, cdb10(0x41, 0, 0), blk), 5, 0x24);  // WSNZ
  expect_sense(run(h, cdb10(0x41, 0, 1, 0x10), blk), 5, 0x24);  // ANCHOR
  expect_sense(run(h, cdb10(0x41, 0, 1, 0x18), blk), 5, 0x24);  // ANCHOR + UNMAP
  expect_sense(run(h, cdb10(0x41, 0, 1, 0x20), blk), 5, 0x24);  // WRPROTECT
  expect_sense(run(h, cdb10(0x41, kBlocks, 1), blk), 5, 0x21);
  expect_sense(run(h, cdb16(0x93, ~0ull, 1), blk), 5, 0x21);
  expect_sense(run(h, cdb16(0x93, 0, (1u << 22) + 1), blk), 5, 0x24);  // beyond MAXIMUM WRITE SAME LENGTH
  // Data-out other than one block.
  expect_sense(run(h, cdb16(0x93, 0, 1, 0x08), blk, 256), 5, 0x0e, 0x03);
  expect_sense(run(h, cdb16(0x93, 0, 1, 0x08), pattern(1024, 1), 1024), 5, 0x0e, 0x03);
}

std::vector<uint8_t> unmap_list(std::vector<std::pair<uint64_t, uint32_t>> d) {
  std::vector<uint8_t> v(8 + 16 * d.size(), 0);
  uint16_t bddl = uint16_t(16 * d.size());
  v[0] = uint8_t((bddl + 6) >> 8);
  v[1] = uint8_t(bddl + 6);
  v[2] = uint8_t(bddl >> 8);
  v[3] = uint8_t(bddl);
  for (size_t i = 0; i < d.size(); ++i) {
    for (int b = 0; b < 8; ++b) v[8 + 16 * i + b] = uint8_t(d[i].first >> (56 - 8 * b));
    for (int b = 0; b < 4; ++b) v[8 + 16 * i + 8 + b] = uint8_t(d[i].second >> (24 - 8 * b));
  }
  return v;
}

std::vector<uint8_t> unmap_cdb(size_t len) {
  return {0x42, 0, 0, 0, 0, 0, 0, uint8_t(len >> 8), uint8_t(len), 0};
}

TEST_F(Sbc, Unmap) {
  ASSERT_TRUE(run(h, cdb10(0x2a, 0, 16), pattern(16 * 512, 5)).good());
  auto l = unmap_list({{2, 3}, {10, 0}, {12, 4}});
  ASSERT_TRUE(run(h, unmap_cdb(l.size()), l).good());
  Result r = run(h, cdb10(0x28, 0, 16));
  ASSERT_TRUE(r.good());
  auto p = pattern(16 * 512, 5);
  for (int b = 0; b < 16; ++b) {
    bool gone = (b >= 2 && b < 5) || (b >= 12 && b < 16);
    for (int i = 0; i < 512; ++i) ASSERT_EQ(r.data[b * 512 + i], gone ? 0 : p[b * 512 + i]) << b;
  }
  EXPECT_TRUE(run(h, unmap_cdb(0)).good());
  expect_sense(run(h, unmap_cdb(4), {0, 0, 0, 0}), 5, 0x1a);
  auto past = unmap_list({{kBlocks - 1, 2}});
  expect_sense(run(h, unmap_cdb(past.size()), past), 5, 0x21);
  auto big = unmap_list({{0, (1u << 20) + 1}});
  expect_sense(run(h, unmap_cdb(big.size()), big), 5, 0x26);
  Result anchor = run(h, {0x42, 1, 0, 0, 0, 0, 0, 0, 24, 0}, unmap_list({{0, 1}}));
  expect_sense(anchor, 5, 0x24);
}

TEST_F(Sbc, VerifyCompares) {
  auto p = pattern(4 * 512, 0x21);
  ASSERT_TRUE(run(h, cdb10(0x2a, 100, 4), p).good());
  EXPECT_TRUE(run(h, cdb10(0x2f, 100, 4, 0x02), p).good());       // BYTCHK 1, equal
  EXPECT_TRUE(run(h, cdb16(0x8f, 100, 4, 0x02), p).good());
  auto bad = p;
  bad[700] ^= 1;
  Result r = run(h, cdb10(0x2f, 100, 4, 0x02), bad);
  expect_sense(r, 0x0e, 0x1d);
  EXPECT_EQ(r.sense[0], 0xf0);  // VALID, fixed format
  EXPECT_EQ(r.sense[5], 700 >> 8);
  EXPECT_EQ(r.sense[6], 700 & 0xff);
  EXPECT_TRUE(run(h, cdb10(0x2f, 100, 4, 0x00)).good());  // BYTCHK 0: no data
  expect_sense(run(h, cdb10(0x2f, 100, 4, 0x20)), 5, 0x24);  // VRPROTECT
  expect_sense(run(h, cdb10(0x2f, kBlocks, 1, 0x02), p), 5, 0x21);
  std::vector<uint8_t> v12 = {0xaf, 0x02, 0, 0, 0, 100, 0, 0, 0, 4, 0, 0};
  EXPECT_TRUE(run(h, v12, p).good());
  // BYTCHK 3: one block compared with every block of the range.
  auto blk = pattern(512, 0x99);
  ASSERT_TRUE(run(h, cdb10(0x41, 200, 8), blk).good());
  EXPECT_TRUE(run(h, cdb10(0x2f, 200, 8, 0x06), blk).good());
  expect_sense(run(h, cdb10(0x2f, 199, 8, 0x06), blk), 0x0e, 0x1d);
}

TEST_F(Sbc, WriteAndVerify) {
  auto p = pattern(1024, 0x31);
  ASSERT_TRUE(run(h, cdb10(0x2e, 7, 2, 0x02), p).good());
  Result r = run(h, cdb10(0x28, 7, 2));
  EXPECT_EQ(r.data, p);
  expect_sense(run(h, cdb16(0x8e, kBlocks - 1, 2), p), 5, 0x21);
  expect_sense(run(h, cdb10(0x2e, 0, 2, 0x20), p), 5, 0x24);
}

// COMPARE AND WRITE: the data-out is NLB blocks to compare, then NLB blocks
// to write; the write happens only when the whole first half matches.
TEST_F(Sbc, CompareAndWrite) {
  auto old = pattern(2 * 512, 0x41);
  ASSERT_TRUE(run(h, cdb10(0x2a, 50, 2), old).good());
  auto fresh = pattern(2 * 512, 0x77);
  std::vector<uint8_t> both = old;
  both.insert(both.end(), fresh.begin(), fresh.end());
  ASSERT_TRUE(run(h, cdb16(0x89, 50, 2), both).good());
  EXPECT_EQ(run(h, cdb10(0x28, 50, 2)).data, fresh);
  // The medium now holds `fresh`: comparing with `old` again miscompares at
  // byte 0, and nothing is written.
  Result r = run(h, cdb16(0x89, 50, 2), both);
  expect_sense(r, 0x0e, 0x1d);
  EXPECT_EQ(r.sense[0], 0xf0);  // VALID: INFORMATION holds the offset
  EXPECT_EQ(r.sense[6], 0);
  EXPECT_EQ(run(h, cdb10(0x28, 50, 2)).data, fresh);
  // A difference late in the second block is reported at its offset.
  std::vector<uint8_t> late = fresh;
  late[1000] ^= 0xff;
  late.insert(late.end(), old.begin(), old.end());
  r = run(h, cdb16(0x89, 50, 2), late);
  expect_sense(r, 0x0e, 0x1d);
  EXPECT_EQ(r.sense[5], 1000 >> 8);
  EXPECT_EQ(r.sense[6], 1000 & 0xff);
  EXPECT_EQ(run(h, cdb10(0x28, 50, 2)).data, fresh);
  // Unwritten blocks compare as zeros.
  std::vector<uint8_t> zeros_then_p(512, 0);
  auto p1 = pattern(512, 5);
  zeros_then_p.insert(zeros_then_p.end(), p1.begin(), p1.end());
  ASSERT_TRUE(run(h, cdb16(0x89, kBlocks - 1, 1), zeros_then_p).good());
  EXPECT_EQ(run(h, cdb10(0x28, kBlocks - 1, 1)).data, p1);
}

TEST_F(Sbc, CompareAndWriteRefusals) {
  std::vector<uint8_t> two(1024, 0);
  expect_sense(run(h, cdb16(0x89, kBlocks, 1), two), 5, 0x21);             // past the end
  expect_sense(run(h, cdb16(0x89, 0, 1, 0x20), two), 5, 0x24);              // WRPROTECT
  // A Data-Out that is not exactly both halves: too small and too large.
  expect_sense(run(h, cdb16(0x89, 0, 1), std::vector<uint8_t>(512, 0), 512), 5, 0x0e, 0x03);
  expect_sense(run(h, cdb16(0x89, 0, 1), std::vector<uint8_t>(2048, 0), 2048), 5, 0x0e, 0x03);
  // NLB 0 moves nothing; with data it is the length field that is wrong.
  EXPECT_TRUE(run(h, cdb16(0x89, 0, 0), {}, 0).good());
  expect_sense(run(h, cdb16(0x89, 0, 0), two, 1024), 5, 0x24);
  // VPD B0 advertises the limit the command enforces (255 blocks here).
  Result b0 = h.run({0x12, 0x01, 0xb0, 0, 64, 0});
  ASSERT_TRUE(b0.good());
  EXPECT_EQ(b0.data[5], 255);
}

// Reported by REPORT SUPPORTED OPERATION CODES like every other row.
TEST_F(Sbc, CompareAndWriteIsReported) {
  Result r = h.run({0xa3, 0x0c, 0x01, 0x89, 0, 0, 0, 0, 0, 64, 0, 0});
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data[1] & 0x07, 3);  // SUPPORT: supported per the standard
  EXPECT_EQ(r.data[4], 0x89);
}

// What libiscsi's leaked COMPARE AND WRITE hook did to every later 16-byte
// CDB (transfer length low byte forced to 1): the CDB asks for less than
// EDTL. Only the CDB's blocks move; the transport reports the rest as
// overflow residual.
TEST_F(Sbc, SixteenByteLengthBelowEdtlMovesOnlyTheCdbBlocks) {
  auto keep = pattern(512, 0x10);
  ASSERT_TRUE(run(h, cdb10(0x2a, 21, 1), keep).good());
  auto p = pattern(1024, 0x60);
  Result w = run(h, cdb16(0x8a, 20, 1), p, 1024);
  ASSERT_TRUE(w.good());
  EXPECT_EQ(w.data_len, 512u);
  EXPECT_EQ(run(h, cdb10(0x28, 20, 1)).data, std::vector<uint8_t>(p.begin(), p.begin() + 512));
  EXPECT_EQ(run(h, cdb10(0x28, 21, 1)).data, keep);
  Result r = run(h, cdb16(0x88, 20, 1), {}, 1024);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data_len, 512u);
  // Past the end is still past the end, whatever EDTL says.
  expect_sense(run(h, cdb16(0x8a, kBlocks, 1), p, 1024), 5, 0x21);
}

TEST_F(Sbc, SynchronizeCache) {
  EXPECT_TRUE(run(h, cdb10(0x35, 0, 0)).good());
  EXPECT_TRUE(run(h, cdb16(0x91, 0, 100)).good());
  expect_sense(run(h, cdb10(0x35, kBlocks, 1)), 5, 0x21);
}

TEST_F(Sbc, PrefetchChecksTheRangeAndMovesNoData) {
  Result r = run(h, cdb10(0x34, kBlocks - 8, 8));
  EXPECT_TRUE(r.good());
  EXPECT_EQ(r.dir, sgv::scsi::Dir::none);
  EXPECT_TRUE(run(h, cdb16(0x90, 0, 0)).good());  // 0 blocks
  expect_sense(run(h, cdb10(0x34, kBlocks - 8, 9)), 5, 0x21);
  expect_sense(run(h, cdb16(0x90, ~uint64_t{0} - 1, 4)), 5, 0x21);  // LBA + length wraps
}

TEST_F(Sbc, OrWriteOrsTheDataIntoTheMedium) {
  std::vector<uint8_t> a(2 * 512), b(2 * 512);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = uint8_t(0x0f & (i * 7));
    b[i] = uint8_t(0xf0 & (i * 13));
  }
  ASSERT_TRUE(run(h, cdb10(0x2a, 100, 2), a).good());
  ASSERT_TRUE(run(h, cdb16(0x8b, 100, 2), b).good());
  Result r = run(h, cdb10(0x28, 100, 2));
  ASSERT_TRUE(r.good());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(r.data[i], uint8_t(a[i] | b[i])) << i;
  EXPECT_TRUE(run(h, cdb16(0x8b, 100, 0)).good());                       // 0 blocks: nothing
  expect_sense(run(h, cdb16(0x8b, kBlocks - 1, 2), b), 5, 0x21);           // past the end
  expect_sense(run(h, cdb16(0x8b, 100, 2, 0x20), b), 5, 0x24);             // ORPROTECT
  expect_sense(run(h, cdb16(0x8b, 100, 2), std::vector<uint8_t>(512)), 5, 0x0e, 0x03);  // half the data
  r = run(h, cdb10(0x28, 100, 2));
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(r.data[i], uint8_t(a[i] | b[i])) << i;  // untouched
}

TEST_F(Sbc, ReadDefectDataListsNoDefects) {
  // (10): primary + grown list, format 101b (physical sector): both valid, empty.
  Result r = run(h, {0x37, 0, 0x18 | 0x05, 0, 0, 0, 0, 0, 32, 0});
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data, (std::vector<uint8_t>{0, 0x1d, 0, 0}));
  // (12): grown list only, short block format; 8-byte header, length 0.
  r = run(h, {0xb7, 0x08, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0});
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data, (std::vector<uint8_t>{0, 0x08, 0, 0, 0, 0, 0, 0}));
  r = run(h, {0x37, 0, 0x18, 0, 0, 0, 0, 0, 2, 0});  // allocation length 2 truncates
  EXPECT_EQ(r.data.size(), 2u);
}

TEST(SbcReadOnly, WritesAreDataProtect) {
  Harness h(8u << 20, 512, true);
  h.clear_ua();
  auto p = pattern(512, 1);
  Result r = run(h, cdb10(0x2a, 0, 1), p);
  expect_sense(r, 7, 0x27);
  expect_sense(run(h, cdb10(0x41, 0, 1), p), 7, 0x27);
  expect_sense(run(h, cdb16(0x8b, 0, 1), p), 7, 0x27);  // ORWRITE
  auto l = unmap_list({{0, 1}});
  expect_sense(run(h, unmap_cdb(l.size()), l), 7, 0x27);
  EXPECT_TRUE(run(h, cdb10(0x28, 0, 1)).good());
  // MODE SENSE reports WP.
  r = h.run({0x1a, 0x08, 0x3f, 0, 255, 0});
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data[2] & 0x80, 0x80);
}

TEST(Sbc4k, BlockSize4096) {
  Harness h(8u << 20, 4096);
  h.clear_ua();
  Result r = h.run({0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(r.data[3], 0xff);  // 2047
  EXPECT_EQ(r.data[6], 0x10);
  auto p = pattern(4096, 4);
  ASSERT_TRUE(run(h, cdb10(0x2a, 2047, 1), p).good());
  EXPECT_EQ(run(h, cdb10(0x28, 2047, 1)).data, p);
}

TEST(SbcFile, MediumErrorOnShrunkenFile) {
  char tmpl[] = "/tmp/sgv_sbc_test_XXXXXX";
  int fd = mkstemp(tmpl);
  close(fd);
  int err = 0;
  auto be = sgv::backend::make_file({tmpl, 1 << 20}, &err);
  ASSERT_TRUE(be);
  Harness h(std::move(be), 512);
  h.clear_ua();
  auto p = pattern(2048, 7);
  ASSERT_TRUE(run(h, cdb10(0x2a, 0, 4), p).good());
  EXPECT_EQ(run(h, cdb10(0x28, 0, 4)).data, p);
  ASSERT_TRUE(run(h, cdb10(0x35, 0, 0)).good());
  ASSERT_EQ(truncate(tmpl, 512), 0);
  Result r = run(h, cdb10(0x28, 0, 4));
  expect_sense(r, 3, 0x11);
  r = run(h, cdb10(0x2f, 0, 4, 0x02), p);
  expect_sense(r, 3, 0x11);
  unlink(tmpl);
}

}  // namespace

namespace {

// GET LBA STATUS: {lba, blocks, state} descriptors.
struct LbaRun {
  uint64_t lba;
  uint32_t blocks;
  uint8_t state;
  bool operator==(const LbaRun&) const = default;
};
std::vector<LbaRun> lba_status(Harness& h, uint64_t lba, uint32_t alloc = 8 + 16 * 16) {
  std::vector<uint8_t> c(16, 0);
  c[0] = 0x9e;
  c[1] = 0x12;
  for (int i = 0; i < 8; ++i) c[2 + i] = uint8_t(lba >> (56 - 8 * i));
  for (int i = 0; i < 4; ++i) c[10 + i] = uint8_t(alloc >> (24 - 8 * i));
  Result r = run(h, c);
  EXPECT_TRUE(r.good());
  std::vector<LbaRun> v;
  if (r.data.size() < 8) return v;
  uint32_t len = sgv::be32(r.data.data());
  for (size_t off = 8; off + 16 <= r.data.size() && off < 4 + len; off += 16) {
    const uint8_t* d = r.data.data() + off;
    v.push_back({sgv::be64(d), sgv::be32(d + 8), uint8_t(d[12] & 0x0f)});
  }
  return v;
}

}  // namespace

TEST_F(Sbc, GetLbaStatusFollowsWritesAndUnmaps) {
  // 8 MiB RAM LUN, never written: one deallocated run.
  EXPECT_EQ(lba_status(h, 0), (std::vector<LbaRun>{{0, uint32_t(kBlocks), 1}}));
  // Write blocks 0-263 (33 pages), unmap page 0 (blocks 0-7).
  ASSERT_TRUE(run(h, cdb10(0x2a, 0, 264), pattern(264 * 512, 1)).good());
  std::vector<uint8_t> u(24, 0);
  u[1] = 22;
  u[3] = 16;
  u[19] = 8;  // LBA 0, 8 blocks
  ASSERT_TRUE(run(h, {0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0}, u).good());
  EXPECT_EQ(lba_status(h, 0),
            (std::vector<LbaRun>{{0, 8, 1}, {8, 256, 0}, {264, uint32_t(kBlocks - 264), 1}}));
  // From the middle of a run; and a 24-byte allocation gets the first only.
  EXPECT_EQ(lba_status(h, 9), (std::vector<LbaRun>{{9, 255, 0}, {264, uint32_t(kBlocks - 264), 1}}));
  EXPECT_EQ(lba_status(h, 9, 24), (std::vector<LbaRun>{{9, 255, 0}}));
  std::vector<uint8_t> c(16, 0);
  c[0] = 0x9e;
  c[1] = 0x12;
  c[9] = 0;
  for (int i = 0; i < 8; ++i) c[2 + i] = uint8_t(kBlocks >> (56 - 8 * i));
  c[13] = 24;
  expect_sense(run(h, c), 5, 0x21);  // at the capacity: out of range
}
