// sgv/cursor.hpp - walking, copying and windowing segment lists (seeds 003,
// 004): Linux sg_miter's job for sgv::Seg, so no layer converts a segment
// list or bounces it through an intermediate buffer.
//
// SegCursor   - a byte position in a segment list; copies to/from a flat
//               buffer, fills, compares, and cuts iovec windows as it moves.
// SegWindow   - splits [off, off+len) of a list into chunk-sized windows
//               (one per PDU), each written as iovecs into a caller-provided
//               array: Data-In goes out with writev over the command's own
//               segments and Data-Out is read with readv straight into them.
// free functions - the same operations at an arbitrary byte offset, for
//               one-off use (sense/parameter data, COMPARE AND WRITE).
//
// Nothing here allocates. Offsets or lengths past the end are not errors:
// every operation does what fits and returns the byte count it covered.
// Zero-length segments are allowed anywhere and skipped.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sgv/seg.hpp"

namespace sgv {

class SegCursor {
 public:
  SegCursor() = default;
  explicit SegCursor(SegSpan segs, size_t off = 0) { reset(segs, off); }
  // O(number of segments) (it sums the lengths); all moves after it are
  // O(segments crossed).
  void reset(SegSpan segs, size_t off = 0);

  size_t offset() const { return pos_; }
  size_t total() const { return total_; }
  size_t remaining() const { return total_ - pos_; }
  bool at_end() const { return pos_ == total_; }

  // Forward by up to n bytes; returns bytes moved.
  size_t advance(size_t n);
  // Absolute position (clamped to total()); backwards restarts the walk.
  void seek(size_t off);

  // Copy the next n bytes of the list out to dst / in from src; advance.
  size_t copy_out(void* dst, size_t n);
  size_t copy_in(const void* src, size_t n);
  // Set the next n bytes to `byte`.
  size_t fill(uint8_t byte, size_t n);
  // Compare the next n bytes with buf. Returns 0 when equal; else the sign
  // of the first differing byte (list minus buf) with *at set to the
  // mismatch's distance from the start position. A list that ends before
  // n bytes compares as less (-1, *at = the bytes it had). Advances past
  // what was compared (to the mismatch, or n).
  int compare(const void* buf, size_t n, size_t* at = nullptr);

  // Up to max_out segments covering the next n bytes (fewer bytes if the
  // array runs out); advances by what they cover. Returns the segment
  // count; *covered (optional) gets the bytes. The segments point into the
  // list's memory: nothing is copied.
  size_t window(size_t n, Seg* out, size_t max_out, size_t* covered = nullptr);

  // The contiguous bytes at the position (up to the end of the current
  // segment), without advancing. {nullptr, 0} at the end.
  Seg peek() const;

 private:
  void skip_empty();
  const Seg* segs_ = nullptr;
  size_t nsegs_ = 0;
  size_t idx_ = 0;    // current segment
  size_t in_ = 0;     // offset inside it (< its len unless at end)
  size_t pos_ = 0;    // absolute byte offset
  size_t total_ = 0;  // bytes in the list
};

// Copy between two cursors: n bytes from src's position to dst's; both
// advance. Returns bytes copied (bounded by either list's end).
size_t copy(SegCursor& dst, SegCursor& src, size_t n);

class SegWindow {
 public:
  // Windows of `chunk` bytes over [off, off+len) of segs (clamped to the
  // list's end). chunk 0 means one window of everything.
  SegWindow(SegSpan segs, size_t off, size_t len, size_t chunk);
  // The next window into out[0..max_out): returns its segment count (0 when
  // done) and its bytes in *bytes - chunk, or less for the last window or
  // when max_out runs out first (the rest follows in the next call).
  size_t next(Seg* out, size_t max_out, size_t* bytes);
  size_t done() const { return done_; }
  size_t left() const { return len_ - done_; }

 private:
  SegCursor cur_;
  size_t len_;
  size_t chunk_;
  size_t done_ = 0;
};

// One-off operations at a byte offset; return bytes covered.
size_t copy_to_buf(SegSpan src, size_t off, void* dst, size_t len);
size_t copy_from_buf(SegSpan dst, size_t off, const void* src, size_t len);
size_t copy_segs(SegSpan dst, size_t dst_off, SegSpan src, size_t src_off, size_t len);
size_t fill(SegSpan dst, size_t off, uint8_t byte, size_t len);
// 0 if [off, off+len) equals buf; see SegCursor::compare.
int compare_buf(SegSpan segs, size_t off, const void* buf, size_t len, size_t* at = nullptr);
// Same between two lists; a list ending before len compares as less (a
// when both do).
int compare_segs(SegSpan a, size_t a_off, SegSpan b, size_t b_off, size_t len, size_t* at = nullptr);
// True if [off, off+len) is all zero bytes (clamped to the list's end).
bool is_zero(SegSpan segs, size_t off, size_t len);
// Segments covering [off, off+len) into out (see SegCursor::window).
size_t window(SegSpan segs, size_t off, size_t len, Seg* out, size_t max_out, size_t* covered = nullptr);

}  // namespace sgv
