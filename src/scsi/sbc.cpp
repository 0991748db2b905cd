// scsi/sbc.cpp - SBC-3 block commands: READ CAPACITY, READ/WRITE 6/10/12/16,
// WRITE AND VERIFY, VERIFY, COMPARE AND WRITE, SYNCHRONIZE CACHE, WRITE
// SAME, UNMAP.
//
// READ and WRITE are the data path. Budget for prep_read/prep_write: one CDB
// decode by length, two range compares, a handful of stores, and on a
// zero-copy backend one map_read call (then exec_read only finishes);
// otherwise exec_read submits one Io from Task::core_scratch. Nothing here
// allocates.
#include <algorithm>

#include "scsi/core.hpp"
#include "sgv/cursor.hpp"

namespace sgv::scsi {
namespace {

enum Kind : uint8_t { kWriteSame = 1, kUnmap = 2 };
enum SFlag : uint8_t {
  kFua = 1, kWsUnmap = 2, kWsZero = 4, kBytchk1 = 8, kBytchk3 = 16,
  kReadBack = 32,   // WRITE AND VERIFY: read the written range back after the write
  kReadBackCmp = 64 // ... and compare it with the data-out (BYTCHK=1)
};

struct Rw {
  uint64_t lba;
  uint64_t n;
  uint8_t len_byte;  // where the transfer length lives, for field pointers
};

// Decodes LBA and transfer length of any READ/WRITE/VERIFY/WRITE SAME shape
// (and of SYNCHRONIZE CACHE, PRE-FETCH and ORWRITE, which share it).
Rw decode(const uint8_t* c) {
  switch (c[0] >> 5) {
    case 0:  // 6-byte: 21-bit LBA, 0 blocks means 256 (READ/WRITE 6 only)
      return {be24(c + 1) & 0x1fffffu, c[4] ? c[4] : 256u, 4};
    case 1:
    case 2:  // 10-byte
      return {be32(c + 2), be16(c + 7), 7};
    case 5:  // 12-byte
      return {be32(c + 2), be32(c + 6), 6};
    default:  // 16-byte
      return {be64(c + 2), be32(c + 10), 10};
  }
}

bool is_write_verify(uint8_t opcode) { return opcode == 0x2e || opcode == 0xae || opcode == 0x8e; }

bool out_of_range(const Lun& l, uint64_t lba, uint64_t n) { return lba > l.nblocks || n > l.nblocks - lba; }

bool range_and_size(Target::Impl& im, Task& t, const Lun& l, const Rw& rw) {
  if (out_of_range(l, rw.lba, rw.n)) return check(t, sk::illegal_request, asc::lba_out_of_range);
  if (rw.n > (im.limits.max_xfer_bytes >> l.bs_shift)) return invalid_cdb(t, rw.len_byte);
  return false;
}

// The per-thread medium buffer of the synchronous slow paths (one of them
// at a time on a thread). Page-aligned: an O_DIRECT file LUN reads straight
// into it.
alignas(4096) thread_local uint8_t t_medium[64 * 1024];

// Reads `total` bytes of the medium at byte offset `off` synchronously, a
// t_medium-sized chunk at a time, and calls fn(chunk data, offset within
// the range, length) for each; stops at the first non-zero fn result. 0
// when every chunk went through; -1 when a read failed (sense set) or fn
// returned non-zero (fn sets the sense).
template <class Fn>
int each_medium_chunk(Task& t, Lun& l, uint64_t off, uint64_t total, Fn fn) {
  for (uint64_t done = 0; done < total;) {
    uint32_t chunk = uint32_t(std::min<uint64_t>(sizeof t_medium, total - done));
    Seg seg{t_medium, chunk};
    if (int r = l.be->read_sync(off + done, &seg, 1)) {
      complete_io_error(t, r, false);
      return -1;
    }
    if (fn(t_medium, done, chunk)) return -1;
    done += chunk;
  }
  return 0;
}

// Slow path shared by VERIFY, WRITE AND VERIFY and COMPARE AND WRITE: reads
// `total` bytes of the medium at byte offset `off` synchronously, in bounded
// chunks into a per-thread buffer, and compares them with the data-out from
// byte `src` on (one_block: the data-out's first block, repeated). 0: equal;
// otherwise the sense is set (MISCOMPARE with the offset of the first
// differing byte as INFORMATION, or the read error) and the result is -1.
int compare_medium(Task& t, Lun& l, uint64_t off, uint64_t total, uint32_t src, bool one_block,
                   uint8_t miscompare_key, Asc miscompare) {
  const SegSpan data(t.segs, t.nsegs);
  return each_medium_chunk(t, l, off, total, [&](uint8_t* medium, uint64_t done, uint32_t chunk) {
    // The data-out is compared where it lies, segment by segment.
    size_t at = 0;
    int diff = 0;
    if (one_block) {
      for (uint32_t i = 0; i < chunk && !diff; i += l.bs) {
        diff = compare_buf(data, src, medium + i, l.bs, &at);
        if (diff) at += i;
      }
    } else {
      diff = compare_buf(data, src + done, medium, chunk, &at);
    }
    if (diff) {
      check_info(t, miscompare_key, miscompare, done + at);
      return -1;
    }
    return 0;
  });
}

void rw_done(backend::Io* io) {
  Task& t = *static_cast<Task*>(io->ctx);
  if (io->result) {
    complete_io_error(t, io->result, io->op != backend::Io::Op::read);
  } else if (io->op == backend::Io::Op::read) {
    t.xfer_len = t.data_len;  // the whole range was readable; the buffer holds min(edtl, data_len)
  } else if (scratch(t).flags & kReadBack) {
    // WRITE AND VERIFY: the medium must give back what was just written.
    // BYTCHK=1 reports a difference as MISCOMPARE; BYTCHK=0 asked for a
    // medium verification only, so a difference is the medium failing.
    bool cmp = scratch(t).flags & kReadBackCmp;
    compare_medium(t, *lun_of(t), io->offset, io->len, 0, false, cmp ? sk::miscompare : sk::medium_error,
                   cmp ? asc::miscompare_verify : asc::unrecovered_read);
  }
  finish(t);
}

void submit(Task& t, backend::Io::Op op, uint64_t off, uint64_t len, bool fua) {
  backend::Io& io = scratch(t).io;
  io.op = op;
  io.fua = fua;
  io.offset = off;
  io.len = len;
  io.segs = t.segs;
  io.nsegs = t.nsegs;
  io.result = 0;
  io.done = rw_done;
  io.ctx = &t;
  lun_of(t)->be->submit(io);
}

}  // namespace

// ---- READ CAPACITY

bool prep_read_capacity10(Target::Impl&, Task& t) {
  if (!(t.cdb[8] & 0x01) && be32(t.cdb + 2)) return invalid_cdb(t, 2);  // LBA needs PMI
  return need_data(t, Dir::in, 8);
}

void exec_read_capacity10(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  uint8_t b[8];
  uint64_t last = l.nblocks - 1;
  put32(b, last > 0xffffffffull ? 0xffffffffu : uint32_t(last));
  put32(b + 4, l.bs);
  put_data(t, b, 8);
  finish(t);
}

bool prep_read_capacity16(Target::Impl&, Task& t) { return need_data(t, Dir::in, be32(t.cdb + 10)); }

void exec_read_capacity16(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  uint8_t b[32] = {};
  put64(b, l.nblocks - 1);
  put32(b + 8, l.bs);
  if (l.bs == 512) b[13] = 3;                 // 8 logical blocks per 4 KiB physical block
  if (l.thin) b[14] = 0x80 | 0x40;            // LBPME, LBPRZ
  put_data(t, b, 32);
  finish(t);
}

// ---- GET LBA STATUS (SBC-3 5.6): which blocks from an LBA on are mapped
// and which deallocated (read as zeros, hold no space), as runs. A short
// answer is allowed: the initiator asks again from where it ends. So one
// command scans at most kLbaStatusMax descriptors and what the backend
// bounds per call.

namespace {
constexpr unsigned kLbaStatusMax = 64;
}

bool prep_get_lba_status(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  if (be64(t.cdb + 2) >= l.nblocks) return check(t, sk::illegal_request, asc::lba_out_of_range);
  return need_data(t, Dir::in, be32(t.cdb + 10));
}

void exec_get_lba_status(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  uint8_t b[8 + 16 * kLbaStatusMax] = {};
  unsigned n = 0;
  uint64_t lba = be64(t.cdb + 2);
  // Descriptors that fit the allocation length, at least one.
  unsigned cap = t.data_len >= 24 ? std::min<uint32_t>(kLbaStatusMax, (t.data_len - 8) / 16) : 1;
  while (n < cap && lba < l.nblocks) {
    uint64_t run = 0;
    uint64_t left = (l.nblocks - lba) << l.bs_shift;
    int st = l.be->extent_state(lba << l.bs_shift, left, &run);
    if (st < 0) {
      complete_io_error(t, st, false);
      return finish(t);
    }
    // Whole blocks only: a block the state changes inside is mapped.
    uint64_t blocks = run >> l.bs_shift;
    if (blocks == 0) {
      blocks = 1;
      st = backend::Backend::kMapped;
    }
    blocks = std::min<uint64_t>({blocks, l.nblocks - lba, 0xffffffffu});
    uint8_t* d = n ? b + 8 + 16 * (n - 1) : nullptr;
    if (d && (d[12] & 0x0f) == st && be32(d + 8) + blocks <= 0xffffffffu) {
      put32(d + 8, uint32_t(be32(d + 8) + blocks));  // same state as the run before: extend it
    } else {
      d = b + 8 + 16 * n++;
      put64(d, lba);
      put32(d + 8, uint32_t(blocks));
      d[12] = uint8_t(st);
    }
    lba += blocks;
  }
  put32(b, 4 + 16 * n);
  put_data(t, b, 8 + 16 * n);
  finish(t);
}

// ---- READ DEFECT DATA (10/12, SBC-3 5.12/5.13): no medium, no defects.
// The answer echoes the requested list format, marks the requested lists
// (primary, grown) valid and lists nothing.

bool prep_read_defect(Target::Impl&, Task& t) {
  bool twelve = t.cdb[0] == 0xb7;
  return need_data(t, Dir::in, twelve ? be32(t.cdb + 6) : be16(t.cdb + 7));
}

void exec_read_defect(Target::Impl&, Task& t) {
  bool twelve = t.cdb[0] == 0xb7;
  uint8_t b[8] = {};
  b[1] = twelve ? uint8_t(t.cdb[1] & 0x1f) : uint8_t(t.cdb[2] & 0x1f);  // PLISTV, GLISTV, format
  put_data(t, b, twelve ? 8 : 4);  // length 0: (10) bytes 2-3; (12) generation 0, bytes 4-7
  finish(t);
}

// ---- READ / WRITE / WRITE AND VERIFY

bool prep_read(Target::Impl& im, Task& t) {
  Lun& l = *lun_of(t);
  const uint8_t* c = t.cdb;
  if (c[0] != 0x08 && (c[1] & 0xe0)) return invalid_cdb(t, 1, 7);  // RDPROTECT: no protection information
  Rw rw = decode(c);
  if (range_and_size(im, t, l, rw)) return true;
  Scratch& s = scratch(t);
  s.lba = rw.lba;
  s.nblocks = rw.n;
  uint32_t data_len = uint32_t(rw.n << l.bs_shift);
  if (l.zero_copy_read && rw.n && (l.map_cpu_safe || !t.cpu_reads_data)) {
    // Mapped now, so that a range the backend cannot map (a hole of a file
    // LUN) still gets the buffer the transport allocates after prepare().
    uint32_t len = std::min(t.edtl, data_len);
    unsigned n = len ? l.be->map_read(s.lba << l.bs_shift, len, t.inline_segs, kTaskInlineSegs) : 0;
    t.backend_buffer = n || !len;
    if (n) {
      t.segs = t.inline_segs;
      t.nsegs = n;
    }
  }
  return need_data(t, Dir::in, data_len);
}

void exec_read(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  Scratch& s = scratch(t);
  uint64_t off = s.lba << l.bs_shift;
  if (t.data_len == 0) return finish(t);
  if (t.backend_buffer) {
    // segs point into the backend's memory since prepare (prep_read).
    t.xfer_len = t.data_len;
    return finish(t);
  }
  uint64_t len = std::min<uint64_t>(total_len(SegSpan(t.segs, t.nsegs)), t.data_len);
  if (len == 0) return finish(t);
  submit(t, backend::Io::Op::read, off, len, false);
}

bool prep_write(Target::Impl& im, Task& t) {
  Lun& l = *lun_of(t);
  const uint8_t* c = t.cdb;
  if (c[0] != 0x0a && (c[1] & 0xe0)) return invalid_cdb(t, 1, 7);  // WRPROTECT
  Rw rw = decode(c);
  if (range_and_size(im, t, l, rw)) return true;
  if (l.write_protected()) return check(t, sk::data_protect, asc::write_protected);
  uint32_t len = uint32_t(rw.n << l.bs_shift);
  if (t.edtl < len) {
    // The initiator sends less than the CDB writes. Whole blocks are written
    // as far as the data goes (the transport reports the overflow); no data
    // at all writes nothing; a partial block cannot be written.
    if (t.edtl == 0) {
      t.dir = Dir::out;
      t.data_len = len;
      return good(t);
    }
    if (t.edtl & (l.bs - 1)) {
      t.dir = Dir::out;  // so the transport reports the overflow residual too
      t.data_len = len;
      return check(t, sk::illegal_request, Asc{0x0e, 0x03});
    }
  }
  Scratch& s = scratch(t);
  s.lba = rw.lba;
  s.nblocks = rw.n;
  // With the write cache disabled by MODE SELECT every write is durable.
  bool fua = (c[0] != 0x0a && (c[1] & 0x08)) || l.force_fua.load(std::memory_order_relaxed);
  s.flags = fua ? kFua : 0;
  if (is_write_verify(c[0])) s.flags |= kReadBack | ((c[1] & 0x02) ? kReadBackCmp : 0);
  return need_data(t, Dir::out, len);
}

void exec_write(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  Scratch& s = scratch(t);
  // The data-out holds min(edtl, data_len) bytes, whole blocks (prepare).
  uint64_t have = std::min<uint64_t>(total_len(SegSpan(t.segs, t.nsegs)), t.data_len);
  have &= ~uint64_t(l.bs - 1);
  if (have == 0) return finish(t);
  if (!gate_enter(t)) [[unlikely]] return;  // a COMPARE AND WRITE holds the LUN: runs again on resume
  submit(t, backend::Io::Op::write, s.lba << l.bs_shift, have, s.flags & kFua);
}

// ---- VERIFY

bool prep_verify(Target::Impl& im, Task& t) {
  Lun& l = *lun_of(t);
  const uint8_t* c = t.cdb;
  if (c[1] & 0xe0) return invalid_cdb(t, 1, 7);  // VRPROTECT
  uint8_t bytchk = (c[1] >> 1) & 0x03;
  if (bytchk == 2) return invalid_cdb(t, 1, 2);
  Rw rw = decode(c);
  if (out_of_range(l, rw.lba, rw.n)) return check(t, sk::illegal_request, asc::lba_out_of_range);
  if (bytchk == 0 || rw.n == 0) return good(t);  // medium verification: our medium does not decay
  if (bytchk == 1 && rw.n > (im.limits.max_xfer_bytes >> l.bs_shift)) return invalid_cdb(t, rw.len_byte);
  Scratch& s = scratch(t);
  s.lba = rw.lba;
  s.nblocks = rw.n;
  s.flags = bytchk == 1 ? kBytchk1 : kBytchk3;
  return need_data(t, Dir::out, bytchk == 1 ? uint32_t(rw.n << l.bs_shift) : l.bs);
}

// Slow path: compares the medium with the data-out (compare_medium).
[[gnu::noinline]] void exec_verify(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  Scratch& s = scratch(t);
  if (total_len(SegSpan(t.segs, t.nsegs)) < t.data_len) {
    check(t, sk::illegal_request, asc::param_list_length);
    return finish(t);
  }
  compare_medium(t, l, s.lba << l.bs_shift, s.nblocks << l.bs_shift, 0, s.flags & kBytchk3, sk::miscompare,
                 asc::miscompare_verify);
  finish(t);
}

// ---- COMPARE AND WRITE (SBC-3 5.2; VMware's ATS)
//
// The data-out holds NUMBER OF LOGICAL BLOCKS blocks to compare with the
// medium, then as many to write. The read, the compare and the write run
// synchronously while the command holds its LUN's WriteGate, so no other
// write of the LUN (nor another COMPARE AND WRITE) lands in between; a slow
// path, as ATS moves one block at a time.

bool prep_compare_write(Target::Impl& im, Task& t) {
  Lun& l = *lun_of(t);
  const uint8_t* c = t.cdb;
  if (c[1] & 0xe0) return invalid_cdb(t, 1, 7);  // WRPROTECT: no protection information
  uint64_t lba = be64(c + 2);
  uint32_t n = c[13];
  if (n > max_compare_write_blocks(im, l)) return invalid_cdb(t, 13);
  if (out_of_range(l, lba, n)) return check(t, sk::illegal_request, asc::lba_out_of_range);
  if (l.write_protected()) return check(t, sk::data_protect, asc::write_protected);
  if (n == 0) {
    // Nothing to compare or write is not an error, unless data comes with
    // it: then the length field is what is wrong (a 256-block request whose
    // count wrapped to 0 in the one-byte field).
    return t.edtl ? invalid_cdb(t, 13) : good(t);
  }
  uint32_t len = (2 * n) << l.bs_shift;
  if (t.edtl != len) {
    // A Data-Out that is not exactly both halves cannot be split into them.
    t.dir = Dir::out;
    t.data_len = len;
    return check(t, sk::illegal_request, Asc{0x0e, 0x03});
  }
  Scratch& s = scratch(t);
  s.lba = lba;
  s.nblocks = n;
  s.flags = ((c[1] & 0x08) || l.force_fua.load(std::memory_order_relaxed)) ? kFua : 0;
  return need_data(t, Dir::out, len);
}

namespace {

// The compare and the write, holding the gate; sense set on failure.
void compare_then_write(Task& t, Lun& l, const Scratch& s) {
  uint64_t half = s.nblocks << l.bs_shift;
  uint64_t off = s.lba << l.bs_shift;
  if (compare_medium(t, l, off, half, 0, false, sk::miscompare, asc::miscompare_verify)) return;
  // Write the second half straight from the data-out segments, as many of
  // them at a time as the window holds.
  SegWindow w(SegSpan(t.segs, t.nsegs), half, half, 0);
  Seg win[16];
  size_t bytes = 0;
  uint64_t wrote = 0;
  while (size_t nw = w.next(win, 16, &bytes)) {
    int r = l.be->write_sync(off + wrote, win, unsigned(nw), s.flags & kFua);
    if (r) return complete_io_error(t, r, true);
    wrote += bytes;
  }
}

}  // namespace

[[gnu::noinline]] void exec_compare_write(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  const Scratch& s = scratch(t);
  if (total_len(SegSpan(t.segs, t.nsegs)) < 2 * (s.nblocks << l.bs_shift)) {
    check(t, sk::illegal_request, asc::param_list_length);
    return finish(t);
  }
  // Parked unless it holds the gate now: resumed holding it (writes in flight
  // drained, and the CAWs parked before it done), back here.
  if (s.gate != kGateOwner && !caw_acquire(t)) return;
  compare_then_write(t, l, s);
  caw_release(t);
  finish(t);
}

// ---- ORWRITE(16) (SBC-3 5.8): each block becomes the bitwise OR of what
// the medium holds and the data-out, read-OR-write as one step against every
// other writer. It takes the LUN's write gate exactly as COMPARE AND WRITE
// does (parked, never blocking, while writes drain), then works through
// the range in chunks of a per-thread buffer with synchronous backend I/O.

bool prep_orwrite(Target::Impl& im, Task& t) {
  Lun& l = *lun_of(t);
  const uint8_t* c = t.cdb;
  if (c[1] & 0xe0) return invalid_cdb(t, 1, 7);  // ORPROTECT: no protection information
  Rw rw = decode(c);
  if (range_and_size(im, t, l, rw)) return true;
  if (l.write_protected()) return check(t, sk::data_protect, asc::write_protected);
  uint32_t len = uint32_t(rw.n << l.bs_shift);
  if (len == 0) return good(t);
  if (t.edtl != len) {
    // ORing a partial range would leave the rest undone: all or nothing.
    t.dir = Dir::out;
    t.data_len = len;
    return check(t, sk::illegal_request, Asc{0x0e, 0x03});
  }
  Scratch& s = scratch(t);
  s.lba = rw.lba;
  s.nblocks = rw.n;
  s.flags = ((c[1] & 0x08) || l.force_fua.load(std::memory_order_relaxed)) ? kFua : 0;
  return need_data(t, Dir::out, len);
}

[[gnu::noinline]] void exec_orwrite(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  const Scratch& s = scratch(t);
  uint64_t total = s.nblocks << l.bs_shift;
  if (total_len(SegSpan(t.segs, t.nsegs)) < total) {
    check(t, sk::illegal_request, asc::param_list_length);
    return finish(t);
  }
  if (s.gate != kGateOwner && !caw_acquire(t)) return;  // resumed holding the gate
  alignas(64) static thread_local uint8_t data[sizeof t_medium];
  uint64_t off = s.lba << l.bs_shift;
  each_medium_chunk(t, l, off, total, [&](uint8_t* medium, uint64_t done, uint32_t chunk) {
    copy_to_buf(SegSpan(t.segs, t.nsegs), done, data, chunk);
    for (uint32_t i = 0; i < chunk; ++i) medium[i] |= data[i];
    Seg seg{medium, chunk};
    int r = l.be->write_sync(off + done, &seg, 1, s.flags & kFua);
    if (r) complete_io_error(t, r, true);
    return r;
  });
  caw_release(t);
  finish(t);
}

// ---- SYNCHRONIZE CACHE

bool prep_sync_cache(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  Rw rw = decode(t.cdb);  // the READ/WRITE(10/16) layout of LBA and block count
  if (out_of_range(l, rw.lba, rw.n)) return check(t, sk::illegal_request, asc::lba_out_of_range);
  if (!l.be->volatile_cache()) return good(t);
  return need_data(t, Dir::none, 0);
}

void exec_sync_cache(Target::Impl&, Task& t) { submit(t, backend::Io::Op::flush, 0, 0, false); }

// PRE-FETCH(10/16): the range is checked and the command completes with
// GOOD. SBC-3 5.10 answers CONDITION MET only when the blocks were moved
// into a cache separate from the medium; a RAM LUN is its medium, and a
// file LUN's reads already come through the page cache (and its readahead).
bool prep_prefetch(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  Rw rw = decode(t.cdb);  // the READ/WRITE(10/16) layout of LBA and block count
  if (out_of_range(l, rw.lba, rw.n)) return check(t, sk::illegal_request, asc::lba_out_of_range);
  return good(t);
}

// ---- WRITE SAME and UNMAP: a chain of Ios driven from core_scratch.
//
// The chain loops instead of recursing when a backend completes inline, so
// a 4 Mi-block WRITE SAME on the RAM backend uses constant stack.

namespace {

bool next_write_same(Task& t, backend::Io& io) {
  Lun& l = *lun_of(t);
  Scratch& s = scratch(t);
  if (s.ws_left == 0) return false;
  io.offset = s.ws_next << l.bs_shift;
  if (s.flags & (kWsUnmap | kWsZero)) {
    // One Io for the whole range: the backend punches or zeroes it.
    io.op = (s.flags & kWsUnmap) ? backend::Io::Op::unmap : backend::Io::Op::write_zeroes;
    io.len = s.ws_left << l.bs_shift;
    io.segs = nullptr;
    io.nsegs = 0;
    s.ws_left = 0;
    return true;
  }
  uint64_t per = kScratchRing / s.ws_per_block;
  uint64_t n = std::min(per, s.ws_left);
  Seg* ring = scratch_ring(t);
  for (uint64_t i = 0; i < n; ++i)
    for (unsigned j = 0; j < s.ws_per_block; ++j) ring[i * s.ws_per_block + j] = t.segs[j];
  io.op = backend::Io::Op::write;
  io.segs = ring;
  io.nsegs = unsigned(n * s.ws_per_block);
  io.len = n << l.bs_shift;
  s.ws_next += n;
  s.ws_left -= n;
  return true;
}

bool next_unmap(Task& t, backend::Io& io) {
  Lun& l = *lun_of(t);
  Scratch& s = scratch(t);
  while (s.step < s.nsteps) {
    uint8_t d[16];
    get_data(t, 8 + 16 * s.step++, d, 16);
    uint64_t lba = be64(d);
    uint32_t n = be32(d + 8);
    if (n == 0) continue;
    io.op = backend::Io::Op::unmap;
    io.offset = lba << l.bs_shift;
    io.len = uint64_t(n) << l.bs_shift;
    io.segs = nullptr;
    io.nsegs = 0;
    return true;
  }
  return false;
}

void chain_done(backend::Io* io);

void drive(Task& t) {
  Scratch& s = scratch(t);
  Lun& l = *lun_of(t);
  for (;;) {
    backend::Io& io = s.io;
    bool more = s.kind == kWriteSame ? next_write_same(t, io) : next_unmap(t, io);
    if (!more) return finish(t);
    io.fua = false;
    io.result = 0;
    io.done = chain_done;
    io.ctx = &t;
    s.ws_busy = 1;
    s.ws_again = 0;
    l.be->submit(io);
    s.ws_busy = 0;
    if (!s.ws_again) return;  // completes later, from the reaper
    if (io.result) {
      complete_io_error(t, io.result, true);
      return finish(t);
    }
  }
}

void chain_done(backend::Io* io) {
  Task& t = *static_cast<Task*>(io->ctx);
  Scratch& s = scratch(t);
  if (s.ws_busy) {
    s.ws_again = 1;  // inline completion: drive()'s loop continues
    return;
  }
  if (io->result) {
    complete_io_error(t, io->result, true);
    return finish(t);
  }
  drive(t);
}

}  // namespace

bool prep_write_same(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  const uint8_t* c = t.cdb;
  bool sixteen = c[0] == 0x93;
  if (c[1] & 0xe0) return invalid_cdb(t, 1, 7);   // WRPROTECT
  if (c[1] & 0x10) return invalid_cdb(t, 1, 4);   // ANCHOR: ANC_SUP is 0
  if (c[1] & 0x04) return invalid_cdb(t, 1, 2);   // PBDATA
  if (c[1] & 0x02) return invalid_cdb(t, 1, 1);   // LBDATA
  bool ndob = sixteen && (c[1] & 0x01);
  bool unmap = c[1] & 0x08;
  Rw rw = decode(c);
  if (rw.n == 0) return invalid_cdb(t, rw.len_byte);  // WSNZ
  if (rw.n > kMaxWriteSameBlocks) return invalid_cdb(t, rw.len_byte);
  if (out_of_range(l, rw.lba, rw.n)) return check(t, sk::illegal_request, asc::lba_out_of_range);
  if (l.write_protected()) return check(t, sk::data_protect, asc::write_protected);
  Scratch& s = scratch(t);
  s.kind = kWriteSame;
  s.lba = s.ws_next = rw.lba;
  s.nblocks = s.ws_left = rw.n;
  s.flags = (unmap && l.thin) ? kWsUnmap : (ndob ? kWsZero : 0);
  if (ndob) return need_data(t, Dir::none, 0);
  // Exactly one block of data-out: anything else is a malformed command
  // (libiscsi's InvalidDataOutSize sends half and double a block).
  if (t.edtl != l.bs) {
    t.dir = Dir::out;
    t.data_len = l.bs;
    return check(t, sk::illegal_request, Asc{0x0e, 0x03});
  }
  return need_data(t, Dir::out, l.bs);
}

void exec_write_same(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  Scratch& s = scratch(t);
  if (!(s.flags & (kWsUnmap | kWsZero))) {
    // A block of zeros is a write_zeroes; anything else is written as is.
    uint8_t blk[4096];
    if (get_data(t, 0, blk, l.bs) < l.bs) {
      check(t, sk::illegal_request, Asc{0x0e, 0x03});
      return finish(t);
    }
    bool zero = blk[0] == 0 && std::memcmp(blk, blk + 1, l.bs - 1) == 0;
    if (zero) {
      s.flags |= kWsZero;
    } else {
      // The ring repeats the block's segments; trim them to one block.
      unsigned per = 0;
      uint64_t acc = 0;
      while (per < t.nsegs && acc < l.bs) acc += t.segs[per++].len;
      if (per > kScratchRing || acc != l.bs) {
        check(t, sk::hardware_error, asc::internal_failure);
        return finish(t);
      }
      s.ws_per_block = uint8_t(per);
    }
  }
  if (!gate_enter(t)) return;  // runs again on resume
  drive(t);
}

bool prep_unmap(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  if (t.cdb[1] & 0x01) return invalid_cdb(t, 1, 0);  // ANCHOR
  if (!l.thin) return check(t, sk::illegal_request, asc::invalid_opcode);
  uint32_t len = be16(t.cdb + 7);
  if (len == 0) return good(t);
  if (len < 8) return check(t, sk::illegal_request, asc::param_list_length);
  if (l.write_protected()) return check(t, sk::data_protect, asc::write_protected);
  scratch(t).kind = kUnmap;
  return need_data(t, Dir::out, len);
}

void exec_unmap(Target::Impl&, Task& t) {
  Lun& l = *lun_of(t);
  Scratch& s = scratch(t);
  uint8_t h[8];
  uint32_t have = std::min<uint32_t>(uint32_t(total_len(SegSpan(t.segs, t.nsegs))), t.data_len);
  if (get_data(t, 0, h, 8) < 8 || have < 8) {
    check(t, sk::illegal_request, asc::param_list_length);
    return finish(t);
  }
  uint32_t bddl = be16(h + 2);
  uint32_t n = std::min(bddl, have - 8) / 16;
  if (n > kMaxUnmapDescs) {
    invalid_param(t, 2);
    return finish(t);
  }
  // Validate everything before changing anything.
  uint64_t sum = 0;
  for (uint32_t i = 0; i < n; ++i) {
    uint8_t d[16];
    get_data(t, 8 + 16 * i, d, 16);
    uint64_t lba = be64(d);
    uint32_t cnt = be32(d + 8);
    sum += cnt;
    if (sum > kMaxUnmapBlocks) {  // limits first: they hold whatever the LUN's size
      invalid_param(t, uint16_t(8 + 16 * i + 8));
      return finish(t);
    }
    if (out_of_range(l, lba, cnt)) {
      check(t, sk::illegal_request, asc::lba_out_of_range);
      return finish(t);
    }
  }
  if (!gate_enter(t)) return;  // runs again on resume
  s.step = 0;
  s.nsteps = n;
  drive(t);
}

}  // namespace sgv::scsi
