// fuzz/pdu_fuzz.cpp - the BHS codec: validation of arbitrary initiator
// headers, accessor/builder round trips with fuzzed field values, and the
// RFC 1982 comparisons' antisymmetry.
#include <cstdlib>
#include <cstring>

#include "iscsi/crc32c.hpp"
#include "iscsi/pdu.hpp"

using namespace sgv::iscsi;

static void check(bool ok) {
  if (!ok) abort();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bhs h;
  std::memset(h.b, 0, sizeof h.b);
  std::memcpy(h.b, data, size < 48 ? size : 48);

  BhsLimits ffp{uint32_t(8192 + (h.b[47] << 4)), true};
  BhsLimits login{8192, false};
  RejectReason r1 = validate_initiator_bhs(h, ffp);
  RejectReason r2 = validate_initiator_bhs(h, login);
  if (!is_initiator_opcode(h.raw_opcode())) {
    check(r1 == RejectReason::cmd_not_supported && r2 == RejectReason::cmd_not_supported);
  } else {
    // Exactly one phase accepts Login Requests; nothing else in login.
    check(h.opcode() == Op::login_req ? r1 != RejectReason::none : r2 != RejectReason::none);
  }
  if (r1 == RejectReason::none) {
    check(h.data_len() <= ffp.max_recv_data_segment_length);
    check(h.ahs_len() == 0 || h.opcode() == Op::scsi_cmd);
  }

  const SeqNums sn{h.u32(24), h.u32(28), h.u32(32)};
  Bhs o;
  DataInFields f;
  f.lun = h.lun();
  f.itt = h.itt();
  f.ttt = h.ttt();
  f.data_sn = h.u32(36);
  f.offset = h.u32(40);
  f.len = h.data_len();
  f.final = h.b[1] & 1;
  f.with_status = h.b[1] & 2;
  f.status = h.b[3];
  f.res = Residual::of(h.u32(40), h.u32(44));
  build_data_in(o, f, sn);
  check(o.opcode() == Op::data_in && o.itt() == f.itt && o.data_sn() == f.data_sn && o.buffer_offset() == f.offset);
  check(o.data_len() == f.len && o.exp_cmd_sn() == sn.exp_cmd_sn && o.max_cmd_sn() == sn.max_cmd_sn);
  if (f.with_status) {
    check(o.final() && o.stat_sn() == sn.stat_sn && o.status() == f.status);
    check(!((o.flags() & Bhs::kO) && (o.flags() & Bhs::kU)));
    check(o.residual() == (f.res.kind == Residual::none ? 0 : f.res.count));
  }

  Residual res = Residual::of(h.u32(36), h.u32(44));
  build_scsi_response(o, h.itt(), ScsiResponse(h.b[2] & 1), h.b[3], sn, h.u32(36), res, h.data_len());
  check(o.opcode() == Op::scsi_rsp && o.final() && o.status() == h.b[3] && o.data_len() == h.data_len());
  check(o.residual() == res.count);

  build_r2t(o, h.lun(), h.itt(), h.ttt(), h.u32(36), h.u32(40), h.u32(44), sn);
  check(o.lun() == h.lun() && o.ttt() == h.ttt() && o.data_sn() == h.u32(36) && o.desired_len() == h.u32(44));

  LoginRspFields lf;
  lf.transit = h.b[1] & 0x80;
  lf.cont = h.b[1] & 0x40;
  lf.csg = Stage((h.b[1] >> 2) & 3);
  lf.nsg = Stage(h.b[1] & 3);
  lf.isid = h.isid();
  lf.tsih = h.tsih();
  lf.itt = h.itt();
  lf.status_class = h.b[36];
  lf.status_detail = h.b[37];
  lf.data_len = h.data_len();
  build_login_response(o, lf, sn);
  check(o.isid() == h.isid() && o.tsih() == h.tsih() && o.csg() == lf.csg && o.cont() == lf.cont);
  check(o.status_class() == h.b[36] && o.status_detail() == h.b[37]);

  build_reject(o, RejectReason(h.b[2]), sn, h.u32(36));
  check(o.opcode() == Op::reject && o.data_len() == 48 && o.itt() == kReservedTag);

  const uint32_t a = h.u32(24), b = h.u32(28);
  check(!(sn_lt(a, b) && sn_lt(b, a)));
  check(sn_lt(a, b) == sn_gt(b, a));
  check(sn_le(a, a) && !sn_lt(a, a));
  check(padded(h.data_len()) % 4 == 0 && padded(h.data_len()) - h.data_len() == pad_len(h.data_len()));

  // Both CRC32C implementations agree on arbitrary bytes.
  check(crc32c(data, size) == crc32c_final(crc32c_update_table(kCrc32cInit, data, size)));
  return 0;
}
