// scsi/endian.hpp - big-endian field access: the one set of helpers behind
// CDB and parameter-data fields (scsi/), the Bhs accessors and the PDU reader
// (iscsi/, which sits on scsi/), and their tests.
// (CRC32C digests are the exception: they travel least-significant byte
// first, see put_digest/get_digest in crc32c.hpp.)
#pragma once

#include <cstdint>

namespace sgv {

constexpr uint16_t be16(const uint8_t* p) { return uint16_t((p[0] << 8) | p[1]); }
constexpr uint32_t be24(const uint8_t* p) { return (uint32_t(p[0]) << 16) | (uint32_t(p[1]) << 8) | p[2]; }
constexpr uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}
constexpr uint64_t be64(const uint8_t* p) { return (uint64_t(be32(p)) << 32) | be32(p + 4); }

constexpr void put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
constexpr void put24(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 16);
  p[1] = uint8_t(v >> 8);
  p[2] = uint8_t(v);
}
constexpr void put32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}
constexpr void put64(uint8_t* p, uint64_t v) {
  put32(p, uint32_t(v >> 32));
  put32(p + 4, uint32_t(v));
}

}  // namespace sgv
