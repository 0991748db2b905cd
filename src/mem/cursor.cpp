// cursor.cpp - segment cursors and windows (see sgv/cursor.hpp). Each
// operation is a loop over the contiguous chunk at the cursor, so the work
// per call is one memcpy/memset/memcmp per segment crossed.
#include "sgv/cursor.hpp"

#include <algorithm>
#include <cstring>

namespace sgv {

void SegCursor::reset(SegSpan segs, size_t off) {
  segs_ = segs.data();
  nsegs_ = segs.size();
  total_ = total_len(segs);
  idx_ = 0;
  in_ = 0;
  pos_ = 0;
  skip_empty();
  if (off) advance(off);
}

// Keeps the invariant: at the end, or in_ < segs_[idx_].len.
void SegCursor::skip_empty() {
  while (idx_ < nsegs_ && in_ == segs_[idx_].len) {
    ++idx_;
    in_ = 0;
  }
}

size_t SegCursor::advance(size_t n) {
  size_t moved = 0;
  while (moved < n && idx_ < nsegs_) {
    size_t step = std::min(n - moved, segs_[idx_].len - in_);
    in_ += step;
    moved += step;
    skip_empty();
  }
  pos_ += moved;
  return moved;
}

void SegCursor::seek(size_t off) {
  if (off < pos_) {
    idx_ = 0;
    in_ = 0;
    pos_ = 0;
    skip_empty();
  }
  advance(off - pos_);
}

Seg SegCursor::peek() const {
  if (idx_ >= nsegs_) return Seg{nullptr, 0};
  return Seg{static_cast<uint8_t*>(segs_[idx_].addr) + in_, segs_[idx_].len - in_};
}

size_t SegCursor::copy_out(void* dst, size_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  size_t done = 0;
  while (done < n) {
    Seg c = peek();
    if (!c.len) break;
    size_t k = std::min(n - done, c.len);
    std::memcpy(d + done, c.addr, k);
    done += k;
    advance(k);
  }
  return done;
}

size_t SegCursor::copy_in(const void* src, size_t n) {
  auto* s = static_cast<const uint8_t*>(src);
  size_t done = 0;
  while (done < n) {
    Seg c = peek();
    if (!c.len) break;
    size_t k = std::min(n - done, c.len);
    std::memcpy(c.addr, s + done, k);
    done += k;
    advance(k);
  }
  return done;
}

size_t SegCursor::fill(uint8_t byte, size_t n) {
  size_t done = 0;
  while (done < n) {
    Seg c = peek();
    if (!c.len) break;
    size_t k = std::min(n - done, c.len);
    std::memset(c.addr, byte, k);
    done += k;
    advance(k);
  }
  return done;
}

namespace {
// Index of the first differing byte of two equal-length ranges, or n.
size_t first_diff(const uint8_t* a, const uint8_t* b, size_t n) {
  if (std::memcmp(a, b, n) == 0) return n;
  size_t i = 0;
  while (a[i] == b[i]) ++i;
  return i;
}
}  // namespace

int SegCursor::compare(const void* buf, size_t n, size_t* at) {
  auto* b = static_cast<const uint8_t*>(buf);
  size_t done = 0;
  while (done < n) {
    Seg c = peek();
    if (!c.len) {
      if (at) *at = done;
      return -1;
    }
    size_t k = std::min(n - done, c.len);
    auto* a = static_cast<const uint8_t*>(c.addr);
    size_t i = first_diff(a, b + done, k);
    if (i < k) {
      advance(i);
      if (at) *at = done + i;
      return a[i] < b[done + i] ? -1 : 1;
    }
    done += k;
    advance(k);
  }
  if (at) *at = n;
  return 0;
}

size_t SegCursor::window(size_t n, Seg* out, size_t max_out, size_t* covered) {
  size_t cnt = 0, done = 0;
  while (done < n && cnt < max_out) {
    Seg c = peek();
    if (!c.len) break;
    size_t k = std::min(n - done, c.len);
    out[cnt++] = Seg{c.addr, k};
    done += k;
    advance(k);
  }
  if (covered) *covered = done;
  return cnt;
}

size_t copy(SegCursor& dst, SegCursor& src, size_t n) {
  size_t done = 0;
  while (done < n) {
    Seg d = dst.peek(), s = src.peek();
    if (!d.len || !s.len) break;
    size_t k = std::min({n - done, d.len, s.len});
    std::memmove(d.addr, s.addr, k);  // lists may alias (same vector)
    dst.advance(k);
    src.advance(k);
    done += k;
  }
  return done;
}

SegWindow::SegWindow(SegSpan segs, size_t off, size_t len, size_t chunk) : cur_(segs, off), chunk_(chunk) {
  len_ = std::min(len, cur_.remaining());
  if (chunk_ == 0) chunk_ = len_;
}

size_t SegWindow::next(Seg* out, size_t max_out, size_t* bytes) {
  size_t want = std::min(chunk_, len_ - done_);
  size_t got = 0;
  size_t cnt = want ? cur_.window(want, out, max_out, &got) : 0;
  done_ += got;
  if (bytes) *bytes = got;
  return cnt;
}

size_t copy_to_buf(SegSpan src, size_t off, void* dst, size_t len) {
  SegCursor c(src, off);
  return c.copy_out(dst, len);
}

size_t copy_from_buf(SegSpan dst, size_t off, const void* src, size_t len) {
  SegCursor c(dst, off);
  return c.copy_in(src, len);
}

size_t copy_segs(SegSpan dst, size_t dst_off, SegSpan src, size_t src_off, size_t len) {
  SegCursor d(dst, dst_off), s(src, src_off);
  return copy(d, s, len);
}

size_t fill(SegSpan dst, size_t off, uint8_t byte, size_t len) {
  SegCursor c(dst, off);
  return c.fill(byte, len);
}

int compare_buf(SegSpan segs, size_t off, const void* buf, size_t len, size_t* at) {
  SegCursor c(segs, off);
  return c.compare(buf, len, at);
}

int compare_segs(SegSpan a, size_t a_off, SegSpan b, size_t b_off, size_t len, size_t* at) {
  SegCursor ca(a, a_off), cb(b, b_off);
  size_t done = 0;
  while (done < len) {
    Seg x = ca.peek(), y = cb.peek();
    if (!x.len || !y.len) {
      if (at) *at = done;
      return !x.len ? -1 : 1;  // a short (or both): a is less
    }
    size_t k = std::min({len - done, x.len, y.len});
    auto* p = static_cast<const uint8_t*>(x.addr);
    auto* q = static_cast<const uint8_t*>(y.addr);
    size_t i = first_diff(p, q, k);
    if (i < k) {
      if (at) *at = done + i;
      return p[i] < q[i] ? -1 : 1;
    }
    ca.advance(k);
    cb.advance(k);
    done += k;
  }
  if (at) *at = len;
  return 0;
}

bool is_zero(SegSpan segs, size_t off, size_t len) {
  SegCursor c(segs, off);
  size_t done = 0;
  while (done < len) {
    Seg s = c.peek();
    if (!s.len) break;
    size_t k = std::min(len - done, s.len);
    auto* p = static_cast<const uint8_t*>(s.addr);
    for (size_t i = 0; i < k; ++i)
      if (p[i]) return false;
    done += k;
    c.advance(k);
  }
  return true;
}

size_t window(SegSpan segs, size_t off, size_t len, Seg* out, size_t max_out, size_t* covered) {
  SegCursor c(segs, off);
  return c.window(len, out, max_out, covered);
}

}  // namespace sgv
