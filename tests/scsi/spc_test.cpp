// tests/scsi/spc_test.cpp - SPC commands: VPD pages, MODE SENSE/SELECT and
// the sense format they switch, REPORT SUPPORTED OPERATION CODES, and the
// unit attentions of resets, MODE SELECT and new LUNs across nexuses.
#include <gtest/gtest.h>

#include "backend/backend.hpp"
#include "scsi/endian.hpp"
#include "scsi_helper.hpp"

using sgv::be16;
using sgv::be32;
using sgv::test::Harness;
using sgv::test::Result;

namespace {

void expect_sense(const Result& r, uint8_t key, uint8_t asc, uint8_t ascq = 0) {
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.key, key);
  EXPECT_EQ(r.asc, asc);
  EXPECT_EQ(r.ascq, ascq);
}

Result vpd(Harness& h, uint8_t page, uint16_t alloc = 255) {
  return h.run({0x12, 1, page, uint8_t(alloc >> 8), uint8_t(alloc), 0});
}

TEST(Vpd, SupportedPagesAndSerial) {
  Harness h;
  Result r = vpd(h, 0x00);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data[1], 0x00);
  std::vector<uint8_t> pages(r.data.begin() + 4, r.data.end());
  EXPECT_EQ(pages, (std::vector<uint8_t>{0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2}));
  r = vpd(h, 0x80);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data[3], 16);
  expect_sense(vpd(h, 0x87), 5, 0x24);
}

TEST(Vpd, DeviceIdentificationIsStable) {
  Harness a, b;
  Result ra = vpd(a, 0x83), rb = vpd(b, 0x83);
  ASSERT_TRUE(ra.good());
  EXPECT_EQ(ra.data, rb.data);  // same target name and LUN: same identity
  // First designator: NAA, 8 bytes, NAA 3.
  EXPECT_EQ(ra.data[4] & 0x0f, 1);
  EXPECT_EQ(ra.data[5] & 0x0f, 3);
  EXPECT_EQ(ra.data[7], 8);
  EXPECT_EQ(ra.data[8] >> 4, 3);
  unsigned len = be16(&ra.data[2]);
  EXPECT_EQ(len + 4, ra.data.size());
  // Walk designators: T10 vendor, relative port and SCSI name are present.
  bool t10 = false, relport = false, name = false;
  for (unsigned off = 4; off + 4 <= ra.data.size(); off += 4 + ra.data[off + 3]) {
    uint8_t type = ra.data[off + 1] & 0x0f;
    t10 |= type == 1;
    relport |= type == 4;
    name |= type == 8;
  }
  EXPECT_TRUE(t10 && relport && name);
}

TEST(Vpd, BlockLimitsAndProvisioning) {
  Harness h;
  Result r = vpd(h, 0xb0, 64);
  ASSERT_TRUE(r.good());
  ASSERT_EQ(r.data.size(), 64u);
  EXPECT_EQ(r.data[3], 0x3c);
  EXPECT_EQ(r.data[4] & 1, 1);  // WSNZ
  uint32_t maxx = be32(&r.data[8]);
  EXPECT_EQ(maxx, (4u << 20) / 512);
  uint32_t max_unmap = be32(&r.data[20]);
  EXPECT_GT(max_unmap, 0u);
  EXPECT_LE(max_unmap, 1u << 20);
  r = vpd(h, 0xb2);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data[5] & 0xe0, 0xe0);  // LBPU LBPWS LBPWS10
  r = vpd(h, 0xb1);
  EXPECT_EQ(r.data[5], 1);  // non-rotating
}

TEST(ModeSense, AllPagesAndTruncation) {
  Harness h;
  h.clear_ua();
  Result r = h.run({0x1a, 0, 0x3f, 0, 255, 0});
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data[0] + 1u, r.data.size());
  EXPECT_EQ(r.data[3], 8);  // one short block descriptor
  EXPECT_EQ(r.data[2] & 0x10, 0x10);  // DPOFUA
  // Pages: caching, control, informational exceptions.
  size_t off = 4 + 8;
  std::vector<uint8_t> codes;
  while (off + 2 <= r.data.size()) {
    codes.push_back(r.data[off] & 0x3f);
    off += 2 + r.data[off + 1];
  }
  EXPECT_EQ(codes, (std::vector<uint8_t>{0x08, 0x0a, 0x1c}));
  r = h.run({0x1a, 0, 0x3f, 0, 4, 0});
  EXPECT_EQ(r.data.size(), 4u);
  r = h.run({0x1a, 0x08, 0x0a, 0, 255, 0});  // DBD
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data[3], 0);
  EXPECT_EQ(r.data[4], 0x0a);
  expect_sense(h.run({0x1a, 0, 0xc8, 0, 255, 0}), 5, 0x39);  // saved values
  expect_sense(h.run({0x1a, 0, 0x19, 0, 255, 0}), 5, 0x24);  // no such page
  expect_sense(h.run({0x1a, 0, 0x08, 1, 255, 0}), 5, 0x24);  // subpage
}

TEST(ModeSense, TenWithLongLba) {
  Harness h;
  h.clear_ua();
  Result r = h.run({0x5a, 0x10, 0x08, 0, 0, 0, 0, 1, 0, 0});
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data[4] & 1, 1);
  EXPECT_EQ(r.data[7], 16);
  EXPECT_EQ(r.data[8 + 7], 0x00);
  EXPECT_EQ(r.data[8 + 6], 0x40);  // 16384 blocks
  EXPECT_EQ(r.data[24] & 0x3f, 0x08);
  r = h.run({0x5a, 0x00, 0x48, 0, 0, 0, 0, 1, 0, 0});  // changeable caching page
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data[16 + 2] & 0x04, 0x04);
}

TEST(ModeSelect, DsenseSwitchesFormatAndRaisesUaElsewhere) {
  Harness h;
  h.clear_ua();
  sgv::scsi::Nexus* other = h.target().open_nexus("iqn.other");
  h.clear_ua(other);
  Result ms = h.run({0x1a, 0x08, 0x0a, 0, 255, 0});
  ASSERT_TRUE(ms.good());
  std::vector<uint8_t> params(4 + 12, 0);
  std::copy(ms.data.begin() + 4, ms.data.begin() + 16, params.begin() + 4);
  params[4 + 2] |= 0x04;  // D_SENSE
  Result r = h.run({0x15, 0x10, 0, 0, uint8_t(params.size()), 0}, params);
  ASSERT_TRUE(r.good()) << int(r.key) << " " << int(r.asc);
  r = h.run({0x28, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0});
  ASSERT_EQ(r.status, 2);
  EXPECT_EQ(r.sense[0], 0x72);
  EXPECT_EQ(r.key, 5);
  EXPECT_EQ(r.asc, 0x21);
  // The other nexus learns that the parameters changed, once.
  r = h.run({0x00, 0, 0, 0, 0, 0}, {}, -1, 0, other);
  expect_sense(r, 6, 0x2a, 0x01);
  EXPECT_TRUE(h.run({0x00, 0, 0, 0, 0, 0}, {}, -1, 0, other).good());
  EXPECT_TRUE(h.run({0x00, 0, 0, 0, 0, 0}).good());
  // Changing a bit that is not changeable is an invalid parameter.
  std::vector<uint8_t> bad(params);
  bad[4 + 3] ^= 0x80;
  r = h.run({0x15, 0x10, 0, 0, uint8_t(bad.size()), 0}, bad);
  expect_sense(r, 5, 0x26);
  // Saving is not supported.
  expect_sense(h.run({0x15, 0x11, 0, 0, uint8_t(params.size()), 0}, params), 5, 0x24);
  // Truncated page.
  std::vector<uint8_t> trunc(params.begin(), params.begin() + 10);
  expect_sense(h.run({0x15, 0x10, 0, 0, uint8_t(trunc.size()), 0}, trunc), 5, 0x1a);
  h.target().close_nexus(other);
}

TEST(ModeSelect, SoftwareWriteProtect) {
  Harness h;
  h.clear_ua();
  std::vector<uint8_t> params(4 + 12, 0);
  Result ms = h.run({0x1a, 0x08, 0x0a, 0, 255, 0});
  std::copy(ms.data.begin() + 4, ms.data.begin() + 16, params.begin() + 4);
  params[4 + 4] |= 0x08;  // SWP
  ASSERT_TRUE(h.run({0x15, 0x10, 0, 0, uint8_t(params.size()), 0}, params).good());
  std::vector<uint8_t> blk(512, 1);
  Result r = h.run({0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0}, blk);
  expect_sense(r, 7, 0x27);
}

TEST(Rsoc, AllAndOne) {
  Harness h;
  h.clear_ua();
  Result r = h.run({0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0});
  ASSERT_TRUE(r.good());
  uint32_t len = be32(&r.data[0]);
  EXPECT_EQ(len % 8, 0u);
  EXPECT_GE(len / 8, 30u);
  // One command: READ(10) supported with its usage data.
  r = h.run({0xa3, 0x0c, 0x01, 0x28, 0, 0, 0, 0, 1, 0, 0, 0});
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data[1] & 7, 3);
  EXPECT_EQ(r.data[3], 10);
  EXPECT_EQ(r.data[4], 0x28);
  r = h.run({0xa3, 0x0c, 0x01, 0xc7, 0, 0, 0, 0, 1, 0, 0, 0});
  EXPECT_EQ(r.data[1] & 7, 1);  // not supported
  // READ CAPACITY(16) has a service action: option 1 is invalid, option 2 fine.
  expect_sense(h.run({0xa3, 0x0c, 0x01, 0x9e, 0, 0x10, 0, 0, 1, 0, 0, 0}), 5, 0x24);
  r = h.run({0xa3, 0x0c, 0x02, 0x9e, 0, 0x10, 0, 0, 1, 0, 0, 0});
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data[3], 16);
  // With timeouts descriptors.
  r = h.run({0xa3, 0x0c, 0x80, 0, 0, 0, 0, 0, 0x10, 0, 0, 0});
  len = be16(&r.data[2]);
  EXPECT_EQ(len % 20, 0u);
}

// SAM-5 6.3.3: a reset raises its unit attention on every I_T nexus, the
// one that asked for it included (libiscsi's MultipathIO.Reset checks each
// path).
TEST(UnitAttention, ResetsReachEveryNexus) {
  Harness h;
  h.clear_ua();
  sgv::scsi::Nexus* other = h.target().open_nexus("iqn.other");
  h.clear_ua(other);
  h.target().lun_reset(0);
  expect_sense(h.run({0x00, 0, 0, 0, 0, 0}), 6, 0x29, 0x03);
  EXPECT_TRUE(h.run({0x00, 0, 0, 0, 0, 0}).good());
  // INQUIRY does not consume it.
  EXPECT_TRUE(h.run({0x12, 0, 0, 0, 36, 0}, {}, -1, 0, other).good());
  expect_sense(h.run({0x00, 0, 0, 0, 0, 0}, {}, -1, 0, other), 6, 0x29, 0x03);
  EXPECT_TRUE(h.run({0x00, 0, 0, 0, 0, 0}, {}, -1, 0, other).good());
  h.target().target_reset();
  expect_sense(h.run({0x00, 0, 0, 0, 0, 0}, {}, -1, 0, other), 6, 0x29, 0x02);
  expect_sense(h.run({0x00, 0, 0, 0, 0, 0}), 6, 0x29, 0x02);
  h.target().tasks_cleared_by_other(other, 0);
  expect_sense(h.run({0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}, {}, -1, 0, other), 6, 0x2f, 0x00);
  h.target().close_nexus(other);
}

TEST(UnitAttention, NewLunIsAnnounced) {
  Harness h;
  h.clear_ua();
  sgv::scsi::LunConfig cfg;
  cfg.id = 3;
  cfg.backend = sgv::backend::make_null(1 << 20);
  ASSERT_EQ(h.target().add_lun(std::move(cfg)), 0);
  sgv::scsi::Nexus* other = h.target().open_nexus("iqn.other");
  h.clear_ua(other);
  sgv::scsi::LunConfig cfg5;
  cfg5.id = 5;
  cfg5.backend = sgv::backend::make_null(1 << 20);
  ASSERT_EQ(h.target().add_lun(std::move(cfg5)), 0);
  // A nexus that does not ask for the inventory is told on its next command.
  expect_sense(h.run({0x00, 0, 0, 0, 0, 0}, {}, -1, 0, other), 6, 0x3f, 0x0e);
  h.target().close_nexus(other);
  expect_sense(h.run({0x00, 0, 0, 0, 0, 0}, {}, -1, 3), 6, 0x29, 0x00);
  // REPORT LUNS delivers the news and clears the pending 3F/0E on LUN 0.
  Result r = h.run({0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0});
  ASSERT_TRUE(r.good());
  EXPECT_TRUE(h.run({0x00, 0, 0, 0, 0, 0}).good());
  EXPECT_EQ(r.data[3], 24);
  EXPECT_EQ(r.data[8 + 8 + 1], 3);
  EXPECT_EQ(r.data[8 + 16 + 1], 5);
  sgv::scsi::LunConfig dup;
  dup.id = 3;
  dup.backend = sgv::backend::make_null(1 << 20);
  EXPECT_EQ(h.target().add_lun(std::move(dup)), -EEXIST);
  sgv::scsi::LunConfig odd;
  odd.id = 4;
  odd.backend = sgv::backend::make_null(1000);
  EXPECT_EQ(h.target().add_lun(std::move(odd)), -EINVAL);
}

TEST(Misc, StartStopPreventAllowTur) {
  Harness h;
  h.clear_ua();
  EXPECT_TRUE(h.run({0x1b, 0, 0, 0, 1, 0}).good());
  EXPECT_TRUE(h.run({0x1e, 0, 0, 0, 1, 0}).good());
  EXPECT_TRUE(h.run({0x1e, 0, 0, 0, 0, 0}).good());
  EXPECT_TRUE(h.run({0x00, 0, 0, 0, 0, 0}).good());
  // READ CAPACITY(10) with an LBA but no PMI.
  expect_sense(h.run({0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0}), 5, 0x24);
  // Unknown service action of a known opcode.
  expect_sense(h.run({0x9e, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}), 5, 0x24);
  // NACA in the control byte: ACA is not supported.
  Result naca = h.run({0x00, 0, 0, 0, 0, 0x04});
  EXPECT_EQ(naca.asc, 0x24);
  EXPECT_EQ(naca.sense[15], 0xca);  // SKSV, C/D, BPV, bit 2
  EXPECT_EQ(naca.sense[17], 5);
  // Descriptor-format REQUEST SENSE.
  Result r = h.run({0x03, 1, 0, 0, 252, 0});
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.data[0], 0x72);
}

}  // namespace
