// sgv/seg.hpp - C++ view of the segment carrier (seeds 003, 004).
//
// sgv::Seg *is* struct sgv_seg, and both are layout-compatible with struct
// iovec: a span of segments is handed to the kernel as-is. Cursors that walk,
// copy and window segment lists live in sgv/cursor.hpp.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <span>

#include "sgv/seg.h"

namespace sgv {

using Seg = ::sgv_seg;
using SegSpan = std::span<const Seg>;

static_assert(sizeof(Seg) == sizeof(struct iovec));
static_assert(alignof(Seg) == alignof(struct iovec));
static_assert(offsetof(Seg, addr) == offsetof(struct iovec, iov_base));
static_assert(offsetof(Seg, len) == offsetof(struct iovec, iov_len));

inline const struct iovec* as_iovec(const Seg* s) { return reinterpret_cast<const struct iovec*>(s); }
inline struct iovec* as_iovec(Seg* s) { return reinterpret_cast<struct iovec*>(s); }

inline size_t total_len(SegSpan segs) {
  size_t n = 0;
  for (const Seg& s : segs) n += s.len;
  return n;
}

}  // namespace sgv
