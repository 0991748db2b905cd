// iscsi/crc32c.cpp - CRC32C with SSE4.2 and a slicing-by-8 table fallback.
#include "iscsi/crc32c.hpp"

#include <cassert>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace sgv::iscsi {
namespace {

constexpr uint32_t kPoly = 0x82f63b78u;  // reflected Castagnoli polynomial

struct Tables {
  uint32_t t[8][256];
  constexpr Tables() : t{} {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
      for (int s = 1; s < 8; s++) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
};
constexpr Tables kTables;

#if defined(__x86_64__)
[[gnu::target("sse4.2")]] uint32_t update_sse42(uint32_t crc, const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t c = crc;
  while (len && (reinterpret_cast<uintptr_t>(p) & 7)) {
    c = _mm_crc32_u8(uint32_t(c), *p++);
    len--;
  }
  while (len >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    len -= 8;
  }
  while (len--) c = _mm_crc32_u8(uint32_t(c), *p++);
  return uint32_t(c);
}
#endif

using UpdateFn = uint32_t (*)(uint32_t, const void*, size_t);

UpdateFn pick() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2")) return update_sse42;
#endif
  return crc32c_update_table;
}

// Chosen once at static initialisation; read-only afterwards, so no
// synchronisation is needed.
const UpdateFn g_update = pick();

}  // namespace

uint32_t crc32c_update_table(uint32_t crc, const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  const auto& t = kTables.t;
  while (len >= 8) {
    uint32_t lo = crc ^ (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24);
    crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^ t[3][p[4]] ^
          t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    len -= 8;
  }
  while (len--) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
  return crc;
}

uint32_t crc32c_update(uint32_t crc, const void* data, size_t len) {
  // pick() may not have run yet if called from another static initialiser.
  UpdateFn f = g_update ? g_update : pick();
  return f(crc, data, len);
}

const char* crc32c_impl() { return (g_update ? g_update : pick()) == crc32c_update_table ? "table" : "sse4.2"; }

uint32_t crc32c_update_segs(uint32_t crc, SegSpan segs, size_t offset, size_t len) {
  for (const Seg& s : segs) {
    if (len == 0) break;
    if (offset >= s.len) {
      offset -= s.len;
      continue;
    }
    size_t n = s.len - offset;
    if (n > len) n = len;
    crc = crc32c_update(crc, static_cast<const uint8_t*>(s.addr) + offset, n);
    len -= n;
    offset = 0;
  }
  assert(len == 0 && "digest range beyond the segments");
  return crc;
}

uint32_t data_digest(SegSpan segs, size_t offset, size_t len) {
  static const uint8_t zeros[4] = {};
  uint32_t crc = crc32c_update_segs(kCrc32cInit, segs, offset, len);
  crc = crc32c_update(crc, zeros, (4 - (len & 3)) & 3);
  return crc32c_final(crc);
}

}  // namespace sgv::iscsi
