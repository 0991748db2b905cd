// iscsi/params.cpp - the operational key table (RFC 7143 §13) and its
// result functions.
#include "iscsi/params.hpp"

#include <cstddef>

namespace sgv::iscsi {
namespace {

enum class Kind : uint8_t {
  bool_or,         // InitialR2T, DataPDUInOrder, DataSequenceInOrder
  bool_and,        // ImmediateData
  num_min,         // result = min(offer, ours)
  num_max,         // result = max(offer, ours)
  num_declare,     // the initiator's own MaxRecvDataSegmentLength
  digest_list,     // HeaderDigest, DataDigest
  task_reporting,  // list; we do RFC3720 only
  retired_no,      // IFMarker, OFMarker: answer No (§13.25 of RFC 3720, removed by 7143)
  retired_irrelevant,  // IFMarkInt, OFMarkInt: answer Irrelevant
  target_only,     // keys only a target may send
};

enum class Field : uint8_t {
  none, initial_r2t, immediate_data, max_burst, first_burst, max_r2t, pdu_order, seq_order, t2wait, t2retain,
  erl, max_conns, mrdsl, header_digest, data_digest, protocol_level,
};

struct KeyDef {
  std::string_view name;
  Kind kind;
  Field field;
  uint32_t lo, hi;     // valid offered range for numbers
  bool session_only;   // Irrelevant in a discovery session
};

constexpr uint32_t k24 = (1u << 24) - 1;

constexpr KeyDef kKeys[] = {
    {"HeaderDigest", Kind::digest_list, Field::header_digest, 0, 0, false},
    {"DataDigest", Kind::digest_list, Field::data_digest, 0, 0, false},
    {"MaxRecvDataSegmentLength", Kind::num_declare, Field::mrdsl, 512, k24, false},
    {"InitialR2T", Kind::bool_or, Field::initial_r2t, 0, 0, true},
    {"ImmediateData", Kind::bool_and, Field::immediate_data, 0, 0, true},
    {"MaxBurstLength", Kind::num_min, Field::max_burst, 512, k24, true},
    {"FirstBurstLength", Kind::num_min, Field::first_burst, 512, k24, true},
    {"MaxOutstandingR2T", Kind::num_min, Field::max_r2t, 1, 65535, true},
    {"DataPDUInOrder", Kind::bool_or, Field::pdu_order, 0, 0, true},
    {"DataSequenceInOrder", Kind::bool_or, Field::seq_order, 0, 0, true},
    {"DefaultTime2Wait", Kind::num_max, Field::t2wait, 0, 3600, false},
    {"DefaultTime2Retain", Kind::num_min, Field::t2retain, 0, 3600, false},
    {"ErrorRecoveryLevel", Kind::num_min, Field::erl, 0, 2, false},
    {"MaxConnections", Kind::num_min, Field::max_conns, 1, 65535, true},
    {"iSCSIProtocolLevel", Kind::num_min, Field::protocol_level, 0, 31, false},
    {"TaskReporting", Kind::task_reporting, Field::none, 0, 0, true},
    {"IFMarker", Kind::retired_no, Field::none, 0, 0, false},
    {"OFMarker", Kind::retired_no, Field::none, 0, 0, false},
    {"IFMarkInt", Kind::retired_irrelevant, Field::none, 0, 0, false},
    {"OFMarkInt", Kind::retired_irrelevant, Field::none, 0, 0, false},
    {"TargetAlias", Kind::target_only, Field::none, 0, 0, false},
    {"TargetAddress", Kind::target_only, Field::none, 0, 0, false},
    {"TargetPortalGroupTag", Kind::target_only, Field::none, 0, 0, false},
};
static_assert(std::size(kKeys) <= 64, "seen_ bitset");

// Keys the login code owns; the negotiator leaves them alone.
constexpr std::string_view kLoginKeys[] = {"InitiatorName", "InitiatorAlias", "TargetName", "SessionType",
                                           "AuthMethod", "SendTargets"};

bool parse_bool(std::string_view v, bool& out) {
  if (v == "Yes") return out = true, true;
  if (v == "No") return out = false, true;
  return false;
}

}  // namespace

bool parse_number(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  uint64_t v = 0;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    for (char c : s) {
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return false;
      v = v * 16 + uint64_t(d);
      if (v > 0xffffffffull) return false;
    }
  } else {
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + uint64_t(c - '0');
      if (v > 0xffffffffull) return false;
    }
  }
  out = v;
  return true;
}

bool is_operational_key(std::string_view key) {
  for (const KeyDef& d : kKeys)
    if (d.name == key) return true;
  return false;
}

Negotiator::Negotiator(const TargetLimits& lim) : lim_(lim) {
  conn.max_recv_data_segment_length = lim.max_recv_data_segment_length;
}

bool Negotiator::declare(TextWriter& out) {
  if (!declared_) {
    if (!out.add("MaxRecvDataSegmentLength", uint64_t(lim_.max_recv_data_segment_length))) return false;
    declared_ = true;
  }
  if (offers_made_ || session.type == SessionType::discovery) return true;
  offers_made_ = true;
  // Where the RFC default exceeds what we support, silence would mean
  // accepting the default: offer our value instead. The initiator's reply
  // then goes through offer() as an answer (no counter-answer).
  auto offer_row = [&](std::string_view key, auto value) {
    size_t row = 0;
    while (kKeys[row].name != key) row++;
    if (seen_ & (uint64_t(1) << row)) return true;  // already negotiated by the initiator
    offered_ |= uint64_t(1) << row;
    return out.add(key, value);
  };
  bool ok = true;
  if (!lim_.immediate_data && session.immediate_data) {
    session.immediate_data = false;
    ok = ok && offer_row("ImmediateData", std::string_view("No"));
  }
  if (lim_.max_burst_length < session.max_burst_length) {
    session.max_burst_length = lim_.max_burst_length;
    ok = ok && offer_row("MaxBurstLength", uint64_t(lim_.max_burst_length));
  }
  if (lim_.first_burst_length < session.first_burst_length) {
    session.first_burst_length = lim_.first_burst_length;
    ok = ok && offer_row("FirstBurstLength", uint64_t(lim_.first_burst_length));
  }
  just_offered_ = offered_ != 0;
  return ok;
}

bool Negotiator::needs_offers() const {
  if (offers_made_ || session.type == SessionType::discovery) return false;
  return (!lim_.immediate_data && session.immediate_data) || lim_.max_burst_length < session.max_burst_length ||
         lim_.first_burst_length < session.first_burst_length;
}

Negotiator::Outcome Negotiator::offer(std::string_view key, std::string_view value, TextWriter& out) {
  // When this is the initiator's answer to our own offer, the result is
  // computed the same way but not answered again.
  bool reply = true;
  auto answer = [&](std::string_view v) { return !reply || out.add(key, v) ? Outcome::answered : Outcome::overflow; };
  auto answer_num = [&](uint64_t v) { return !reply || out.add(key, v) ? Outcome::answered : Outcome::overflow; };

  for (std::string_view k : kLoginKeys)
    if (k == key) return Outcome::not_handled;
  if (key.starts_with("CHAP_")) return Outcome::not_handled;

  size_t row = 0;
  while (row < std::size(kKeys) && kKeys[row].name != key) row++;
  if (row == std::size(kKeys)) return answer("NotUnderstood");  // includes X- and X# keys
  const KeyDef& d = kKeys[row];
  if (seen_ & (uint64_t(1) << row)) return Outcome::duplicate;
  seen_ |= uint64_t(1) << row;
  if (offered_ & (uint64_t(1) << row)) reply = false;

  // An initiator answering one of our declarations needs no reply.
  if (value == "NotUnderstood" || value == "Irrelevant" || value == "Reject") return Outcome::answered;
  if (d.session_only && session.type == SessionType::discovery) return answer("Irrelevant");

  switch (d.kind) {
    case Kind::retired_no: {
      bool b;
      if (!parse_bool(value, b)) return answer("Reject");
      return answer("No");
    }
    case Kind::retired_irrelevant:
      return answer("Irrelevant");
    case Kind::target_only:
      return answer("Reject");
    case Kind::task_reporting: {
      // A list: pick the first value we support.
      size_t pos = 0;
      while (pos <= value.size()) {
        size_t comma = value.find(',', pos);
        if (comma == std::string_view::npos) comma = value.size();
        if (value.substr(pos, comma - pos) == "RFC3720") return answer("RFC3720");
        pos = comma + 1;
      }
      return answer("Reject");
    }
    case Kind::digest_list: {
      const bool crc_ok = d.field == Field::header_digest ? lim_.header_digest_crc32c : lim_.data_digest_crc32c;
      size_t pos = 0;
      while (pos <= value.size()) {
        size_t comma = value.find(',', pos);
        if (comma == std::string_view::npos) comma = value.size();
        std::string_view v = value.substr(pos, comma - pos);
        Digest pick;
        bool known = false;
        if (v == "None") pick = Digest::none, known = true;
        else if (v == "CRC32C" && crc_ok) pick = Digest::crc32c, known = true;
        if (known) {
          (d.field == Field::header_digest ? conn.header_digest : conn.data_digest) = pick;
          return answer(pick == Digest::none ? "None" : "CRC32C");
        }
        pos = comma + 1;
      }
      return answer("Reject");
    }
    case Kind::bool_or:
    case Kind::bool_and: {
      bool b;
      if (!parse_bool(value, b)) return answer("Reject");
      bool r = false;
      switch (d.field) {
        case Field::initial_r2t: r = session.initial_r2t = b || lim_.initial_r2t; break;
        case Field::immediate_data: r = session.immediate_data = b && lim_.immediate_data; break;
        // We only deliver in order; OR with our Yes always gives Yes.
        case Field::pdu_order: r = session.data_pdu_in_order = true; break;
        case Field::seq_order: r = session.data_sequence_in_order = true; break;
        default: break;
      }
      return answer(r ? "Yes" : "No");
    }
    case Kind::num_min:
    case Kind::num_max:
    case Kind::num_declare: {
      uint64_t v;
      if (!parse_number(value, v) || v < d.lo || v > d.hi) return answer("Reject");
      const uint32_t n = uint32_t(v);
      auto mn = [n](uint32_t ours) { return n < ours ? n : ours; };
      auto mx = [n](uint32_t ours) { return n > ours ? n : ours; };
      switch (d.field) {
        case Field::mrdsl:
          // Declarative: the initiator tells us what it receives; we answer
          // with our own declaration.
          conn.max_send_data_segment_length = n;
          if (declared_) return Outcome::answered;
          declared_ = true;
          return answer_num(lim_.max_recv_data_segment_length);
        case Field::max_burst: return answer_num(session.max_burst_length = mn(lim_.max_burst_length));
        case Field::first_burst: return answer_num(session.first_burst_length = mn(lim_.first_burst_length));
        case Field::max_r2t: return answer_num(session.max_outstanding_r2t = mn(lim_.max_outstanding_r2t));
        case Field::t2wait: return answer_num(session.default_time2wait = uint16_t(mx(lim_.default_time2wait)));
        case Field::t2retain:
          return answer_num(session.default_time2retain = uint16_t(mn(lim_.default_time2retain)));
        case Field::erl: return answer_num(session.error_recovery_level = uint8_t(mn(0)));
        case Field::max_conns: return answer_num(session.max_connections = uint16_t(mn(1)));
        case Field::protocol_level: return answer_num(session.protocol_level = uint8_t(mn(lim_.protocol_level)));
        default: break;
      }
      return answer("Reject");
    }
  }
  return answer("NotUnderstood");
}

void Negotiator::finish() {
  if (session.first_burst_length > session.max_burst_length) session.first_burst_length = session.max_burst_length;
}

}  // namespace sgv::iscsi
