// iscsi/reader.hpp - the resumable PDU reader: one state machine that frames
// an iSCSI byte stream into PDUs (BHS, AHS, header digest, data segment,
// padding, data digest) without ever copying payload.
//
// Sans-I/O: the owner asks want() where the next bytes must land, reads
// (readv) or copies into those iovecs, then reports how many arrived with
// advance(). The reader stops at two events:
//   header - BHS+AHS(+header digest) complete. The owner validates the
//            lengths *before* anything is allocated, then says where the data
//            segment goes: data_to() (a command's segments, e.g. immediate
//            data or Data-Out straight into its SG vector), data_to_buffer()
//            (the bounded connection buffer: text, login, NOP data) or
//            data_discard() (dropped PDUs).
//   pdu    - the whole PDU, padding and digest included, has arrived.
// Fragmentation never matters: any split of the stream yields the same
// events (tested at every byte boundary).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "scsi/endian.hpp"
#include "sgv/seg.hpp"

namespace sgv::iscsi {

constexpr unsigned kBhsLen = 48;
constexpr unsigned kMaxAhsLen = 255 * 4;  // TotalAHSLength is one byte of words

class Reader {
 public:
  enum class Ev : uint8_t { need_more, header, pdu };

  // buffer_cap bounds data_to_buffer() (MaxRecvDataSegmentLength for text,
  // login and NOP data); allocated once here, never per PDU.
  explicit Reader(size_t buffer_cap);

  // Digests switch on after login (both sides start sending them with the
  // first full-feature PDU); set between PDUs only.
  void set_digests(bool header, bool data) { hdr_digest_ = header; data_digest_ = data; }

  // Where the next bytes go: up to cap iovecs (cap >= 4), returns the count
  // (never 0). Valid until the next advance() / data_*() call.
  unsigned want(struct iovec* iov, unsigned cap);
  // n bytes (<= the total of want()) have been written into those iovecs.
  // Returns the first event reached; bytes past an event are not accepted,
  // so n must stop there: want() never offers bytes past the next event.
  Ev advance(size_t n);

  // --- valid after Ev::header (and until the next PDU starts)
  const uint8_t* bhs() const { return hdr_; }
  const uint8_t* ahs() const { return hdr_ + kBhsLen; }
  uint32_t ahs_len() const { return ahs_len_; }
  uint32_t data_len() const { return data_len_; }  // DataSegmentLength
  uint32_t header_digest() const { return hdigest_; }  // as received (big-endian decoded)

  // Exactly one of these after Ev::header, then advance(0): it reports Ev::pdu
  // at once when the PDU has no data segment.
  // data_to: the data segment lands at byte `offset` of segs[0..n), which must
  // hold offset + data_len() bytes; the segments must stay valid until Ev::pdu.
  void data_to(const Seg* segs, unsigned n, size_t offset);
  void data_to_buffer();  // asserts data_len() <= buffer capacity
  void data_discard();

  // --- valid after Ev::pdu
  const uint8_t* buffer() const { return buf_.data(); }  // data_to_buffer() case
  uint32_t data_digest() const { return ddigest_; }
  bool had_data_digest() const { return data_len_ > 0 && data_digest_; }
  const Seg* data_segs() const { return dsegs_; }
  unsigned data_nsegs() const { return dnsegs_; }
  size_t data_offset() const { return doff_; }

  bool header_digest_on() const { return hdr_digest_; }
  bool data_digest_on() const { return data_digest_; }
  // True between PDUs (nothing of the next PDU received yet).
  bool at_boundary() const { return st_ == St::bhs && got_ == 0; }

 private:
  enum class St : uint8_t { bhs, ahs, hdigest, await_dest, data, pad_digest };
  void start_data();

  St st_ = St::bhs;
  bool hdr_digest_ = false;
  bool data_digest_ = false;
  size_t got_ = 0;        // bytes of the current state's unit received
  uint32_t ahs_len_ = 0;
  uint32_t data_len_ = 0;
  uint32_t hdigest_ = 0;
  uint32_t ddigest_ = 0;
  uint8_t hdr_[kBhsLen + kMaxAhsLen + 4];
  uint8_t tail_[8];       // padding (<= 3) + data digest (4)
  uint32_t tail_len_ = 0;
  enum class Dest : uint8_t { segs, buffer, discard } dest_ = Dest::discard;
  const Seg* dsegs_ = nullptr;
  unsigned dnsegs_ = 0;
  size_t doff_ = 0;
  std::vector<uint8_t> buf_;
  uint8_t sink_[4096];    // discarded data lands here
};

}  // namespace sgv::iscsi
