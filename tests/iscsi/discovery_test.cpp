// tests/iscsi/discovery_test.cpp - SendTargets answers per session type and
// the Text exchange: continued requests, TTT-pulled responses, rejects.
#include "iscsi/discovery.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace sgv::iscsi;

namespace {

const Portal kPortalsA[] = {{"192.0.2.1:3260", 1}, {"[2001:db8::1]:3260", 2}};
const Portal kPortalsB[] = {{"192.0.2.2:3260", 1}};

struct Dir : TargetDirectory {
  std::vector<std::string> names;
  Dir() {
    names = {"iqn.2024-01.test:a", "iqn.2024-01.test:b", "iqn.2024-01.test:hidden"};
  }
  bool exists(std::string_view t) const override {
    for (auto& n : names)
      if (n == t) return true;
    return false;
  }
  bool allowed(std::string_view t, std::string_view) const override { return t != "iqn.2024-01.test:hidden"; }
  size_t count() const override { return names.size(); }
  TargetEntry entry(size_t i) const override {
    if (i == 0) return {names[0], kPortalsA};
    return {names[i], kPortalsB};
  }
  uint16_t create_session(const SessionParams&) override { return 1; }
};

std::string str(const TextWriter& w) { return std::string(w.str()); }

SessionParams discovery() {
  SessionParams s;
  s.type = SessionType::discovery;
  s.initiator_name = "iqn.h";
  return s;
}
SessionParams normal() {
  SessionParams s;
  s.initiator_name = "iqn.h";
  s.target_name = "iqn.2024-01.test:b";
  return s;
}

TEST(SendTargets, AllInDiscoverySession) {
  Dir d;
  TextWriter w;
  ASSERT_TRUE(send_targets(d, discovery(), "All", w));
  const char expect[] =
      "TargetName=iqn.2024-01.test:a\0TargetAddress=192.0.2.1:3260,1\0TargetAddress=[2001:db8::1]:3260,2\0"
      "TargetName=iqn.2024-01.test:b\0TargetAddress=192.0.2.2:3260,1\0";
  EXPECT_EQ(str(w), std::string(expect, sizeof expect - 1));  // hidden target left out
}

TEST(SendTargets, ByNameAndPerSessionType) {
  Dir d;
  TextWriter w;
  ASSERT_TRUE(send_targets(d, discovery(), "iqn.2024-01.test:b", w));
  EXPECT_EQ(str(w), std::string("TargetName=iqn.2024-01.test:b\0TargetAddress=192.0.2.2:3260,1\0", 61));
  w.clear();
  ASSERT_TRUE(send_targets(d, discovery(), "iqn.2024-01.test:hidden", w));
  EXPECT_EQ(w.size(), 0u);
  ASSERT_TRUE(send_targets(d, discovery(), "iqn.nope", w));
  EXPECT_EQ(w.size(), 0u);
  ASSERT_TRUE(send_targets(d, discovery(), "", w));
  EXPECT_EQ(str(w), std::string("SendTargets=Reject\0", 19));
  // Normal session: empty value is the session's target; All is refused.
  w.clear();
  ASSERT_TRUE(send_targets(d, normal(), "", w));
  EXPECT_EQ(str(w), std::string("TargetName=iqn.2024-01.test:b\0TargetAddress=192.0.2.2:3260,1\0", 61));
  w.clear();
  ASSERT_TRUE(send_targets(d, normal(), "All", w));
  EXPECT_EQ(str(w), std::string("SendTargets=Reject\0", 19));
}

TEST(SendTargets, BoundedOutput) {
  Dir d;
  TextWriter w(40);
  EXPECT_FALSE(send_targets(d, discovery(), "All", w));
  EXPECT_LE(w.size(), 40u);
}

Bhs text_req(uint32_t itt, uint32_t ttt, bool final, bool cont) {
  Bhs h;
  h.clear();
  h.set_opcode(Op::text_req);
  h.set_flags(uint8_t((final ? 0x80 : 0) | (cont ? 0x40 : 0)));
  h.set_itt(itt);
  h.set_ttt(ttt);
  return h;
}

std::span<const uint8_t> sp(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

const SeqNums kSn{100, 7, 70};

TEST(TextExchange, SingleRequestSingleResponse) {
  Dir d;
  SessionParams s = discovery();
  TextExchange x(d, s);
  TextExchange::Output out;
  std::string q("SendTargets=All\0X-foo=1\0MaxBurstLength=512\0", 43);
  x.on_request(text_req(5, kReservedTag, true, false), sp(q), kSn, 8192, out);
  ASSERT_FALSE(out.reject);
  EXPECT_EQ(out.rsp.opcode(), Op::text_rsp);
  EXPECT_TRUE(out.rsp.final());
  EXPECT_FALSE(out.rsp.cont());
  EXPECT_EQ(out.rsp.itt(), 5u);
  EXPECT_EQ(out.rsp.ttt(), kReservedTag);
  EXPECT_EQ(out.rsp.stat_sn(), 100u);
  EXPECT_EQ(out.rsp.data_len(), out.data.size());
  std::string keep(reinterpret_cast<const char*>(out.data.data()), out.data.size());
  // TargetName repeats legitimately in a response: count rather than parse.
  EXPECT_NE(keep.find("TargetName=iqn.2024-01.test:a"), std::string::npos);
  EXPECT_NE(keep.find(std::string("X-foo=NotUnderstood\0", 20)), std::string::npos);
  EXPECT_NE(keep.find(std::string("MaxBurstLength=Reject\0", 22)), std::string::npos);
  EXPECT_FALSE(x.in_progress());
}

TEST(TextExchange, ResponsePulledInPiecesAtEverySegmentSize) {
  Dir d;
  SessionParams s = discovery();
  TextWriter whole;
  ASSERT_TRUE(send_targets(d, s, "All", whole));
  const std::string expect(whole.str());
  for (uint32_t seg = 1; seg <= expect.size() + 1; seg++) {
    TextExchange x(d, s);
    TextExchange::Output out;
    x.on_request(text_req(9, kReservedTag, true, false), sp(std::string("SendTargets=All\0", 16)), kSn, seg, out);
    std::string got;
    int n = 0;
    while (true) {
      ASSERT_FALSE(out.reject);
      ASSERT_LE(out.data.size(), seg);
      got.append(reinterpret_cast<const char*>(out.data.data()), out.data.size());
      if (!out.rsp.cont()) break;
      EXPECT_FALSE(out.rsp.final());
      EXPECT_NE(out.rsp.ttt(), kReservedTag);
      ASSERT_TRUE(x.in_progress());
      x.on_request(text_req(9, out.rsp.ttt(), true, false), {}, kSn, seg, out);
      ASSERT_LT(++n, 1000);
    }
    EXPECT_TRUE(out.rsp.final());
    EXPECT_EQ(out.rsp.ttt(), kReservedTag);
    EXPECT_EQ(got, expect) << seg;
  }
}

TEST(TextExchange, ContinuedRequestAtEverySplit) {
  Dir d;
  SessionParams s = discovery();
  const std::string q("SendTargets=iqn.2024-01.test:b\0", 31);
  for (size_t cut = 0; cut <= q.size(); cut++) {
    TextExchange x(d, s);
    TextExchange::Output out;
    x.on_request(text_req(3, kReservedTag, false, true), sp(q).subspan(0, cut), kSn, 8192, out);
    ASSERT_FALSE(out.reject);
    EXPECT_EQ(out.data.size(), 0u);
    EXPECT_FALSE(out.rsp.final());
    uint32_t ttt = out.rsp.ttt();
    EXPECT_NE(ttt, kReservedTag);
    x.on_request(text_req(3, ttt, true, false), sp(q).subspan(cut), kSn, 8192, out);
    ASSERT_FALSE(out.reject) << cut;
    EXPECT_TRUE(out.rsp.final());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(out.data.data()), out.data.size()),
              std::string("TargetName=iqn.2024-01.test:b\0TargetAddress=192.0.2.2:3260,1\0", 61));
  }
}

TEST(TextExchange, Rejects) {
  Dir d;
  SessionParams s = discovery();
  TextExchange::Output out;
  {  // wrong TTT
    TextExchange x(d, s);
    x.on_request(text_req(1, 0x1234, true, false), {}, kSn, 8192, out);
    EXPECT_TRUE(out.reject);
    EXPECT_EQ(out.rsp.opcode(), Op::reject);
    EXPECT_EQ(out.rsp.reject_reason(), uint8_t(RejectReason::protocol_error));
  }
  {  // F and C together
    TextExchange x(d, s);
    x.on_request(text_req(1, kReservedTag, true, true), {}, kSn, 8192, out);
    EXPECT_TRUE(out.reject);
  }
  {  // malformed and duplicate keys
    TextExchange x(d, s);
    x.on_request(text_req(1, kReservedTag, true, false), sp(std::string("garbage\0", 8)), kSn, 8192, out);
    EXPECT_TRUE(out.reject);
    x.on_request(text_req(1, kReservedTag, true, false), sp(std::string("A=1\0A=2\0", 8)), kSn, 8192, out);
    EXPECT_TRUE(out.reject);
  }
  {  // data while pulling a response
    TextExchange x(d, s);
    x.on_request(text_req(2, kReservedTag, true, false), sp(std::string("SendTargets=All\0", 16)), kSn, 16, out);
    ASSERT_TRUE(out.rsp.cont());
    x.on_request(text_req(2, out.rsp.ttt(), true, false), sp(std::string("A=1\0", 4)), kSn, 16, out);
    EXPECT_TRUE(out.reject);
    EXPECT_FALSE(x.in_progress());
  }
  {  // a new exchange abandons the old one
    TextExchange x(d, s);
    x.on_request(text_req(2, kReservedTag, true, false), sp(std::string("SendTargets=All\0", 16)), kSn, 16, out);
    ASSERT_TRUE(out.rsp.cont());
    x.on_request(text_req(4, kReservedTag, true, false), sp(std::string("X-a=1\0", 6)), kSn, 8192, out);
    ASSERT_FALSE(out.reject);
    EXPECT_TRUE(out.rsp.final());
    EXPECT_EQ(out.rsp.itt(), 4u);
  }
}

}  // namespace
