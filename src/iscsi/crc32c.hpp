// iscsi/crc32c.hpp - CRC32C (Castagnoli), the iSCSI header and data digest
// (RFC 7143 §13.1, RFC 3720 appendix B.4).
//
// Incremental: crc32c_update() continues a running value, so a data digest
// can be computed over a segment list (the SG vector the payload landed in)
// plus padding without gathering it. Uses SSE4.2 crc32 when the CPU has it
// (runtime dispatch, chosen once), a slicing table otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sgv/seg.hpp"

namespace sgv::iscsi {

constexpr uint32_t kCrc32cInit = 0xffffffffu;

// Running value in, running value out (not inverted). Start from kCrc32cInit,
// finish with crc32c_final().
uint32_t crc32c_update(uint32_t crc, const void* data, size_t len);
inline uint32_t crc32c_final(uint32_t crc) { return ~crc; }

// One-shot digest of a buffer.
inline uint32_t crc32c(const void* data, size_t len) { return crc32c_final(crc32c_update(kCrc32cInit, data, len)); }

// Running update over [offset, offset+len) of a segment list; asserts the
// range lies within the segments.
uint32_t crc32c_update_segs(uint32_t crc, SegSpan segs, size_t offset, size_t len);

// Digest of a data segment as it travels on the wire: len bytes from the
// segments at offset, then the zero padding to 4 bytes (§11.2: the digest
// covers the padding).
uint32_t data_digest(SegSpan segs, size_t offset, size_t len);

// Digests travel least-significant byte first (RFC 3720 B.4: 32 zero bytes
// give the wire bytes aa 36 91 8a for the value 0x8a9136aa).
inline void put_digest(uint8_t* p, uint32_t crc) {
  p[0] = uint8_t(crc); p[1] = uint8_t(crc >> 8); p[2] = uint8_t(crc >> 16); p[3] = uint8_t(crc >> 24);
}
inline uint32_t get_digest(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// Which implementation crc32c_update uses ("sse4.2" or "table"), for logs.
const char* crc32c_impl();
// Forces the table implementation (tests compare both).
uint32_t crc32c_update_table(uint32_t crc, const void* data, size_t len);

}  // namespace sgv::iscsi
