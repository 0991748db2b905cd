// iscsi/md5.hpp - MD5 (RFC 1321), for CHAP only (RFC 1994, RFC 7143
// §12.1.3: CHAP_A=5). Written from the RFC's description rather than
// pulled from libcrypto/nettle: CHAP hashes a few dozen bytes once per
// login, and a ~100-line hash keeps sgvd free of a crypto dependency whose
// API (and deprecations) would outweigh it. MD5 is broken for collision
// resistance; CHAP's use (a keyed response to a fresh random challenge) is
// what the protocol mandates, not a choice made here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace sgv::iscsi {

class Md5 {
 public:
  using Digest = std::array<uint8_t, 16>;

  void update(std::span<const uint8_t> data);
  void update(uint8_t byte) { update(std::span<const uint8_t>(&byte, 1)); }
  // Pads, returns the digest; the object must not be updated afterwards.
  Digest finish();

 private:
  void block(const uint8_t* p);

  uint32_t s_[4] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u};
  uint64_t bytes_ = 0;  // message length so far
  uint8_t buf_[64] = {};
  size_t fill_ = 0;
};

}  // namespace sgv::iscsi
