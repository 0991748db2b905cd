// tests/iscsi/pdu_test.cpp - golden byte layouts of the target PDU builders,
// accessor round-trips, RFC 1982 serial comparisons and header validation.
#include "iscsi/pdu.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace sgv::iscsi;

namespace {

std::vector<uint8_t> bytes(const Bhs& h) { return {h.b, h.b + 48}; }

// Builds a 48-byte expectation from (offset, byte) pairs; the rest is zero.
std::vector<uint8_t> golden(std::initializer_list<std::pair<int, uint8_t>> set) {
  std::vector<uint8_t> v(48, 0);
  for (auto [o, x] : set) v[size_t(o)] = x;
  return v;
}

const SeqNums kSn{0x01020304, 0x11121314, 0x21222324};

#define SEQ {24, 1}, {25, 2}, {26, 3}, {27, 4}, {28, 0x11}, {29, 0x12}, {30, 0x13}, {31, 0x14}, \
            {32, 0x21}, {33, 0x22}, {34, 0x23}, {35, 0x24}

TEST(Pdu, ScsiResponseUnderflowGolden) {
  Bhs h;
  build_scsi_response(h, 0xaabbccdd, ScsiResponse::completed, 0x02, kSn, 7, Residual::of(4096, 512), 20);
  EXPECT_EQ(bytes(h), golden({{0, 0x21}, {1, 0x82}, {3, 0x02}, {7, 20}, {16, 0xaa}, {17, 0xbb}, {18, 0xcc},
                              {19, 0xdd}, SEQ, {39, 7}, {46, 0x0e}}));
  EXPECT_EQ(h.residual(), 3584u);
  EXPECT_EQ(h.status(), 0x02);
}

TEST(Pdu, ScsiResponseOverflowAndBidi) {
  Bhs h;
  build_scsi_response(h, 1, ScsiResponse::target_failure, 0, kSn, 0, Residual::of(512, 1024), 0,
                      Residual{Residual::under, 9});
  EXPECT_EQ(h.flags(), 0x80 | Bhs::kO | Bhs::kBidiU);
  EXPECT_EQ(h.response(), 1);
  EXPECT_EQ(h.u32(40), 9u);
  EXPECT_EQ(h.residual(), 512u);
  EXPECT_EQ(Residual::of(5, 5).kind, Residual::none);
}

TEST(Pdu, DataInGolden) {
  Bhs h;
  DataInFields f;
  f.lun = 0x0001000000000000ull;
  f.itt = 0x10;
  f.data_sn = 3;
  f.offset = 0x2000;
  f.len = 0x1000;
  build_data_in(h, f, kSn);
  // Not final, no status: StatSN is reserved (zero).
  EXPECT_EQ(bytes(h), golden({{0, 0x25}, {6, 0x10}, {9, 0x01}, {19, 0x10}, {20, 0xff}, {21, 0xff}, {22, 0xff},
                              {23, 0xff}, {28, 0x11}, {29, 0x12}, {30, 0x13}, {31, 0x14}, {32, 0x21}, {33, 0x22},
                              {34, 0x23}, {35, 0x24}, {39, 3}, {42, 0x20}}));
  f.final = true;
  f.with_status = true;
  f.status = 0;
  f.res = Residual::of(0x4000, 0x3000);
  build_data_in(h, f, kSn);
  EXPECT_EQ(h.flags(), 0x80 | Bhs::kU | Bhs::kS);
  EXPECT_EQ(h.stat_sn(), kSn.stat_sn);
  EXPECT_EQ(h.residual(), 0x1000u);
  // S without F is not representable: the builder sets F.
  f.final = false;
  build_data_in(h, f, kSn);
  EXPECT_TRUE(h.final());
}

TEST(Pdu, R2tGolden) {
  Bhs h;
  build_r2t(h, 0, 5, 0x77, 2, 0x10000, 0x8000, kSn);
  EXPECT_EQ(bytes(h), golden({{0, 0x31}, {1, 0x80}, {19, 5}, {23, 0x77}, SEQ, {39, 2}, {41, 1}, {46, 0x80}}));
  EXPECT_EQ(h.desired_len(), 0x8000u);
  EXPECT_EQ(h.buffer_offset(), 0x10000u);
  EXPECT_EQ(h.data_sn(), 2u);
}

TEST(Pdu, RejectCarriesHeaderLength) {
  Bhs h;
  build_reject(h, RejectReason::protocol_error, kSn, 0);
  EXPECT_EQ(bytes(h), golden({{0, 0x3f}, {1, 0x80}, {2, 0x04}, {7, 48}, {16, 0xff}, {17, 0xff}, {18, 0xff},
                              {19, 0xff}, SEQ}));
}

TEST(Pdu, NopTmfLogoutAsyncText) {
  Bhs h;
  build_nop_in(h, 0, 9, kReservedTag, kSn, 4);
  EXPECT_EQ(h.opcode(), Op::nop_in);
  EXPECT_EQ(h.flags(), 0x80);
  EXPECT_EQ(h.itt(), 9u);
  EXPECT_EQ(h.ttt(), kReservedTag);
  EXPECT_EQ(h.data_len(), 4u);

  build_tmf_response(h, 3, TmfResponse::no_task, kSn);
  EXPECT_EQ(bytes(h), golden({{0, 0x22}, {1, 0x80}, {2, 1}, {19, 3}, SEQ}));

  build_logout_response(h, 4, LogoutResponse::success, kSn, 2, 20);
  EXPECT_EQ(bytes(h), golden({{0, 0x26}, {1, 0x80}, {19, 4}, SEQ, {41, 2}, {43, 20}}));

  build_async(h, 0, 1, 0, kSn, 0, 2, 20, 0);
  EXPECT_EQ(bytes(h), golden({{0, 0x32}, {1, 0x80}, {16, 0xff}, {17, 0xff}, {18, 0xff}, {19, 0xff}, SEQ, {36, 1},
                              {41, 2}, {43, 20}}));

  build_text_response(h, 0, 6, 0x55, false, true, kSn, 100);
  EXPECT_EQ(h.flags(), Bhs::kC);
  EXPECT_FALSE(h.final());
  EXPECT_EQ(h.ttt(), 0x55u);
  EXPECT_EQ(h.data_len(), 100u);
}

TEST(Pdu, LoginResponseGolden) {
  Bhs h;
  LoginRspFields f;
  f.transit = true;
  f.csg = Stage::operational;
  f.nsg = Stage::full_feature;
  f.isid = 0x800000000001ull;
  f.tsih = 0x0102;
  f.itt = 0x44;
  f.status_class = 2;
  f.status_detail = 3;
  f.data_len = 30;
  build_login_response(h, f, kSn);
  EXPECT_EQ(bytes(h), golden({{0, 0x23}, {1, 0x87}, {7, 30}, {8, 0x80}, {13, 0x01}, {14, 0x01}, {15, 0x02},
                              {19, 0x44}, SEQ, {36, 2}, {37, 3}}));
  EXPECT_TRUE(h.transit());
  EXPECT_EQ(h.csg(), Stage::operational);
  EXPECT_EQ(h.nsg(), Stage::full_feature);
  EXPECT_EQ(h.isid(), 0x800000000001ull);
  EXPECT_EQ(h.tsih(), 0x0102);
}

TEST(Pdu, AccessorsDecodeScsiCommand) {
  Bhs h;
  h.clear();
  h.b[0] = 0x41;  // immediate SCSI Command
  h.b[1] = 0x80 | Bhs::kW | 0x01;
  h.b[4] = 2;
  h.set_data_len(0x123456);
  h.set32(20, 0x10000);
  h.set32(24, 77);
  h.b[32] = 0x2a;
  EXPECT_EQ(h.opcode(), Op::scsi_cmd);
  EXPECT_TRUE(h.immediate());
  EXPECT_TRUE(h.write());
  EXPECT_FALSE(h.read());
  EXPECT_EQ(h.task_attr(), 1);
  EXPECT_EQ(h.ahs_len(), 8u);
  EXPECT_EQ(h.data_len(), 0x123456u);
  EXPECT_EQ(h.edtl(), 0x10000u);
  EXPECT_EQ(h.cmd_sn(), 77u);
  EXPECT_EQ(h.cdb()[0], 0x2a);
}

TEST(Pdu, Padding) {
  EXPECT_EQ(pad_len(0), 0u);
  EXPECT_EQ(pad_len(1), 3u);
  EXPECT_EQ(pad_len(2), 2u);
  EXPECT_EQ(pad_len(3), 1u);
  EXPECT_EQ(pad_len(4), 0u);
  EXPECT_EQ(padded(5), 8u);
  EXPECT_EQ(padded(kMaxDataSegmentLength), 1u << 24);
}

TEST(Pdu, SerialNumberArithmetic) {
  EXPECT_TRUE(sn_lt(1, 2));
  EXPECT_FALSE(sn_lt(2, 1));
  EXPECT_FALSE(sn_lt(5, 5));
  EXPECT_TRUE(sn_le(5, 5));
  EXPECT_TRUE(sn_lt(0xfffffff0u, 0x10));  // wrap
  EXPECT_TRUE(sn_gt(0x10, 0xfffffff0u));
  EXPECT_TRUE(sn_lt(0, 0x7fffffffu));
  // Exactly 2^31 apart: undefined, neither is less.
  EXPECT_FALSE(sn_lt(0, 0x80000000u));
  EXPECT_FALSE(sn_gt(0, 0x80000000u));
  EXPECT_TRUE(sn_ge(0x80000001u, 0x80000001u));
}

Bhs req(Op op, uint8_t flags) {
  Bhs h;
  h.clear();
  h.set_opcode(op);
  h.set_flags(flags);
  return h;
}

TEST(Pdu, ValidateInitiatorHeaders) {
  BhsLimits ffp;
  BhsLimits login{8192, false};
  Bhs h = req(Op::nop_out, 0x80);
  h.set_itt(1);
  h.set_ttt(kReservedTag);
  EXPECT_EQ(validate_initiator_bhs(h, ffp), RejectReason::none);
  h.set_itt(kReservedTag);
  EXPECT_EQ(validate_initiator_bhs(h, ffp), RejectReason::protocol_error);

  // Target opcodes and unassigned ones are not supported.
  for (uint8_t op : {0x07, 0x1c, 0x20, 0x21, 0x3f, 0x30}) {
    Bhs x = req(Op(op), 0x80);
    EXPECT_EQ(validate_initiator_bhs(x, ffp), RejectReason::cmd_not_supported) << int(op);
  }
  // Login outside login, anything else during login.
  EXPECT_EQ(validate_initiator_bhs(req(Op::login_req, 0x81), ffp), RejectReason::protocol_error);
  EXPECT_EQ(validate_initiator_bhs(req(Op::login_req, 0x81), login), RejectReason::none);
  EXPECT_EQ(validate_initiator_bhs(req(Op::text_req, 0x80), login), RejectReason::protocol_error);
  // Login/Text with both C and F/T.
  EXPECT_EQ(validate_initiator_bhs(req(Op::text_req, 0xc0), ffp), RejectReason::protocol_error);
  EXPECT_EQ(validate_initiator_bhs(req(Op::text_req, 0x40), ffp), RejectReason::none);
  EXPECT_EQ(validate_initiator_bhs(req(Op::login_req, 0xc0), login), RejectReason::protocol_error);

  // AHS only on SCSI Command.
  Bhs t = req(Op::text_req, 0x80);
  t.set_ahs_words(1);
  EXPECT_EQ(validate_initiator_bhs(t, ffp), RejectReason::protocol_error);
  Bhs c = req(Op::scsi_cmd, 0x80 | Bhs::kR);
  c.set_ahs_words(5);
  c.set32(20, 512);
  EXPECT_EQ(validate_initiator_bhs(c, ffp), RejectReason::none);

  // Data segment bounded by our MaxRecvDataSegmentLength.
  Bhs d = req(Op::data_out, 0x80);
  d.set_data_len(8192);
  EXPECT_EQ(validate_initiator_bhs(d, ffp), RejectReason::none);
  d.set_data_len(8193);
  EXPECT_EQ(validate_initiator_bhs(d, ffp), RejectReason::protocol_error);

  // No data on TMF / Logout / SNACK; F required.
  Bhs m = req(Op::tmf_req, 0x81);
  EXPECT_EQ(validate_initiator_bhs(m, ffp), RejectReason::none);
  m.set_data_len(4);
  EXPECT_EQ(validate_initiator_bhs(m, ffp), RejectReason::protocol_error);
  EXPECT_EQ(validate_initiator_bhs(req(Op::logout_req, 0x00), ffp), RejectReason::protocol_error);

  // Immediate data on a read; EDTL on a non-transfer command.
  Bhs r = req(Op::scsi_cmd, 0x80 | Bhs::kR);
  r.set_data_len(512);
  EXPECT_EQ(validate_initiator_bhs(r, ffp), RejectReason::protocol_error);
  Bhs n = req(Op::scsi_cmd, 0x80);
  n.set32(20, 4);
  EXPECT_EQ(validate_initiator_bhs(n, ffp), RejectReason::invalid_pdu_field);
}

}  // namespace
