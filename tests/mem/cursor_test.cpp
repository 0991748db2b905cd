// cursor_test.cpp - segment cursors checked exhaustively against a flat
// model: every offset and length (including past the end) over irregular
// segment lists with empty segments, for copy, fill, compare, windows and
// list-to-list copies.
#include "sgv/cursor.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

namespace sgv {
namespace {

// A segment list over separate heap blocks (so a cursor that strays past a
// segment writes into the wrong block and is caught) plus its flat model.
struct List {
  std::vector<std::vector<uint8_t>> blocks;
  std::vector<Seg> segs;
  explicit List(std::vector<size_t> lens) {
    for (size_t l : lens) blocks.emplace_back(l + 8, 0xCD);  // 8 guard bytes each
    for (size_t i = 0; i < lens.size(); ++i) segs.push_back(Seg{blocks[i].data(), lens[i]});
  }
  size_t total() const { return total_len(segs); }
  SegSpan span() const { return SegSpan(segs); }
  std::vector<uint8_t> flat() const {
    std::vector<uint8_t> f;
    for (const Seg& s : segs) f.insert(f.end(), static_cast<uint8_t*>(s.addr), static_cast<uint8_t*>(s.addr) + s.len);
    return f;
  }
  void set(const std::vector<uint8_t>& f) { copy_from_buf(span(), 0, f.data(), f.size()); }
  bool guards_ok() const {
    for (size_t i = 0; i < segs.size(); ++i)
      for (size_t g = 0; g < 8; ++g)
        if (blocks[i][segs[i].len + g] != 0xCD) return false;
    return true;
  }
};

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 3));
  return v;
}

const std::vector<std::vector<size_t>> kShapes = {
    {},
    {0},
    {1},
    {5},
    {0, 0, 3, 0},
    {1, 0, 3, 7, 0, 16, 2, 5, 0, 11},
    {4, 4, 4, 4, 4},
    {13, 1, 1, 1, 29},
};

TEST(Cursor, CopyOutAtEveryOffsetAndLength) {
  for (const auto& shape : kShapes) {
    List l(shape);
    size_t T = l.total();
    auto f = pattern(T, 3);
    l.set(f);
    for (size_t off = 0; off <= T + 2; ++off)
      for (size_t len = 0; len <= T + 2 - off; ++len) {
        std::vector<uint8_t> out(len + 4, 0xEE);
        size_t n = copy_to_buf(l.span(), off, out.data(), len);
        size_t expect = off >= T ? 0 : std::min(len, T - off);
        ASSERT_EQ(n, expect) << off << "+" << len;
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], f[off + i]);
        for (size_t i = n; i < len + 4; ++i) ASSERT_EQ(out[i], 0xEE);  // nothing beyond
      }
  }
}

TEST(Cursor, CopyInAndFillAtEveryOffsetAndLength) {
  for (const auto& shape : kShapes) {
    List l(shape);
    size_t T = l.total();
    auto base = pattern(T, 9);
    for (size_t off = 0; off <= T + 2; ++off)
      for (size_t len = 0; len <= T + 2 - off; ++len) {
        auto src = pattern(len, 101);
        l.set(base);
        size_t n = copy_from_buf(l.span(), off, src.data(), len);
        size_t expect = off >= T ? 0 : std::min(len, T - off);
        ASSERT_EQ(n, expect);
        auto model = base;
        for (size_t i = 0; i < n; ++i) model[off + i] = src[i];
        ASSERT_EQ(l.flat(), model) << off << "+" << len;
        ASSERT_TRUE(l.guards_ok());

        l.set(base);
        ASSERT_EQ(fill(l.span(), off, 0x5A, len), expect);
        model = base;
        for (size_t i = 0; i < n; ++i) model[off + i] = 0x5A;
        ASSERT_EQ(l.flat(), model);
        ASSERT_TRUE(l.guards_ok());
        l.set(std::vector<uint8_t>(T, 0));
        ASSERT_TRUE(is_zero(l.span(), off, len));
        if (n) {
          copy_from_buf(l.span(), off + n - 1, "\x01", 1);
          ASSERT_FALSE(is_zero(l.span(), off, len));
        }
      }
  }
}

TEST(Cursor, CompareFindsFirstMismatchEverywhere) {
  for (const auto& shape : kShapes) {
    List l(shape);
    size_t T = l.total();
    auto f = pattern(T, 17);
    l.set(f);
    for (size_t off = 0; off <= T; ++off)
      for (size_t len = 0; len <= T - off; ++len) {
        std::vector<uint8_t> ref(f.begin() + static_cast<long>(off), f.begin() + static_cast<long>(off + len));
        size_t at = 999;
        ASSERT_EQ(compare_buf(l.span(), off, ref.data(), len, &at), 0);
        ASSERT_EQ(at, len);
        for (size_t d = 0; d < len; ++d) {
          auto bad = ref;
          bad[d] = static_cast<uint8_t>(bad[d] + 1);  // list byte is less
          ASSERT_EQ(compare_buf(l.span(), off, bad.data(), len, &at), -1);
          ASSERT_EQ(at, d);
          bad[d] = static_cast<uint8_t>(ref[d] - 1);
          ASSERT_EQ(compare_buf(l.span(), off, bad.data(), len, &at), 1);
          ASSERT_EQ(at, d);
        }
      }
    // Past the end: shorter list compares less, at = what it had.
    std::vector<uint8_t> longer(T + 3, 0);
    if (T) std::memcpy(longer.data(), f.data(), T);
    size_t at = 0;
    EXPECT_EQ(compare_buf(l.span(), 0, longer.data(), T + 3, &at), -1);
    EXPECT_EQ(at, T);
  }
}

TEST(Cursor, WindowsCoverExactlyTheRangeWithAnyArraySize) {
  for (const auto& shape : kShapes) {
    List l(shape);
    size_t T = l.total();
    auto f = pattern(T, 33);
    l.set(f);
    for (size_t off = 0; off <= T + 1; ++off)
      for (size_t len = 0; len <= T + 1 - off; ++len)
        for (size_t max_out = 0; max_out <= shape.size() + 1; ++max_out) {
          Seg out[16];
          size_t cov = 999;
          size_t n = window(l.span(), off, len, out, max_out, &cov);
          ASSERT_LE(n, max_out);
          size_t sum = 0;
          std::vector<uint8_t> got;
          for (size_t i = 0; i < n; ++i) {
            ASSERT_GT(out[i].len, 0u);  // never an empty iovec
            sum += out[i].len;
            got.insert(got.end(), static_cast<uint8_t*>(out[i].addr), static_cast<uint8_t*>(out[i].addr) + out[i].len);
          }
          ASSERT_EQ(sum, cov);
          size_t expect = off >= T ? 0 : std::min(len, T - off);
          if (max_out > shape.size()) {
            ASSERT_EQ(cov, expect);  // enough entries: all of it
          }
          ASSERT_LE(cov, expect);
          ASSERT_TRUE(std::equal(got.begin(), got.end(), f.begin() + static_cast<long>(std::min(off, T))));
        }
  }
}

TEST(Cursor, SegWindowSplitsIntoPduSizedPieces) {
  for (const auto& shape : kShapes) {
    List l(shape);
    size_t T = l.total();
    auto f = pattern(T, 77);
    l.set(f);
    for (size_t off = 0; off <= T; ++off)
      for (size_t len = 0; len <= T - off; ++len)
        for (size_t chunk = 0; chunk <= len + 1; ++chunk)
          for (size_t max_out : {size_t{1}, size_t{2}, size_t{16}}) {
            SegWindow w(l.span(), off, len, chunk);
            std::vector<uint8_t> got;
            size_t windows = 0;
            for (;;) {
              Seg out[16];
              size_t bytes = 0;
              size_t n = w.next(out, max_out, &bytes);
              if (n == 0) {
                ASSERT_EQ(bytes, 0u);
                break;
              }
              ASSERT_LE(bytes, chunk ? chunk : len);
              if (max_out == 16 && w.left() > 0) {
                ASSERT_EQ(bytes, chunk);  // full PDUs but the last
              }
              size_t sum = 0;
              for (size_t i = 0; i < n; ++i) {
                sum += out[i].len;
                got.insert(got.end(), static_cast<uint8_t*>(out[i].addr),
                           static_cast<uint8_t*>(out[i].addr) + out[i].len);
              }
              ASSERT_EQ(sum, bytes);
              ASSERT_LE(++windows, len + 1);
            }
            ASSERT_EQ(w.done(), len);
            ASSERT_EQ(w.left(), 0u);
            ASSERT_EQ(got.size(), len);
            ASSERT_TRUE(std::equal(got.begin(), got.end(), f.begin() + static_cast<long>(off)));
          }
  }
}

TEST(Cursor, ListToListCopyAtEveryOffsetPair) {
  List a({1, 0, 3, 7, 0, 16, 2, 5});
  List b({4, 4, 0, 9, 1, 1, 17});
  size_t TA = a.total(), TB = b.total();
  auto fa = pattern(TA, 1), fb = pattern(TB, 200);
  for (size_t doff = 0; doff <= TA; ++doff)
    for (size_t soff = 0; soff <= TB; ++soff)
      for (size_t len = 0; len <= std::max(TA - doff, TB - soff) + 1; ++len) {
        a.set(fa);
        b.set(fb);
        size_t n = copy_segs(a.span(), doff, b.span(), soff, len);
        size_t expect = std::min({len, TA - doff, TB - soff});
        ASSERT_EQ(n, expect);
        auto model = fa;
        for (size_t i = 0; i < n; ++i) model[doff + i] = fb[soff + i];
        ASSERT_EQ(a.flat(), model) << doff << " " << soff << " " << len;
        ASSERT_EQ(b.flat(), fb);
        ASSERT_TRUE(a.guards_ok());
        size_t at = 0;
        ASSERT_EQ(compare_segs(a.span(), doff, b.span(), soff, n, &at), 0);
        ASSERT_EQ(at, n);
        if (n) {
          copy_from_buf(a.span(), doff + n - 1, "\xff", 1);
          if (fb[soff + n - 1] != 0xff) {
            ASSERT_EQ(compare_segs(a.span(), doff, b.span(), soff, n, &at), 1);
            ASSERT_EQ(at, n - 1);
          }
        }
      }
}

TEST(Cursor, CompareSegsShorterIsLess) {
  List a({3, 2});
  List b({5, 4});
  auto f = pattern(9, 4);
  b.set(f);
  a.set(std::vector<uint8_t>(f.begin(), f.begin() + 5));
  size_t at = 0;
  EXPECT_EQ(compare_segs(a.span(), 0, b.span(), 0, 9, &at), -1);
  EXPECT_EQ(at, 5u);
  EXPECT_EQ(compare_segs(b.span(), 0, a.span(), 0, 9, &at), 1);
  EXPECT_EQ(at, 5u);
}

TEST(Cursor, SequentialOpsComposeAndSeekBackRestarts) {
  List l({3, 0, 5, 2, 6});
  size_t T = l.total();
  auto f = pattern(T, 50);
  SegCursor c(l.span());
  EXPECT_EQ(c.total(), T);
  // Write in irregular pieces, then read back in other pieces.
  size_t pieces[] = {1, 4, 0, 2, 7, 9};
  size_t pos = 0;
  for (size_t p : pieces) pos += c.copy_in(f.data() + pos, p);
  EXPECT_EQ(pos, T);
  EXPECT_TRUE(c.at_end());
  EXPECT_EQ(c.peek().len, 0u);
  EXPECT_EQ(c.advance(5), 0u);
  c.seek(2);
  EXPECT_EQ(c.offset(), 2u);
  EXPECT_EQ(c.remaining(), T - 2);
  Seg p = c.peek();
  EXPECT_EQ(p.len, 1u);  // rest of the first segment
  std::vector<uint8_t> back(T);
  c.seek(0);
  size_t got = 0;
  for (size_t q : {size_t{2}, size_t{2}, size_t{5}, size_t{100}}) got += c.copy_out(back.data() + got, q);
  EXPECT_EQ(got, T);
  EXPECT_EQ(back, f);
  c.seek(T + 10);
  EXPECT_EQ(c.offset(), T);
  SegCursor empty;
  EXPECT_TRUE(empty.at_end());
  EXPECT_EQ(empty.copy_out(back.data(), 4), 0u);
}

}  // namespace
}  // namespace sgv
