// tests/iscsi/crc32c_test.cpp - CRC32C against the iSCSI known values and
// the incremental/segment-list paths against the one-shot digest.
#include "iscsi/crc32c.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

using namespace sgv::iscsi;

namespace {

struct Vec {
  std::vector<uint8_t> data;
  uint32_t crc;
};

std::vector<Vec> vectors() {
  std::vector<Vec> v;
  v.push_back({std::vector<uint8_t>(32, 0x00), 0x8A9136AAu});
  v.push_back({std::vector<uint8_t>(32, 0xFF), 0x62A8AB43u});
  std::vector<uint8_t> up(32), down(32);
  for (int i = 0; i < 32; i++) {
    up[i] = uint8_t(i);
    down[i] = uint8_t(31 - i);
  }
  v.push_back({up, 0x46DD794Eu});
  v.push_back({down, 0x113FDB5Cu});
  v.push_back({{'1', '2', '3', '4', '5', '6', '7', '8', '9'}, 0xE3069283u});
  return v;
}

TEST(Crc32c, KnownValues) {
  for (const auto& v : vectors()) {
    EXPECT_EQ(crc32c(v.data.data(), v.data.size()), v.crc);
    EXPECT_EQ(crc32c_final(crc32c_update_table(kCrc32cInit, v.data.data(), v.data.size())), v.crc);
  }
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
}

TEST(Crc32c, WireByteOrderMatchesRfc3720) {
  std::vector<uint8_t> z(32, 0);
  uint8_t wire[4];
  put_digest(wire, crc32c(z.data(), z.size()));
  const uint8_t expect[4] = {0xaa, 0x36, 0x91, 0x8a};
  EXPECT_EQ(0, std::memcmp(wire, expect, 4));
  EXPECT_EQ(get_digest(wire), 0x8A9136AAu);
}

TEST(Crc32c, IncrementalEqualsOneShotAtEverySplitAndAlignment) {
  std::vector<uint8_t> buf(301);
  for (size_t i = 0; i < buf.size(); i++) buf[i] = uint8_t(i * 131 + 7);
  for (size_t start = 0; start < 9; start++) {
    const uint8_t* p = buf.data() + start;
    size_t n = buf.size() - start;
    uint32_t whole = crc32c(p, n);
    EXPECT_EQ(whole, crc32c_final(crc32c_update_table(kCrc32cInit, p, n)));
    for (size_t cut = 0; cut <= n; cut += 7) {
      uint32_t c = crc32c_update(kCrc32cInit, p, cut);
      c = crc32c_update(c, p + cut, n - cut);
      EXPECT_EQ(crc32c_final(c), whole) << start << " " << cut;
    }
  }
}

TEST(Crc32c, SegmentListWithOffsetAndPadding) {
  std::vector<uint8_t> flat(1000);
  for (size_t i = 0; i < flat.size(); i++) flat[i] = uint8_t(i ^ (i >> 3));
  std::vector<uint8_t> a(flat.begin(), flat.begin() + 13), b(flat.begin() + 13, flat.begin() + 600),
      c(flat.begin() + 600, flat.end());
  sgv::Seg segs[3] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
  for (size_t off : {0ul, 5ul, 13ul, 599ul}) {
    for (size_t len : {0ul, 1ul, 3ul, 4ul, 250ul, 1000ul - 599ul}) {
      if (off + len > flat.size()) continue;
      std::vector<uint8_t> padded(flat.begin() + long(off), flat.begin() + long(off + len));
      padded.resize((len + 3) & ~size_t(3), 0);
      EXPECT_EQ(data_digest(segs, off, len), crc32c(padded.data(), padded.size())) << off << " " << len;
      EXPECT_EQ(crc32c_final(crc32c_update_segs(kCrc32cInit, segs, off, len)), crc32c(flat.data() + off, len));
    }
  }
}

TEST(Crc32c, ReportsImplementation) {
  std::string impl = crc32c_impl();
  EXPECT_TRUE(impl == "sse4.2" || impl == "table");
}

}  // namespace
