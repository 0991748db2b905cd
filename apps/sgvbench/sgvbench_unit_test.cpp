// sgvbench_unit_test - the parts of sgvbench that need no target: latency
// histogram accuracy, the verify pattern's sensitivity, option parsing and
// the loopback-only rule.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "histogram.hpp"
#include "options.hpp"
#include "pattern.hpp"

using namespace sgvbench;

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 1; v <= 50; ++v) h.record(v);
  EXPECT_EQ(h.count(), 50u);
  EXPECT_EQ(h.percentile(0.5), 25u);
  EXPECT_EQ(h.percentile(1.0), 50u);
  EXPECT_EQ(h.max(), 50u);
}

TEST(Histogram, BucketBoundsContainTheirValues) {
  for (uint64_t v : {64ull, 65ull, 127ull, 128ull, 1000ull, 123456789ull, (1ull << 40) + 12345}) {
    unsigned i = Histogram::index(v);
    EXPECT_GE(Histogram::upper(i), v) << v;
    if (i > 0) {
      EXPECT_LT(Histogram::upper(i - 1), v) << v;
    }
  }
}

TEST(Histogram, PercentilesWithinTwoPercentOfExact) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> d(11.0, 1.0);  // ~60 us median, long tail
  std::vector<uint64_t> vals;
  Histogram h;
  for (int i = 0; i < 100000; ++i) {
    uint64_t v = uint64_t(d(rng));
    vals.push_back(v);
    h.record(v);
  }
  std::sort(vals.begin(), vals.end());
  for (double q : {0.5, 0.99, 0.999}) {
    double exact = double(vals[size_t(q * double(vals.size())) - 1]);
    double got = double(h.percentile(q));
    EXPECT_NEAR(got, exact, exact * 0.02) << q;
  }
  EXPECT_EQ(h.max(), vals.back());
  EXPECT_EQ(h.percentile(1.0), vals.back());
}

TEST(Histogram, MergeAddsCountsAndKeepsMax) {
  Histogram a, b;
  a.record(100);
  b.record(5000);
  b.record(7);
  a.merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.max(), 5000u);
  EXPECT_EQ(a.percentile(0.01), 7u);
}

TEST(Pattern, RoundTripsAndCatchesWrongAddressGenerationAndTears) {
  std::vector<unsigned char> buf(4096);
  pattern_fill(buf.data(), buf.size(), 8192, 3);
  EXPECT_EQ(pattern_check(buf.data(), buf.size(), 8192, 3), -1);
  EXPECT_GE(pattern_check(buf.data(), buf.size(), 4096, 3), 0);  // other block
  EXPECT_GE(pattern_check(buf.data(), buf.size(), 8192, 2), 0);  // stale write
  // One 512-byte unit from an older write (torn) is found at its offset.
  std::vector<unsigned char> old(512);
  pattern_fill(old.data(), old.size(), 8192 + 1024, 2);
  std::copy(old.begin(), old.end(), buf.begin() + 1024);
  EXPECT_EQ(pattern_check(buf.data(), buf.size(), 8192, 3), 1024 + 8);
  // A single flipped byte deep inside a unit.
  pattern_fill(buf.data(), buf.size(), 8192, 3);
  buf[3000] ^= 1;
  EXPECT_EQ(pattern_check(buf.data(), buf.size(), 8192, 3), 3000 / 8 * 8);
}

TEST(Options, Sizes) {
  uint64_t v = 0;
  EXPECT_TRUE(parse_size("4k", &v));
  EXPECT_EQ(v, 4096u);
  EXPECT_TRUE(parse_size("1m", &v));
  EXPECT_EQ(v, 1u << 20);
  EXPECT_TRUE(parse_size("512", &v));
  EXPECT_EQ(v, 512u);
  EXPECT_FALSE(parse_size("4q", &v));
  EXPECT_FALSE(parse_size("", &v));
}

static bool parse(std::vector<const char*> args, Options* o, std::string* err) {
  args.insert(args.begin(), "sgvbench");
  return parse_args(int(args.size()), const_cast<char**>(args.data()), o, err);
}

TEST(Options, MixAndBounds) {
  Options o;
  std::string err;
  ASSERT_TRUE(parse({"--url", "iscsi://127.0.0.1/iqn.x/0", "--rw", "randrw", "--rwmixread", "70",
                     "--bs", "1m", "--qd", "8", "--sessions", "4", "--threads", "8"},
                    &o, &err))
      << err;
  EXPECT_EQ(o.read_pct, 70u);
  EXPECT_EQ(o.pattern, Pattern::rand);
  EXPECT_EQ(o.bs, 1u << 20);
  EXPECT_EQ(o.threads, 4u);  // never more poll loops than sessions
  Options w;
  ASSERT_TRUE(parse({"--url", "u", "--rw", "write"}, &w, &err));
  EXPECT_EQ(w.read_pct, 0u);
  EXPECT_EQ(w.pattern, Pattern::seq);
}

TEST(Options, RefusesRunsThatWouldNotStopAndJunk) {
  Options o;
  std::string err;
  EXPECT_FALSE(parse({"--url", "u", "--time", "0"}, &o, &err));
  EXPECT_FALSE(err.empty());
  Options o2;
  EXPECT_TRUE(parse({"--url", "u", "--time", "0", "--ios", "100"}, &o2, &err));
  Options o3;
  EXPECT_FALSE(parse({"--url", "u", "--bs", "1000"}, &o3, &err));
  Options o4;
  EXPECT_FALSE(parse({"--url", "u", "--rwmixread", "50"}, &o4, &err));  // not a mix mode
  Options o5;
  EXPECT_FALSE(parse({"--rw", "read"}, &o5, &err));  // no url
}

TEST(Options, LoopbackOnly) {
  EXPECT_TRUE(loopback_portal("127.0.0.1:3260"));
  EXPECT_TRUE(loopback_portal("127.0.0.1"));
  EXPECT_TRUE(loopback_portal("[::1]:3261"));
  EXPECT_FALSE(loopback_portal("127.0.0.10:3260"));
  EXPECT_FALSE(loopback_portal("10.0.0.1:3260"));
  EXPECT_FALSE(loopback_portal("example.com:3260"));
}
