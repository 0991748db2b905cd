// tests/iscsi/conn_test.cpp - one Conn driven directly over a socketpair (no
// server, no reactor; a RAM LUN completes inline): login goes through the
// Login state machine stage by stage, a SendTargets answer longer than the
// initiator's MaxRecvDataSegmentLength comes in Text Responses pulled with
// the Target Transfer Tag, and data digests on Data-Out (a good one writes,
// a bad one is rejected, never written, and ends the task with CHECK
// CONDITION once its outstanding bursts are in).
#include "iscsi/conn.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "iscsi/crc32c.hpp"
#include "scsi/target.hpp"
#include "sgv/cache.hpp"

namespace sgv::iscsi {
namespace {

constexpr const char* kTarget = "iqn.2026-11.io.sgv:conn-test";
constexpr const char* kInitiator = "iqn.2026-11.io.sgv:conn-test-initiator";

struct TestHost : Host {
  Limits lim;
  Budget global{nullptr, 64u << 20, 0, "global"};
  Pool pool_{PoolOptions{}, &global};
  scsi::Target target{kTarget};
  std::vector<std::string> names;  // what SendTargets lists; the real target first
  std::vector<std::string> addrs;
  std::vector<Portal> portals;

  explicit TestHost(size_t extra_targets = 0, size_t nportals = 1) {
    int err = 0;
    scsi::LunConfig lc;
    lc.backend = backend::make_ram(backend::RamOptions{1u << 20}, &err);
    EXPECT_EQ(target.add_lun(std::move(lc)), 0);
    names.push_back(kTarget);
    for (size_t i = 0; i < extra_targets; ++i) names.push_back("iqn.2026-11.io.sgv:listed-" + std::to_string(i));
    for (size_t i = 0; i < nportals; ++i) addrs.push_back("192.0.2." + std::to_string(i + 1) + ":3260");
    for (const std::string& a : addrs) portals.push_back({a, 1});
  }
  bool target_exists(std::string_view n) override {
    for (const auto& x : names)
      if (x == n) return true;
    return false;
  }
  bool target_allowed(std::string_view, std::string_view) override { return true; }
  std::string_view target_alias(std::string_view) override { return {}; }
  size_t target_count() override { return names.size(); }
  TargetEntry target_entry(size_t i) override { return {names[i], portals}; }
  scsi::Target* find_target(std::string_view n, std::string_view) override {
    return n == kTarget ? &target : nullptr;
  }
  Pool* pool() override { return &pool_; }
  const Limits& limits() override { return lim; }
  uint16_t session_up(const void*, std::string_view, uint64_t, std::string_view) override { return ++sessions; }
  void session_down(const void*) override {}
  uint16_t sessions = 0;
};

struct Pdu {
  Bhs h{};
  std::vector<uint8_t> data;
  std::string text() const { return std::string(data.begin(), data.end()); }
};

// key -> value of a response's text (read with the module's own parser,
// which text_test covers).
std::map<std::string, std::string> parse(const std::string& s) {
  TextPairs tp;
  EXPECT_EQ(parse_text(s, tp), TextStatus::ok);
  std::map<std::string, std::string> m;
  for (const KeyValue& x : tp) m[std::string(x.key)] = std::string(x.value);
  return m;
}

std::string kv(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::string s;
  for (const auto& [k, v] : pairs) {
    s += k + "=" + v;
    s.push_back('\0');
  }
  return s;
}

// The initiator's end of a socketpair whose other end a Conn serves.
class Peer {
 public:
  explicit Peer(TestHost& host) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ::fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fd_ = sv[1];
    conn_ = std::make_unique<Conn>(sv[0], &host, &ctr_);
  }
  ~Peer() {
    conn_.reset();
    ::close(fd_);
  }
  Conn& conn() { return *conn_; }

  // Lets the connection read what was sent and write its answers.
  void pump() {
    if (!alive_) return;
    alive_ = conn_->on_readable() && conn_->flush();
  }
  bool alive() const { return alive_; }

  bool send(Bhs h, const std::string& d, bool bad_data_digest = false) {
    return send(h, d.data(), uint32_t(d.size()), bad_data_digest);
  }
  bool send(Bhs h, const void* data, uint32_t len, bool bad_data_digest = false) {
    h.set_data_len(len);
    std::vector<uint8_t> w(h.b, h.b + kBhsLen);
    uint8_t d[4];
    if (hd_) {
      put_digest(d, crc32c(h.b, kBhsLen));
      w.insert(w.end(), d, d + 4);
    }
    if (len) {
      const uint8_t* p = static_cast<const uint8_t*>(data);
      w.insert(w.end(), p, p + len);
      w.resize(w.size() + pad_len(len), 0);
      if (dd_) {
        put_digest(d, crc32c(w.data() + w.size() - padded(len), padded(len)) ^ (bad_data_digest ? 1u : 0u));
        w.insert(w.end(), d, d + 4);
      }
    }
    return ::send(fd_, w.data(), w.size(), MSG_NOSIGNAL) == ssize_t(w.size());
  }

  // The next PDU the connection sends (pumping it as needed); false when
  // none comes.
  bool recv(Pdu& p) {
    if (!read_exact(p.h.b, kBhsLen)) return false;
    uint8_t d[4];
    if (hd_) {
      if (!read_exact(d, 4)) return false;
      if (get_digest(d) != crc32c(p.h.b, kBhsLen)) digest_error_ = true;
    }
    uint32_t n = p.h.data_len();
    p.data.assign(padded(n), 0);
    if (n && !read_exact(p.data.data(), padded(n))) return false;
    if (n && dd_) {
      if (!read_exact(d, 4)) return false;
      if (get_digest(d) != crc32c(p.data.data(), padded(n))) digest_error_ = true;
    }
    p.data.resize(n);
    stat_sn_ = p.h.stat_sn() + 1;
    return true;
  }
  // Nothing more is waiting from the connection.
  bool quiet() {
    pump();
    pollfd pf{fd_, POLLIN, 0};
    return ::poll(&pf, 1, 0) == 0;
  }

  Bhs login_req(Stage csg, Stage nsg, bool transit, bool cont = false) {
    Bhs h{};
    h.set_opcode(Op::login_req, true);
    h.set_flags(uint8_t((transit ? Bhs::kT : 0) | (cont ? Bhs::kC : 0) | (uint8_t(csg) << 2) | uint8_t(nsg)));
    h.set16(8, 0x8000);
    h.set32(10, 0x1234);
    h.set_itt(itt_);
    h.set32(24, cmd_sn_);
    h.set32(28, stat_sn_);
    return h;
  }
  // A one-PDU login straight to full feature phase.
  bool login(std::vector<std::pair<std::string, std::string>> keys, bool discovery = false, Pdu* out = nullptr) {
    keys.insert(keys.begin(), {"InitiatorName", kInitiator});
    keys.insert(keys.begin() + 1, {"SessionType", discovery ? "Discovery" : "Normal"});
    if (!discovery) keys.insert(keys.begin() + 2, {"TargetName", kTarget});
    if (!send(login_req(Stage::operational, Stage::full_feature, true), kv(keys))) return false;
    Pdu r;
    if (!recv(r)) return false;
    if (out) *out = r;
    auto got = parse(r.text());
    hd_ = got["HeaderDigest"] == "CRC32C";
    dd_ = got["DataDigest"] == "CRC32C";
    ++itt_;
    return r.h.opcode() == Op::login_rsp && r.h.status_class() == 0 && r.h.transit() &&
           r.h.nsg() == Stage::full_feature;
  }

  Bhs text_req(uint32_t itt, uint32_t ttt, bool final = true) {
    Bhs h{};
    h.set_opcode(Op::text_req, true);
    h.set_flags(final ? Bhs::kF : 0);
    h.set_itt(itt);
    h.set_ttt(ttt);
    h.set32(24, cmd_sn_);
    h.set32(28, stat_sn_);
    return h;
  }
  Bhs scsi_cmd(const uint8_t* cdb, uint32_t edtl, bool read, bool write, uint32_t itt) {
    Bhs h{};
    h.set_opcode(Op::scsi_cmd);
    h.set_flags(uint8_t(Bhs::kF | (read ? Bhs::kR : 0) | (write ? Bhs::kW : 0) | 1));
    h.set_itt(itt);
    h.set32(20, edtl);
    h.set32(24, cmd_sn_++);
    h.set32(28, stat_sn_);
    std::memcpy(h.b + 32, cdb, 16);
    return h;
  }
  Bhs data_out(uint32_t itt, uint32_t ttt, uint32_t data_sn, uint32_t offset, bool final) {
    Bhs h{};
    h.set_opcode(Op::data_out);
    h.set_flags(final ? Bhs::kF : 0);
    h.set_itt(itt);
    h.set_ttt(ttt);
    h.set32(28, stat_sn_);
    h.set32(36, data_sn);
    h.set32(40, offset);
    return h;
  }

  bool hd_ = false, dd_ = false;  // digests in force
  bool digest_error_ = false;     // a digest from the connection did not match
  uint32_t cmd_sn_ = 1, stat_sn_ = 0, itt_ = 0x10;

 private:
  bool read_exact(uint8_t* p, size_t n) {
    for (int idle = 0; n > 0;) {
      pump();
      ssize_t r = ::recv(fd_, p, n, MSG_DONTWAIT);
      if (r > 0) {
        p += r;
        n -= size_t(r);
        idle = 0;
      } else if (r == 0 || ++idle > 20) {
        return false;
      }
    }
    return true;
  }

  Counters ctr_;
  int fd_ = -1;
  bool alive_ = true;
  std::unique_ptr<Conn> conn_;
};

void cdb10(uint8_t* c, uint8_t op, uint32_t lba, uint16_t blocks) {
  std::memset(c, 0, 16);
  c[0] = op;
  put32(c + 2, lba);
  put16(c + 7, blocks);
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(i * 7 + seed);
  return v;
}

// READ(10) of `len` bytes at lba; Data-In gathered, status returned.
int read10(Peer& p, uint32_t lba, uint32_t len, std::vector<uint8_t>& out, uint32_t itt) {
  uint8_t cdb[16];
  cdb10(cdb, 0x28, lba, uint16_t(len / 512));
  out.assign(len, 0xee);
  if (!p.send(p.scsi_cmd(cdb, len, true, false, itt), nullptr, 0)) return -1;
  for (;;) {
    Pdu r;
    if (!p.recv(r)) return -1;
    if (r.h.opcode() == Op::data_in) {
      std::memcpy(out.data() + r.h.buffer_offset(), r.data.data(), r.data.size());
      if (r.h.flags() & Bhs::kS) return r.h.status();
    } else if (r.h.opcode() == Op::scsi_rsp) {
      return r.h.status();
    } else {
      return -1;
    }
  }
}

TEST(ConnLogin, StagesKeysAndContinuedRequestGoThroughLogin) {
  TestHost host;
  Peer p(host);
  // Security stage, its text split over two PDUs with the C bit: the first
  // gets an empty response, the second the answer.
  std::string sec = kv({{"InitiatorName", kInitiator},
                        {"SessionType", "Normal"},
                        {"TargetName", kTarget},
                        {"AuthMethod", "CHAP,None"}});
  size_t cut = 20;  // inside a key
  ASSERT_TRUE(p.send(p.login_req(Stage::security, Stage::operational, false, true), sec.substr(0, cut)));
  Pdu r;
  ASSERT_TRUE(p.recv(r));
  EXPECT_EQ(r.h.opcode(), Op::login_rsp);
  EXPECT_EQ(r.h.status_class(), 0);
  EXPECT_EQ(r.h.data_len(), 0u);
  EXPECT_FALSE(r.h.transit());
  ASSERT_TRUE(p.send(p.login_req(Stage::security, Stage::operational, true), sec.substr(cut)));
  ASSERT_TRUE(p.recv(r));
  auto k = parse(r.text());
  EXPECT_EQ(r.h.status_class(), 0);
  EXPECT_TRUE(r.h.transit());
  EXPECT_EQ(r.h.csg(), Stage::security);
  EXPECT_EQ(r.h.nsg(), Stage::operational);
  EXPECT_EQ(k["AuthMethod"], "None");
  EXPECT_EQ(k["TargetPortalGroupTag"], "1");
  EXPECT_FALSE(p.conn().logged_in());

  // Operational stage: RFC 7143 results, unknown / retired / out-of-range keys.
  std::string op = kv({{"HeaderDigest", "None"},
                       {"DataDigest", "CRC32C,None"},
                       {"MaxRecvDataSegmentLength", "4096"},
                       {"InitialR2T", "Yes"},
                       {"ImmediateData", "Yes"},
                       {"MaxBurstLength", "100"},  // below 512: Reject, default stays
                       {"FirstBurstLength", "8192"},
                       {"MaxOutstandingR2T", "64"},
                       {"DefaultTime2Wait", "0"},
                       {"ErrorRecoveryLevel", "2"},
                       {"MaxConnections", "4"},
                       {"IFMarkInt", "2048"},
                       {"X-org.example.key", "1"}});
  ASSERT_TRUE(p.send(p.login_req(Stage::operational, Stage::full_feature, true), op));
  ASSERT_TRUE(p.recv(r));
  k = parse(r.text());
  EXPECT_EQ(r.h.status_class(), 0);
  ASSERT_TRUE(r.h.transit());
  EXPECT_EQ(r.h.nsg(), Stage::full_feature);
  EXPECT_NE(r.h.tsih(), 0);
  EXPECT_EQ(k["DataDigest"], "CRC32C");
  EXPECT_EQ(k["InitialR2T"], "Yes");
  EXPECT_EQ(k["MaxBurstLength"], "Reject");
  EXPECT_EQ(k["FirstBurstLength"], "8192");
  EXPECT_EQ(k["MaxOutstandingR2T"], std::to_string(host.lim.max_outstanding_r2t));
  EXPECT_EQ(k["DefaultTime2Wait"], "2");  // max(offer, ours)
  EXPECT_EQ(k["ErrorRecoveryLevel"], "0");
  EXPECT_EQ(k["MaxConnections"], "1");
  EXPECT_EQ(k["IFMarkInt"], "Irrelevant");
  EXPECT_EQ(k["X-org.example.key"], "NotUnderstood");
  EXPECT_EQ(k["MaxRecvDataSegmentLength"], std::to_string(host.lim.max_recv_data_segment_length));
  ASSERT_TRUE(p.conn().logged_in());
  const Params& np = p.conn().params();
  EXPECT_TRUE(np.data_digest);
  EXPECT_FALSE(np.header_digest);
  EXPECT_TRUE(np.initial_r2t);
  EXPECT_EQ(np.max_recv_dsl_initiator, 4096u);
  EXPECT_EQ(np.max_burst, 262144u);
  EXPECT_EQ(np.first_burst, 8192u);
  EXPECT_EQ(host.sessions, 1);
}

TEST(ConnLogin, UnknownTargetAndMissingInitiatorFailWithTheirStatus) {
  TestHost host;
  {
    Peer p(host);
    ASSERT_TRUE(p.send(p.login_req(Stage::operational, Stage::full_feature, true),
                       kv({{"InitiatorName", kInitiator}, {"TargetName", "iqn.2026-11.io.sgv:nope"}})));
    Pdu r;
    ASSERT_TRUE(p.recv(r));
    EXPECT_EQ(r.h.status_class(), 2);
    EXPECT_EQ(r.h.status_detail(), 3);  // target not found
    EXPECT_FALSE(p.alive());            // closed once answered
  }
  {
    Peer p(host);
    ASSERT_TRUE(p.send(p.login_req(Stage::operational, Stage::full_feature, true), kv({{"TargetName", kTarget}})));
    Pdu r;
    ASSERT_TRUE(p.recv(r));
    EXPECT_EQ(r.h.status_class(), 2);
    EXPECT_EQ(r.h.status_detail(), 7);  // missing parameter
  }
  EXPECT_EQ(host.sessions, 0);
}

// SendTargets=All with 40 targets x 3 portals is ~6 KiB; the initiator takes
// 512 bytes per PDU. The answer comes in pieces with C=1 and our TTT, each
// pulled by an empty Text Request echoing it; the last has F=1 and no TTT.
TEST(ConnText, LongSendTargetsAnswerIsSplitAndPulledWithTheTtt) {
  TestHost host(39, 3);
  Peer p(host);
  ASSERT_TRUE(p.login({{"MaxRecvDataSegmentLength", "512"}}, true));
  const uint32_t itt = 0x77;
  ASSERT_TRUE(p.send(p.text_req(itt, kReservedTag), kv({{"SendTargets", "All"}})));
  std::string all;
  unsigned pdus = 0;
  uint32_t last_stat_sn = 0;
  for (;;) {
    Pdu r;
    ASSERT_TRUE(p.recv(r)) << "after " << pdus << " PDUs";
    ASSERT_EQ(r.h.opcode(), Op::text_rsp);
    EXPECT_EQ(r.h.itt(), itt);
    EXPECT_LE(r.h.data_len(), 512u);
    if (pdus > 0) {
      EXPECT_EQ(r.h.stat_sn(), last_stat_sn + 1);
    }
    last_stat_sn = r.h.stat_sn();
    ++pdus;
    all += r.text();
    if (!r.h.cont()) {
      EXPECT_TRUE(r.h.final());
      EXPECT_EQ(r.h.ttt(), kReservedTag);
      break;
    }
    EXPECT_FALSE(r.h.final());
    ASSERT_NE(r.h.ttt(), kReservedTag);
    ASSERT_LT(pdus, 100u);
    ASSERT_TRUE(p.send(p.text_req(itt, r.h.ttt()), nullptr, 0));
  }
  EXPECT_GT(pdus, 10u);
  // Nothing lost or cut: every target with every portal, in order.
  std::string expect;
  for (const std::string& n : host.names) {
    expect += "TargetName=" + n;
    expect.push_back('\0');
    for (const std::string& a : host.addrs) {
      expect += "TargetAddress=" + a + ",1";
      expect.push_back('\0');
    }
  }
  EXPECT_EQ(all, expect);
  EXPECT_TRUE(p.quiet());
}

// A discovery session has no LUNs: a SCSI Command is rejected (it has no
// target to run on) and the session goes on answering.
TEST(ConnText, ScsiCommandInDiscoverySessionIsRejected) {
  TestHost host;
  Peer p(host);
  ASSERT_TRUE(p.login({}, true));
  uint8_t tur[16] = {};
  ASSERT_TRUE(p.send(p.scsi_cmd(tur, 0, false, false, 5), nullptr, 0));
  Pdu r;
  ASSERT_TRUE(p.recv(r));
  EXPECT_EQ(r.h.opcode(), Op::reject);
  EXPECT_EQ(r.h.reject_reason(), uint8_t(RejectReason::protocol_error));
  ASSERT_TRUE(p.send(p.text_req(6, kReservedTag), kv({{"SendTargets", "All"}})));
  ASSERT_TRUE(p.recv(r));
  EXPECT_EQ(r.h.opcode(), Op::text_rsp);
  EXPECT_EQ(r.h.exp_cmd_sn(), p.cmd_sn_);  // the rejected command used its CmdSN
  EXPECT_EQ(parse(r.text())["TargetName"], kTarget);
}

TEST(ConnText, NormalSessionListsItsOwnTargetAndRejectsAll) {
  TestHost host(3, 1);
  Peer p(host);
  ASSERT_TRUE(p.login({}));
  ASSERT_TRUE(p.send(p.text_req(1, kReservedTag), kv({{"SendTargets", ""}, {"X-unknown", "1"}})));
  Pdu r;
  ASSERT_TRUE(p.recv(r));
  ASSERT_EQ(r.h.opcode(), Op::text_rsp);
  EXPECT_TRUE(r.h.final());
  auto k = parse(r.text());
  EXPECT_EQ(k["TargetName"], kTarget);
  EXPECT_EQ(k["X-unknown"], "NotUnderstood");
  ASSERT_TRUE(p.send(p.text_req(2, kReservedTag), kv({{"SendTargets", "All"}})));
  ASSERT_TRUE(p.recv(r));
  EXPECT_EQ(parse(r.text())["SendTargets"], "Reject");
}

// TEST UNIT READY takes the new nexus' unit attention (power on), so the
// commands that follow get their own answers.
void take_power_on_ua(Peer& p) {
  uint8_t tur[16] = {};
  ASSERT_TRUE(p.send(p.scsi_cmd(tur, 0, false, false, 0xff), nullptr, 0));
  Pdu ua;
  ASSERT_TRUE(p.recv(ua));
  ASSERT_EQ(ua.h.opcode(), Op::scsi_rsp);
}

// WRITE(10) of 16 KiB with InitialR2T=Yes, 4 KiB bursts and two R2Ts
// outstanding. The first burst's Data-Out is good, the second's fails its
// data digest: Reject (data digest error, carrying the header), no more R2Ts,
// and once both outstanding bursts are in, CHECK CONDITION ABORTED COMMAND
// with PROTOCOL SERVICE CRC ERROR (RFC 7143 7.8, 11.4.7.2). Nothing of the
// write reaches the LUN. Then the same write with good digests lands.
TEST(ConnDigest, BadDataOutDigestIsRejectedAndTheWriteNeverRuns) {
  TestHost host;
  Peer p(host);
  ASSERT_TRUE(p.login({{"HeaderDigest", "CRC32C"},
                       {"DataDigest", "CRC32C"},
                       {"InitialR2T", "Yes"},
                       {"ImmediateData", "No"},
                       {"MaxBurstLength", "4096"},
                       {"FirstBurstLength", "4096"},
                       {"MaxOutstandingR2T", "2"}}));
  ASSERT_TRUE(p.hd_ && p.dd_);
  ASSERT_NO_FATAL_FAILURE(take_power_on_ua(p));
  auto data = pattern(16384, 3);
  uint8_t cdb[16];
  cdb10(cdb, 0x2a, 8, 32);
  ASSERT_TRUE(p.send(p.scsi_cmd(cdb, 16384, false, true, 0x100), nullptr, 0));
  Pdu r2t[2];
  for (Pdu& r : r2t) {
    ASSERT_TRUE(p.recv(r));
    ASSERT_EQ(r.h.opcode(), Op::r2t);
    EXPECT_EQ(r.h.desired_len(), 4096u);
  }
  ASSERT_NE(r2t[0].h.ttt(), r2t[1].h.ttt());
  uint32_t off0 = r2t[0].h.buffer_offset(), off1 = r2t[1].h.buffer_offset();
  ASSERT_TRUE(p.send(p.data_out(0x100, r2t[0].h.ttt(), 0, off0, true), data.data() + off0, 4096));
  Bhs bad = p.data_out(0x100, r2t[1].h.ttt(), 0, off1, true);
  ASSERT_TRUE(p.send(bad, data.data() + off1, 4096, /*bad_data_digest=*/true));
  Pdu r;
  ASSERT_TRUE(p.recv(r));
  ASSERT_EQ(r.h.opcode(), Op::reject);
  EXPECT_EQ(r.h.reject_reason(), uint8_t(RejectReason::data_digest));
  ASSERT_EQ(r.data.size(), size_t(kBhsLen));
  EXPECT_EQ(r.data[0] & 0x3f, uint8_t(Op::data_out));
  EXPECT_EQ(be32(r.data.data() + 20), r2t[1].h.ttt());
  ASSERT_TRUE(p.recv(r));
  ASSERT_EQ(r.h.opcode(), Op::scsi_rsp) << "no further R2T after a digest error";
  EXPECT_EQ(r.h.itt(), 0x100u);
  EXPECT_EQ(r.h.status(), 0x02);  // CHECK CONDITION
  ASSERT_GE(r.data.size(), 2u + 14);
  EXPECT_EQ(r.data[2 + 2] & 0x0f, 0x0b);  // ABORTED COMMAND
  EXPECT_EQ(r.data[2 + 12], 0x47);
  EXPECT_EQ(r.data[2 + 13], 0x05);
  EXPECT_TRUE(p.quiet());
  EXPECT_FALSE(p.digest_error_);

  std::vector<uint8_t> back;
  ASSERT_EQ(read10(p, 8, 16384, back, 0x101), 0);
  EXPECT_EQ(back, std::vector<uint8_t>(16384, 0)) << "data of a rejected write reached the LUN";

  // The same write with good digests runs.
  ASSERT_TRUE(p.send(p.scsi_cmd(cdb, 16384, false, true, 0x103), nullptr, 0));
  for (uint32_t done = 0; done < 16384;) {
    Pdu q;
    ASSERT_TRUE(p.recv(q));
    ASSERT_EQ(q.h.opcode(), Op::r2t);
    uint32_t off = q.h.buffer_offset();
    ASSERT_TRUE(p.send(p.data_out(0x103, q.h.ttt(), 0, off, true), data.data() + off, q.h.desired_len()));
    done += q.h.desired_len();
  }
  ASSERT_TRUE(p.recv(r));
  ASSERT_EQ(r.h.opcode(), Op::scsi_rsp);
  EXPECT_EQ(r.h.status(), 0);
  ASSERT_EQ(read10(p, 8, 16384, back, 0x104), 0);
  EXPECT_EQ(back, data);
  EXPECT_FALSE(p.digest_error_) << "Data-In digests from the target must verify";
}

// A WRITE whose immediate data fails its data digest: Reject (data digest
// error) and the command counts as never received (RFC 7143 7.8: a discarded
// non-data PDU needs no further target action; 7.2.1: the initiator plugs the
// CmdSN gap by retrying the same command). So ExpCmdSN must not move past it,
// or the retry with the same CmdSN falls outside the window and is dropped.
TEST(ConnDigest, BadImmediateDataDigestLeavesTheCmdSnForTheRetry) {
  TestHost host;
  Peer p(host);
  ASSERT_TRUE(p.login({{"DataDigest", "CRC32C"}, {"ImmediateData", "Yes"}, {"InitialR2T", "Yes"}}));
  ASSERT_TRUE(p.dd_);
  ASSERT_NO_FATAL_FAILURE(take_power_on_ua(p));
  auto data = pattern(4096, 5);
  uint8_t cdb[16];
  cdb10(cdb, 0x2a, 16, 8);
  uint32_t sn = p.cmd_sn_;
  ASSERT_TRUE(p.send(p.scsi_cmd(cdb, 4096, false, true, 0x200), data.data(), 4096, /*bad_data_digest=*/true));
  Pdu r;
  ASSERT_TRUE(p.recv(r));
  ASSERT_EQ(r.h.opcode(), Op::reject);
  EXPECT_EQ(r.h.reject_reason(), uint8_t(RejectReason::data_digest));
  EXPECT_EQ(r.h.exp_cmd_sn(), sn) << "the discarded command must not consume its CmdSN";
  EXPECT_TRUE(p.quiet()) << "no response for a command that was never received";

  // The retry: same CmdSN, same ITT, good digest. It runs and only then
  // does ExpCmdSN move on.
  p.cmd_sn_ = sn;
  ASSERT_TRUE(p.send(p.scsi_cmd(cdb, 4096, false, true, 0x200), data.data(), 4096));
  ASSERT_TRUE(p.recv(r));
  ASSERT_EQ(r.h.opcode(), Op::scsi_rsp);
  EXPECT_EQ(r.h.itt(), 0x200u);
  EXPECT_EQ(r.h.status(), 0);
  EXPECT_EQ(r.h.exp_cmd_sn(), sn + 1);
  std::vector<uint8_t> back;
  ASSERT_EQ(read10(p, 16, 4096, back, 0x201), 0);
  EXPECT_EQ(back, data);
  EXPECT_FALSE(p.digest_error_);
}

}  // namespace
}  // namespace sgv::iscsi
