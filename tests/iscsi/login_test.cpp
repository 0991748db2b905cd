// tests/iscsi/login_test.cpp - the login state machine: stage transitions,
// bad CSG/NSG, leading keys, target lookup and ACL, versions, TSIH, the
// Authenticator seam, multi-PDU requests at every split and long responses.
#include "iscsi/login.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace sgv::iscsi;

namespace {

struct FakeDir : TargetDirectory {
  uint16_t next_tsih = 7;
  int created = 0;
  bool exists(std::string_view t) const override { return t == "iqn.2024-01.test:disk" || t == "iqn.2024-01.test:locked"; }
  bool allowed(std::string_view t, std::string_view) const override { return t != "iqn.2024-01.test:locked"; }
  std::string_view alias(std::string_view) const override { return "disk"; }
  size_t count() const override { return 0; }
  TargetEntry entry(size_t) const override { return {}; }
  bool session_exists(uint64_t, uint16_t tsih) const override { return tsih == 3; }
  uint16_t create_session(const SessionParams&) override {
    created++;
    return next_tsih;
  }
};

constexpr uint64_t kIsid = 0x400001370000ull;

Bhs req(Stage csg, Stage nsg, bool t, bool c = false, uint32_t cmdsn = 10, uint16_t tsih = 0) {
  Bhs h;
  h.clear();
  h.set_opcode(Op::login_req, true);
  h.set_flags(uint8_t((t ? 0x80 : 0) | (c ? 0x40 : 0) | (uint8_t(csg) << 2) | (t ? uint8_t(nsg) : 0)));
  h.set16(8, uint16_t(kIsid >> 32));
  h.set32(10, uint32_t(kIsid));
  h.set16(14, tsih);
  h.set_itt(0x1000);
  h.set16(20, 1);  // CID
  h.set32(24, cmdsn);
  h.set32(28, 5);  // ExpStatSN
  return h;
}

std::span<const uint8_t> sp(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

std::string kv(std::initializer_list<const char*> pairs) {
  std::string s;
  for (const char* p : pairs) {
    s += p;
    s.push_back('\0');
  }
  return s;
}

const std::string kLeading =
    kv({"InitiatorName=iqn.2024-01.test:host", "SessionType=Normal", "TargetName=iqn.2024-01.test:disk"});

uint16_t status(const Login::Output& o) { return uint16_t(o.rsp.status_class() << 8 | o.rsp.status_detail()); }

TextPairs pairs_of(const Login::Output& o, std::string& keep) {
  keep.assign(reinterpret_cast<const char*>(o.data.data()), o.data.size());
  TextPairs p;
  EXPECT_EQ(parse_text(keep, p), TextStatus::ok);
  return p;
}

struct Fixture : ::testing::Test {
  TargetLimits lim;
  FakeDir dir;
  Login::Output out;
  std::string keep;
};

TEST_F(Fixture, SecurityThenOperationalThenFullFeature) {
  Login l(lim, dir);
  l.on_request(req(Stage::security, Stage::operational, true), sp(kLeading + kv({"AuthMethod=CHAP,None"})), out);
  EXPECT_EQ(out.action, Login::Action::send);
  EXPECT_EQ(status(out), 0);
  EXPECT_EQ(out.rsp.opcode(), Op::login_rsp);
  EXPECT_TRUE(out.rsp.transit());
  EXPECT_EQ(out.rsp.csg(), Stage::security);
  EXPECT_EQ(out.rsp.nsg(), Stage::operational);
  EXPECT_EQ(out.rsp.itt(), 0x1000u);
  EXPECT_EQ(out.rsp.isid(), kIsid);
  EXPECT_EQ(out.rsp.stat_sn(), 5u);  // starts at the initiator's ExpStatSN
  EXPECT_EQ(out.rsp.exp_cmd_sn(), 10u);
  EXPECT_EQ(out.rsp.max_cmd_sn(), 10u + lim.cmd_window - 1);
  TextPairs p = pairs_of(out, keep);
  EXPECT_EQ(p.find("AuthMethod")->value, "None");
  EXPECT_EQ(p.find("TargetPortalGroupTag")->value, "1");
  EXPECT_EQ(p.find("TargetAlias")->value, "disk");

  l.on_request(req(Stage::operational, Stage::full_feature, true),
               sp(kv({"HeaderDigest=CRC32C,None", "DataDigest=None", "MaxRecvDataSegmentLength=65536",
                      "MaxBurstLength=524288", "ImmediateData=Yes", "InitialR2T=No", "X-foo=1"})),
               out);
  EXPECT_EQ(out.action, Login::Action::send_and_enter_ffp);
  EXPECT_TRUE(out.rsp.transit());
  EXPECT_EQ(out.rsp.csg(), Stage::operational);
  EXPECT_EQ(out.rsp.nsg(), Stage::full_feature);
  EXPECT_EQ(out.rsp.tsih(), 7);
  EXPECT_EQ(out.rsp.stat_sn(), 6u);
  p = pairs_of(out, keep);
  EXPECT_EQ(p.find("HeaderDigest")->value, "CRC32C");
  EXPECT_EQ(p.find("MaxRecvDataSegmentLength")->value, "262144");
  EXPECT_EQ(p.find("X-foo")->value, "NotUnderstood");
  EXPECT_TRUE(l.in_full_feature());
  EXPECT_EQ(dir.created, 1);
  EXPECT_EQ(l.session().initiator_name, "iqn.2024-01.test:host");
  EXPECT_EQ(l.session().target_name, "iqn.2024-01.test:disk");
  EXPECT_EQ(l.session().tsih, 7);
  EXPECT_EQ(l.session().isid, kIsid);
  EXPECT_EQ(l.session().max_burst_length, 524288u);
  EXPECT_FALSE(l.session().initial_r2t);
  EXPECT_EQ(l.conn().header_digest, Digest::crc32c);
  EXPECT_EQ(l.conn().max_send_data_segment_length, 65536u);
  EXPECT_EQ(l.next_stat_sn(), 7u);
  EXPECT_EQ(l.exp_cmd_sn(), 10u);

  // Nothing more is accepted once in full feature phase.
  l.on_request(req(Stage::operational, Stage::full_feature, true), {}, out);
  EXPECT_EQ(out.action, Login::Action::send_and_close);
}

TEST_F(Fixture, SecurityStraightToFullFeature) {
  Login l(lim, dir);
  l.on_request(req(Stage::security, Stage::full_feature, true), sp(kLeading + kv({"AuthMethod=None"})), out);
  EXPECT_EQ(out.action, Login::Action::send_and_enter_ffp);
  EXPECT_EQ(out.rsp.nsg(), Stage::full_feature);
}

TEST_F(Fixture, OperationalOnlyLogin) {
  Login l(lim, dir);
  l.on_request(req(Stage::operational, Stage::full_feature, true), sp(kLeading), out);
  EXPECT_EQ(out.action, Login::Action::send_and_enter_ffp);
  std::string k;
  TextPairs p = pairs_of(out, k);
  EXPECT_EQ(p.find("MaxRecvDataSegmentLength")->value, "262144");
}

TEST_F(Fixture, StayInStageWithoutTransit) {
  Login l(lim, dir);
  l.on_request(req(Stage::security, Stage::security, false), sp(kLeading), out);
  EXPECT_EQ(out.action, Login::Action::send);
  EXPECT_FALSE(out.rsp.transit());
  l.on_request(req(Stage::security, Stage::operational, true), sp(kv({"AuthMethod=None"})), out);
  EXPECT_TRUE(out.rsp.transit());
  EXPECT_EQ(out.rsp.nsg(), Stage::operational);
  // Operational keys after the leading request; a changed leading key fails.
  l.on_request(req(Stage::operational, Stage::operational, false),
               sp(kv({"InitiatorName=iqn.2024-01.test:host", "MaxBurstLength=8192"})), out);
  EXPECT_EQ(status(out), 0);
  l.on_request(req(Stage::operational, Stage::operational, false), sp(kv({"InitiatorName=iqn.other"})), out);
  EXPECT_EQ(status(out), 0x0200);
  EXPECT_EQ(out.action, Login::Action::send_and_close);
}

struct BadCase {
  const char* name;
  Bhs h;
  std::string data;
  uint16_t status;
};

TEST_F(Fixture, FailuresCloseWithTheRightStatus) {
  Bhs badver = req(Stage::security, Stage::operational, true);
  badver.b[3] = 1;  // Version-min 1
  Bhs tc = req(Stage::security, Stage::operational, true, true);
  Bhs ffp = req(Stage::full_feature, Stage::full_feature, false);
  Bhs rsv = req(Stage::reserved, Stage::full_feature, false);
  Bhs back = req(Stage::operational, Stage::security, true);
  Bhs same = req(Stage::operational, Stage::operational, true);
  Bhs nsg2 = req(Stage::security, Stage::reserved, true);
  Bhs tsih_unknown = req(Stage::security, Stage::operational, true, false, 10, 9);
  Bhs tsih_live = req(Stage::security, Stage::operational, true, false, 10, 3);
  Bhs notlogin = req(Stage::security, Stage::operational, true);
  notlogin.set_opcode(Op::text_req);
  const std::string none = kv({"AuthMethod=None"});
  BadCase cases[] = {
      {"version", badver, kLeading, 0x0205},
      {"T+C", tc, kLeading, 0x0200},
      {"CSG=FFP", ffp, kLeading, 0x0200},
      {"CSG=reserved", rsv, kLeading, 0x0200},
      {"NSG<CSG", back, kLeading, 0x0200},
      {"NSG=CSG", same, kLeading, 0x0200},
      {"NSG=reserved", nsg2, kLeading, 0x0200},
      {"no InitiatorName", req(Stage::security, Stage::operational, true),
       kv({"TargetName=iqn.2024-01.test:disk"}), 0x0207},
      {"no TargetName", req(Stage::security, Stage::operational, true), kv({"InitiatorName=iqn.h"}), 0x0207},
      {"unknown target", req(Stage::security, Stage::operational, true),
       kv({"InitiatorName=iqn.h", "TargetName=iqn.nope"}), 0x0203},
      {"ACL", req(Stage::security, Stage::operational, true),
       kv({"InitiatorName=iqn.h", "TargetName=iqn.2024-01.test:locked"}), 0x0202},
      {"session type", req(Stage::security, Stage::operational, true),
       kv({"InitiatorName=iqn.h", "SessionType=Bogus"}), 0x0209},
      {"TSIH unknown", tsih_unknown, kLeading, 0x020a},
      {"TSIH live", tsih_live, kLeading, 0x0206},
      {"duplicate key", req(Stage::security, Stage::operational, true), kLeading + kv({"InitiatorAlias=a", "InitiatorAlias=b"}),
       0x0200},
      {"malformed text", req(Stage::security, Stage::operational, true), kLeading + kv({"garbage"}), 0x0200},
      {"AuthMethod not offered None", req(Stage::security, Stage::operational, true), kLeading + kv({"AuthMethod=KRB5"}),
       0x0201},
      {"not a login request", notlogin, kLeading, 0x0200},
  };
  for (auto& c : cases) {
    Login l(lim, dir);
    l.on_request(c.h, sp(c.data), out);
    EXPECT_EQ(status(out), c.status) << c.name;
    EXPECT_EQ(out.action, Login::Action::send_and_close) << c.name;
    EXPECT_FALSE(out.rsp.transit()) << c.name;
    EXPECT_EQ(out.data.size(), 0u) << c.name;
    EXPECT_TRUE(l.failed()) << c.name;
    // A failed login stays failed.
    l.on_request(req(Stage::security, Stage::operational, true), sp(kLeading), out);
    EXPECT_EQ(out.action, Login::Action::send_and_close) << c.name;
  }
  EXPECT_EQ(dir.created, 0);
}

TEST_F(Fixture, LaterRequestsMustKeepIsidAndStage) {
  {
    Login l(lim, dir);
    l.on_request(req(Stage::security, Stage::security, false), sp(kLeading), out);
    Bhs h = req(Stage::security, Stage::operational, true);
    h.set32(10, 0x12345678);  // ISID changed
    l.on_request(h, sp(kv({"AuthMethod=None"})), out);
    EXPECT_EQ(status(out), 0x0200);
  }
  {
    Login l(lim, dir);
    l.on_request(req(Stage::security, Stage::security, false), sp(kLeading), out);
    // CSG jumps to operational without a transit.
    l.on_request(req(Stage::operational, Stage::full_feature, true), {}, out);
    EXPECT_EQ(status(out), 0x0200);
  }
  {
    Login l(lim, dir);
    l.on_request(req(Stage::operational, Stage::operational, false), sp(kLeading), out);
    // Security keys after the security stage.
    l.on_request(req(Stage::operational, Stage::full_feature, true), sp(kv({"AuthMethod=None"})), out);
    EXPECT_EQ(status(out), 0x0200);
  }
  {
    Login l(lim, dir);
    l.on_request(req(Stage::operational, Stage::operational, false), sp(kLeading + kv({"MaxBurstLength=8192"})), out);
    // Renegotiating a key in a later request.
    l.on_request(req(Stage::operational, Stage::full_feature, true), sp(kv({"MaxBurstLength=4096"})), out);
    EXPECT_EQ(status(out), 0x0200);
  }
}

TEST_F(Fixture, DiscoverySessionNeedsNoTargetName) {
  Login l(lim, dir);
  l.on_request(req(Stage::security, Stage::full_feature, true),
               sp(kv({"InitiatorName=iqn.h", "SessionType=Discovery", "AuthMethod=None"})), out);
  EXPECT_EQ(out.action, Login::Action::send_and_enter_ffp);
  EXPECT_EQ(l.session().type, SessionType::discovery);
  std::string k;
  TextPairs p = pairs_of(out, k);
  EXPECT_EQ(p.find("TargetPortalGroupTag"), nullptr);
}

TEST_F(Fixture, OutOfResourcesAtSessionCreation) {
  dir.next_tsih = 0;
  Login l(lim, dir);
  l.on_request(req(Stage::security, Stage::full_feature, true), sp(kLeading), out);
  EXPECT_EQ(status(out), 0x0302);
  EXPECT_EQ(out.action, Login::Action::send_and_close);
}

TEST_F(Fixture, ContinuedRequestAtEverySplit) {
  const std::string text = kLeading + kv({"AuthMethod=None", "InitiatorAlias=host-alias"});
  for (size_t cut = 0; cut <= text.size(); cut++) {
    Login l(lim, dir);
    Bhs first = req(Stage::security, Stage::full_feature, false, true);
    l.on_request(first, sp(text).subspan(0, cut), out);
    ASSERT_EQ(out.action, Login::Action::send) << cut;
    EXPECT_FALSE(out.rsp.transit());
    EXPECT_FALSE(out.rsp.cont());
    EXPECT_EQ(out.data.size(), 0u);
    l.on_request(req(Stage::security, Stage::full_feature, true), sp(text).subspan(cut), out);
    ASSERT_EQ(out.action, Login::Action::send_and_enter_ffp) << cut;
    EXPECT_EQ(l.session().initiator_alias, "host-alias");
    EXPECT_EQ(out.rsp.stat_sn(), 6u);
  }
}

TEST_F(Fixture, LongResponseIsSentInPiecesWithContinue) {
  std::string text = kLeading;
  // 120 unknown keys of 63 bytes: their NotUnderstood answers exceed one login PDU.
  for (int i = 0; i < 120; i++) {
    std::string key = "X-key-" + std::to_string(i);
    key.resize(kMaxKeyLen, 'k');
    text += key + "=1" + std::string(1, '\0');
  }
  ASSERT_LT(text.size(), kDefaultTextLimit);
  Login l(lim, dir);
  l.on_request(req(Stage::operational, Stage::full_feature, true), sp(text), out);
  std::string all;
  int pdus = 1;
  while (out.rsp.cont()) {
    EXPECT_FALSE(out.rsp.transit());
    EXPECT_LE(out.data.size(), Login::kLoginSegmentMax);
    EXPECT_EQ(out.action, Login::Action::send);
    all.append(reinterpret_cast<const char*>(out.data.data()), out.data.size());
    l.on_request(req(Stage::operational, Stage::full_feature, true), {}, out);
    EXPECT_EQ(status(out), 0);
    pdus++;
    ASSERT_LT(pdus, 20);
  }
  all.append(reinterpret_cast<const char*>(out.data.data()), out.data.size());
  EXPECT_GT(pdus, 1);
  EXPECT_TRUE(out.rsp.transit());
  EXPECT_EQ(out.action, Login::Action::send_and_enter_ffp);
  TextPairs p;
  ASSERT_EQ(parse_text(all, p), TextStatus::ok);
  std::string last = "X-key-119";
  last.resize(kMaxKeyLen, 'k');
  EXPECT_EQ(p.find(last)->value, "NotUnderstood");
  EXPECT_EQ(p.n, 120u + 3u);  // + TargetPortalGroupTag, TargetAlias, MaxRecvDataSegmentLength
}

TEST_F(Fixture, TargetOffersHoldBackTransitOnce) {
  lim.immediate_data = false;
  Login l(lim, dir);
  // The initiator tries to skip the operational stage: we go through it.
  l.on_request(req(Stage::security, Stage::full_feature, true), sp(kLeading + kv({"AuthMethod=None"})), out);
  EXPECT_TRUE(out.rsp.transit());
  EXPECT_EQ(out.rsp.nsg(), Stage::operational);
  l.on_request(req(Stage::operational, Stage::full_feature, true), {}, out);
  EXPECT_FALSE(out.rsp.transit());
  std::string k;
  TextPairs p = pairs_of(out, k);
  EXPECT_EQ(p.find("ImmediateData")->value, "No");
  l.on_request(req(Stage::operational, Stage::full_feature, true), sp(kv({"ImmediateData=No"})), out);
  EXPECT_EQ(out.action, Login::Action::send_and_enter_ffp);
  EXPECT_EQ(out.data.size(), 0u);  // the reply to our offer is not answered
  EXPECT_FALSE(l.session().immediate_data);
}

// A two-step challenge/response stand-in for CHAP.
struct FakeAuth : Authenticator {
  bool need = true;
  std::string_view method() const override { return "CHAP"; }
  bool required(std::string_view, std::string_view) const override { return need; }
  Step step(const TextPairs& in, TextWriter& out) override {
    if (in.find("CHAP_A")) {
      out.add("CHAP_A", "5");
      out.add("CHAP_C", "0x0102");
      return Step::more;
    }
    const KeyValue* r = in.find("CHAP_R");
    if (!r) return Step::failed;
    return r->value == "0xgood" ? Step::done : Step::failed;
  }
};

TEST_F(Fixture, AuthenticatorSeam) {
  FakeAuth auth;
  {
    Login l(lim, dir, &auth);
    l.on_request(req(Stage::security, Stage::operational, false), sp(kLeading + kv({"AuthMethod=None,CHAP"})), out);
    std::string k;
    EXPECT_EQ(pairs_of(out, k).find("AuthMethod")->value, "CHAP");
    l.on_request(req(Stage::security, Stage::operational, false), sp(kv({"CHAP_A=5"})), out);
    EXPECT_EQ(pairs_of(out, k).find("CHAP_C")->value, "0x0102");
    // The initiator asks to transit with its response: we do only once it is verified.
    l.on_request(req(Stage::security, Stage::operational, true), sp(kv({"CHAP_N=h", "CHAP_R=0xgood"})), out);
    EXPECT_EQ(status(out), 0);
    EXPECT_TRUE(out.rsp.transit());
  }
  {
    Login l(lim, dir, &auth);
    l.on_request(req(Stage::security, Stage::operational, false), sp(kLeading + kv({"AuthMethod=CHAP"})), out);
    l.on_request(req(Stage::security, Stage::operational, true), sp(kv({"CHAP_N=h", "CHAP_R=0xbad"})), out);
    EXPECT_EQ(status(out), 0x0201);
  }
  {  // Required but the initiator offers only None.
    Login l(lim, dir, &auth);
    l.on_request(req(Stage::security, Stage::operational, true), sp(kLeading + kv({"AuthMethod=None"})), out);
    EXPECT_EQ(status(out), 0x0201);
  }
  {  // Required but the initiator skips the security stage.
    Login l(lim, dir, &auth);
    l.on_request(req(Stage::operational, Stage::full_feature, true), sp(kLeading), out);
    EXPECT_EQ(status(out), 0x0201);
  }
  {  // Required, transit asked without ever choosing a method.
    Login l(lim, dir, &auth);
    l.on_request(req(Stage::security, Stage::operational, true), sp(kLeading), out);
    EXPECT_EQ(status(out), 0x0201);
  }
  {  // Optional: None wins.
    auth.need = false;
    Login l(lim, dir, &auth);
    l.on_request(req(Stage::security, Stage::operational, true), sp(kLeading + kv({"AuthMethod=CHAP,None"})), out);
    std::string k;
    EXPECT_EQ(pairs_of(out, k).find("AuthMethod")->value, "None");
    EXPECT_TRUE(out.rsp.transit());
  }
}

}  // namespace
