// sgvbench/pattern.hpp - the data written in --verify mode and its check.
//
// Every 512-byte unit carries its own byte address on the LUN and the write
// generation, mixed into every 8-byte word, so a read that returns another
// block's data, a stale generation, a torn write or a shifted buffer is told
// apart from the right data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace sgvbench {

inline constexpr uint32_t kPatternUnit = 512;
inline constexpr uint64_t kPatternMagic = 0x5347'5642ull;  // "SGVB"

inline uint64_t pattern_word(uint64_t addr, uint32_t gen, unsigned i) {
  if (i == 0) return addr;
  if (i == 1) return (kPatternMagic << 32) | gen;
  uint64_t x = addr ^ (uint64_t(gen) * 0x9E3779B97F4A7C15ull) ^ (uint64_t(i) << 56);
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 29);
}

// Fills len bytes (a multiple of kPatternUnit) for byte address addr.
inline void pattern_fill(void* buf, size_t len, uint64_t addr, uint32_t gen) {
  auto* p = static_cast<unsigned char*>(buf);
  for (size_t off = 0; off < len; off += kPatternUnit) {
    for (unsigned i = 0; i < kPatternUnit / 8; ++i) {
      uint64_t w = pattern_word(addr + off, gen, i);
      std::memcpy(p + off + i * 8, &w, 8);
    }
  }
}

// Returns the byte offset of the first wrong word, or -1 when all match.
inline long pattern_check(const void* buf, size_t len, uint64_t addr, uint32_t gen) {
  auto* p = static_cast<const unsigned char*>(buf);
  for (size_t off = 0; off < len; off += kPatternUnit) {
    for (unsigned i = 0; i < kPatternUnit / 8; ++i) {
      uint64_t w;
      std::memcpy(&w, p + off + i * 8, 8);
      if (w != pattern_word(addr + off, gen, i)) return long(off + i * 8);
    }
  }
  return -1;
}

}  // namespace sgvbench
