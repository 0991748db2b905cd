// tests/server/conn_test.cpp - a real Server with a RAM LUN driven by an
// in-test initiator over loopback: login, WRITE with immediate data and
// R2T/Data-Out, READ with Data-In, residuals, the CmdSN window, NOP, Text,
// Logout, and malformed PDUs (bad opcode, oversized data segment, data
// before login, truncated header) after which the server keeps serving.
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "conn_initiator.hpp"

namespace sgv::testing {
namespace {

class ConnTest : public ::testing::Test {
 protected:
  void SetUp() override { start(small_config()); }
  void start(const server::Config& c) {
    srv_ = std::make_unique<server::Server>(c);
    ASSERT_EQ(srv_->start(), 0);
    port_ = srv_->bound_portals().at(0).second;
  }
  void TearDown() override {
    if (srv_) srv_->stop();
  }
  // Logged in, first unit attention consumed.
  std::unique_ptr<Initiator> session(std::map<std::string, std::string> keys = {}) {
    auto ini = std::make_unique<Initiator>(port_);
    EXPECT_TRUE(ini->connected());
    EXPECT_TRUE(ini->login(keys));
    uint8_t tur[16] = {};
    int st = ini->run(tur, 0, false, false, nullptr, nullptr, nullptr, 0);
    EXPECT_TRUE(st == 0 || st == 2) << st;
    return ini;
  }
  // A second connection still works: the server survived whatever came before.
  void expect_serving() {
    auto ini = session();
    uint32_t itt;
    ASSERT_TRUE(ini->nop(&itt, "ping", 4));
    Pdu p;
    ASSERT_TRUE(ini->recv(p));
    EXPECT_EQ(p.op(), Op::nop_in);
    EXPECT_EQ(p.h.itt(), itt);
    EXPECT_EQ(std::string(p.data.begin(), p.data.end()), "ping");
  }
  std::unique_ptr<server::Server> srv_;
  uint16_t port_ = 0;
};

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(i * 31 + seed + (i >> 9));
  return v;
}

TEST_F(ConnTest, LoginNegotiatesAndDeclaresLimits) {
  Initiator ini(port_);
  Pdu rsp;
  ASSERT_TRUE(ini.login({}, &rsp));
  EXPECT_NE(rsp.h.tsih(), 0);
  auto k = Initiator::parse(rsp.data);
  EXPECT_EQ(k["HeaderDigest"], "None");
  EXPECT_EQ(k["InitialR2T"], "No");
  EXPECT_EQ(k["ImmediateData"], "Yes");
  EXPECT_EQ(k["MaxOutstandingR2T"], "1");
  EXPECT_EQ(k["TargetPortalGroupTag"], "1");
  EXPECT_FALSE(k["MaxRecvDataSegmentLength"].empty());
  EXPECT_EQ(rsp.h.exp_cmd_sn(), 1u);
  EXPECT_TRUE(iscsi::sn_gt(rsp.h.max_cmd_sn(), 1u));
}

TEST_F(ConnTest, UnknownTargetFailsLogin) {
  Initiator ini(port_);
  Pdu rsp;
  EXPECT_FALSE(ini.login({{"TargetName", "iqn.2026-11.io.sgv:nope"}}, &rsp));
  EXPECT_EQ(rsp.op(), Op::login_rsp);
  EXPECT_EQ(rsp.h.status_class(), 2);
  EXPECT_EQ(rsp.h.status_detail(), 3);
  EXPECT_TRUE(ini.closed_by_peer());
  expect_serving();
}

TEST_F(ConnTest, WriteImmediateThenReadBack) {
  auto ini = session();
  auto data = pattern(4096, 7);
  uint8_t cdb[16];
  cdb_rw10(cdb, 0x2a, 10, 8);
  uint32_t r2ts = 0;
  EXPECT_EQ(ini->run(cdb, 4096, false, true, data.data(), nullptr, nullptr, 65536, nullptr, &r2ts), 0);
  EXPECT_EQ(r2ts, 0u);  // all of it went as immediate data
  std::vector<uint8_t> back(4096);
  uint32_t got = 0;
  Pdu last;
  cdb_rw10(cdb, 0x28, 10, 8);
  EXPECT_EQ(ini->run(cdb, 4096, true, false, nullptr, back.data(), &got, 0, &last), 0);
  EXPECT_EQ(got, 4096u);
  EXPECT_EQ(back, data);
  EXPECT_EQ(last.op(), Op::data_in);  // status rode on the last Data-In
  EXPECT_EQ(last.h.flags() & (Bhs::kO | Bhs::kU), 0);
}

TEST_F(ConnTest, WriteBeyondFirstBurstUsesR2tsInBursts) {
  auto ini = session({{"InitialR2T", "Yes"}, {"MaxBurstLength", "16384"}, {"MaxOutstandingR2T", "1"}});
  EXPECT_EQ(ini->negotiated_["InitialR2T"], "Yes");
  EXPECT_EQ(ini->negotiated_["MaxBurstLength"], "16384");
  auto data = pattern(65536, 3);
  uint8_t cdb[16];
  cdb_rw10(cdb, 0x2a, 100, 128);
  uint32_t itt;
  // 8 KiB immediate (allowed: ImmediateData=Yes even with InitialR2T=Yes).
  ASSERT_TRUE(ini->scsi(cdb, 65536, false, true, &itt, data.data(), 8192, true));
  uint32_t expect_off = 8192, r2tsn = 0;
  for (;;) {
    Pdu p;
    ASSERT_TRUE(ini->recv(p));
    if (p.op() == Op::scsi_rsp) {
      EXPECT_EQ(p.h.status(), 0);
      EXPECT_EQ(p.h.itt(), itt);
      break;
    }
    ASSERT_EQ(p.op(), Op::r2t);
    EXPECT_EQ(p.h.itt(), itt);
    EXPECT_EQ(p.h.data_sn(), r2tsn++);  // R2TSN
    EXPECT_EQ(p.h.buffer_offset(), expect_off);
    uint32_t len = p.h.desired_len();
    EXPECT_EQ(len, std::min<uint32_t>(16384, 65536 - expect_off));
    // Two Data-Out PDUs per burst, DataSN 0 and 1.
    uint32_t half = len / 2;
    ASSERT_TRUE(ini->data_out(itt, p.h.ttt(), 0, expect_off, data.data() + expect_off, half, false));
    ASSERT_TRUE(ini->data_out(itt, p.h.ttt(), 1, expect_off + half, data.data() + expect_off + half, len - half, true));
    expect_off += len;
  }
  EXPECT_EQ(expect_off, 65536u);
  EXPECT_EQ(r2tsn, 4u);
  std::vector<uint8_t> back(65536);
  cdb_rw10(cdb, 0x28, 100, 128);
  EXPECT_EQ(ini->run(cdb, 65536, true, false, nullptr, back.data(), nullptr, 0), 0);
  EXPECT_EQ(back, data);
}

TEST_F(ConnTest, UnsolicitedDataOutAfterImmediate) {
  auto ini = session();
  auto data = pattern(32768, 9);
  uint8_t cdb[16];
  cdb_rw10(cdb, 0x2a, 200, 64);
  uint32_t itt;
  // InitialR2T=No: 4 KiB immediate, the rest of the first burst unsolicited.
  ASSERT_TRUE(ini->scsi(cdb, 32768, false, true, &itt, data.data(), 4096, false));
  ASSERT_TRUE(ini->data_out(itt, iscsi::kReservedTag, 0, 4096, data.data() + 4096, 16384, false));
  ASSERT_TRUE(ini->data_out(itt, iscsi::kReservedTag, 1, 20480, data.data() + 20480, 12288, true));
  Pdu p;
  ASSERT_TRUE(ini->recv(p));
  EXPECT_EQ(p.op(), Op::scsi_rsp);
  EXPECT_EQ(p.h.status(), 0);
  std::vector<uint8_t> back(32768);
  cdb_rw10(cdb, 0x28, 200, 64);
  EXPECT_EQ(ini->run(cdb, 32768, true, false, nullptr, back.data(), nullptr, 0), 0);
  EXPECT_EQ(back, data);
}

TEST_F(ConnTest, BadDataSnIsRejectedAndTheCommandWaits) {
  auto ini = session({{"InitialR2T", "Yes"}});
  auto data = pattern(8192, 1);
  uint8_t cdb[16];
  cdb_rw10(cdb, 0x2a, 0, 16);
  uint32_t itt;
  ASSERT_TRUE(ini->scsi(cdb, 8192, false, true, &itt, nullptr, 0, true));
  Pdu r2t;
  ASSERT_TRUE(ini->recv(r2t));
  ASSERT_EQ(r2t.op(), Op::r2t);
  ASSERT_TRUE(ini->data_out(itt, r2t.h.ttt(), 5, 0, data.data(), 4096, false));  // DataSN 5, not 0
  Pdu rej;
  ASSERT_TRUE(ini->recv(rej));
  EXPECT_EQ(rej.op(), Op::reject);
  EXPECT_EQ(rej.h.reject_reason(), uint8_t(iscsi::RejectReason::invalid_pdu_field));
  // The right sequence still completes the command.
  ASSERT_TRUE(ini->data_out(itt, r2t.h.ttt(), 0, 0, data.data(), 4096, false));
  ASSERT_TRUE(ini->data_out(itt, r2t.h.ttt(), 1, 4096, data.data() + 4096, 4096, true));
  Pdu rsp;
  ASSERT_TRUE(ini->recv(rsp));
  EXPECT_EQ(rsp.op(), Op::scsi_rsp);
  EXPECT_EQ(rsp.h.status(), 0);
}

TEST_F(ConnTest, ReadResiduals) {
  auto ini = session();
  uint8_t cdb[16];
  cdb_rw10(cdb, 0x28, 0, 1);
  std::vector<uint8_t> buf(1024);
  Pdu last;
  uint32_t got = 0;
  // EDTL 200 < 512: 200 bytes, overflow 312.
  EXPECT_EQ(ini->run(cdb, 200, true, false, nullptr, buf.data(), &got, 0, &last), 0);
  EXPECT_EQ(got, 200u);
  EXPECT_TRUE(last.h.flags() & Bhs::kO);
  EXPECT_EQ(last.h.residual(), 312u);
  // EDTL 1024 > 512: 512 bytes, underflow 512.
  EXPECT_EQ(ini->run(cdb, 1024, true, false, nullptr, buf.data(), &got, 0, &last), 0);
  EXPECT_EQ(got, 512u);
  EXPECT_TRUE(last.h.flags() & Bhs::kU);
  EXPECT_EQ(last.h.residual(), 512u);
}

TEST_F(ConnTest, OversizedTransferIsCheckConditionNotABuffer) {
  auto ini = session();
  uint8_t cdb[16];
  cdb_rw10(cdb, 0x28, 0, 1);
  Pdu rsp;
  EXPECT_EQ(ini->run(cdb, 64u << 20, true, false, nullptr, nullptr, nullptr, 0, &rsp), 2);
  EXPECT_EQ(rsp.op(), Op::scsi_rsp);
  ASSERT_GE(rsp.data.size(), 2u + 14);
  EXPECT_EQ(rsp.data[2 + 2] & 0x0f, 0x05);  // ILLEGAL REQUEST
}

TEST_F(ConnTest, CommandOutsideTheWindowIsDropped) {
  auto ini = session();
  uint8_t cdb[16] = {};  // TEST UNIT READY
  uint32_t good_sn = ini->cmd_sn_;
  ini->cmd_sn_ = good_sn + 100000;  // far beyond MaxCmdSN
  uint32_t itt;
  ASSERT_TRUE(ini->scsi(cdb, 0, false, false, &itt));
  ini->cmd_sn_ = good_sn;
  // A ping overtakes nothing: its answer is the next PDU, the dropped
  // command never answers.
  uint32_t nitt;
  ASSERT_TRUE(ini->nop(&nitt));
  Pdu p;
  ASSERT_TRUE(ini->recv(p));
  EXPECT_EQ(p.op(), Op::nop_in);
  EXPECT_EQ(p.h.itt(), nitt);
  EXPECT_EQ(p.h.exp_cmd_sn(), good_sn);
  // In-window command still runs.
  EXPECT_EQ(ini->run(cdb, 0, false, false, nullptr, nullptr, nullptr, 0), 0);
}

TEST_F(ConnTest, BadOpcodeIsRejectedAndConnectionLives) {
  auto ini = session();
  Bhs h{};
  h.b[0] = 0x1f | 0x40;  // not an initiator opcode
  h.b[1] = 0x80;
  ASSERT_TRUE(ini->send(h));
  Pdu p;
  ASSERT_TRUE(ini->recv(p));
  EXPECT_EQ(p.op(), Op::reject);
  EXPECT_EQ(p.h.reject_reason(), uint8_t(iscsi::RejectReason::cmd_not_supported));
  ASSERT_EQ(p.data.size(), 48u);
  EXPECT_EQ(p.data[0] & 0x3f, 0x1f);
  uint8_t tur[16] = {};
  EXPECT_EQ(ini->run(tur, 0, false, false, nullptr, nullptr, nullptr, 0), 0);
}

TEST_F(ConnTest, OversizedDataSegmentIsRejectedAndDropped) {
  auto ini = session();
  Bhs h{};
  h.set_opcode(Op::nop_out, true);
  h.set_flags(0x80);
  h.set_itt(7);
  h.set_ttt(iscsi::kReservedTag);
  h.set_data_len((16u << 20) - 1);
  ASSERT_TRUE(ini->send_raw(h.b, 48));
  Pdu p;
  ASSERT_TRUE(ini->recv(p));
  EXPECT_EQ(p.op(), Op::reject);
  EXPECT_EQ(p.h.reject_reason(), uint8_t(iscsi::RejectReason::protocol_error));
  EXPECT_TRUE(ini->closed_by_peer());
  expect_serving();
}

TEST_F(ConnTest, CommandBeforeLoginIsRejectedAndDropped) {
  Initiator ini(port_);
  uint8_t tur[16] = {};
  ASSERT_TRUE(ini.scsi(tur, 0, false, false, nullptr));
  Pdu p;
  ASSERT_TRUE(ini.recv(p));
  EXPECT_EQ(p.op(), Op::reject);
  EXPECT_TRUE(ini.closed_by_peer());
  expect_serving();
}

TEST_F(ConnTest, TruncatedHeaderThenClose) {
  {
    auto ini = session();
    uint8_t half[20] = {0x01, 0x80};
    ASSERT_TRUE(ini->send_raw(half, sizeof half));
  }  // closes mid-header
  expect_serving();
}

TEST_F(ConnTest, SendTargetsInDiscoveryAndNormalSessions) {
  Initiator d(port_);
  ASSERT_TRUE(d.login({}, nullptr, true));
  Bhs h{};
  h.set_opcode(Op::text_req, true);
  h.set_flags(0x80);
  h.set_itt(0x55);
  h.set_ttt(iscsi::kReservedTag);
  std::string q = Initiator::kv({{"SendTargets", "All"}});
  ASSERT_TRUE(d.send(h, q.data(), uint32_t(q.size())));
  Pdu p;
  ASSERT_TRUE(d.recv(p));
  EXPECT_EQ(p.op(), Op::text_rsp);
  auto k = Initiator::parse(p.data);
  EXPECT_EQ(k["TargetName"], kTarget);
  EXPECT_NE(k["TargetAddress"].find("127.0.0.1:" + std::to_string(port_)), std::string::npos);
}

TEST_F(ConnTest, LogoutAnswersThenCloses) {
  auto ini = session();
  ASSERT_TRUE(ini->logout());
  Pdu p;
  ASSERT_TRUE(ini->recv(p));
  EXPECT_EQ(p.op(), Op::logout_rsp);
  EXPECT_EQ(p.h.response(), 0);
  EXPECT_TRUE(ini->closed_by_peer());
  expect_serving();
}

TEST_F(ConnTest, AbortTaskOfUnknownTagAnswers) {
  auto ini = session();
  Bhs h{};
  h.set_opcode(Op::tmf_req, true);
  h.set_flags(0x80 | 1);  // ABORT TASK
  h.set_itt(0x77);
  h.set32(20, 0xdead);
  h.set32(24, ini->cmd_sn_);
  h.set32(32, ini->cmd_sn_);
  ASSERT_TRUE(ini->send(h));
  Pdu p;
  ASSERT_TRUE(ini->recv(p));
  EXPECT_EQ(p.op(), Op::tmf_rsp);
  EXPECT_EQ(p.h.itt(), 0x77u);
  EXPECT_EQ(p.h.response(), uint8_t(iscsi::TmfResponse::no_task));
}

// A command already answered no longer exists: ABORT TASK for it must say
// so (libiscsi's iSCSITMF.AbortTaskSimpleAsync counts a GOOD write plus
// FUNCTION COMPLETE as a failure).
TEST_F(ConnTest, AbortTaskOfAnsweredCommandSaysNoTask) {
  auto ini = session();
  uint8_t cdb[16] = {};  // TEST UNIT READY
  uint32_t ref_sn = ini->cmd_sn_, itt;
  ASSERT_TRUE(ini->scsi(cdb, 0, false, false, &itt));
  Pdu rsp;
  ASSERT_TRUE(ini->recv(rsp));
  ASSERT_EQ(rsp.op(), Op::scsi_rsp);
  Bhs h{};
  h.set_opcode(Op::tmf_req, true);
  h.set_flags(0x80 | 1);  // ABORT TASK
  h.set_itt(0x78);
  h.set32(20, itt);
  h.set32(24, ini->cmd_sn_);
  h.set32(32, ref_sn);
  ASSERT_TRUE(ini->send(h));
  Pdu p;
  ASSERT_TRUE(ini->recv(p));
  EXPECT_EQ(p.op(), Op::tmf_rsp);
  EXPECT_EQ(p.h.response(), uint8_t(iscsi::TmfResponse::no_task));
}

TEST_F(ConnTest, LunResetWhileWriteAwaitsData) {
  auto ini = session({{"InitialR2T", "Yes"}});
  uint8_t cdb[16];
  cdb_rw10(cdb, 0x2a, 0, 16);
  uint32_t itt;
  ASSERT_TRUE(ini->scsi(cdb, 8192, false, true, &itt, nullptr, 0, true));
  Pdu r2t;
  ASSERT_TRUE(ini->recv(r2t));
  ASSERT_EQ(r2t.op(), Op::r2t);
  Bhs h{};
  h.set_opcode(Op::tmf_req, true);
  h.set_flags(0x80 | 5);  // LUN RESET
  h.set_itt(0x78);
  h.set32(24, ini->cmd_sn_);
  ASSERT_TRUE(ini->send(h));
  Pdu p;
  ASSERT_TRUE(ini->recv(p));
  // No response for the aborted write; the TMF answers complete.
  EXPECT_EQ(p.op(), Op::tmf_rsp);
  EXPECT_EQ(p.h.response(), 0);
  // Late Data-Out for the aborted task is dropped silently.
  std::vector<uint8_t> d(8192);
  ASSERT_TRUE(ini->data_out(itt, r2t.h.ttt(), 0, 0, d.data(), 8192, true));
  uint8_t tur[16] = {};
  // The resetting nexus gets the reset's unit attention once (SAM-5 6.3.3:
  // every nexus does), then serves on.
  Pdu rsp;
  EXPECT_EQ(ini->run(tur, 0, false, false, nullptr, nullptr, nullptr, 0, &rsp), 2);
  ASSERT_GE(rsp.data.size(), 2u + 14u);  // SenseLength, then fixed-format sense
  EXPECT_EQ(rsp.data[2 + 2] & 0x0f, 6);   // UNIT ATTENTION
  EXPECT_EQ(rsp.data[2 + 12], 0x29);      // ... POWER ON, RESET, OR BUS DEVICE RESET
  EXPECT_EQ(ini->run(tur, 0, false, false, nullptr, nullptr, nullptr, 0), 0);
}

// One immediate task management request; returns the response code, or -1
// if the answer is not a TMF response for it.
int tmf(Initiator& ini, uint8_t fn, uint32_t itt, uint64_t lun, uint32_t ref_itt = 0xffffffff) {
  Bhs h{};
  h.set_opcode(Op::tmf_req, true);
  h.set_flags(uint8_t(0x80 | fn));
  h.set_itt(itt);
  h.set_lun(lun);
  h.set32(20, ref_itt);
  h.set32(24, ini.cmd_sn_);
  Pdu p;
  if (!ini.send(h) || !ini.recv(p) || p.op() != Op::tmf_rsp || p.h.itt() != itt) return -1;
  return p.h.response();
}

// A LUN-scoped task management function on a LUN the target does not have
// answers "LUN does not exist" (RFC 7143 11.6.1; SAM's INCORRECT LOGICAL
// UNIT NUMBER), not "function complete", and the session serves on.
TEST_F(ConnTest, LunScopedTmfOnAMissingLunSaysNoLun) {
  auto ini = session();
  uint32_t itt = 0x80;
  for (uint8_t fn : {2, 4, 5}) {  // ABORT TASK SET, CLEAR TASK SET, LUN RESET
    for (uint64_t lun : {uint64_t(7) << 48, uint64_t(0)}) {  // LUN 7: none; LUN 0: ours
      int want = lun ? int(iscsi::TmfResponse::no_lun) : int(iscsi::TmfResponse::complete);
      EXPECT_EQ(tmf(*ini, fn, ++itt, lun), want) << "function " << int(fn) << " lun " << (lun >> 48);
    }
  }
  uint8_t tur[16] = {};
  EXPECT_EQ(ini->run(tur, 0, false, false, nullptr, nullptr, nullptr, 0), 2);  // the LUN reset's attention
  EXPECT_EQ(ini->run(tur, 0, false, false, nullptr, nullptr, nullptr, 0), 0);
}

// sgvd runs at ErrorRecoveryLevel 0, so it cannot move a task to another
// connection: TASK REASSIGN gets the response RFC 7143 defines for exactly
// that, "Task allegiance reassignment not supported" (4), not the generic
// "function not supported" (5) it got before. CLEAR ACA and TARGET COLD
// RESET, which sgvd does not implement, keep 5. The session serves on.
TEST_F(ConnTest, TaskReassignIsAllegianceReassignmentNotSupported) {
  auto ini = session();
  uint32_t itt = 0x90;
  struct {
    uint8_t fn;
    int want;
  } cases[] = {{8, int(iscsi::TmfResponse::reassign_unsupported)},
               {3, int(iscsi::TmfResponse::not_supported)},
               {7, int(iscsi::TmfResponse::not_supported)}};
  for (auto c : cases)  // Referenced Task Tag 0x1234: no such task
    EXPECT_EQ(tmf(*ini, c.fn, ++itt, 0, 0x1234), c.want) << "function " << int(c.fn);
  uint8_t tur[16] = {};
  EXPECT_EQ(ini->run(tur, 0, false, false, nullptr, nullptr, nullptr, 0), 0);
}

TEST_F(ConnTest, ReinstatementClosesTheOldConnection) {
  auto a = session();
  Initiator b(port_);
  ASSERT_TRUE(b.login());  // same ISID + InitiatorName
  EXPECT_TRUE(a->closed_by_peer());
  uint8_t tur[16] = {};
  int st = b.run(tur, 0, false, false, nullptr, nullptr, nullptr, 0);
  EXPECT_TRUE(st == 0 || st == 2);
}

TEST_F(ConnTest, StatsDumpCountsCommands) {
  expect_serving();
  std::string s = srv_->stats_dump();
  EXPECT_NE(s.find("commands="), std::string::npos);
  EXPECT_NE(s.find("sgv."), std::string::npos);
}

}  // namespace
}  // namespace sgv::testing

namespace sgv::testing {
namespace {

// A WRITE of `data` with no immediate data and F=1: the target must take its
// whole buffer now and solicit the data with an R2T, so once the R2T is here
// the buffer is held, deterministically, until hand_over() sends the data.
struct HeldWrite {
  uint32_t itt = 0, ttt = 0;
  const std::vector<uint8_t>* data = nullptr;
};

void hold_write(Initiator& ini, uint64_t wire_lun, uint32_t lba, const std::vector<uint8_t>& data, HeldWrite* w) {
  uint8_t cdb[16];
  cdb_rw10(cdb, 0x2a, lba, uint16_t(data.size() / 512));
  w->data = &data;
  ASSERT_TRUE(ini.scsi(cdb, uint32_t(data.size()), false, true, &w->itt, nullptr, 0, true, false, wire_lun));
  Pdu r2t;
  ASSERT_TRUE(ini.recv(r2t));
  ASSERT_EQ(r2t.op(), Op::r2t);
  ASSERT_EQ(r2t.h.itt(), w->itt);
  ASSERT_EQ(r2t.h.buffer_offset(), 0u);
  ASSERT_EQ(r2t.h.desired_len(), uint32_t(data.size()));  // the whole buffer is held
  w->ttt = r2t.h.ttt();
}

void hand_over(Initiator& ini, const HeldWrite& w) {
  uint32_t len = uint32_t(w.data->size());
  for (uint32_t off = 0, sn = 0; off < len; ++sn) {
    uint32_t n = std::min(len - off, ini.target_mrdsl_);
    ASSERT_TRUE(ini.data_out(w.itt, w.ttt, sn, off, w.data->data() + off, n, off + n == len));
    off += n;
  }
}

// The next n SCSI Responses, by ITT (their order is the target's business).
std::map<uint32_t, int> responses(Initiator& ini, int n) {
  std::map<uint32_t, int> st;
  for (int i = 0; i < n; ++i) {
    Pdu p;
    if (!ini.recv(p)) {
      ADD_FAILURE() << "no response " << i << " of " << n << " (the target stopped reading?)";
      break;
    }
    if (p.op() != Op::scsi_rsp) {
      ADD_FAILURE() << "unexpected opcode " << int(p.op());
      break;
    }
    st[p.h.itt()] = p.h.status();
  }
  return st;
}

constexpr int kTaskSetFull = 0x28;

// Logged in (unit attention taken) with a session budget of 64 KiB.
class ConnBackpressure : public ::testing::Test {
 protected:
  void SetUp() override {
    server::Config cfg = small_config();
    cfg.session_mem_limit = 65536;
    srv_ = std::make_unique<server::Server>(cfg);
    ASSERT_EQ(srv_->start(), 0);
    ini_ = std::make_unique<Initiator>(srv_->bound_portals().at(0).second);
    ASSERT_TRUE(ini_->login());
    uint8_t tur[16] = {};
    ini_->run(tur, 0, false, false, nullptr, nullptr, nullptr, 0);
  }
  void TearDown() override {
    ini_.reset();
    if (srv_) srv_->stop();
  }
  std::unique_ptr<server::Server> srv_;
  std::unique_ptr<Initiator> ini_;
};

// The deadlock the reader block could make: a WRITE holds the whole session
// budget and waits for its solicited Data-Out, and the next command needs
// memory. If sgvd stopped reading to wait for it, the Data-Out behind that
// header would never be read and the buffer never freed. The commands that
// cannot wait are answered TASK SET FULL instead (their immediate data
// dropped, their CmdSN consumed), the Data-Out is read, the held write
// completes, and a retry then gets its memory.
TEST_F(ConnBackpressure, NoReaderBlockWhileAWriteAwaitsItsDataOut) {
  Initiator& ini = *ini_;
  auto a = pattern(65536, 4), b = pattern(65536, 5);
  HeldWrite w1;
  ASSERT_NO_FATAL_FAILURE(hold_write(ini, 0, 0, a, &w1));
  uint8_t cdb[16];
  uint32_t itt2, itt3;
  cdb_rw10(cdb, 0x2a, 128, 128);
  ASSERT_TRUE(ini.scsi(cdb, 65536, false, true, &itt2, b.data(), 65536, true));  // immediate data
  cdb_rw10(cdb, 0x2a, 256, 128);
  uint32_t sn3 = ini.cmd_sn_;
  ASSERT_TRUE(ini.scsi(cdb, 65536, false, true, &itt3, nullptr, 0, true));  // header only
  ASSERT_NO_FATAL_FAILURE(hand_over(ini, w1));
  auto st = responses(ini, 3);
  EXPECT_EQ(st, (std::map<uint32_t, int>{{w1.itt, 0}, {itt2, kTaskSetFull}, {itt3, kTaskSetFull}}));
  EXPECT_EQ(ini.exp_cmd_sn_seen_, sn3 + 1);  // the refused commands' CmdSNs are used up
  // The memory came back: the retry runs, and the stream stayed in step
  // past the dropped immediate data (the Data-Out landed where it should).
  cdb_rw10(cdb, 0x2a, 128, 128);
  EXPECT_EQ(ini.run(cdb, 65536, false, true, b.data(), nullptr, nullptr, 65536), 0);
  std::vector<uint8_t> back(65536);
  cdb_rw10(cdb, 0x28, 0, 128);
  EXPECT_EQ(ini.run(cdb, 65536, true, false, nullptr, back.data(), nullptr, 0), 0);
  EXPECT_EQ(back, a);
  cdb_rw10(cdb, 0x28, 128, 128);
  EXPECT_EQ(ini.run(cdb, 65536, true, false, nullptr, back.data(), nullptr, 0), 0);
  EXPECT_EQ(back, b);
}

}  // namespace
}  // namespace sgv::testing

namespace sgv::testing {
namespace {

TEST(ConnDigests, Crc32cBothWaysAndBadDataDigestRunsNothing) {
  server::Server srv(small_config());
  ASSERT_EQ(srv.start(), 0);
  Initiator ini(srv.bound_portals().at(0).second);
  ASSERT_TRUE(ini.login({{"HeaderDigest", "CRC32C,None"}, {"DataDigest", "CRC32C,None"}}));
  ASSERT_TRUE(ini.hd_);
  ASSERT_TRUE(ini.dd_);
  uint8_t tur[16] = {};
  ini.run(tur, 0, false, false, nullptr, nullptr, nullptr, 0);
  auto a = pattern(8192, 4);
  uint8_t cdb[16];
  cdb_rw10(cdb, 0x2a, 0, 16);
  EXPECT_EQ(ini.run(cdb, 8192, false, true, a.data(), nullptr, nullptr, 4096), 0);  // immediate + R2T
  std::vector<uint8_t> back(8192);
  cdb_rw10(cdb, 0x28, 0, 16);
  EXPECT_EQ(ini.run(cdb, 8192, true, false, nullptr, back.data(), nullptr, 0), 0);
  EXPECT_EQ(back, a);
  EXPECT_FALSE(ini.digest_error_);
  // Corrupted immediate data: Reject (data digest), the write does not run
  // and, never received, leaves its CmdSN to the next command (RFC 7143
  // 7.2.1, 7.8).
  auto b = pattern(4096, 9);
  cdb_rw10(cdb, 0x2a, 0, 8);
  uint32_t itt;
  uint32_t sn = ini.cmd_sn_;
  ASSERT_TRUE(ini.scsi(cdb, 4096, false, true, &itt, b.data(), 4096, true, false, 0, true));
  Pdu p;
  ASSERT_TRUE(ini.recv(p));
  EXPECT_EQ(p.op(), Op::reject);
  EXPECT_EQ(p.h.reject_reason(), uint8_t(iscsi::RejectReason::data_digest));
  EXPECT_EQ(p.h.exp_cmd_sn(), sn);
  ini.cmd_sn_ = sn;
  cdb_rw10(cdb, 0x28, 0, 16);
  EXPECT_EQ(ini.run(cdb, 8192, true, false, nullptr, back.data(), nullptr, 0), 0);
  EXPECT_EQ(back, a);
  srv.stop();
}

}  // namespace
}  // namespace sgv::testing

namespace sgv::testing {
namespace {

// The target pings an idle initiator every nop_interval_s and drops the
// connection when a ping stays unanswered for nop_timeout_s.
TEST(ConnNop, TargetPingsIdleInitiatorAndDropsTheSilentOne) {
  server::Config cfg = small_config();
  cfg.iscsi.nop_interval_s = 1;
  cfg.iscsi.nop_timeout_s = 1;
  server::Server srv(cfg);
  ASSERT_EQ(srv.start(), 0);
  Initiator ini(srv.bound_portals().at(0).second);
  ASSERT_TRUE(ini.login());
  Pdu p;
  ASSERT_TRUE(ini.recv(p, 10000));
  ASSERT_EQ(p.op(), Op::nop_in);
  EXPECT_EQ(p.h.itt(), iscsi::kReservedTag);
  ASSERT_NE(p.h.ttt(), iscsi::kReservedTag);
  // Answer: NOP-Out with ITT 0xffffffff echoing the TTT.
  Bhs h{};
  h.set_opcode(Op::nop_out, true);
  h.set_flags(0x80);
  h.set_itt(iscsi::kReservedTag);
  h.set_ttt(p.h.ttt());
  h.set32(24, ini.cmd_sn_);
  ASSERT_TRUE(ini.send(h));
  // Next ping comes; this time stay silent: the connection goes.
  ASSERT_TRUE(ini.recv(p, 10000));
  ASSERT_EQ(p.op(), Op::nop_in);
  EXPECT_TRUE(ini.closed_by_peer(10000));
  srv.stop();
}

// One file LUN of `size` bytes at `path`, served by two reactors so that
// connections land on both.
server::Config file_lun_config(const std::string& path, uint64_t size) {
  server::Config cfg = small_config();
  cfg.targets[0].luns[0].kind = server::LunSpec::Kind::file;
  cfg.targets[0].luns[0].path = path;
  cfg.targets[0].luns[0].size_bytes = size;
  cfg.reactors = 2;
  return cfg;
}

// A file LUN on tmpfs serves READs from a mapping of the file. If another
// process truncates the file under the LUN (operator error), reading those
// pages in user space raises SIGBUS -- and sgvd reads Data-In itself when
// DataDigest is negotiated (the CRC). Such a connection must not get the
// mapping: the READ then fails cleanly (MEDIUM ERROR: the file ends early)
// and the daemon, with every other session, serves on. Without the guard
// this test dies of SIGBUS. A session without digests still gets the
// mapping; the kernel's copy fails with EFAULT there, which costs that
// connection, not the process.
TEST(ConnFileLun, TruncatedTmpfsFileUnderDataDigestFailsTheReadNotTheDaemon) {
  struct statfs fs {};
  if (statfs("/dev/shm", &fs) != 0 || fs.f_type != TMPFS_MAGIC) GTEST_SKIP() << "/dev/shm is not tmpfs";
  std::string path = "/dev/shm/sgv_conn_test_trunc_" + std::to_string(getpid()) + ".img";
  server::Config cfg = file_lun_config(path, 4u << 20);
  cfg.reactors = 1;
  server::Server srv(cfg);
  ASSERT_EQ(srv.start(), 0);
  uint16_t port = srv.bound_portals().at(0).second;
  Initiator dig(port);
  dig.isid_ = 0x6001;
  ASSERT_TRUE(dig.login({{"HeaderDigest", "None"}, {"DataDigest", "CRC32C,None"}}));
  ASSERT_TRUE(dig.dd_);
  uint8_t tur[16] = {};
  dig.run(tur, 0, false, false, nullptr, nullptr, nullptr, 0);
  auto a = pattern(262144, 7);
  uint8_t cdb[16];
  cdb_rw10(cdb, 0x2a, 2048, 512);  // the second MiB: whole data pages, mappable
  ASSERT_EQ(dig.run(cdb, 262144, false, true, a.data(), nullptr, nullptr, 65536), 0);
  std::vector<uint8_t> back(262144);
  cdb_rw10(cdb, 0x28, 2048, 512);
  ASSERT_EQ(dig.run(cdb, 262144, true, false, nullptr, back.data(), nullptr, 0), 0);
  EXPECT_EQ(back, a);
  ASSERT_EQ(::truncate(path.c_str(), 512 * 1024), 0);  // another process, in effect
  Pdu rsp;
  EXPECT_EQ(dig.run(cdb, 262144, true, false, nullptr, back.data(), nullptr, 0, &rsp), 2);  // CHECK CONDITION
  // Sense: MEDIUM ERROR (the file ends before the LUN does). The data
  // segment is SenseLength (2 bytes) then the sense, fixed or descriptor.
  ASSERT_GE(rsp.data.size(), 5u);
  const uint8_t* sense = rsp.data.data() + 2;
  uint8_t key = (sense[0] & 0x7f) >= 0x72 ? sense[1] & 0x0f : sense[2] & 0x0f;
  EXPECT_EQ(key, 0x03);
  // The session serves on: the first half MiB is still there.
  cdb_rw10(cdb, 0x28, 0, 8);
  EXPECT_EQ(dig.run(cdb, 4096, true, false, nullptr, back.data(), nullptr, 0), 0);
  // Without digests the mapping is used; whatever that connection gets, the
  // process lives and a new login is served.
  {
    Initiator plain(port);
    plain.isid_ = 0x6002;
    ASSERT_TRUE(plain.login());
    plain.run(tur, 0, false, false, nullptr, nullptr, nullptr, 0);
    cdb_rw10(cdb, 0x28, 2048, 512);
    int st = plain.run(cdb, 262144, true, false, nullptr, back.data(), nullptr, 0);
    EXPECT_NE(st, 0);
  }
  Initiator after(port);
  after.isid_ = 0x6003;
  ASSERT_TRUE(after.login());
  after.run(tur, 0, false, false, nullptr, nullptr, nullptr, 0);  // the new nexus's unit attention
  EXPECT_EQ(after.run(tur, 0, false, false, nullptr, nullptr, nullptr, 0), 0);
  srv.stop();
  ::unlink(path.c_str());
}

TEST(ConnFileLun, WriteReadThroughIoUring) {
  std::string path = std::string(SGV_BINARY_DIR) + "/conn_test_file_lun.img";
  server::Config cfg = file_lun_config(path, 8u << 20);
  server::Server srv(cfg);
  ASSERT_EQ(srv.start(), 0);
  for (int conn = 0; conn < 2; ++conn) {  // round-robin: both reactors serve one
    Initiator ini(srv.bound_portals().at(0).second);
    ini.isid_ = 0x5000 + conn;
    ASSERT_TRUE(ini.login());
    uint8_t tur[16] = {};
    ini.run(tur, 0, false, false, nullptr, nullptr, nullptr, 0);
    auto a = pattern(131072, uint8_t(conn));
    uint8_t cdb[16];
    cdb_rw10(cdb, 0x2a, 1000 + conn * 256, 256);
    EXPECT_EQ(ini.run(cdb, 131072, false, true, a.data(), nullptr, nullptr, 65536), 0);
    std::vector<uint8_t> back(131072);
    cdb_rw10(cdb, 0x28, 1000 + conn * 256, 256);
    EXPECT_EQ(ini.run(cdb, 131072, true, false, nullptr, back.data(), nullptr, 0), 0);
    EXPECT_EQ(back, a);
  }
  srv.stop();
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace sgv::testing

namespace sgv::testing {
namespace {

// Budgets are global > LUN > session: a command is charged to the session's
// child of its own LUN's budget, which also charges the session's total. So
// LUN 1's limit holds for commands to LUN 1 (not only LUN 0's), a command to
// LUN 1 costs LUN 0 nothing, and the session limit spans both LUNs.
server::Config two_lun_config(uint64_t lun0_limit, uint64_t lun1_limit, uint64_t session_limit) {
  server::Config cfg = small_config();
  cfg.targets[0].luns[0].mem_limit = lun0_limit;
  server::LunSpec l1 = cfg.targets[0].luns[0];
  l1.id = 1;
  l1.mem_limit = lun1_limit;
  cfg.targets[0].luns.push_back(l1);
  cfg.session_mem_limit = session_limit;
  return cfg;
}

uint64_t wire_lun(uint64_t id) { return id << 48; }  // SAM peripheral addressing, bus 0

uint64_t stat_of(const std::string& dump, const std::string& key) {
  size_t p = dump.find("\n" + key + "=");
  if (p == std::string::npos) return ~uint64_t{0};
  return std::stoull(dump.substr(p + key.size() + 2));
}

// Sends three 64 KiB writes (LUNs as given) back to back, then expects them
// all GOOD in order.
void three_writes(Initiator& ini, const uint64_t luns[3]) {
  auto a = pattern(65536, 3);
  uint8_t cdb[16];
  uint32_t itt[3];
  for (int i = 0; i < 3; ++i) {
    cdb_rw10(cdb, 0x2a, uint32_t(i) * 128, 128);
    ASSERT_TRUE(ini.scsi(cdb, 65536, false, true, &itt[i], a.data(), 65536, true, false,
                         wire_lun(luns[i])));
  }
  for (int i = 0; i < 3; ++i) {
    Pdu p;
    ASSERT_TRUE(ini.recv(p));
    ASSERT_EQ(p.op(), Op::scsi_rsp);
    EXPECT_EQ(p.h.status(), 0);
    EXPECT_EQ(p.h.itt(), itt[i]);
  }
}

std::unique_ptr<Initiator> logged_in(uint16_t port, uint32_t isid = 0x1234) {
  auto ini = std::make_unique<Initiator>(port);
  ini->isid_ = isid;
  EXPECT_TRUE(ini->login());
  uint8_t tur[16] = {};
  for (uint64_t lun : {0, 1}) {  // consume each LUN's power-on unit attention
    uint32_t itt;
    EXPECT_TRUE(ini->scsi(tur, 0, false, false, &itt, nullptr, 0, true, false, wire_lun(lun)));
    Pdu p;
    EXPECT_TRUE(ini->recv(p));
    EXPECT_EQ(p.op(), Op::scsi_rsp);
  }
  return ini;
}

// A 64 KiB write to LUN `held` takes its buffer and waits for its data (see
// hold_write); a 64 KiB write to LUN `other`, with all its data, comes next.
// If a limit both share is 64 KiB the second is refused at once -- TASK SET
// FULL, since waiting would stop the reader with the held write's Data-Out
// behind it -- and the held write then completes.
void refused_behind_held_write(Initiator& ini, uint64_t held, uint64_t other) {
  auto a = pattern(65536, 6);
  HeldWrite w1;
  ASSERT_NO_FATAL_FAILURE(hold_write(ini, wire_lun(held), 0, a, &w1));
  uint8_t cdb[16];
  uint32_t itt2;
  cdb_rw10(cdb, 0x2a, 128, 128);
  ASSERT_TRUE(ini.scsi(cdb, 65536, false, true, &itt2, a.data(), 65536, true, false, wire_lun(other)));
  ASSERT_NO_FATAL_FAILURE(hand_over(ini, w1));
  EXPECT_EQ(responses(ini, 2), (std::map<uint32_t, int>{{w1.itt, 0}, {itt2, kTaskSetFull}}));
}

// A write on LUN 1 holds LUN 1's whole limit (its buffer is taken, its data
// solicited and not yet sent), so a second LUN 1 write is refused -- without
// a race: the first buffer cannot come back before the refusal, because its
// Data-Out is sent only after the second header.
TEST(ConnBudgets, SecondLunsLimitHoldsForItsOwnCommands) {
  server::Server srv(two_lun_config(0, 65536, 0));
  ASSERT_EQ(srv.start(), 0);
  auto ini = logged_in(srv.bound_portals().at(0).second);
  ASSERT_NO_FATAL_FAILURE(refused_behind_held_write(*ini, 1, 1));
  // With nothing awaiting Data-Out, writes with all their data wait for
  // each other's memory instead: all succeed.
  const uint64_t luns[3] = {1, 1, 1};
  three_writes(*ini, luns);
  std::string s = srv.stats_dump();
  EXPECT_GT(stat_of(s, "budget.t0.lun1.refusals"), 0u) << s;
  EXPECT_EQ(stat_of(s, "budget.t0.lun1.peak"), 65536u) << s;
  EXPECT_EQ(stat_of(s, "budget.t0.lun0.peak"), 0u) << s;  // LUN 1's commands cost LUN 0 nothing
  srv.stop();
}

TEST(ConnBudgets, LunZerosLimitDoesNotHoldBackOtherLuns) {
  server::Server srv(two_lun_config(65536, 0, 0));
  ASSERT_EQ(srv.start(), 0);
  auto ini = logged_in(srv.bound_portals().at(0).second);
  const uint64_t luns[3] = {1, 0, 1};  // one 64 KiB write on LUN 0 fits beside LUN 1's
  three_writes(*ini, luns);
  std::string s = srv.stats_dump();
  EXPECT_EQ(stat_of(s, "budget.t0.lun0.refusals"), 0u) << s;
  EXPECT_EQ(stat_of(s, "mem_waits"), 0u) << s;
  srv.stop();
}

// A LUN 0 write holding the session's whole limit (as above, without a
// race) refuses a LUN 1 write, though neither LUN has a limit of its own.
TEST(ConnBudgets, SessionLimitSpansItsLuns) {
  server::Server srv(two_lun_config(0, 0, 65536));
  ASSERT_EQ(srv.start(), 0);
  auto ini = logged_in(srv.bound_portals().at(0).second);
  ASSERT_NO_FATAL_FAILURE(refused_behind_held_write(*ini, 0, 1));
  const uint64_t luns[3] = {0, 1, 0};
  three_writes(*ini, luns);
  std::string s = srv.stats_dump();
  EXPECT_EQ(stat_of(s, "budget.t0.lun0.refusals"), 0u) << s;
  EXPECT_EQ(stat_of(s, "budget.t0.lun1.refusals"), 0u) << s;
  srv.stop();
}

// Polls the stats until `key` reaches `at_least`: for a state the server
// must reach whatever the thread timing (the deadline only ends a failing
// run, it decides nothing in a passing one).
bool stat_reaches(const server::Server& srv, const std::string& key, uint64_t at_least) {
  for (int i = 0; i < 10000; ++i) {
    uint64_t v = stat_of(srv.stats_dump(), key);
    if (v != ~uint64_t{0} && v >= at_least) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

// LUN 0's limit is one command's buffer. Session A's write takes all of it
// and awaits its Data-Out (hold_write), so the buffer cannot come back until
// the test sends that data. Session B's write, with all its data, then
// cannot get memory; B's connection has no command awaiting Data-Out, so
// the command waits (B's reader stops, MaxCmdSN holds) instead of failing,
// and completes once A's data is in and A's buffer is back.
TEST(ConnBudgets, CommandWaitsForMemoryInsteadOfFailing) {
  server::Server srv(two_lun_config(65536, 0, 0));
  ASSERT_EQ(srv.start(), 0);
  uint16_t port = srv.bound_portals().at(0).second;
  auto a = logged_in(port, 0x2001), b = logged_in(port, 0x2002);
  auto da = pattern(65536, 7), db = pattern(65536, 8);
  HeldWrite w;
  ASSERT_NO_FATAL_FAILURE(hold_write(*a, wire_lun(0), 0, da, &w));
  uint8_t cdb[16];
  uint32_t itt_b;
  cdb_rw10(cdb, 0x2a, 128, 128);
  ASSERT_TRUE(b->scsi(cdb, 65536, false, true, &itt_b, db.data(), 65536, true));
  // Certain to happen: A holds the memory until hand_over below.
  ASSERT_TRUE(stat_reaches(srv, "mem_waits", 1)) << srv.stats_dump();
  ASSERT_NO_FATAL_FAILURE(hand_over(*a, w));
  EXPECT_EQ(responses(*a, 1), (std::map<uint32_t, int>{{w.itt, 0}}));
  Pdu rb;
  ASSERT_TRUE(b->recv(rb));
  ASSERT_EQ(rb.op(), Op::scsi_rsp);
  EXPECT_EQ(rb.h.itt(), itt_b);
  EXPECT_EQ(rb.h.status(), 0);
  std::vector<uint8_t> back(65536);
  for (auto [lba, want] : {std::pair{0u, &da}, std::pair{128u, &db}}) {
    cdb_rw10(cdb, 0x28, lba, 128);
    EXPECT_EQ(b->run(cdb, 65536, true, false, nullptr, back.data(), nullptr, 0), 0);
    EXPECT_EQ(back, *want);
  }
  EXPECT_EQ(stat_of(srv.stats_dump(), "budget.t0.lun0.peak"), 65536u);
  srv.stop();
}

// COMPARE AND WRITE from one session racing WRITEs of the same block from
// another, on two reactors: a WRITE arriving while a CAW holds the LUN's
// write gate, or a CAW finding WRITEs in flight, is parked by the SCSI core
// and resumed through the reactor's inbox. Every command must still be
// answered (good, or MISCOMPARE for a CAW whose guess a WRITE overtook), and
// a session closed with commands parked must not take the server down.
TEST(ConnCompareAndWrite, RacingWritesAreParkedAndResumed) {
  // A file LUN: its writes stay in flight on the reactor's io_uring until
  // reaped, so CAWs find them there and wait for the drain.
  char path[] = "/tmp/sgv_conn_caw_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  server::Config cfg = file_lun_config(path, 1u << 20);
  server::Server srv(cfg);
  ASSERT_EQ(srv.start(), 0);
  uint16_t port = srv.bound_portals().at(0).second;
  constexpr int kOps = 1500;
  int caw_bad = 0, write_bad = 0, miscompares = 0;
  auto login = [&](uint32_t isid) {
    auto ini = std::make_unique<Initiator>(port);
    ini->isid_ = isid;
    EXPECT_TRUE(ini->login());
    uint8_t tur[16] = {};
    ini->run(tur, 0, false, false, nullptr, nullptr, nullptr, 0);
    return ini;
  };
  std::thread ta([&] {
    auto ini = login(0x1001);
    uint8_t cdb[16] = {0x89, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0};
    std::vector<uint8_t> buf(1024, 0);
    uint64_t own = 0;
    for (int i = 0; i < kOps; ++i) {
      uint64_t next = own + 1;
      std::memcpy(buf.data(), &own, sizeof own);
      std::memcpy(buf.data() + 512, &next, sizeof next);
      Pdu rsp;
      int st = ini->run(cdb, 1024, false, true, buf.data(), nullptr, nullptr, 65536, &rsp);
      if (st == 0) {
        own = next;
      } else if (st == 2 && rsp.data.size() >= 2 + 3 && (rsp.data[2 + 2] & 0x0f) == 0x0e) {
        ++miscompares;
        own = 0;  // the writer put zeros there
      } else {
        ++caw_bad;
      }
    }
  });
  std::thread tb([&] {
    auto ini = login(0x1002);
    uint8_t cdb[16];
    cdb_rw10(cdb, 0x2a, 7, 1);
    std::vector<uint8_t> zero(512, 0);
    for (int i = 0; i < kOps; ++i)
      if (ini->run(cdb, 512, false, true, zero.data(), nullptr, nullptr, 65536) != 0) ++write_bad;
    // Leave with commands in flight: they may be parked behind a CAW.
    uint32_t itt;
    for (int i = 0; i < 8; ++i) ini->scsi(cdb, 512, false, true, &itt, zero.data(), 512, true);
  });
  ta.join();
  tb.join();
  std::printf("COMPARE AND WRITE miscompares after a racing WRITE: %d of %d\n", miscompares, kOps);
  EXPECT_EQ(caw_bad, 0);
  EXPECT_EQ(write_bad, 0);
  auto ini = std::make_unique<Initiator>(port);
  EXPECT_TRUE(ini->login());
  srv.stop();
  ::unlink(path);
}

}  // namespace
}  // namespace sgv::testing
