// fuzz/cdb_fuzz.cpp - arbitrary CDBs and data-out buffers (MODE SELECT
// parameter lists, UNMAP descriptors, WRITE SAME blocks) through
// Target::prepare/execute on a small RAM LUN and a null LUN.
//
// Input: byte 0 picks LUN, EDTL policy and segment split; bytes 1..16 are
// the CDB; the rest is the data-out buffer. Each input gets a fresh target,
// so a MODE SELECT that write-protects the LUN cannot mask later inputs.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "backend/backend.hpp"
#include "scsi/target.hpp"

using namespace sgv;

namespace {

constexpr uint32_t kBufMax = 4u << 20;

void fail() { std::abort(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::vector<uint8_t> inbuf(kBufMax);
  if (size < 2) return 0;
  uint8_t ctl = data[0];
  scsi::Target tg("iqn.2026-11.io.sgv:fuzz", {64u << 10, 32u << 10});
  int err = 0;
  scsi::LunConfig c0;
  c0.backend = backend::make_ram({1u << 20}, &err);
  c0.block_size = (ctl & 0x40) ? 4096 : 512;
  if (!c0.backend || tg.add_lun(std::move(c0)) != 0) return 0;
  scsi::LunConfig c1;
  c1.id = 1;
  c1.backend = backend::make_null(1u << 20);
  c1.read_only = true;
  tg.add_lun(std::move(c1));
  scsi::Nexus* nx = tg.open_nexus("iqn.fuzz");

  size_t cdb_len = size - 1 < 16 ? size - 1 : 16;
  const uint8_t* out = data + 1 + cdb_len;
  size_t out_len = size - 1 - cdb_len;

  // Two commands: the first usually eats the POWER ON RESET attention.
  for (int round = 0; round < 2; ++round) {
    scsi::Task t;
    uint8_t sense[scsi::kSenseMax];
    std::memcpy(t.cdb, data + 1, cdb_len);
    t.cdb_len = 16;
    uint64_t lun_id = (ctl & 0x03) == 3 ? 7 : (ctl & 0x01);
    t.lun = lun_id << 48;
    t.nexus = nx;
    t.sense = sense;
    int calls = 0;
    t.ctx = &calls;
    t.done = [](scsi::Task* tk) { ++*static_cast<int*>(tk->ctx); };
    t.edtl = 0xffffffffu;
    if (ctl & 0x04) t.edtl = uint32_t(out_len);
    bool complete = tg.prepare(t);
    if (complete) {
      if (t.status == scsi::status::check_condition && t.sense_len == 0) fail();
      if (t.sense_len > scsi::kSenseMax) fail();
      continue;
    }
    if (t.edtl == 0xffffffffu) t.edtl = t.data_len < kBufMax ? t.data_len : kBufMax;
    uint32_t n = t.edtl < t.data_len ? t.edtl : t.data_len;
    if (n > kBufMax) n = kBufMax;
    std::vector<uint8_t> outbuf;
    if (t.dir == scsi::Dir::out) {
      outbuf.assign(out, out + (out_len < n ? out_len : n));
      // A short data-out still reaches execute(); the core must cope.
      n = uint32_t(outbuf.size());
    }
    uint8_t* base = t.dir == scsi::Dir::out ? outbuf.data() : inbuf.data();
    if (t.dir != scsi::Dir::none && !t.backend_buffer) {
      uint32_t cut = (ctl & 0x08) && n > 1 ? n / 3 : n;
      t.inline_segs[0] = {base, cut};
      t.inline_segs[1] = {base + cut, n - cut};
      t.segs = t.inline_segs;
      t.nsegs = n == 0 ? 0 : (cut == n ? 1 : 2);
    }
    tg.execute(t);
    while (calls == 0 && backend::thread_ops_in_flight()) backend::wait_thread_completions();
    if (calls != 1) fail();
    if (t.sense_len > scsi::kSenseMax) fail();
    if (t.dir == scsi::Dir::in && t.status == scsi::status::good && t.xfer_len > t.data_len) fail();
  }
  tg.close_nexus(nx);
  return 0;
}
