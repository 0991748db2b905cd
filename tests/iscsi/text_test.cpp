// tests/iscsi/text_test.cpp - key=value parsing limits, duplicate keys,
// Continue-bit accumulation at every split point, building and chunking.
#include "iscsi/text.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace sgv::iscsi;

namespace {

std::span<const uint8_t> sp(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

TEST(Text, ParsesPairsAndSkipsPadding) {
  std::string s("InitiatorName=iqn.x\0SessionType=Normal\0\0\0HeaderDigest=CRC32C,None\0", 66);
  TextPairs p;
  ASSERT_EQ(parse_text(sp(s), p), TextStatus::ok);
  ASSERT_EQ(p.n, 3u);
  EXPECT_EQ(p.kv[0].key, "InitiatorName");
  EXPECT_EQ(p.kv[0].value, "iqn.x");
  EXPECT_EQ(p.find("HeaderDigest")->value, "CRC32C,None");
  EXPECT_EQ(p.find("Nope"), nullptr);
  // Empty value is legal; a last pair without NUL is tolerated.
  ASSERT_EQ(parse_text(std::string_view("TargetAlias=\0A=b", 16), p), TextStatus::ok);
  EXPECT_EQ(p.n, 2u);
  EXPECT_EQ(p.kv[0].value, "");
  EXPECT_EQ(p.kv[1].value, "b");
}

TEST(Text, Limits) {
  TextPairs p;
  EXPECT_EQ(parse_text(std::string_view("NoEquals\0", 9), p), TextStatus::malformed);
  EXPECT_EQ(parse_text(std::string_view("=v\0", 3), p), TextStatus::malformed);
  EXPECT_EQ(parse_text(std::string_view("Bad Key=v\0", 10), p), TextStatus::bad_key_char);
  std::string k63(63, 'K'), k64(64, 'K');
  EXPECT_EQ(parse_text(k63 + "=v", p), TextStatus::ok);
  EXPECT_EQ(parse_text(k64 + "=v", p), TextStatus::key_too_long);
  std::string v255(255, 'v'), v256(256, 'v');
  EXPECT_EQ(parse_text("A=" + v255, p), TextStatus::ok);
  EXPECT_EQ(parse_text("A=" + v256, p), TextStatus::value_too_long);
  EXPECT_EQ(parse_text("CHAP_C=0x" + std::string(2048, 'a'), p), TextStatus::ok);
  EXPECT_EQ(parse_text(std::string_view("A=1\0B=2\0A=1\0", 12), p), TextStatus::duplicate_key);
  std::string many;
  for (size_t i = 0; i <= kMaxTextPairs; i++) many += "K" + std::to_string(i) + "=1" + std::string(1, '\0');
  EXPECT_EQ(parse_text(many, p), TextStatus::too_many_pairs);
  EXPECT_STREQ(to_string(TextStatus::duplicate_key), "duplicate key");
}

TEST(Text, ContinueAccumulationAtEverySplit) {
  std::string s("InitiatorName=iqn.2024-01.org.example:host\0MaxBurstLength=65536\0X-vendor=1\0", 75);
  for (size_t a = 0; a <= s.size(); a++) {
    for (size_t b = a; b <= s.size(); b += 5) {
      TextAccumulator acc(256);
      EXPECT_EQ(acc.add(sp(s).subspan(0, a), true), TextAccumulator::Result::more);
      EXPECT_TRUE(acc.in_progress());
      EXPECT_EQ(acc.add(sp(s).subspan(a, b - a), true), TextAccumulator::Result::more);
      ASSERT_EQ(acc.add(sp(s).subspan(b), false), TextAccumulator::Result::complete);
      TextPairs p;
      ASSERT_EQ(parse_text(acc.data(), p), TextStatus::ok) << a << " " << b;
      ASSERT_EQ(p.n, 3u);
      EXPECT_EQ(p.kv[0].value, "iqn.2024-01.org.example:host");
      EXPECT_EQ(p.kv[2].key, "X-vendor");
    }
  }
}

TEST(Text, AccumulatorBoundAndRestart) {
  TextAccumulator acc(10);
  std::string a(6, 'a');
  EXPECT_EQ(acc.add(sp(a), true), TextAccumulator::Result::more);
  EXPECT_EQ(acc.add(sp(a), false), TextAccumulator::Result::overflow);
  EXPECT_EQ(acc.add(sp(a), false), TextAccumulator::Result::overflow);  // stays dead
  acc.reset();
  EXPECT_EQ(acc.add(sp(a), false), TextAccumulator::Result::complete);
  // A new text after a completed one starts fresh.
  std::string b("B=1");
  EXPECT_EQ(acc.add(sp(b), false), TextAccumulator::Result::complete);
  EXPECT_EQ(acc.data().size(), 3u);
}

TEST(Text, WriterBoundsAndNumbers) {
  TextWriter w(20);
  EXPECT_TRUE(w.add("A", "xyz"));
  EXPECT_TRUE(w.add("N", uint64_t(262144)));
  EXPECT_EQ(w.str(), std::string_view("A=xyz\0N=262144\0", 15));
  EXPECT_FALSE(w.add("Long", "abcdef"));
  EXPECT_TRUE(w.overflowed());
  EXPECT_EQ(w.size(), 15u);  // nothing partial written
  w.clear();
  EXPECT_EQ(w.size(), 0u);
}

TEST(Text, Chunking) {
  TextChunk c = next_chunk(10000, 0, 4096);
  EXPECT_EQ(c.offset, 0u);
  EXPECT_EQ(c.len, 4096u);
  EXPECT_TRUE(c.more);
  c = next_chunk(10000, 8192, 4096);
  EXPECT_EQ(c.len, 1808u);
  EXPECT_FALSE(c.more);
  c = next_chunk(0, 0, 512);
  EXPECT_EQ(c.len, 0u);
  EXPECT_FALSE(c.more);
  c = next_chunk(4096, 0, 4096);
  EXPECT_FALSE(c.more);
}

TEST(Text, ListHas) {
  EXPECT_TRUE(list_has("CHAP,None", "None"));
  EXPECT_TRUE(list_has("CHAP,None", "CHAP"));
  EXPECT_TRUE(list_has("5", "5"));
  EXPECT_FALSE(list_has("15,6", "5"));  // whole values only
  EXPECT_FALSE(list_has("", "5"));
  EXPECT_TRUE(list_has("7,,5", "5"));
}

}  // namespace
