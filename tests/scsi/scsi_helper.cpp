// tests/scsi/scsi_helper.cpp - see scsi_helper.hpp.
#include "scsi_helper.hpp"

#include <cstring>

#include "backend/backend.hpp"

namespace sgv::test {

uint64_t wire_lun(uint64_t id) { return id < 256 ? id << 48 : (0x4000 | id) << 48; }

std::vector<uint8_t> cdb10(uint8_t op, uint64_t lba, uint32_t n, uint8_t flags) {
  std::vector<uint8_t> c(10, 0);
  c[0] = op;
  c[1] = flags;
  for (int i = 0; i < 4; ++i) c[2 + i] = uint8_t(lba >> (24 - 8 * i));
  c[7] = uint8_t(n >> 8);
  c[8] = uint8_t(n);
  return c;
}

std::vector<uint8_t> cdb16(uint8_t op, uint64_t lba, uint32_t n, uint8_t flags) {
  std::vector<uint8_t> c(16, 0);
  c[0] = op;
  c[1] = flags;
  for (int i = 0; i < 8; ++i) c[2 + i] = uint8_t(lba >> (56 - 8 * i));
  for (int i = 0; i < 4; ++i) c[10 + i] = uint8_t(n >> (24 - 8 * i));
  return c;
}

Harness::Harness(uint64_t size, uint32_t bs, bool read_only) {
  int err = 0;
  auto be = backend::make_ram({size}, &err);
  target_ = std::make_unique<scsi::Target>("iqn.2026-11.io.sgv:test");
  scsi::LunConfig cfg;
  cfg.backend = std::move(be);
  cfg.block_size = bs;
  cfg.read_only = read_only;
  target_->add_lun(std::move(cfg));
  nexus_ = target_->open_nexus("iqn.initiator");
}

Harness::Harness(std::unique_ptr<backend::Backend> be, uint32_t bs, bool read_only) {
  target_ = std::make_unique<scsi::Target>("iqn.2026-11.io.sgv:test");
  scsi::LunConfig cfg;
  cfg.backend = std::move(be);
  cfg.block_size = bs;
  cfg.read_only = read_only;
  target_->add_lun(std::move(cfg));
  nexus_ = target_->open_nexus("iqn.initiator");
}

Harness::~Harness() { target_->close_nexus(nexus_); }

void Harness::clear_ua(scsi::Nexus* n) {
  for (int i = 0; i < 8; ++i) {
    Result r = run({0x00, 0, 0, 0, 0, 0}, {}, -1, 0, n);
    if (r.good()) return;
  }
}

Result Harness::run(std::initializer_list<uint8_t> cdb, const std::vector<uint8_t>& out, int64_t edtl, uint64_t lun,
                    scsi::Nexus* nexus) {
  std::vector<uint8_t> c(cdb);
  return run_cdb(c.data(), unsigned(c.size()), out, edtl, lun, nexus);
}

Result Harness::run_cdb(const uint8_t* cdb, unsigned len, const std::vector<uint8_t>& out, int64_t edtl,
                        uint64_t lun, scsi::Nexus* nexus) {
  auto t = std::make_unique<scsi::Task>();
  uint8_t sense[scsi::kSenseMax];
  std::memcpy(t->cdb, cdb, len);
  t->cdb_len = uint8_t(len);
  t->lun = wire_lun(lun);
  t->nexus = nexus ? nexus : nexus_;
  t->sense = sense;
  // Default EDTL: the data-out supplied, or (data-in) the CDB's length once known.
  t->edtl = edtl >= 0 ? uint32_t(edtl) : !out.empty() ? uint32_t(out.size()) : 0xffffffffu;
  bool done_flag = false;
  t->ctx = &done_flag;
  t->done = [](scsi::Task* tk) { *static_cast<bool*>(tk->ctx) = true; };
  Result r;
  bool complete = target_->prepare(*t);
  r.dir = t->dir;
  r.data_len = t->data_len;
  std::vector<uint8_t> buf;
  if (!complete) {
    if (edtl < 0 && out.empty()) t->edtl = t->data_len;
    uint32_t n = std::min(t->edtl, t->data_len);
    if (t->dir == scsi::Dir::out) {
      buf = out;
      buf.resize(std::min<size_t>(out.size(), n));
    } else {
      buf.assign(n, 0xcc);
    }
    if (t->dir != scsi::Dir::none && !t->backend_buffer) {
      t->inline_segs[0] = {buf.data(), buf.size()};
      t->segs = t->inline_segs;
      t->nsegs = buf.empty() ? 0 : 1;
    }
    target_->execute(*t);
    while (!done_flag && backend::thread_ops_in_flight()) backend::wait_thread_completions();
    if (!done_flag) {
      r.status = 0xff;  // never completed: the test will fail on it
      return r;
    }
    if (t->dir == scsi::Dir::in && t->status == 0) {
      r.xfer_len = t->xfer_len;
      r.data.resize(std::min<size_t>(t->xfer_len, total_len(SegSpan(t->segs, t->nsegs))));
      uint32_t off = 0;
      for (unsigned i = 0; i < t->nsegs && off < r.data.size(); ++i) {
        size_t k = std::min<size_t>(t->segs[i].len, r.data.size() - off);
        std::memcpy(r.data.data() + off, t->segs[i].addr, k);
        off += uint32_t(k);
      }
    }
  } else {
    r.completed_in_prepare = true;
  }
  r.status = t->status;
  r.sense.assign(sense, sense + t->sense_len);
  if (t->sense_len >= 14 && (sense[0] & 0x7f) == 0x70) {
    r.key = sense[2] & 0x0f;
    r.asc = sense[12];
    r.ascq = sense[13];
  } else if (t->sense_len >= 4 && (sense[0] & 0x7f) == 0x72) {
    r.key = sense[1] & 0x0f;
    r.asc = sense[2];
    r.ascq = sense[3];
  }
  return r;
}

}  // namespace sgv::test
