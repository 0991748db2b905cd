// iscsi/pdu.hpp - the 48-byte Basic Header Segment (RFC 7143 §11): opcodes,
// typed field accessors, builders for every target PDU, data-segment padding,
// serial number arithmetic (RFC 1982) and initiator header validation.
//
// Sans-I/O and allocation-free: a Bhs is 48 plain bytes that the connection
// code reads into / writes from directly. Every accessor is a couple of
// loads and shifts; builders zero the header first so reserved fields are 0
// as the RFC requires of a sender.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "scsi/endian.hpp"

namespace sgv::iscsi {

enum class Op : uint8_t {
  // initiator -> target
  nop_out = 0x00,
  scsi_cmd = 0x01,
  tmf_req = 0x02,
  login_req = 0x03,
  text_req = 0x04,
  data_out = 0x05,
  logout_req = 0x06,
  snack = 0x10,
  // target -> initiator
  nop_in = 0x20,
  scsi_rsp = 0x21,
  tmf_rsp = 0x22,
  login_rsp = 0x23,
  text_rsp = 0x24,
  data_in = 0x25,
  logout_rsp = 0x26,
  r2t = 0x31,
  async = 0x32,
  reject = 0x3f,
};

// Reject reasons (RFC 7143 §11.17.1).
enum class RejectReason : uint8_t {
  none = 0x00,  // not a wire value: "no reject" from the validators
  data_digest = 0x02,
  snack_reject = 0x03,
  protocol_error = 0x04,
  cmd_not_supported = 0x05,
  immediate_cmd_reject = 0x06,
  task_in_progress = 0x07,
  invalid_data_ack = 0x08,
  invalid_pdu_field = 0x09,
  long_op_reject = 0x0a,
  deprecated_negotiation_reset = 0x0b,
  waiting_for_logout = 0x0c,
};

// Task Management function codes (§11.5.1) and responses (§11.6.1).
enum class TmfFunc : uint8_t {
  abort_task = 1,
  abort_task_set = 2,
  clear_aca = 3,
  clear_task_set = 4,
  lun_reset = 5,
  target_warm_reset = 6,
  target_cold_reset = 7,
  task_reassign = 8,
};
enum class TmfResponse : uint8_t {
  complete = 0,
  no_task = 1,
  no_lun = 2,
  task_allegiant = 3,
  reassign_unsupported = 4,
  not_supported = 5,
  auth_failed = 6,
  rejected = 255,
};

// Logout reason (§11.14.1) and response (§11.15.1).
enum class LogoutReason : uint8_t { close_session = 0, close_connection = 1, remove_for_recovery = 2 };
enum class LogoutResponse : uint8_t { success = 0, cid_not_found = 1, recovery_unsupported = 2, cleanup_failed = 3 };

// SCSI Response "Response" field (§11.4.3).
enum class ScsiResponse : uint8_t { completed = 0x00, target_failure = 0x01 };

// Login stages (CSG/NSG, §11.12.3).
enum class Stage : uint8_t { security = 0, operational = 1, reserved = 2, full_feature = 3 };

constexpr uint32_t kReservedTag = 0xffffffffu;  // ITT/TTT "no tag"
constexpr uint32_t kMaxDataSegmentLength = (1u << 24) - 1;

// Data segments are padded to a 4-byte boundary on the wire (§11.2).
constexpr uint32_t pad_len(uint32_t n) { return (4 - (n & 3)) & 3; }
constexpr uint32_t padded(uint32_t n) { return (n + 3) & ~3u; }

// Serial number arithmetic, RFC 1982 with SERIAL_BITS = 32 (CmdSN, StatSN,
// DataSN, R2TSN). Pairs exactly 2^31 apart are undefined; both sn_lt and
// sn_gt return false for them so neither side wins.
constexpr bool sn_lt(uint32_t a, uint32_t b) {
  return a != b && (b - a) < 0x80000000u;
}
constexpr bool sn_gt(uint32_t a, uint32_t b) {
  return a != b && (a - b) < 0x80000000u;
}
constexpr bool sn_le(uint32_t a, uint32_t b) { return a == b || sn_lt(a, b); }
constexpr bool sn_ge(uint32_t a, uint32_t b) { return a == b || sn_gt(a, b); }

// The Basic Header Segment. Field names follow RFC 7143; where opcodes put
// different fields at one offset, each has its own accessor (cmd_sn/stat_sn
// both live at 24). Byte 1 flags: see the kF* masks.
struct Bhs {
  uint8_t b[48];

  // --- raw big-endian access (offset in bytes)
  uint8_t u8(unsigned o) const { return b[o]; }
  uint16_t u16(unsigned o) const { return be16(b + o); }
  uint32_t u24(unsigned o) const { return be24(b + o); }
  uint32_t u32(unsigned o) const { return be32(b + o); }
  uint64_t u64(unsigned o) const { return be64(b + o); }
  void set8(unsigned o, uint8_t v) { b[o] = v; }
  void set16(unsigned o, uint16_t v) { put16(b + o, v); }
  void set24(unsigned o, uint32_t v) { put24(b + o, v); }
  void set32(unsigned o, uint32_t v) { put32(b + o, v); }
  void set64(unsigned o, uint64_t v) { put64(b + o, v); }
  void clear() { std::memset(b, 0, sizeof b); }

  // --- byte 0..7: common to every PDU
  Op opcode() const { return Op(b[0] & 0x3f); }
  uint8_t raw_opcode() const { return b[0] & 0x3f; }
  bool immediate() const { return b[0] & 0x40; }
  uint8_t flags() const { return b[1]; }
  bool final() const { return b[1] & kF; }
  uint32_t ahs_len() const { return uint32_t(b[4]) * 4; }  // bytes
  uint32_t data_len() const { return u24(5); }           // DataSegmentLength
  void set_opcode(Op op, bool imm = false) { b[0] = uint8_t(uint8_t(op) | (imm ? 0x40 : 0)); }
  void set_flags(uint8_t f) { b[1] = f; }
  void set_data_len(uint32_t n) { set24(5, n); }
  void set_ahs_words(uint8_t w) { b[4] = w; }

  // --- bytes 8..47: per-opcode fields
  uint64_t lun() const { return u64(8); }
  void set_lun(uint64_t v) { set64(8, v); }
  uint32_t itt() const { return u32(16); }
  void set_itt(uint32_t v) { set32(16, v); }
  uint32_t ttt() const { return u32(20); }  // NOP, Data-Out/In, R2T, Text, SNACK
  void set_ttt(uint32_t v) { set32(20, v); }
  // requests
  uint32_t cmd_sn() const { return u32(24); }
  uint32_t exp_stat_sn() const { return u32(28); }
  // responses
  uint32_t stat_sn() const { return u32(24); }
  uint32_t exp_cmd_sn() const { return u32(28); }
  uint32_t max_cmd_sn() const { return u32(32); }
  // SCSI Command (§11.3)
  bool read() const { return b[1] & kR; }
  bool write() const { return b[1] & kW; }
  uint8_t task_attr() const { return b[1] & 0x07; }
  uint32_t edtl() const { return u32(20); }  // Expected Data Transfer Length
  const uint8_t* cdb() const { return b + 32; }  // 16 bytes
  // Data-Out / Data-In / R2T / SNACK
  uint32_t data_sn() const { return u32(36); }  // also R2TSN, ExpDataSN
  uint32_t buffer_offset() const { return u32(40); }
  uint32_t desired_len() const { return u32(44); }  // R2T
  uint32_t residual() const { return u32(44); }     // SCSI Response, Data-In
  // Task Management Request (§11.5)
  TmfFunc tmf_function() const { return TmfFunc(b[1] & 0x7f); }
  uint32_t ref_task_tag() const { return u32(20); }
  uint32_t ref_cmd_sn() const { return u32(32); }
  uint32_t exp_data_sn() const { return u32(36); }
  // Login / Text (§11.10, §11.12)
  bool transit() const { return b[1] & kT; }
  bool cont() const { return b[1] & kC; }  // Continue, Login and Text
  Stage csg() const { return Stage((b[1] >> 2) & 3); }
  Stage nsg() const { return Stage(b[1] & 3); }
  uint8_t version_max() const { return b[2]; }
  uint8_t version_min() const { return b[3]; }  // Version-active in responses
  uint64_t isid() const { return (uint64_t(u16(8)) << 32) | u32(10); }  // 48 bits
  uint16_t tsih() const { return u16(14); }
  uint16_t cid() const { return u16(20); }  // Login, Logout
  uint8_t status_class() const { return b[36]; }
  uint8_t status_detail() const { return b[37]; }
  // Logout (§11.14)
  LogoutReason logout_reason() const { return LogoutReason(b[1] & 0x7f); }
  // SNACK (§11.16)
  uint8_t snack_type() const { return b[1] & 0x0f; }
  uint32_t beg_run() const { return u32(40); }
  uint32_t run_length() const { return u32(44); }
  // Response-side single bytes
  uint8_t response() const { return b[2]; }
  uint8_t status() const { return b[3]; }
  uint8_t reject_reason() const { return b[2]; }

  // Byte 1 flag masks.
  static constexpr uint8_t kF = 0x80;  // Final
  static constexpr uint8_t kR = 0x40;  // SCSI Cmd: read
  static constexpr uint8_t kW = 0x20;  // SCSI Cmd: write
  static constexpr uint8_t kT = 0x80;  // Login: transit
  static constexpr uint8_t kC = 0x40;  // Login/Text: continue
  static constexpr uint8_t kA = 0x40;  // Data-In: acknowledge
  // Residual flags: SCSI Response bidi overflow/underflow, then
  // (SCSI Response and Data-In) residual Overflow/Underflow.
  static constexpr uint8_t kBidiO = 0x10;
  static constexpr uint8_t kBidiU = 0x08;
  static constexpr uint8_t kO = 0x04;
  static constexpr uint8_t kU = 0x02;
  static constexpr uint8_t kS = 0x01;  // Data-In: status included
};
static_assert(sizeof(Bhs) == 48);

// The three sequence numbers every target response carries.
struct SeqNums {
  uint32_t stat_sn = 0;
  uint32_t exp_cmd_sn = 0;
  uint32_t max_cmd_sn = 0;
};

// Residual accounting for SCSI Response / final Data-In (§11.4.5.2):
// overflow when the command wanted more than EDTL, underflow when less.
struct Residual {
  enum Kind : uint8_t { none, under, over } kind = none;
  uint32_t count = 0;
  // The residual of transferring `actual` bytes where `expected` were announced.
  static Residual of(uint32_t expected, uint32_t actual) {
    if (actual < expected) return {under, expected - actual};
    if (actual > expected) return {over, actual - expected};
    return {};
  }
};

// ---- builders: each zeroes the BHS and fills one target PDU's header.
// data_len is the DataSegmentLength to announce (unpadded).

// SCSI Response. data_len covers the 2-byte SenseLength + sense bytes (0 if
// none). bidi is the bidirectional read residual (usually none).
void build_scsi_response(Bhs& h, uint32_t itt, ScsiResponse resp, uint8_t status, const SeqNums& sn,
                         uint32_t exp_data_sn, Residual res, uint32_t data_len, Residual bidi = {});

struct DataInFields {
  uint64_t lun = 0;  // only meaningful with the A bit; carried anyway
  uint32_t itt = 0;
  uint32_t ttt = kReservedTag;
  uint32_t data_sn = 0;
  uint32_t offset = 0;  // Buffer Offset
  uint32_t len = 0;     // DataSegmentLength
  bool final = false;
  bool with_status = false;  // S bit: final PDU also carries status (requires final)
  uint8_t status = 0;
  Residual res{};            // only with status
  bool ack = false;          // A bit (ERL>0 only)
};
// Data-In. StatSN is only meaningful with the S bit; ExpCmdSN/MaxCmdSN always.
void build_data_in(Bhs& h, const DataInFields& f, const SeqNums& sn);

// R2T asking for [offset, offset+len) of the command's data.
void build_r2t(Bhs& h, uint64_t lun, uint32_t itt, uint32_t ttt, uint32_t r2t_sn, uint32_t offset, uint32_t len,
               const SeqNums& sn);

// NOP-In: answering a NOP-Out (itt = its ITT, ttt = kReservedTag) or a
// target-initiated ping (itt = kReservedTag, ttt = ours).
void build_nop_in(Bhs& h, uint64_t lun, uint32_t itt, uint32_t ttt, const SeqNums& sn, uint32_t data_len);

// Reject: the data segment is the rejected PDU's 48-byte header, so
// DataSegmentLength is 48. data_sn is the DataSN/R2TSN for data/SNACK
// rejects (0 otherwise).
void build_reject(Bhs& h, RejectReason reason, const SeqNums& sn, uint32_t data_sn = 0);

void build_tmf_response(Bhs& h, uint32_t itt, TmfResponse resp, const SeqNums& sn);

struct LoginRspFields {
  bool transit = false;
  bool cont = false;
  Stage csg = Stage::security;
  Stage nsg = Stage::security;  // only meaningful with transit
  uint8_t version_max = 0;
  uint8_t version_active = 0;
  uint64_t isid = 0;
  uint16_t tsih = 0;
  uint32_t itt = 0;
  uint8_t status_class = 0;
  uint8_t status_detail = 0;
  uint32_t data_len = 0;
};
void build_login_response(Bhs& h, const LoginRspFields& f, const SeqNums& sn);

// Text Response: final (F) and cont (C) are mutually exclusive on the wire.
// ttt is kReservedTag on the final PDU, a live tag while more follows.
void build_text_response(Bhs& h, uint64_t lun, uint32_t itt, uint32_t ttt, bool final, bool cont, const SeqNums& sn,
                         uint32_t data_len);

void build_logout_response(Bhs& h, uint32_t itt, LogoutResponse resp, const SeqNums& sn, uint16_t time2wait = 0,
                           uint16_t time2retain = 0);

// Asynchronous Message (§11.9): event codes 0..4, 255 vendor.
void build_async(Bhs& h, uint64_t lun, uint8_t event, uint8_t vcode, const SeqNums& sn, uint16_t p1, uint16_t p2,
                 uint16_t p3, uint32_t data_len);

// ---- validation of initiator headers (before any allocation).

struct BhsLimits {
  uint32_t max_recv_data_segment_length = 8192;  // ours, declared at login
  bool full_feature = true;  // false during login: only Login Requests are valid
};

// Per-PDU hot path, budget: one switch on the opcode and a handful of
// compares on the 48 bytes already in cache; no other memory touched.
// Structural checks of a received BHS that need no session state: a known
// initiator opcode, AHS only where allowed (SCSI Command), data segments
// only where allowed and within our MaxRecvDataSegmentLength, the F bit on
// single-PDU requests, R/W consistent with EDTL. Returns RejectReason::none
// when the header is acceptable; the caller then sends build_reject() with
// the reason (or, during login, drops the connection as §6.2 allows).
RejectReason validate_initiator_bhs(const Bhs& h, const BhsLimits& lim);

// True for opcodes an initiator may send.
bool is_initiator_opcode(uint8_t op);

// ---- SCSI Response sense data: data segment = SenseLength(2) + sense.
// Writes the 2-byte length prefix; returns the data segment length.
inline uint32_t put_sense_length(uint8_t* out, uint16_t sense_len) {
  put16(out, sense_len);
  return 2u + sense_len;
}

}  // namespace sgv::iscsi
