// iscsi/discovery.cpp - SendTargets and the full-feature Text exchange.
#include "iscsi/discovery.hpp"

#include <charconv>
#include <cstring>

namespace sgv::iscsi {
namespace {

bool list_target(const TargetEntry& t, TextWriter& out) {
  if (!out.add("TargetName", t.name)) return false;
  for (const Portal& p : t.portals) {
    // "<address>,<tpgt>" built in place: addresses are short (<= 255 bytes).
    char buf[kMaxValueLen + 1];
    size_t n = p.address.size();
    if (n + 6 > sizeof buf) continue;  // cannot be a valid address; skip rather than truncate
    std::memcpy(buf, p.address.data(), n);
    buf[n++] = ',';
    auto r = std::to_chars(buf + n, buf + sizeof buf, p.tpgt);
    if (!out.add("TargetAddress", std::string_view(buf, size_t(r.ptr - buf)))) return false;
  }
  return true;
}

}  // namespace

bool send_targets(const TargetDirectory& dir, const SessionParams& s, std::string_view value, TextWriter& out) {
  const bool discovery = s.type == SessionType::discovery;
  if (value == "All") {
    if (!discovery) return out.add("SendTargets", "Reject");
    for (size_t i = 0, n = dir.count(); i < n; i++) {
      TargetEntry t = dir.entry(i);
      if (!dir.allowed(t.name, s.initiator_name)) continue;
      if (!list_target(t, out)) return false;
    }
    return true;
  }
  std::string_view want = value;
  if (want.empty()) {
    if (discovery) return out.add("SendTargets", "Reject");
    want = s.target_name;
  }
  for (size_t i = 0, n = dir.count(); i < n; i++) {
    TargetEntry t = dir.entry(i);
    if (t.name == want) return !dir.allowed(t.name, s.initiator_name) || list_target(t, out);
  }
  return true;
}

TextExchange::TextExchange(const TargetDirectory& dir, const SessionParams& s, size_t text_limit)
    : dir_(dir), s_(s), acc_(text_limit), rsp_(text_limit) {}

void TextExchange::reject(const SeqNums& sn, Output& out) {
  build_reject(out.rsp, RejectReason::protocol_error, sn);
  out.data = {};
  out.reject = true;
  acc_.reset();
  rsp_.clear();
  sent_ = 0;
  ttt_ = kReservedTag;
}

void TextExchange::answer(const TextPairs& in) {
  for (const KeyValue& kv : in) {
    if (kv.key == "SendTargets") {
      if (!send_targets(dir_, s_, kv.value, rsp_)) return;  // overflow: send what fitted
      continue;
    }
    // Full-feature renegotiation is not supported: known keys keep their
    // login values (Reject), anything else is NotUnderstood.
    if (!rsp_.add(kv.key, is_operational_key(kv.key) ? "Reject" : "NotUnderstood")) return;
  }
}

void TextExchange::on_request(const Bhs& req, std::span<const uint8_t> data, const SeqNums& sn, uint32_t max_seg,
                              Output& out) {
  out.data = {};
  out.reject = false;
  if (req.opcode() != Op::text_req || (req.cont() && req.final())) return reject(sn, out);

  if (req.ttt() != kReservedTag) {
    // Continuing our exchange: the tag and task must match.
    if (req.ttt() != ttt_ || req.itt() != itt_) return reject(sn, out);
    if (sent_ < rsp_.size()) {
      // Pulling the rest of our response: no new data allowed.
      if (!data.empty() || req.cont()) return reject(sn, out);
      return send_next(req, sn, max_seg, out);
    }
  } else {
    // A new exchange replaces any unfinished one (§11.10.4).
    acc_.reset();
    rsp_.clear();
    sent_ = 0;
    ttt_ = kReservedTag;
  }
  itt_ = req.itt();

  switch (acc_.add(data, req.cont())) {
    case TextAccumulator::Result::overflow:
      return reject(sn, out);
    case TextAccumulator::Result::more:
      // Ask for the rest: empty response carrying our tag.
      if (ttt_ == kReservedTag) {
        ttt_ = next_ttt_++;
        if (ttt_ == kReservedTag) ttt_ = next_ttt_++;
      }
      rsp_.clear();
      sent_ = 0;
      build_text_response(out.rsp, 0, itt_, ttt_, false, false, sn, 0);
      return;
    case TextAccumulator::Result::complete:
      break;
  }
  if (parse_text(acc_.data(), pairs_) != TextStatus::ok) return reject(sn, out);
  rsp_.clear();
  sent_ = 0;
  answer(pairs_);
  acc_.reset();
  send_next(req, sn, max_seg, out);
}

void TextExchange::send_next(const Bhs& req, const SeqNums& sn, uint32_t max_seg, Output& out) {
  TextChunk c = next_chunk(rsp_.size(), sent_, max_seg);
  if (c.more) {
    if (ttt_ == kReservedTag) {
      ttt_ = next_ttt_++;
      if (ttt_ == kReservedTag) ttt_ = next_ttt_++;
    }
  } else {
    ttt_ = kReservedTag;  // final: nothing more to pull
  }
  build_text_response(out.rsp, req.lun(), req.itt(), ttt_, !c.more, c.more, sn, uint32_t(c.len));
  out.data = rsp_.data().subspan(c.offset, c.len);
  sent_ += c.len;
}

}  // namespace sgv::iscsi
