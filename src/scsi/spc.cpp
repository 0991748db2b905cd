// scsi/spc.cpp - SPC-4 commands every device type shares: INQUIRY and its
// VPD pages, REPORT LUNS, REQUEST SENSE, TEST UNIT READY, MODE SENSE/SELECT,
// START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, REPORT SUPPORTED OPERATION
// CODES. None of these is on the data path; responses are built on the stack.
#include <algorithm>
#include <cstdio>

#include "scsi/core.hpp"

namespace sgv::scsi {
namespace {

constexpr const char kVendor[] = "SGV     ";
constexpr const char kRevision[] = "0001";

void pad(uint8_t* dst, const std::string& s, size_t n) {
  std::memset(dst, ' ', n);
  std::memcpy(dst, s.data(), std::min(s.size(), n));
}

// Copies a response at offset off of the data-in buffer (for responses built
// in pieces, like REPORT LUNS with thousands of LUNs).
void put_at(Task& t, uint32_t off, const void* src, uint32_t len) {
  uint32_t lim = t.data_len;
  if (off >= lim) return;
  len = std::min(len, lim - off);
  t.xfer_len = std::max(t.xfer_len, off + len);  // produced, whatever the buffer holds
  const uint8_t* p = static_cast<const uint8_t*>(src);
  uint32_t pos = 0;
  for (unsigned i = 0; i < t.nsegs && len; ++i) {
    uint32_t sl = uint32_t(t.segs[i].len);
    if (off < pos + sl) {
      uint32_t from = off - pos;
      uint32_t k = std::min(sl - from, len);
      std::memcpy(static_cast<uint8_t*>(t.segs[i].addr) + from, p, k);
      p += k;
      off += k;
      len -= k;
    }
    pos += sl;
  }
}

unsigned inquiry_standard(const Target::Impl&, const Lun* l, uint8_t* b) {
  std::memset(b, 0, 96);
  b[0] = l ? 0x00 : 0x7f;  // direct access block device, or "no LUN here"
  b[2] = 0x06;             // SPC-4
  b[3] = 0x12;             // HISUP, response data format 2
  b[4] = 96 - 5;
  b[7] = 0x02;             // CMDQUE
  std::memcpy(b + 8, kVendor, 8);
  pad(b + 16, l ? l->product : std::string("sgv"), 16);
  std::memcpy(b + 32, kRevision, 4);
  static const uint16_t kVersions[] = {0x00a0 /* SAM-5 */, 0x0960 /* iSCSI */, 0x0460 /* SPC-4 */,
                                       0x04c0 /* SBC-3 */};
  for (unsigned i = 0; i < 4; ++i) put16(b + 58 + 2 * i, kVersions[i]);
  return 96;
}

unsigned vpd_device_id(const Target::Impl& im, const Lun* l, uint8_t* b) {
  unsigned n = 4;
  // NAA locally assigned (type 3): stable hash of target name and LUN id.
  uint8_t* d = b + n;
  d[0] = 0x01;  // binary
  d[1] = 0x03;  // association: LUN, designator type: NAA
  d[2] = 0;
  d[3] = 8;
  put64(d + 4, (uint64_t(3) << 60) | (l->naa & 0x0fffffffffffffffull));
  n += 12;
  // T10 vendor identification: vendor + unit serial number.
  d = b + n;
  d[0] = 0x02;  // ASCII
  d[1] = 0x01;  // LUN, T10 vendor ID
  std::memcpy(d + 4, kVendor, 8);
  unsigned sl = unsigned(std::min<size_t>(l->serial.size(), 32));
  std::memcpy(d + 12, l->serial.data(), sl);
  d[3] = uint8_t(8 + sl);
  n += 4 + 8 + sl;
  // Relative target port (PIV, protocol iSCSI).
  d = b + n;
  d[0] = 0x51;  // protocol iSCSI, binary
  d[1] = 0x94;  // PIV, association target port, relative target port
  d[3] = 4;
  put16(d + 6, 1);
  n += 8;
  // SCSI name strings (UTF-8, NUL-terminated, padded to 4): the target port
  // ("<iqn>,t,0x0001") and the target device (the iSCSI name).
  for (int dev = 0; dev < 2; ++dev) {
    d = b + n;
    d[0] = 0x53;                      // protocol iSCSI, UTF-8
    d[1] = dev ? 0xa8 : 0x98;         // PIV, target device / target port, SCSI name string
    std::string nm = im.name.substr(0, 200) + (dev ? "" : ",t,0x0001");
    unsigned nl = unsigned(nm.size());
    unsigned padded = (nl + 1 + 3) & ~3u;
    std::memset(d + 4, 0, padded);
    std::memcpy(d + 4, nm.data(), nl);
    d[3] = uint8_t(padded);
    d[2] = 0;
    n += 4 + padded;
  }
  b[1] = 0x83;
  put16(b + 2, uint16_t(n - 4));
  return n;
}

unsigned vpd_block_limits(const Target::Impl& im, const Lun* l, uint8_t* b) {
  std::memset(b, 0, 64);
  b[1] = 0xb0;
  put16(b + 2, 0x3c);
  b[4] = 0x01;  // WSNZ: a zero-length WRITE SAME is refused, never "to the end"
  b[5] = uint8_t(max_compare_write_blocks(im, *l));
  put16(b + 6, uint16_t(l->bs < 4096 ? 4096 / l->bs : 1));  // optimal granularity: an OS page
  put32(b + 8, im.limits.max_xfer_bytes >> l->bs_shift);
  put32(b + 12, im.limits.opt_xfer_bytes >> l->bs_shift);
  if (l->thin) {
    put32(b + 20, kMaxUnmapBlocks);
    put32(b + 24, kMaxUnmapDescs);
    put32(b + 28, 4096 >> l->bs_shift);
  }
  put64(b + 36, kMaxWriteSameBlocks);
  return 64;
}

unsigned vpd(const Target::Impl& im, const Lun* l, uint8_t page, uint8_t* b) {
  std::memset(b, 0, 8);
  b[0] = 0x00;
  b[1] = page;
  switch (page) {
    case 0x00: {
      static const uint8_t kPages[] = {0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2};
      std::memcpy(b + 4, kPages, sizeof kPages);
      b[3] = sizeof kPages;
      return 4 + sizeof kPages;
    }
    case 0x80: {
      unsigned sl = unsigned(l->serial.size());
      std::memcpy(b + 4, l->serial.data(), sl);
      b[3] = uint8_t(sl);
      return 4 + sl;
    }
    case 0x83:
      return vpd_device_id(im, l, b);
    case 0xb0:
      return vpd_block_limits(im, l, b);
    case 0xb1:
      std::memset(b, 0, 64);
      b[1] = 0xb1;
      put16(b + 2, 0x3c);
      put16(b + 4, 0x0001);  // non-rotating medium
      return 64;
    case 0xb2:
      b[3] = 4;
      if (l->thin) {
        b[5] = 0x80 | 0x40 | 0x20 | 0x04;  // LBPU, LBPWS, LBPWS10, LBPRZ
        b[6] = 0x02;                       // thin provisioned
      }
      return 8;
    default:
      return 0;
  }
}

}  // namespace

bool prep_tur(Target::Impl&, Task& t) { return good(t); }

bool prep_inquiry(Target::Impl&, Task& t) {
  bool evpd = t.cdb[1] & 0x01;
  if (t.cdb[1] & 0x02) return invalid_cdb(t, 1, 1);  // CMDDT is obsolete
  if (!evpd && t.cdb[2]) return invalid_cdb(t, 2);
  if (evpd && lun_of(t)) {
    switch (t.cdb[2]) {
      case 0x00: case 0x80: case 0x83: case 0xb0: case 0xb1: case 0xb2: break;
      default: return invalid_cdb(t, 2);
    }
  }
  return need_data(t, Dir::in, be16(t.cdb + 3));
}

void exec_inquiry(Target::Impl& im, Task& t) {
  uint8_t b[1024];
  Lun* l = lun_of(t);
  unsigned n;
  if (!(t.cdb[1] & 0x01)) {
    n = inquiry_standard(im, l, b);
  } else if (!l) {
    std::memset(b, 0, 4);
    b[0] = 0x7f;
    b[1] = t.cdb[2];
    n = 4;
  } else {
    n = vpd(im, l, t.cdb[2], b);
  }
  put_data(t, b, n);
  finish(t);
}

bool prep_report_luns(Target::Impl&, Task& t) {
  uint8_t sel = t.cdb[2];
  if (sel > 2) return invalid_cdb(t, 2);
  uint32_t alloc = be32(t.cdb + 6);
  if (alloc < 16) return invalid_cdb(t, 6);
  return need_data(t, Dir::in, alloc);
}

void exec_report_luns(Target::Impl& im, Task& t) {
  std::vector<uint64_t> ids;  // management-style command: allocation is fine here
  if (t.cdb[2] != 1) im.lun_ids(ids);  // select 1: well-known LUNs only, we have none
  // The initiator now has the new inventory (SPC-4: REPORT LUNS clears it).
  if (t.nexus && t.nexus->ua_pending.load(std::memory_order_acquire)) im.clear_ua(t.nexus, asc::luns_changed);
  uint8_t h[8] = {};
  put32(h, uint32_t(ids.size() * 8));
  put_at(t, 0, h, 8);
  uint32_t off = 8;
  for (uint64_t id : ids) {
    uint8_t e[8];
    lun_to_wire(encode_lun(id), e);
    put_at(t, off, e, 8);
    off += 8;
    if (off >= t.data_len) break;
  }
  finish(t);
}

bool prep_request_sense(Target::Impl&, Task& t) { return need_data(t, Dir::in, t.cdb[4]); }

void exec_request_sense(Target::Impl& im, Task& t) {
  uint8_t b[32];
  bool desc = t.cdb[1] & 0x01;
  Lun* l = lun_of(t);
  unsigned n;
  Asc a;
  if (!l) {
    n = build_sense(b, desc, sk::illegal_request, asc::lun_not_supported);
  } else if (t.nexus && t.nexus->ua_pending.load(std::memory_order_acquire) &&
             im.take_ua(t.nexus, l->id, &a)) {
    // Reporting a unit attention through REQUEST SENSE clears it (SAM-5).
    n = build_sense(b, desc, sk::unit_attention, a);
  } else {
    n = build_sense(b, desc, sk::no_sense, asc::no_info);
  }
  put_data(t, b, n);
  finish(t);
}

bool prep_start_stop(Target::Impl&, Task& t) {
  // Power conditions are accepted and have no effect: the medium is always on.
  return good(t);
}

bool prep_prevent_allow(Target::Impl&, Task& t) { return good(t); }

// ---- MODE SENSE / MODE SELECT

namespace {

constexpr uint8_t kCachingLen = 20, kControlLen = 12, kIecLen = 12;

enum class Pc { current = 0, changeable = 1, defaults = 2 };

unsigned page_caching(const Lun& l, const ModeState& m, Pc pc, uint8_t* p) {
  std::memset(p, 0, kCachingLen);
  p[0] = 0x08;
  p[1] = kCachingLen - 2;
  if (pc == Pc::changeable) {
    p[2] = 0x04;  // WCE
  } else if (pc == Pc::defaults) {
    p[2] = l.be->volatile_cache() ? 0x04 : 0;
  } else {
    p[2] = uint8_t((m.wce ? 0x04 : 0) | (m.rcd ? 0x01 : 0));
  }
  return kCachingLen;
}

unsigned page_control(const ModeState& m, Pc pc, uint8_t* p) {
  std::memset(p, 0, kControlLen);
  p[0] = 0x0a;
  p[1] = kControlLen - 2;
  if (pc == Pc::changeable) {
    p[2] = 0x04;  // D_SENSE
    p[4] = 0x08;  // SWP
    return kControlLen;
  }
  bool cur = pc == Pc::current;
  p[2] = uint8_t(cur && m.d_sense ? 0x04 : 0);
  p[3] = 0x10;  // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering
  p[4] = uint8_t(cur && m.swp ? 0x08 : 0);
  put16(p + 8, 0xffff);  // busy timeout period: unlimited
  return kControlLen;
}

unsigned page_iec(const ModeState& m, Pc pc, uint8_t* p) {
  std::memset(p, 0, kIecLen);
  p[0] = 0x1c;
  p[1] = kIecLen - 2;
  if (pc == Pc::changeable) return kIecLen;
  p[2] = uint8_t(m.dexcpt ? 0x08 : 0);
  p[3] = m.mrie;
  return kIecLen;
}

}  // namespace

bool prep_mode_sense(Target::Impl&, Task& t) {
  bool ten = t.cdb[0] == 0x5a;
  uint8_t pc = t.cdb[2] >> 6;
  uint8_t page = t.cdb[2] & 0x3f;
  uint8_t sub = t.cdb[3];
  if (pc == 3) return check(t, sk::illegal_request, asc::saving_not_supported);
  if (page != 0x08 && page != 0x0a && page != 0x1c && page != 0x3f) return invalid_cdb(t, 2, 5);
  if (sub != 0 && !(sub == 0xff && page == 0x3f)) return invalid_cdb(t, 3);
  return need_data(t, Dir::in, ten ? be16(t.cdb + 7) : t.cdb[4]);
}

void exec_mode_sense(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  bool ten = t.cdb[0] == 0x5a;
  bool dbd = t.cdb[1] & 0x08;
  bool llbaa = ten && (t.cdb[1] & 0x10);
  Pc pc = Pc(t.cdb[2] >> 6);
  uint8_t page = t.cdb[2] & 0x3f;
  ModeState m;
  {
    std::lock_guard<std::mutex> g(l.mode_mu);
    m = l.mode;
  }
  uint8_t b[256];
  std::memset(b, 0, sizeof b);
  unsigned hl = ten ? 8 : 4;
  unsigned n = hl;
  uint8_t devspec = uint8_t(0x10 | (l.write_protected() ? 0x80 : 0));  // DPOFUA, WP
  if (!dbd) {
    if (llbaa) {
      put64(b + n, l.nblocks);
      put32(b + n + 12, l.bs);
      n += 16;
    } else {
      put32(b + n, l.nblocks > 0xffffffffull ? 0xffffffffu : uint32_t(l.nblocks));
      put32(b + n + 4, l.bs);  // density code 0 in the top byte
      n += 8;
    }
  }
  unsigned bdl = n - hl;
  if (page == 0x08 || page == 0x3f) n += page_caching(l, m, pc, b + n);
  if (page == 0x0a || page == 0x3f) n += page_control(m, pc, b + n);
  if (page == 0x1c || page == 0x3f) n += page_iec(m, pc, b + n);
  if (ten) {
    put16(b, uint16_t(n - 2));
    b[3] = devspec;
    b[4] = llbaa && !dbd ? 0x01 : 0;
    put16(b + 6, uint16_t(bdl));
  } else {
    b[0] = uint8_t(n - 1);
    b[2] = devspec;
    b[3] = uint8_t(bdl);
  }
  put_data(t, b, n);
  finish(t);
}

bool prep_mode_select(Target::Impl&, Task& t) {
  bool ten = t.cdb[0] == 0x55;
  if (t.cdb[1] & 0x01) return invalid_cdb(t, 1, 0);  // SP: nothing can be saved
  uint32_t len = ten ? be16(t.cdb + 7) : t.cdb[4];
  if (len > 1024) return invalid_cdb(t, ten ? 7 : 4);
  return need_data(t, Dir::out, len);
}

void exec_mode_select(Target::Impl& im, Task& t) {
  Lun& l = *lun_of(t);
  bool ten = t.cdb[0] == 0x55;
  uint8_t b[1024];
  uint32_t len = get_data(t, 0, b, t.data_len);
  unsigned hl = ten ? 8 : 4;
  if (len < t.data_len || (len && len < hl)) {
    check(t, sk::illegal_request, asc::param_list_length);
    return finish(t);
  }
  if (len == 0) return finish(t);
  unsigned bdl = ten ? be16(b + 6) : b[3];
  bool llba = ten && (b[4] & 0x01);
  unsigned dl = llba ? 16 : 8;
  if (bdl % dl || hl + bdl > len) {
    invalid_param(t, ten ? 6 : 3);
    return finish(t);
  }
  for (unsigned off = hl; off < hl + bdl; off += dl) {
    uint32_t blen = llba ? be32(b + off + 12) : be24(b + off + 5);
    if (blen != l.bs) {
      invalid_param(t, uint16_t(off + (llba ? 12 : 5)));
      return finish(t);
    }
  }
  std::lock_guard<std::mutex> g(l.mode_mu);
  ModeState m = l.mode;
  for (unsigned off = hl + bdl; off < len;) {
    if (off + 2 > len) {
      check(t, sk::illegal_request, asc::param_list_length);
      return finish(t);
    }
    uint8_t* p = b + off;
    uint8_t code = p[0] & 0x3f;
    if (p[0] & 0x40) {  // SPF: we have no subpages
      invalid_param(t, uint16_t(off), 6);
      return finish(t);
    }
    unsigned plen = p[1] + 2u;
    if (off + plen > len) {
      check(t, sk::illegal_request, asc::param_list_length);
      return finish(t);
    }
    uint8_t cur[32], chg[32];
    unsigned want;
    switch (code) {
      case 0x08: want = page_caching(l, m, Pc::current, cur), page_caching(l, m, Pc::changeable, chg); break;
      case 0x0a: want = page_control(m, Pc::current, cur), page_control(m, Pc::changeable, chg); break;
      case 0x1c: want = page_iec(m, Pc::current, cur), page_iec(m, Pc::changeable, chg); break;
      default:
        invalid_param(t, uint16_t(off), 5);
        return finish(t);
    }
    if (plen != want) {
      invalid_param(t, uint16_t(off + 1));
      return finish(t);
    }
    // Bits that are not changeable must be sent back as they are.
    for (unsigned i = 2; i < plen; ++i) {
      if ((p[i] ^ cur[i]) & ~chg[i]) {
        invalid_param(t, uint16_t(off + i));
        return finish(t);
      }
    }
    if (code == 0x08) m.wce = p[2] & 0x04;
    if (code == 0x0a) {
      m.d_sense = p[2] & 0x04;
      m.swp = p[4] & 0x08;
    }
    off += plen;
  }
  bool changed = m.wce != l.mode.wce || m.d_sense != l.mode.d_sense || m.swp != l.mode.swp;
  l.mode = m;
  l.d_sense.store(m.d_sense, std::memory_order_relaxed);
  l.swp.store(m.swp, std::memory_order_relaxed);
  l.force_fua.store(l.be->volatile_cache() && !m.wce, std::memory_order_relaxed);
  if (changed) im.queue_ua_others(t.nexus, l.id, asc::mode_params_changed);
  finish(t);
}

// ---- REPORT SUPPORTED OPERATION CODES

bool prep_rsoc(Target::Impl&, Task& t) {
  uint8_t opt = t.cdb[2] & 0x07;
  if (opt > 3) return invalid_cdb(t, 2, 2);
  if (opt == 1 || opt == 2) {
    int any = find_op(t.cdb[3], 0xfffe);
    bool has_sa = any >= 0 && op_has_sa(t.cdb[3]);
    if (any >= 0 && has_sa != (opt == 2)) return invalid_cdb(t, 2, 2);
  }
  return need_data(t, Dir::in, be32(t.cdb + 6));
}

void exec_rsoc(Target::Impl&, Task& t) {
  uint8_t opt = t.cdb[2] & 0x07;
  bool rctd = t.cdb[2] & 0x80;
  unsigned nrows;
  const OpRow* rows = op_table(&nrows);
  uint8_t b[2048];
  unsigned n;
  if (opt == 0) {
    n = 4;
    for (unsigned i = 0; i < nrows; ++i) {
      uint8_t* d = b + n;
      std::memset(d, 0, 8);
      d[0] = rows[i].opcode;
      if (rows[i].sa != 0xffff) {
        put16(d + 2, rows[i].sa);
        d[5] |= 0x01;  // SERVACTV
      }
      put16(d + 6, rows[i].cdb_len);
      n += 8;
      if (rctd) {
        d[5] |= 0x02;  // CTDP
        std::memset(b + n, 0, 12);
        put16(b + n, 0x0a);
        n += 12;
      }
    }
    put32(b, n - 4);
  } else {
    uint16_t sa = (opt == 2 || (opt == 3 && op_has_sa(t.cdb[3]))) ? be16(t.cdb + 4) : 0xffff;
    int i = find_op(t.cdb[3], sa);
    std::memset(b, 0, 4);
    if (i < 0) {
      b[1] = 0x01;  // not supported
      n = 4;
    } else {
      const OpRow& r = rows[i];
      b[1] = 0x03;  // supported, as the standard says
      put16(b + 2, r.cdb_len);
      std::memcpy(b + 4, r.usage, r.cdb_len);
      n = 4 + r.cdb_len;
      if (rctd) {
        b[1] |= 0x80;
        std::memset(b + n, 0, 12);
        put16(b + n, 0x0a);
        n += 12;
      }
    }
  }
  put_data(t, b, n);
  finish(t);
}

}  // namespace sgv::scsi
