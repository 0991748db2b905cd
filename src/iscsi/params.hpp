// iscsi/params.hpp - iSCSI operational parameters (RFC 7143 §13): the
// negotiated result (SessionParams + ConnParams) that the session and
// connection code run with, the target's configurable limits, and the
// Negotiator that answers an initiator's key=value offers key by key with
// the RFC's defaults, ranges and result functions.
//
// Slow path (login and Text only). The negotiated structs are plain values
// read on the data path without locks: they are fixed once full feature
// phase starts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "iscsi/text.hpp"

namespace sgv::iscsi {

enum class Digest : uint8_t { none, crc32c };
enum class SessionType : uint8_t { normal, discovery };

// What the target is willing to do; comes from the server configuration.
struct TargetLimits {
  uint32_t max_recv_data_segment_length = 262144;  // declared to the initiator
  uint32_t max_burst_length = 1048576;             // upper bound for the min() result
  uint32_t first_burst_length = 262144;
  uint32_t max_outstanding_r2t = 16;
  bool initial_r2t = false;     // our preference; the result is an OR
  bool immediate_data = true;   // our preference; the result is an AND
  bool header_digest_crc32c = true;  // whether we accept CRC32C at all
  bool data_digest_crc32c = true;
  uint16_t default_time2wait = 2;
  uint16_t default_time2retain = 20;
  uint16_t target_portal_group_tag = 1;
  std::string target_alias;     // declared when non-empty
  uint32_t cmd_window = 128;    // MaxCmdSN - ExpCmdSN + 1 granted at login
  uint8_t protocol_level = 1;   // iSCSIProtocolLevel (RFC 7144): 1 = RFC 7143
};

// Per-connection results.
struct ConnParams {
  Digest header_digest = Digest::none;
  Digest data_digest = Digest::none;
  // Largest data segment we accept (we declared it) ...
  uint32_t max_recv_data_segment_length = 8192;
  // ... and the largest the initiator accepts: bounds our Data-In, Text,
  // NOP-In and sense segments.
  uint32_t max_send_data_segment_length = 8192;
};

// Per-session results (RFC 7143 defaults until negotiated).
struct SessionParams {
  SessionType type = SessionType::normal;
  std::string initiator_name;
  std::string initiator_alias;
  std::string target_name;  // empty for discovery sessions
  uint64_t isid = 0;
  uint16_t tsih = 0;
  bool initial_r2t = true;
  bool immediate_data = true;
  uint32_t max_burst_length = 262144;
  uint32_t first_burst_length = 65536;
  uint32_t max_outstanding_r2t = 1;
  bool data_pdu_in_order = true;
  bool data_sequence_in_order = true;
  uint16_t default_time2wait = 2;
  uint16_t default_time2retain = 20;
  uint8_t error_recovery_level = 0;
  uint16_t max_connections = 1;
  uint8_t protocol_level = 0;
};

// Login status (class << 8 | detail), RFC 7143 §11.13.5.
enum class LoginStatus : uint16_t {
  success = 0x0000,
  target_moved_temp = 0x0101,
  target_moved_perm = 0x0102,
  initiator_error = 0x0200,
  auth_failure = 0x0201,
  authorization_failure = 0x0202,
  target_not_found = 0x0203,
  target_removed = 0x0204,
  unsupported_version = 0x0205,
  too_many_connections = 0x0206,
  missing_parameter = 0x0207,
  cant_include_in_session = 0x0208,
  session_type_unsupported = 0x0209,
  session_does_not_exist = 0x020a,
  invalid_during_login = 0x020b,
  target_error = 0x0300,
  service_unavailable = 0x0301,
  out_of_resources = 0x0302,
};
inline uint8_t status_class(LoginStatus s) { return uint8_t(uint16_t(s) >> 8); }
inline uint8_t status_detail(LoginStatus s) { return uint8_t(uint16_t(s)); }

// Numeric values: decimal or 0x-hex (§5.1 numeric-value). False on syntax
// errors or values above 2^32-1. (Base64 0b constants are not numbers any
// key we know takes.)
bool parse_number(std::string_view s, uint64_t& out);

// True for keys of the operational table (HeaderDigest ... TaskReporting).
bool is_operational_key(std::string_view key);

// Answers operational keys. Keys the login code handles itself
// (InitiatorName, TargetName, SessionType, AuthMethod, CHAP_*, ...) are
// reported as not handled so the caller can take them.
class Negotiator {
 public:
  explicit Negotiator(const TargetLimits& lim);

  void set_session_type(SessionType t) { session.type = t; }

  enum class Outcome : uint8_t {
    answered,     // a response pair was written (or none was due)
    not_handled,  // not an operational key: the caller deals with it
    duplicate,    // negotiated before in this login: initiator error
    overflow,     // the response buffer is full
  };
  // Answers one key. Out-of-range or malformed values get key=Reject and
  // leave the default in place; unknown and X-/X# keys get NotUnderstood;
  // keys that do not apply (session-only keys in a discovery session,
  // retired marker intervals) get Irrelevant.
  Outcome offer(std::string_view key, std::string_view value, TextWriter& out);

  // What the target says without being asked, once per login, in the
  // operational stage: its own MaxRecvDataSegmentLength, and offers for
  // keys whose RFC default exceeds our limits (normal sessions only).
  bool declare(TextWriter& out);

  // True when declare() would still offer keys of its own (the login then
  // visits the operational stage even if the initiator would skip it).
  bool needs_offers() const;
  // True once after declare() wrote offers: the target must not transit in
  // that response, the initiator owes an answer.
  bool take_just_offered() {
    bool v = just_offered_;
    just_offered_ = false;
    return v;
  }

  // Applies cross-key rules (FirstBurstLength <= MaxBurstLength) at the end
  // of login.
  void finish();

  SessionParams session;
  ConnParams conn;

 private:
  const TargetLimits& lim_;
  uint64_t seen_ = 0;     // bit per key-table row: renegotiation detection
  uint64_t offered_ = 0;  // rows we offered first (their reply needs no answer)
  bool declared_ = false;
  bool offers_made_ = false;
  bool just_offered_ = false;
};

}  // namespace sgv::iscsi
