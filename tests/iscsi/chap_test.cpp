// tests/iscsi/chap_test.cpp - CHAP through the real Login state machine
// (RFC 7143 §12.1.3): one-way and mutual success, every way the initiator's
// side can be wrong (status 02/01 and close), None refused where CHAP is
// required, discovery credentials, and the binary encodings.
#include "iscsi/chap.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace sgv::iscsi;

namespace {

constexpr std::string_view kTarget = "iqn.2024-01.test:disk";
constexpr std::string_view kOpen = "iqn.2024-01.test:open";  // no CHAP configured
constexpr std::string_view kSecret = "initiator-secret-1";
constexpr std::string_view kMutualSecret = "target-secret-22";

struct ChapDir : TargetDirectory {
  bool mutual = true;
  bool discovery_chap = true;
  bool exists(std::string_view t) const override { return t == kTarget || t == kOpen; }
  bool allowed(std::string_view, std::string_view) const override { return true; }
  size_t count() const override { return 0; }
  TargetEntry entry(size_t) const override { return {}; }
  uint16_t create_session(const SessionParams&) override { return 9; }
  bool chap(std::string_view t, ChapCredentials& out) const override {
    if (t == kOpen || (t.empty() && !discovery_chap)) return false;
    out = {"ini", kSecret, mutual ? "tgt" : "", mutual ? kMutualSecret : ""};
    if (t.empty()) out.user = "disc";
    return true;
  }
};

Bhs req(Stage csg, Stage nsg, bool t) {
  Bhs h;
  h.clear();
  h.set_opcode(Op::login_req, true);
  h.set_flags(uint8_t((t ? 0x80 : 0) | (uint8_t(csg) << 2) | (t ? uint8_t(nsg) : 0)));
  h.set16(8, 0x4000);
  h.set32(10, 1);
  h.set_itt(0x1000);
  h.set16(20, 1);
  h.set32(24, 10);
  return h;
}

std::string kv(std::initializer_list<std::string> pairs) {
  std::string s;
  for (const auto& p : pairs) {
    s += p;
    s.push_back('\0');
  }
  return s;
}

std::string hex(std::span<const uint8_t> b) {
  static const char* k = "0123456789abcdef";
  std::string s = "0x";
  for (uint8_t x : b) {
    s += k[x >> 4];
    s += k[x & 15];
  }
  return s;
}

std::string b64(std::span<const uint8_t> b) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string s = "0b";
  for (size_t i = 0; i < b.size(); i += 3) {
    uint32_t v = uint32_t(b[i]) << 16 | (i + 1 < b.size() ? uint32_t(b[i + 1]) << 8 : 0) |
                 (i + 2 < b.size() ? b[i + 2] : 0);
    s += k[v >> 18 & 63];
    s += k[v >> 12 & 63];
    s += i + 1 < b.size() ? k[v >> 6 & 63] : '=';
    s += i + 2 < b.size() ? k[v & 63] : '=';
  }
  return s;
}

std::vector<uint8_t> unhex(std::string_view h) {
  std::vector<uint8_t> b(1024);
  size_t n = 0;
  EXPECT_TRUE(decode_binary(h, b, n)) << h;
  b.resize(n);
  return b;
}

uint16_t status(const Login::Output& o) { return uint16_t(o.rsp.status_class() << 8 | o.rsp.status_detail()); }

struct Chap : ::testing::Test {
  TargetLimits lim;
  ChapDir dir;
  ChapAuthenticator auth{dir};
  Login login{lim, dir, &auth};
  Login::Output out;
  std::string text;  // the last response's data
  TextPairs pairs;
  uint8_t id = 0;
  std::vector<uint8_t> challenge;

  const TextPairs& send(Stage csg, Stage nsg, bool t, const std::string& data) {
    login.on_request(req(csg, nsg, t), {reinterpret_cast<const uint8_t*>(data.data()), data.size()}, out);
    text.assign(reinterpret_cast<const char*>(out.data.data()), out.data.size());
    pairs = {};
    EXPECT_EQ(parse_text(text, pairs), TextStatus::ok);
    return pairs;
  }
  std::string value(std::string_view key) {
    const KeyValue* p = pairs.find(key);
    return p ? std::string(p->value) : "<absent>";
  }
  // AuthMethod then CHAP_A: leaves the target's CHAP_I/CHAP_C in id/challenge.
  void start(std::string_view target = kTarget, std::string alg = "5") {
    std::string lead = kv({"InitiatorName=iqn.2024-01.test:host", "AuthMethod=CHAP,None"});
    lead += target.empty() ? kv({"SessionType=Discovery"}) : kv({"TargetName=" + std::string(target)});
    send(Stage::security, Stage::operational, false, lead);
    ASSERT_EQ(status(out), 0);
    ASSERT_EQ(value("AuthMethod"), "CHAP");
    send(Stage::security, Stage::operational, false, kv({"CHAP_A=" + alg}));
    if (status(out) != 0) return;
    ASSERT_EQ(value("CHAP_A"), "5");
    id = uint8_t(std::stoul(value("CHAP_I")));
    challenge = unhex(value("CHAP_C"));
  }
  std::string response(std::string_view secret) { return hex(chap_response(id, secret, challenge)); }
};

TEST_F(Chap, OneWaySucceeds) {
  start();
  EXPECT_GE(challenge.size(), 16u);
  EXPECT_EQ(value("CHAP_C").substr(0, 2), "0x");
  send(Stage::security, Stage::operational, true, kv({"CHAP_N=ini", "CHAP_R=" + response(kSecret)}));
  EXPECT_EQ(status(out), 0);
  EXPECT_TRUE(out.rsp.transit());
  EXPECT_EQ(value("CHAP_N"), "<absent>");  // one-way: nothing of the target's
  EXPECT_FALSE(login.failed());
}

TEST_F(Chap, Base64ResponseAccepted) {
  start();
  auto d = chap_response(id, kSecret, challenge);
  send(Stage::security, Stage::operational, true, kv({"CHAP_N=ini", "CHAP_R=" + b64(d)}));
  EXPECT_EQ(status(out), 0);
  EXPECT_TRUE(out.rsp.transit());
}

TEST_F(Chap, ChallengesAreFresh) {
  start();
  auto first = challenge;
  ChapAuthenticator a2{dir};
  Login l2{lim, dir, &a2};
  std::string lead = kv({"InitiatorName=iqn.2024-01.test:host", "TargetName=iqn.2024-01.test:disk", "AuthMethod=CHAP"});
  l2.on_request(req(Stage::security, Stage::operational, false), {reinterpret_cast<const uint8_t*>(lead.data()), lead.size()}, out);
  std::string a = kv({"CHAP_A=5"});
  l2.on_request(req(Stage::security, Stage::operational, false), {reinterpret_cast<const uint8_t*>(a.data()), a.size()}, out);
  std::string t(reinterpret_cast<const char*>(out.data.data()), out.data.size());
  TextPairs p;
  ASSERT_EQ(parse_text(t, p), TextStatus::ok);
  EXPECT_NE(unhex(p.find("CHAP_C")->value), first);
}

TEST_F(Chap, MutualSucceeds) {
  start();
  const uint8_t ichal[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
  send(Stage::security, Stage::operational, true,
       kv({"CHAP_N=ini", "CHAP_R=" + response(kSecret), "CHAP_I=77", "CHAP_C=" + hex(ichal)}));
  ASSERT_EQ(status(out), 0);
  EXPECT_TRUE(out.rsp.transit());
  EXPECT_EQ(value("CHAP_N"), "tgt");
  EXPECT_EQ(value("CHAP_R"), hex(chap_response(77, kMutualSecret, ichal)));
}

TEST_F(Chap, MutualWithoutTargetSecretFails) {
  dir.mutual = false;
  start();
  const uint8_t ichal[16] = {42};
  send(Stage::security, Stage::operational, true,
       kv({"CHAP_N=ini", "CHAP_R=" + response(kSecret), "CHAP_I=1", "CHAP_C=" + hex(ichal)}));
  EXPECT_EQ(status(out), 0x0201);
  EXPECT_EQ(out.action, Login::Action::send_and_close);
}

TEST_F(Chap, ReflectedChallengeFails) {
  start();
  send(Stage::security, Stage::operational, true,
       kv({"CHAP_N=ini", "CHAP_R=" + response(kSecret), "CHAP_I=" + std::to_string(id), "CHAP_C=" + hex(challenge)}));
  EXPECT_EQ(status(out), 0x0201);
  EXPECT_EQ(value("CHAP_R"), "<absent>");  // and no answer leaked
}

TEST_F(Chap, WrongSecretFails) {
  start();
  send(Stage::security, Stage::operational, true, kv({"CHAP_N=ini", "CHAP_R=" + response("another-secret-x")}));
  EXPECT_EQ(status(out), 0x0201);
  EXPECT_EQ(out.action, Login::Action::send_and_close);
  EXPECT_TRUE(login.failed());
}

TEST_F(Chap, WrongUserFails) {
  start();
  send(Stage::security, Stage::operational, true, kv({"CHAP_N=intruder", "CHAP_R=" + response(kSecret)}));
  EXPECT_EQ(status(out), 0x0201);
}

TEST_F(Chap, MissingResponseFails) {
  start();
  send(Stage::security, Stage::operational, true, kv({"CHAP_N=ini"}));
  EXPECT_EQ(status(out), 0x0201);
}

TEST_F(Chap, MalformedResponseFails) {
  for (std::string r : {"0xzz", "deadbeef", "0x", "0b@@@@", "0x0102"}) {
    ChapAuthenticator a{dir};
    Login l{lim, dir, &a};
    std::string lead = kv({"InitiatorName=iqn.2024-01.test:host", "TargetName=iqn.2024-01.test:disk", "AuthMethod=CHAP", "CHAP_A=5"});
    l.on_request(req(Stage::security, Stage::operational, false), {reinterpret_cast<const uint8_t*>(lead.data()), lead.size()}, out);
    ASSERT_EQ(status(out), 0) << r;
    std::string rsp = kv({"CHAP_N=ini", "CHAP_R=" + r});
    l.on_request(req(Stage::security, Stage::operational, true), {reinterpret_cast<const uint8_t*>(rsp.data()), rsp.size()}, out);
    EXPECT_EQ(status(out), 0x0201) << r;
  }
}

TEST_F(Chap, AlgorithmListWithoutMd5Fails) {
  start(kTarget, "6,7");
  EXPECT_EQ(status(out), 0x0201);
  EXPECT_EQ(out.action, Login::Action::send_and_close);
}

TEST_F(Chap, AlgorithmListWithMd5PicksIt) {
  start(kTarget, "7,5");
  EXPECT_EQ(status(out), 0);
  EXPECT_EQ(challenge.size(), ChapAuthenticator::kChallengeLen);
}

TEST_F(Chap, ChapAInTheFirstRequest) {
  send(Stage::security, Stage::operational, false,
       kv({"InitiatorName=iqn.2024-01.test:host", "TargetName=iqn.2024-01.test:disk", "AuthMethod=CHAP", "CHAP_A=5"}));
  ASSERT_EQ(status(out), 0);
  EXPECT_EQ(value("AuthMethod"), "CHAP");
  EXPECT_EQ(value("CHAP_A"), "5");
  id = uint8_t(std::stoul(value("CHAP_I")));
  challenge = unhex(value("CHAP_C"));
  send(Stage::security, Stage::operational, true, kv({"CHAP_N=ini", "CHAP_R=" + response(kSecret)}));
  EXPECT_EQ(status(out), 0);
}

TEST_F(Chap, NoneRefusedWhenRequired) {
  send(Stage::security, Stage::operational, true,
       kv({"InitiatorName=iqn.2024-01.test:host", "TargetName=iqn.2024-01.test:disk", "AuthMethod=None"}));
  EXPECT_EQ(status(out), 0x0201);
  EXPECT_EQ(out.action, Login::Action::send_and_close);
}

TEST_F(Chap, SkippingSecurityRefusedWhenRequired) {
  send(Stage::operational, Stage::full_feature, true,
       kv({"InitiatorName=iqn.2024-01.test:host", "TargetName=iqn.2024-01.test:disk"}));
  EXPECT_EQ(status(out), 0x0201);
}

TEST_F(Chap, TargetWithoutChapTakesNone) {
  send(Stage::security, Stage::operational, true,
       kv({"InitiatorName=iqn.2024-01.test:host", "TargetName=iqn.2024-01.test:open", "AuthMethod=CHAP,None"}));
  EXPECT_EQ(status(out), 0);
  EXPECT_EQ(value("AuthMethod"), "None");
}

TEST_F(Chap, DiscoveryUsesItsOwnCredentials) {
  start("");
  // The target's user name is not the discovery one.
  send(Stage::security, Stage::operational, true, kv({"CHAP_N=ini", "CHAP_R=" + response(kSecret)}));
  EXPECT_EQ(status(out), 0x0201);
}

TEST_F(Chap, DiscoverySucceeds) {
  start("");
  send(Stage::security, Stage::operational, true, kv({"CHAP_N=disc", "CHAP_R=" + response(kSecret)}));
  EXPECT_EQ(status(out), 0);
  EXPECT_TRUE(out.rsp.transit());
}

TEST_F(Chap, DiscoveryWithoutChapTakesNone) {
  dir.discovery_chap = false;
  send(Stage::security, Stage::operational, true,
       kv({"InitiatorName=iqn.2024-01.test:host", "SessionType=Discovery", "AuthMethod=None"}));
  EXPECT_EQ(status(out), 0);
}

TEST(ChapDecode, HexAndBase64) {
  uint8_t b[8];
  size_t n = 0;
  ASSERT_TRUE(decode_binary("0x0aFf", b, n));
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(b[0], 0x0a);
  EXPECT_EQ(b[1], 0xff);
  ASSERT_TRUE(decode_binary("0xabc", b, n));  // odd: implied leading zero
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(b[0], 0x0a);
  EXPECT_EQ(b[1], 0xbc);
  ASSERT_TRUE(decode_binary("0bTWFu", b, n));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(b), n), "Man");
  ASSERT_TRUE(decode_binary("0bTWE=", b, n));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(b), n), "Ma");
  ASSERT_TRUE(decode_binary("0BTQ==", b, n));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(b), n), "M");
  for (std::string_view bad : {"", "0x", "0b", "12", "0xg0", "0bTQ=", "0bT===", "0bTQ==TWFu", "0x112233445566778899"})
    EXPECT_FALSE(decode_binary(bad, b, n)) << bad;
}

TEST(ChapDecode, ResponseIsMd5OfIdSecretChallenge) {
  // RFC 1994 §4.1 by hand: MD5(0x01 || "secret" || 0x0203).
  const uint8_t chal[] = {2, 3};
  Md5 m;
  const uint8_t in[] = {1, 's', 'e', 'c', 'r', 'e', 't', 2, 3};
  m.update(in);
  EXPECT_EQ(chap_response(1, "secret", chal), m.finish());
}

}  // namespace

namespace {

// Each call yields 0x40, 0x41, ...: CHAP_I 64, CHAP_C 0x40..0x4f.
bool counting_source(std::span<uint8_t> out) {
  uint8_t v = 0x40;
  for (uint8_t& b : out) b = v++;
  return true;
}
bool failing_source(std::span<uint8_t>) { return false; }

// A login whose authenticator draws from `source`, after the leading keys
// and CHAP_A in one request (out refers to the login's memory).
struct SourcedLogin {
  ChapDir dir;
  ChapAuthenticator auth;
  TargetLimits lim;
  Login login{lim, dir, &auth};
  Login::Output out;
  explicit SourcedLogin(ChapAuthenticator::RandomFn source) : auth(dir, source) {
    std::string lead = kv({"InitiatorName=iqn.2024-01.test:host", "TargetName=iqn.2024-01.test:disk",
                           "AuthMethod=CHAP", "CHAP_A=5"});
    login.on_request(req(Stage::security, Stage::operational, false),
                     {reinterpret_cast<const uint8_t*>(lead.data()), lead.size()}, out);
  }
};

// The challenge source can be replaced (the login fuzzer's fixed one, so its
// seeds can answer right): what it yields is what goes out.
TEST(ChapSource, ChallengeComesFromTheGivenSource) {
  SourcedLogin s(&counting_source);
  ASSERT_EQ(status(s.out), 0);
  std::string text(reinterpret_cast<const char*>(s.out.data.data()), s.out.data.size());
  TextPairs p;
  ASSERT_EQ(parse_text(text, p), TextStatus::ok);
  ASSERT_TRUE(p.find("CHAP_I") && p.find("CHAP_C"));
  EXPECT_EQ(p.find("CHAP_I")->value, "64");
  EXPECT_EQ(p.find("CHAP_C")->value, "0x404142434445464748494a4b4c4d4e4f");
}

// No randomness, no challenge: the login fails rather than send a
// predictable one.
TEST(ChapSource, SourceFailureFailsTheLogin) {
  SourcedLogin s(&failing_source);
  EXPECT_EQ(status(s.out), 0x0201);
  EXPECT_EQ(s.out.action, Login::Action::send_and_close);
}

}  // namespace
