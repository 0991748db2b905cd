// iscsi/reader.cpp - the resumable PDU framing state machine (see reader.hpp).
#include "iscsi/reader.hpp"

#include <algorithm>
#include <cassert>

#include "iscsi/crc32c.hpp"

namespace sgv::iscsi {

Reader::Reader(size_t buffer_cap) : buf_(buffer_cap) {}

unsigned Reader::want(struct iovec* iov, unsigned cap) {
  assert(cap >= 4);
  switch (st_) {
    case St::bhs:
      iov[0] = {hdr_ + got_, kBhsLen - got_};
      return 1;
    case St::ahs:
      iov[0] = {hdr_ + kBhsLen + got_, ahs_len_ - got_};
      return 1;
    case St::hdigest:
      iov[0] = {hdr_ + kBhsLen + ahs_len_ + got_, 4 - got_};
      return 1;
    case St::await_dest:
      assert(!"want() before data_to/data_to_buffer/data_discard");
      return 0;
    case St::data: {
      unsigned k = 0;
      size_t left = data_len_ - got_;
      if (dest_ == Dest::buffer) {
        iov[k++] = {buf_.data() + got_, left};
      } else if (dest_ == Dest::discard) {
        // Only one sink's worth at a time: the tail cannot follow it then.
        iov[0] = {sink_, std::min(left, sizeof(sink_))};
        return 1;
      } else {
        size_t off = doff_ + got_;
        unsigned i = 0;
        while (i < dnsegs_ && off >= dsegs_[i].len) off -= dsegs_[i++].len;
        while (left > 0 && k < cap - 1) {
          assert(i < dnsegs_);
          size_t l = std::min(left, dsegs_[i].len - off);
          iov[k++] = {static_cast<uint8_t*>(dsegs_[i].addr) + off, l};
          left -= l;
          off = 0;
          ++i;
        }
        if (left > 0) return k;  // tail after the next advance
      }
      if (tail_len_ > 0) iov[k++] = {tail_, tail_len_};
      return k;
    }
    case St::pad_digest:
      iov[0] = {tail_ + got_, tail_len_ - got_};
      return 1;
  }
  return 0;
}

void Reader::start_data() {
  uint32_t pad = (4 - (data_len_ & 3)) & 3;
  tail_len_ = pad + ((data_digest_ && data_len_ > 0) ? 4 : 0);
  got_ = 0;
  st_ = St::data;
}

void Reader::data_to(const Seg* segs, unsigned n, size_t offset) {
  assert(st_ == St::await_dest);
  assert(total_len(SegSpan(segs, n)) >= offset + data_len_);
  dest_ = Dest::segs;
  dsegs_ = segs;
  dnsegs_ = n;
  doff_ = offset;
  start_data();
}

void Reader::data_to_buffer() {
  assert(st_ == St::await_dest);
  assert(data_len_ <= buf_.size());
  dest_ = Dest::buffer;
  start_data();
}

void Reader::data_discard() {
  assert(st_ == St::await_dest);
  dest_ = Dest::discard;
  start_data();
}

Reader::Ev Reader::advance(size_t n) {
  for (;;) {
    switch (st_) {
      case St::bhs: {
        size_t t = std::min(n, size_t(kBhsLen) - got_);
        got_ += t;
        n -= t;
        if (got_ < kBhsLen) return Ev::need_more;
        ahs_len_ = uint32_t(hdr_[4]) * 4;
        data_len_ = be24(hdr_ + 5);
        got_ = 0;
        st_ = ahs_len_ ? St::ahs : hdr_digest_ ? St::hdigest : St::await_dest;
        break;
      }
      case St::ahs: {
        size_t t = std::min(n, size_t(ahs_len_) - got_);
        got_ += t;
        n -= t;
        if (got_ < ahs_len_) return Ev::need_more;
        got_ = 0;
        st_ = hdr_digest_ ? St::hdigest : St::await_dest;
        break;
      }
      case St::hdigest: {
        size_t t = std::min(n, size_t(4) - got_);
        got_ += t;
        n -= t;
        if (got_ < 4) return Ev::need_more;
        // CRC32C goes on the wire least significant byte first (RFC 7143 13.1).
        hdigest_ = get_digest(hdr_ + kBhsLen + ahs_len_);
        got_ = 0;
        st_ = St::await_dest;
        break;
      }
      case St::await_dest:
        assert(n == 0);
        return Ev::header;
      case St::data: {
        size_t t = std::min(n, size_t(data_len_) - got_);
        got_ += t;
        n -= t;
        if (got_ < data_len_) return Ev::need_more;
        got_ = 0;
        st_ = St::pad_digest;
        break;
      }
      case St::pad_digest: {
        size_t t = std::min(n, size_t(tail_len_) - got_);
        got_ += t;
        n -= t;
        if (got_ < tail_len_) return Ev::need_more;
        assert(n == 0);
        if (data_digest_ && data_len_ > 0) {
          ddigest_ = get_digest(tail_ + tail_len_ - 4);
        }
        got_ = 0;
        st_ = St::bhs;
        return Ev::pdu;
      }
    }
  }
}

}  // namespace sgv::iscsi
