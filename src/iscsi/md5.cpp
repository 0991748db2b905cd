// iscsi/md5.cpp - RFC 1321 MD5: 64-byte blocks, four rounds of sixteen
// steps over a 4-word state, little-endian throughout.
#include "iscsi/md5.hpp"

#include <cmath>
#include <cstring>

namespace sgv::iscsi {
namespace {

// RFC 1321 §3.4: T[i] = floor(2^32 * |sin(i)|), i = 1..64 (radians). Every
// value is exactly representable from a double's sine; computed once.
const uint32_t* sine_table() {
  static const auto t = [] {
    std::array<uint32_t, 64> r{};
    for (size_t i = 0; i < 64; ++i)
      r[i] = static_cast<uint32_t>(std::floor(std::fabs(std::sin(double(i + 1))) * 4294967296.0));
    return r;
  }();
  return t.data();
}

constexpr uint8_t kShift[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

uint32_t rotl(uint32_t x, unsigned n) { return (x << n) | (x >> (32 - n)); }

uint32_t le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

}  // namespace

void Md5::block(const uint8_t* p) {
  const uint32_t* T = sine_table();
  uint32_t x[16];
  for (size_t i = 0; i < 16; ++i) x[i] = le32(p + 4 * i);
  uint32_t a = s_[0], b = s_[1], c = s_[2], d = s_[3];
  for (unsigned i = 0; i < 64; ++i) {
    unsigned round = i / 16;
    uint32_t f;
    unsigned k;
    switch (round) {
      case 0: f = (b & c) | (~b & d); k = i; break;
      case 1: f = (b & d) | (c & ~d); k = (5 * i + 1) % 16; break;
      case 2: f = b ^ c ^ d; k = (3 * i + 5) % 16; break;
      default: f = c ^ (b | ~d); k = (7 * i) % 16; break;
    }
    // a = b + ((a + f + X[k] + T[i]) <<< s), then the words rotate.
    uint32_t t = b + rotl(a + f + x[k] + T[i], kShift[round][i % 4]);
    a = d;
    d = c;
    c = b;
    b = t;
  }
  s_[0] += a;
  s_[1] += b;
  s_[2] += c;
  s_[3] += d;
}

void Md5::update(std::span<const uint8_t> data) {
  bytes_ += data.size();
  size_t i = 0;
  while (i < data.size()) {
    size_t n = std::min(data.size() - i, sizeof buf_ - fill_);
    std::memcpy(buf_ + fill_, data.data() + i, n);
    fill_ += n;
    i += n;
    if (fill_ == sizeof buf_) {
      block(buf_);
      fill_ = 0;
    }
  }
}

Md5::Digest Md5::finish() {
  // §3.1-3.2: a 1 bit, zeros to 56 mod 64, then the bit length (LE, 64-bit).
  uint64_t bits = bytes_ * 8;
  uint8_t pad[72] = {0x80};
  size_t padlen = (fill_ < 56 ? 56 : 120) - fill_;
  for (size_t i = 0; i < 8; ++i) pad[padlen + i] = uint8_t(bits >> (8 * i));
  update(std::span<const uint8_t>(pad, padlen + 8));
  Digest out;
  for (size_t i = 0; i < 4; ++i)
    for (size_t j = 0; j < 4; ++j) out[4 * i + j] = uint8_t(s_[i] >> (8 * j));
  return out;
}

}  // namespace sgv::iscsi
