// tests/iscsi/reader_test.cpp - the PDU reader yields the same PDUs whatever
// the fragmentation of the byte stream: every split point, one byte at a
// time, and with data landing in caller segments or the connection buffer.
#include "iscsi/reader.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace sgv::iscsi {
namespace {

struct Pdu {
  uint8_t op;
  std::vector<uint8_t> ahs;
  std::vector<uint8_t> data;
};

void put_le32(std::vector<uint8_t>& v, uint32_t x) {
  for (int i = 0; i < 4; ++i) v.push_back(uint8_t(x >> (8 * i)));
}

// Digest values are opaque to the reader: it reports what arrived.
std::vector<uint8_t> encode(const std::vector<Pdu>& pdus, bool hd, bool dd) {
  std::vector<uint8_t> s;
  uint32_t n = 0;
  for (const Pdu& p : pdus) {
    uint8_t bhs[kBhsLen] = {};
    bhs[0] = p.op;
    bhs[4] = uint8_t(p.ahs.size() / 4);
    put24(bhs + 5, uint32_t(p.data.size()));
    put32(bhs + 16, n);
    s.insert(s.end(), bhs, bhs + kBhsLen);
    s.insert(s.end(), p.ahs.begin(), p.ahs.end());
    if (hd) put_le32(s, 0xA0000000u + n);
    s.insert(s.end(), p.data.begin(), p.data.end());
    while (s.size() % 4) s.push_back(0);
    if (dd && !p.data.empty()) put_le32(s, 0xD0000000u + n);
    ++n;
  }
  return s;
}

struct Got {
  uint8_t op;
  uint32_t itt;
  size_t ahs;
  std::string data;
  uint32_t hdig, ddig;
};

// Feeds the stream in the given chunks; data of even PDUs goes to caller
// segments (split 3 + 5 + rest), odd ones to the connection buffer.
std::vector<Got> run(const std::vector<uint8_t>& s, const std::vector<size_t>& chunks, bool hd, bool dd) {
  Reader r(1024);
  r.set_digests(hd, dd);
  std::vector<Got> out;
  uint8_t store[3 + 5 + 2000];
  Seg segs[3] = {{store, 3}, {store + 3, 5}, {store + 8, sizeof(store) - 8}};
  size_t pos = 0;
  unsigned npdu = 0;
  for (size_t c : chunks) {
    size_t end = pos + c;
    while (pos < end) {
      iovec iov[8];
      unsigned k = r.want(iov, 8);
      size_t take = 0;
      for (unsigned i = 0; i < k && pos + take < end; ++i) {
        size_t l = std::min(iov[i].iov_len, end - pos - take);
        std::memcpy(iov[i].iov_base, s.data() + pos + take, l);
        take += l;
      }
      pos += take;
      Reader::Ev ev = r.advance(take);
      if (ev == Reader::Ev::header) {
        if (npdu % 2 == 0) r.data_to(segs, 3, 2); else r.data_to_buffer();
        ev = r.advance(0);
      }
      if (ev == Reader::Ev::pdu) {
        Got g{r.bhs()[0], be32(r.bhs() + 16), r.ahs_len(), {}, r.header_digest(), r.data_digest()};
        const uint8_t* d = npdu % 2 == 0 ? store + 2 : r.buffer();
        // data_len() stays valid after Ev::pdu.
        g.data.assign(reinterpret_cast<const char*>(d), r.data_len());
        out.push_back(g);
        ++npdu;
      }
    }
  }
  EXPECT_TRUE(r.at_boundary());
  return out;
}

std::vector<Pdu> sample() {
  std::vector<Pdu> v;
  v.push_back({0x01, {}, {}});
  v.push_back({0x05, {}, std::vector<uint8_t>(13, 'a')});
  v.push_back({0x04, {1, 2, 3, 4, 5, 6, 7, 8}, std::vector<uint8_t>(9, 'b')});
  std::vector<uint8_t> big(700);
  for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i * 7);
  v.push_back({0x05, {}, big});
  v.push_back({0x00, {}, {'x', 'y', 'z', 'w'}});
  return v;
}

void check(const std::vector<Got>& g, const std::vector<Pdu>& p, bool hd, bool dd) {
  ASSERT_EQ(g.size(), p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_EQ(g[i].op, p[i].op);
    EXPECT_EQ(g[i].itt, i);
    EXPECT_EQ(g[i].ahs, p[i].ahs.size());
    EXPECT_EQ(g[i].data, std::string(p[i].data.begin(), p[i].data.end())) << i;
    if (hd) { EXPECT_EQ(g[i].hdig, 0xA0000000u + i); }
    if (dd && !p[i].data.empty()) { EXPECT_EQ(g[i].ddig, 0xD0000000u + i); }
  }
}

class ReaderSplit : public ::testing::TestWithParam<std::pair<bool, bool>> {};

TEST_P(ReaderSplit, EverySplitPoint) {
  auto [hd, dd] = GetParam();
  auto p = sample();
  auto s = encode(p, hd, dd);
  for (size_t k = 0; k <= s.size(); ++k) {
    auto g = run(s, {k, s.size() - k}, hd, dd);
    check(g, p, hd, dd);
    if (::testing::Test::HasFailure()) { ADD_FAILURE() << "split at " << k; return; }
  }
}

TEST_P(ReaderSplit, EveryTwoSplitPoints) {
  auto [hd, dd] = GetParam();
  auto p = sample();
  p.erase(p.begin() + 3);  // keep it quadratic but small
  auto s = encode(p, hd, dd);
  for (size_t a = 0; a <= s.size(); a += 3)
    for (size_t b = a; b <= s.size(); b += 5) {
      auto g = run(s, {a, b - a, s.size() - b}, hd, dd);
      check(g, p, hd, dd);
      if (::testing::Test::HasFailure()) { ADD_FAILURE() << a << "," << b; return; }
    }
}

TEST_P(ReaderSplit, OneByteAtATime) {
  auto [hd, dd] = GetParam();
  auto p = sample();
  auto s = encode(p, hd, dd);
  check(run(s, std::vector<size_t>(s.size(), 1), hd, dd), p, hd, dd);
}

INSTANTIATE_TEST_SUITE_P(Digests, ReaderSplit,
                         ::testing::Values(std::pair{false, false}, std::pair{true, false}, std::pair{false, true},
                                           std::pair{true, true}));

TEST(Reader, DiscardSkipsLargeDataAndStaysFramed) {
  std::vector<Pdu> p = {{0x05, {}, std::vector<uint8_t>(10000, 'q')}, {0x01, {}, {}}};
  auto s = encode(p, false, true);
  Reader r(16);
  r.set_digests(false, true);
  size_t pos = 0;
  std::vector<uint8_t> ops;
  while (pos < s.size()) {
    iovec iov[4];
    unsigned k = r.want(iov, 4);
    size_t take = 0;
    for (unsigned i = 0; i < k; ++i) {
      size_t l = std::min(iov[i].iov_len, s.size() - pos - take);
      std::memcpy(iov[i].iov_base, s.data() + pos + take, l);
      take += l;
    }
    pos += take;
    auto ev = r.advance(take);
    if (ev == Reader::Ev::header) {
      EXPECT_LE(r.data_len(), 10000u);
      r.data_discard();
      ev = r.advance(0);
    }
    if (ev == Reader::Ev::pdu) ops.push_back(r.bhs()[0]);
  }
  EXPECT_EQ(ops, (std::vector<uint8_t>{0x05, 0x01}));
}

}  // namespace
}  // namespace sgv::iscsi
