// iscsi/discovery.hpp - SendTargets (RFC 7143 §13.3, appendix C) and the
// full-feature Text Request/Response exchange that carries it: requests
// continued with the C bit, responses longer than the initiator's
// MaxRecvDataSegmentLength sent over several Text Responses that the
// initiator pulls with our Target Transfer Tag.
//
// Sans-I/O like login: Text Request (BHS + data) in, Text Response header +
// data (or a Reject) out. The connection supplies the sequence numbers.
// Slow path; buffers sized once per connection.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "iscsi/login.hpp"
#include "iscsi/params.hpp"
#include "iscsi/pdu.hpp"
#include "iscsi/text.hpp"

namespace sgv::iscsi {

// Appends the SendTargets answer for `value` to out:
//   TargetName=<name>\0 TargetAddress=<address>,<tpgt>\0 ...
// Discovery sessions: "All" lists every target the initiator may see, a
// target name lists that one. Normal sessions: the empty value lists the
// session's own target, a name lists that target, "All" is answered
// SendTargets=Reject (appendix C). Unknown or hidden names give an empty
// answer. False when out overflowed (out holds what fitted).
bool send_targets(const TargetDirectory& dir, const SessionParams& s, std::string_view value, TextWriter& out);

class TextExchange {
 public:
  // dir and s must outlive it.
  TextExchange(const TargetDirectory& dir, const SessionParams& s, size_t text_limit = kDefaultTextLimit);

  struct Output {
    Bhs rsp;                        // a Text Response, or a Reject when reject
    std::span<const uint8_t> data;  // valid until the next on_request()
    bool reject = false;            // send build_reject's header + the request's BHS as data
  };
  // One Text Request. max_seg is the initiator's MaxRecvDataSegmentLength.
  // sn are the numbers this response carries (the caller advances StatSN).
  void on_request(const Bhs& req, std::span<const uint8_t> data, const SeqNums& sn, uint32_t max_seg, Output& out);

  bool in_progress() const { return ttt_ != kReservedTag; }

 private:
  void answer(const TextPairs& in);
  void send_next(const Bhs& req, const SeqNums& sn, uint32_t max_seg, Output& out);
  void reject(const SeqNums& sn, Output& out);

  const TargetDirectory& dir_;
  const SessionParams& s_;
  TextAccumulator acc_;
  TextWriter rsp_;
  TextPairs pairs_;
  size_t sent_ = 0;
  uint32_t ttt_ = kReservedTag;  // live while an exchange spans PDUs
  uint32_t itt_ = kReservedTag;
  uint32_t next_ttt_ = 0;
};

}  // namespace sgv::iscsi
