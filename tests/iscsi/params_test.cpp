// tests/iscsi/params_test.cpp - negotiation table: each key's default, range,
// result function, and the NotUnderstood / Reject / Irrelevant answers.
#include "iscsi/params.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace sgv::iscsi;

namespace {

// Offers one key to a fresh negotiator and returns the response value
// ("" when nothing was answered).
struct Neg {
  TargetLimits lim;
  Negotiator n{lim};
  TextWriter w;
  std::string offer(std::string_view k, std::string_view v, Negotiator::Outcome want = Negotiator::Outcome::answered) {
    w.clear();
    EXPECT_EQ(n.offer(k, v, w), want) << k << "=" << v;
    TextPairs p;
    EXPECT_EQ(parse_text(w.data(), p), TextStatus::ok);
    const KeyValue* kv = p.find(k);
    return kv ? std::string(kv->value) : std::string();
  }
};

TEST(Params, RfcDefaults) {
  SessionParams s;
  ConnParams c;
  EXPECT_TRUE(s.initial_r2t);
  EXPECT_TRUE(s.immediate_data);
  EXPECT_EQ(s.max_burst_length, 262144u);
  EXPECT_EQ(s.first_burst_length, 65536u);
  EXPECT_EQ(s.max_outstanding_r2t, 1u);
  EXPECT_TRUE(s.data_pdu_in_order);
  EXPECT_TRUE(s.data_sequence_in_order);
  EXPECT_EQ(s.default_time2wait, 2);
  EXPECT_EQ(s.default_time2retain, 20);
  EXPECT_EQ(s.error_recovery_level, 0);
  EXPECT_EQ(s.max_connections, 1);
  EXPECT_EQ(c.header_digest, Digest::none);
  EXPECT_EQ(c.max_send_data_segment_length, 8192u);
}

TEST(Params, ParseNumber) {
  uint64_t v = 0;
  EXPECT_TRUE(parse_number("0", v));
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(parse_number("262144", v));
  EXPECT_EQ(v, 262144u);
  EXPECT_TRUE(parse_number("0x40000", v));
  EXPECT_EQ(v, 0x40000u);
  EXPECT_TRUE(parse_number("4294967295", v));
  EXPECT_FALSE(parse_number("4294967296", v));
  EXPECT_FALSE(parse_number("", v));
  EXPECT_FALSE(parse_number("12a", v));
  EXPECT_FALSE(parse_number("0x", v));
  EXPECT_FALSE(parse_number("-1", v));
  EXPECT_FALSE(parse_number("0x1g", v));
}

TEST(Params, BooleanResultFunctions) {
  {  // InitialR2T: OR with our No
    Neg t;
    EXPECT_EQ(t.offer("InitialR2T", "No"), "No");
    EXPECT_FALSE(t.n.session.initial_r2t);
  }
  {
    Neg t;
    EXPECT_EQ(t.offer("InitialR2T", "Yes"), "Yes");
    EXPECT_TRUE(t.n.session.initial_r2t);
  }
  {  // OR with our Yes
    Neg t;
    t.lim.initial_r2t = true;
    EXPECT_EQ(t.offer("InitialR2T", "No"), "Yes");
  }
  {  // ImmediateData: AND
    Neg t;
    EXPECT_EQ(t.offer("ImmediateData", "Yes"), "Yes");
    Neg u;
    EXPECT_EQ(u.offer("ImmediateData", "No"), "No");
    EXPECT_FALSE(u.n.session.immediate_data);
    Neg v;
    v.lim.immediate_data = false;
    EXPECT_EQ(v.offer("ImmediateData", "Yes"), "No");
  }
  {  // We deliver in order only: OR makes it Yes.
    Neg t;
    EXPECT_EQ(t.offer("DataPDUInOrder", "No"), "Yes");
    EXPECT_EQ(t.offer("DataSequenceInOrder", "No"), "Yes");
  }
  Neg bad;
  EXPECT_EQ(bad.offer("InitialR2T", "yes"), "Reject");
  EXPECT_TRUE(bad.n.session.initial_r2t);  // default kept
}

struct NumCase {
  const char* key;
  const char* offer;
  const char* answer;
};

TEST(Params, NumericResultsAndRanges) {
  const NumCase cases[] = {
      // min(offer, ours=1 MiB), range 512..2^24-1
      {"MaxBurstLength", "65536", "65536"},
      {"MaxBurstLength", "16777215", "1048576"},
      {"MaxBurstLength", "511", "Reject"},
      {"MaxBurstLength", "16777216", "Reject"},
      {"MaxBurstLength", "0x10000", "65536"},
      {"FirstBurstLength", "512", "512"},
      {"FirstBurstLength", "1048576", "262144"},
      {"FirstBurstLength", "100", "Reject"},
      {"MaxOutstandingR2T", "1", "1"},
      {"MaxOutstandingR2T", "65535", "16"},
      {"MaxOutstandingR2T", "0", "Reject"},
      {"MaxOutstandingR2T", "65536", "Reject"},
      // max(offer, ours=2)
      {"DefaultTime2Wait", "0", "2"},
      {"DefaultTime2Wait", "60", "60"},
      {"DefaultTime2Wait", "3601", "Reject"},
      // min(offer, ours=20)
      {"DefaultTime2Retain", "0", "0"},
      {"DefaultTime2Retain", "3600", "20"},
      {"DefaultTime2Retain", "3601", "Reject"},
      // we support ERL 0 and one connection
      {"ErrorRecoveryLevel", "2", "0"},
      {"ErrorRecoveryLevel", "3", "Reject"},
      {"MaxConnections", "8", "1"},
      {"MaxConnections", "0", "Reject"},
      {"iSCSIProtocolLevel", "2", "1"},
      {"iSCSIProtocolLevel", "0", "0"},
      {"iSCSIProtocolLevel", "32", "Reject"},
      {"MaxBurstLength", "abc", "Reject"},
  };
  for (const auto& c : cases) {
    Neg t;
    EXPECT_EQ(t.offer(c.key, c.offer), c.answer) << c.key << "=" << c.offer;
  }
  Neg t;
  t.offer("MaxBurstLength", "65536");
  t.offer("FirstBurstLength", "8192");
  t.offer("MaxOutstandingR2T", "4");
  t.offer("DefaultTime2Wait", "5");
  EXPECT_EQ(t.n.session.max_burst_length, 65536u);
  EXPECT_EQ(t.n.session.first_burst_length, 8192u);
  EXPECT_EQ(t.n.session.max_outstanding_r2t, 4u);
  EXPECT_EQ(t.n.session.default_time2wait, 5);
}

TEST(Params, FirstBurstNeverExceedsMaxBurst) {
  Neg t;
  t.lim.first_burst_length = 1048576;
  t.offer("MaxBurstLength", "8192");
  t.offer("FirstBurstLength", "65536");
  t.n.finish();
  EXPECT_EQ(t.n.session.first_burst_length, 8192u);
}

TEST(Params, MaxRecvDataSegmentLengthIsDeclarative) {
  Neg t;
  EXPECT_EQ(t.offer("MaxRecvDataSegmentLength", "65536"), "262144");  // we declare ours
  EXPECT_EQ(t.n.conn.max_send_data_segment_length, 65536u);
  EXPECT_EQ(t.n.conn.max_recv_data_segment_length, 262144u);
  Neg r;
  EXPECT_EQ(r.offer("MaxRecvDataSegmentLength", "511"), "Reject");
  EXPECT_EQ(r.n.conn.max_send_data_segment_length, 8192u);
  // Declared once: after declare(), an initiator declaration needs no answer.
  Neg d;
  TextWriter w;
  EXPECT_TRUE(d.n.declare(w));
  EXPECT_EQ(w.str(), std::string_view("MaxRecvDataSegmentLength=262144\0", 32));
  EXPECT_EQ(d.offer("MaxRecvDataSegmentLength", "4096"), "");
  EXPECT_EQ(d.n.conn.max_send_data_segment_length, 4096u);
}

TEST(Params, DigestLists) {
  Neg t;
  EXPECT_EQ(t.offer("HeaderDigest", "CRC32C,None"), "CRC32C");
  EXPECT_EQ(t.n.conn.header_digest, Digest::crc32c);
  EXPECT_EQ(t.offer("DataDigest", "None,CRC32C"), "None");
  EXPECT_EQ(t.n.conn.data_digest, Digest::none);
  Neg u;
  u.lim.data_digest_crc32c = false;
  EXPECT_EQ(u.offer("DataDigest", "CRC32C,None"), "None");
  Neg v;
  v.lim.header_digest_crc32c = false;
  EXPECT_EQ(v.offer("HeaderDigest", "CRC32C"), "Reject");
  EXPECT_EQ(v.offer("DataDigest", "MD5,Foo"), "Reject");
}

TEST(Params, NotUnderstoodIrrelevantRetired) {
  Neg t;
  EXPECT_EQ(t.offer("NoSuchKey", "1"), "NotUnderstood");
  EXPECT_EQ(t.offer("X-com.example.foo", "bar"), "NotUnderstood");
  EXPECT_EQ(t.offer("X#ext", "1"), "NotUnderstood");
  EXPECT_EQ(t.offer("IFMarker", "Yes"), "No");
  EXPECT_EQ(t.offer("OFMarker", "No"), "No");
  EXPECT_EQ(t.offer("OFMarkInt", "2048~8192"), "Irrelevant");
  EXPECT_EQ(t.offer("IFMarkInt", "2048"), "Irrelevant");
  EXPECT_EQ(t.offer("TaskReporting", "ResponseFence,RFC3720"), "RFC3720");
  EXPECT_EQ(t.offer("TargetAlias", "x"), "Reject");
  // Session-only keys in a discovery session.
  Neg d;
  d.n.set_session_type(SessionType::discovery);
  EXPECT_EQ(d.offer("MaxBurstLength", "65536"), "Irrelevant");
  EXPECT_EQ(d.offer("InitialR2T", "No"), "Irrelevant");
  EXPECT_EQ(d.offer("HeaderDigest", "None"), "None");
  // Login-owned keys are left to the caller.
  EXPECT_EQ(t.offer("InitiatorName", "iqn.x", Negotiator::Outcome::not_handled), "");
  EXPECT_EQ(t.offer("CHAP_A", "5", Negotiator::Outcome::not_handled), "");
}

TEST(Params, RenegotiationIsDetected) {
  Neg t;
  t.offer("MaxBurstLength", "65536");
  t.offer("MaxBurstLength", "65536", Negotiator::Outcome::duplicate);
}

TEST(Params, OffersWhenDefaultsExceedOurLimits) {
  Neg t;
  t.lim.immediate_data = false;
  t.lim.max_burst_length = 131072;
  t.lim.first_burst_length = 32768;
  EXPECT_TRUE(t.n.needs_offers());
  TextWriter w;
  ASSERT_TRUE(t.n.declare(w));
  EXPECT_TRUE(t.n.take_just_offered());
  EXPECT_FALSE(t.n.take_just_offered());
  TextPairs p;
  ASSERT_EQ(parse_text(w.data(), p), TextStatus::ok);
  EXPECT_EQ(p.find("ImmediateData")->value, "No");
  EXPECT_EQ(p.find("MaxBurstLength")->value, "131072");
  EXPECT_EQ(p.find("FirstBurstLength")->value, "32768");
  EXPECT_FALSE(t.n.session.immediate_data);
  EXPECT_FALSE(t.n.needs_offers());
  // The initiator's reply is the result, not a new offer: no answer.
  EXPECT_EQ(t.offer("MaxBurstLength", "65536"), "");
  EXPECT_EQ(t.n.session.max_burst_length, 65536u);
  EXPECT_EQ(t.offer("ImmediateData", "No"), "");
}

}  // namespace
