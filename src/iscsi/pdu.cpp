// iscsi/pdu.cpp - builders for target PDU headers and structural validation
// of initiator headers (RFC 7143 §11). Field offsets are the RFC's figures.
#include "iscsi/pdu.hpp"

namespace sgv::iscsi {
namespace {

void put_seq(Bhs& h, const SeqNums& sn) {
  h.set32(24, sn.stat_sn);
  h.set32(28, sn.exp_cmd_sn);
  h.set32(32, sn.max_cmd_sn);
}

uint8_t residual_flags(Residual r, uint8_t over, uint8_t under) {
  switch (r.kind) {
    case Residual::over: return over;
    case Residual::under: return under;
    case Residual::none: break;
  }
  return 0;
}

}  // namespace

void build_scsi_response(Bhs& h, uint32_t itt, ScsiResponse resp, uint8_t status, const SeqNums& sn,
                         uint32_t exp_data_sn, Residual res, uint32_t data_len, Residual bidi) {
  h.clear();
  h.set_opcode(Op::scsi_rsp);
  h.set_flags(uint8_t(Bhs::kF | residual_flags(bidi, Bhs::kBidiO, Bhs::kBidiU) |
                      residual_flags(res, Bhs::kO, Bhs::kU)));
  h.set8(2, uint8_t(resp));
  h.set8(3, status);
  h.set_data_len(data_len);
  h.set_itt(itt);
  put_seq(h, sn);
  h.set32(36, exp_data_sn);
  h.set32(40, bidi.kind == Residual::none ? 0 : bidi.count);
  h.set32(44, res.kind == Residual::none ? 0 : res.count);
}

void build_data_in(Bhs& h, const DataInFields& f, const SeqNums& sn) {
  h.clear();
  h.set_opcode(Op::data_in);
  uint8_t fl = 0;
  if (f.final) fl |= Bhs::kF;
  if (f.ack) fl |= Bhs::kA;
  if (f.with_status) {
    // §11.7.1: S may only be set together with F.
    fl |= Bhs::kS | Bhs::kF;
    fl |= residual_flags(f.res, Bhs::kO, Bhs::kU);
    h.set8(3, f.status);
  }
  h.set_flags(fl);
  h.set_data_len(f.len);
  h.set_lun(f.lun);
  h.set_itt(f.itt);
  h.set_ttt(f.ttt);
  // StatSN is reserved unless S is set; ExpCmdSN/MaxCmdSN always valid.
  h.set32(24, f.with_status ? sn.stat_sn : 0);
  h.set32(28, sn.exp_cmd_sn);
  h.set32(32, sn.max_cmd_sn);
  h.set32(36, f.data_sn);
  h.set32(40, f.offset);
  h.set32(44, f.with_status && f.res.kind != Residual::none ? f.res.count : 0);
}

void build_r2t(Bhs& h, uint64_t lun, uint32_t itt, uint32_t ttt, uint32_t r2t_sn, uint32_t offset, uint32_t len,
               const SeqNums& sn) {
  h.clear();
  h.set_opcode(Op::r2t);
  h.set_flags(Bhs::kF);
  h.set_lun(lun);
  h.set_itt(itt);
  h.set_ttt(ttt);
  put_seq(h, sn);
  h.set32(36, r2t_sn);
  h.set32(40, offset);
  h.set32(44, len);
}

void build_nop_in(Bhs& h, uint64_t lun, uint32_t itt, uint32_t ttt, const SeqNums& sn, uint32_t data_len) {
  h.clear();
  h.set_opcode(Op::nop_in);
  h.set_flags(Bhs::kF);
  h.set_data_len(data_len);
  h.set_lun(lun);
  h.set_itt(itt);
  h.set_ttt(ttt);
  put_seq(h, sn);
}

void build_reject(Bhs& h, RejectReason reason, const SeqNums& sn, uint32_t data_sn) {
  h.clear();
  h.set_opcode(Op::reject);
  h.set_flags(Bhs::kF);
  h.set8(2, uint8_t(reason));
  h.set_data_len(48);
  h.set_itt(kReservedTag);
  put_seq(h, sn);
  h.set32(36, data_sn);
}

void build_tmf_response(Bhs& h, uint32_t itt, TmfResponse resp, const SeqNums& sn) {
  h.clear();
  h.set_opcode(Op::tmf_rsp);
  h.set_flags(Bhs::kF);
  h.set8(2, uint8_t(resp));
  h.set_itt(itt);
  put_seq(h, sn);
}

void build_login_response(Bhs& h, const LoginRspFields& f, const SeqNums& sn) {
  h.clear();
  h.set_opcode(Op::login_rsp);
  uint8_t fl = uint8_t((uint8_t(f.csg) & 3) << 2);
  if (f.transit) fl |= uint8_t(Bhs::kT | (uint8_t(f.nsg) & 3));
  if (f.cont) fl |= Bhs::kC;
  h.set_flags(fl);
  h.set8(2, f.version_max);
  h.set8(3, f.version_active);
  h.set_data_len(f.data_len);
  h.set16(8, uint16_t(f.isid >> 32));
  h.set32(10, uint32_t(f.isid));
  h.set16(14, f.tsih);
  h.set_itt(f.itt);
  put_seq(h, sn);
  h.set8(36, f.status_class);
  h.set8(37, f.status_detail);
}

void build_text_response(Bhs& h, uint64_t lun, uint32_t itt, uint32_t ttt, bool final, bool cont, const SeqNums& sn,
                         uint32_t data_len) {
  h.clear();
  h.set_opcode(Op::text_rsp);
  h.set_flags(uint8_t((final ? Bhs::kF : 0) | (cont ? Bhs::kC : 0)));
  h.set_data_len(data_len);
  h.set_lun(lun);
  h.set_itt(itt);
  h.set_ttt(ttt);
  put_seq(h, sn);
}

void build_logout_response(Bhs& h, uint32_t itt, LogoutResponse resp, const SeqNums& sn, uint16_t time2wait,
                           uint16_t time2retain) {
  h.clear();
  h.set_opcode(Op::logout_rsp);
  h.set_flags(Bhs::kF);
  h.set8(2, uint8_t(resp));
  h.set_itt(itt);
  put_seq(h, sn);
  h.set16(40, time2wait);
  h.set16(42, time2retain);
}

void build_async(Bhs& h, uint64_t lun, uint8_t event, uint8_t vcode, const SeqNums& sn, uint16_t p1, uint16_t p2,
                 uint16_t p3, uint32_t data_len) {
  h.clear();
  h.set_opcode(Op::async);
  h.set_flags(Bhs::kF);
  h.set_data_len(data_len);
  h.set_lun(lun);
  h.set_itt(kReservedTag);
  put_seq(h, sn);
  h.set8(36, event);
  h.set8(37, vcode);
  h.set16(38, p1);
  h.set16(40, p2);
  h.set16(42, p3);
}

bool is_initiator_opcode(uint8_t op) {
  switch (Op(op)) {
    case Op::nop_out:
    case Op::scsi_cmd:
    case Op::tmf_req:
    case Op::login_req:
    case Op::text_req:
    case Op::data_out:
    case Op::logout_req:
    case Op::snack:
      return true;
    default:
      return false;
  }
}

RejectReason validate_initiator_bhs(const Bhs& h, const BhsLimits& lim) {
  const uint8_t raw = h.raw_opcode();
  if (!is_initiator_opcode(raw)) return RejectReason::cmd_not_supported;
  const Op op = Op(raw);
  // Login Requests belong to the login phase and nothing else does.
  if ((op == Op::login_req) == lim.full_feature) return RejectReason::protocol_error;
  // Only SCSI Command defines AHS (extended CDB, bidi read length).
  if (h.ahs_len() != 0 && op != Op::scsi_cmd) return RejectReason::protocol_error;
  const uint32_t dlen = h.data_len();
  if (dlen > lim.max_recv_data_segment_length) return RejectReason::protocol_error;
  switch (op) {
    case Op::tmf_req:
    case Op::logout_req:
    case Op::snack:
      if (dlen != 0) return RejectReason::protocol_error;
      if (!h.final()) return RejectReason::protocol_error;
      break;
    case Op::nop_out:
      if (!h.final()) return RejectReason::protocol_error;
      // A NOP-Out with neither a task tag of its own nor an answer to ours
      // is meaningless (§11.18.1, §11.18.3).
      if (h.itt() == kReservedTag && h.ttt() == kReservedTag) return RejectReason::protocol_error;
      break;
    case Op::text_req:
    case Op::login_req:
      // §11.10.2 / §11.12.2: C=1 requires F(T)=0.
      if (h.cont() && h.final()) return RejectReason::protocol_error;
      break;
    case Op::scsi_cmd:
      // Immediate data only on writes; a non-transfer command has EDTL 0.
      if (dlen != 0 && !h.write()) return RejectReason::protocol_error;
      if (!h.read() && !h.write() && h.edtl() != 0) return RejectReason::invalid_pdu_field;
      if (h.ahs_len() > 255 * 4) return RejectReason::protocol_error;
      break;
    case Op::data_out:
      if (h.immediate()) return RejectReason::protocol_error;
      break;
    default:
      break;
  }
  return RejectReason::none;
}

}  // namespace sgv::iscsi
