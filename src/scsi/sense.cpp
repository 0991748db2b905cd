// scsi/sense.cpp - sense data in fixed (0x70) and descriptor (0x72) format,
// the format chosen per LUN by the control mode page's D_SENSE bit, and the
// mapping of backend errors to the sense SBC prescribes.
#include <algorithm>
#include <cerrno>

#include "scsi/core.hpp"
#include "sgv/cursor.hpp"

namespace sgv::scsi {
namespace {

// SENSE KEY SPECIFIC bytes for a field pointer (SPC-4 4.5.2.4.2).
void field_ptr(uint8_t sks[3], bool cdb, uint16_t byte, int bit) {
  sks[0] = uint8_t(0x80 | (cdb ? 0x40 : 0) | (bit >= 0 ? 0x08 | (bit & 7) : 0));
  put16(sks + 1, byte);
}

unsigned build(Task& t, uint8_t key, Asc a, const uint64_t* info, const uint8_t* sks) {
  Lun* l = lun_of(t);
  bool desc = l && l->d_sense.load(std::memory_order_relaxed);
  uint8_t* s = t.sense;
  if (!s) return 0;
  if (!desc) {
    std::memset(s, 0, 18);
    s[0] = 0x70;
    s[2] = key;
    if (info && *info <= 0xffffffffu) {
      s[0] |= 0x80;  // VALID: INFORMATION holds a meaningful value
      put32(s + 3, uint32_t(*info));
    }
    s[7] = 10;
    s[12] = a.asc;
    s[13] = a.ascq;
    if (sks) std::memcpy(s + 15, sks, 3);
    return 18;
  }
  std::memset(s, 0, 8);
  s[0] = 0x72;
  s[1] = key;
  s[2] = a.asc;
  s[3] = a.ascq;
  unsigned n = 8;
  if (info) {
    uint8_t* d = s + n;
    std::memset(d, 0, 12);
    d[0] = 0x00;
    d[1] = 0x0a;
    d[2] = 0x80;
    put64(d + 4, *info);
    n += 12;
  }
  if (sks) {
    uint8_t* d = s + n;
    std::memset(d, 0, 8);
    d[0] = 0x02;
    d[1] = 0x06;
    std::memcpy(d + 4, sks, 3);
    n += 8;
  }
  s[7] = uint8_t(n - 8);
  return n;
}

bool set(Task& t, uint8_t key, Asc a, const uint64_t* info, const uint8_t* sks) {
  t.status = status::check_condition;
  t.sense_len = uint8_t(build(t, key, a, info, sks));
  t.xfer_len = 0;
  return true;
}

}  // namespace

bool check(Task& t, uint8_t key, Asc a) { return set(t, key, a, nullptr, nullptr); }

bool check_info(Task& t, uint8_t key, Asc a, uint64_t info) { return set(t, key, a, &info, nullptr); }

bool invalid_cdb(Task& t, uint16_t byte, int bit) {
  uint8_t sks[3];
  field_ptr(sks, true, byte, bit);
  return set(t, sk::illegal_request, asc::invalid_field_cdb, nullptr, sks);
}

bool invalid_param(Task& t, uint16_t byte, int bit) {
  uint8_t sks[3];
  field_ptr(sks, false, byte, bit);
  return set(t, sk::illegal_request, asc::invalid_field_param, nullptr, sks);
}

unsigned build_sense(uint8_t* out, bool desc, uint8_t key, Asc a) {
  if (desc) {
    std::memset(out, 0, 8);
    out[0] = 0x72;
    out[1] = key;
    out[2] = a.asc;
    out[3] = a.ascq;
    return 8;
  }
  std::memset(out, 0, 18);
  out[0] = 0x70;
  out[2] = key;
  out[7] = 10;
  out[12] = a.asc;
  out[13] = a.ascq;
  return 18;
}

[[gnu::noinline]] void complete_io_error(Task& t, int err, bool is_write) {
  switch (err) {
    case -EIO:
      check(t, sk::medium_error, is_write ? asc::write_error : asc::unrecovered_read);
      break;
    case -ENOSPC:
      check(t, sk::data_protect, asc::space_alloc_failed);
      break;
    case -EROFS:
      check(t, sk::data_protect, asc::write_protected);
      break;
    default:
      check(t, sk::hardware_error, asc::internal_failure);
      break;
  }
}

void finish(Task& t) {
  if (scratch(t).gate == kGateCounted) gate_exit(t);  // a write: out of its LUN's gate
  t.done(&t);
}

// The task's segments through libsgv's cursor copies: what fits, no more.
void put_data(Task& t, const void* src, uint32_t len) {
  if (len > t.data_len) len = t.data_len;
  copy_from_buf(SegSpan(t.segs, t.nsegs), 0, src, len);
  t.xfer_len = len;  // produced; the buffer may hold only a prefix (edtl)
}

uint32_t get_data(const Task& t, uint32_t off, void* dst, uint32_t n) {
  return uint32_t(copy_to_buf(SegSpan(t.segs, t.nsegs), off, dst, n));
}

}  // namespace sgv::scsi
